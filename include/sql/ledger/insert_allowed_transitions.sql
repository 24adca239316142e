INSERT INTO {{ allowed_transitions | ident }} (from_phase, to_phase)
SELECT f, t FROM unnest(%(from_phases)s::text[], %(to_phases)s::text[]) AS pairs(f, t)

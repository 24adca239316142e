-- The transitions after epoch n: the epoch counts transitions, so they are all but the first n.
SELECT dag_id, run_id FROM {{ phase_transitions | ident }} ORDER BY id OFFSET %(epoch)s

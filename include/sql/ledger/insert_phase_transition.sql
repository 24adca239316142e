INSERT INTO {{ phase_transitions | ident }} (phase, previous_phase, dag_id, run_id, details)
VALUES (%(phase)s, %(previous_phase)s, %(dag_id)s, %(run_id)s, %(details)s)
RETURNING at

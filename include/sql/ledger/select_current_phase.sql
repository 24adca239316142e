-- The latest move into a phase: a claim of the fence (same phase again) is not one.
SELECT phase, at, dag_id, run_id, actor
FROM {{ phase_transitions | ident }}
WHERE phase IS DISTINCT FROM previous_phase
ORDER BY id DESC
LIMIT 1

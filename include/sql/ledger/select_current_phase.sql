SELECT phase, at, dag_id, run_id, actor
FROM {{ phase_transitions | ident }}
ORDER BY id DESC
LIMIT 1

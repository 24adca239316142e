CREATE OR REPLACE VIEW {{ status | ident }} AS
WITH latest AS (
    SELECT phase, at, dag_id, run_id, actor
    FROM {{ phase_transitions | ident }}
    WHERE phase IS DISTINCT FROM previous_phase
    ORDER BY id DESC
    LIMIT 1
)
SELECT
    coalesce(c.phase, 'not_started') AS current_phase,
    c.at AS since,
    c.dag_id AS by_dag,
    c.run_id AS by_run,
    c.actor AS by_role,
    (SELECT coalesce(array_agg(a.to_phase ORDER BY a.to_phase), '{}')
       FROM {{ allowed_transitions | ident }} a
      WHERE a.from_phase = coalesce(c.phase, '')) AS may_advance_to,
    (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'phase', t.phase, 'previous_phase', t.previous_phase, 'at', t.at,
                'dag_id', t.dag_id, 'run_id', t.run_id, 'actor', t.actor, 'details', t.details)
            ORDER BY t.id), '[]'::jsonb)
       FROM {{ phase_transitions | ident }} t) AS history
FROM (SELECT 1) AS one
LEFT JOIN latest c ON true

-- The view counted limited, errored and other-direction runs; the streak is now judged from reconcile_run_outcomes.
DROP VIEW IF EXISTS {{ streak_view | ident }}

SELECT consecutive_clean_runs, clean_since, last_run_at, last_unclean_at FROM {{ streak_view | ident }}

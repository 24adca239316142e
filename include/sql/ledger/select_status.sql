SELECT current_phase, since, by_dag, by_run, by_role, may_advance_to, history FROM {{ status | ident }}

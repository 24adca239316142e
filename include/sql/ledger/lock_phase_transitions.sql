LOCK TABLE {{ phase_transitions | ident }} IN SHARE ROW EXCLUSIVE MODE

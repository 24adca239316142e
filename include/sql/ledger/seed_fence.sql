-- A ledger older than the fence starts it at its number of transitions and its current phase.
INSERT INTO {{ fence | ident }} (epoch, phase)
SELECT count(*), (SELECT phase FROM {{ phase_transitions | ident }} ORDER BY id DESC LIMIT 1)
FROM {{ phase_transitions | ident }}
ON CONFLICT (singleton) DO NOTHING

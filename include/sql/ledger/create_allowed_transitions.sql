CREATE TABLE IF NOT EXISTS {{ allowed_transitions | ident }} (
    from_phase text NOT NULL,
    to_phase text NOT NULL,
    PRIMARY KEY (from_phase, to_phase)
)

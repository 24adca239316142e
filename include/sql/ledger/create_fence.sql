-- The fence: one row whose epoch moves with every phase transition. A migration write
-- reads it FOR SHARE in its own transaction and commits only while the epoch it started
-- under is current; a ledger move takes it FOR UPDATE, so it waits for writes in flight.
CREATE TABLE IF NOT EXISTS {{ fence | ident }} (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    epoch bigint NOT NULL,
    phase text,
    -- dag/run of a cutover, rollback or finalize between its claim and its ledger move: a
    -- transition is under way, so no reconcile run may start.
    claimed_by text
)

"""Reconciliation during dual-write: bucketed checksums find the exact drifted
keys, a second read confirms them, and a bounded compare-and-set repair copies
them from the primary side; a drift ledger keeps every finding and run."""

from migration_engine.reconcile.drift_ledger import clean_streak, ensure_ledger, record_outcome
from migration_engine.reconcile.engine import (
    DEFAULT_CAP,
    DEFAULT_GRACE_SECONDS,
    Direction,
    Finding,
    ReconcileResult,
    TableJob,
    direction_for_phase,
    reconcile_table,
    reconcile_tables,
)
from migration_engine.reconcile.scan import ReconcileError
from migration_engine.reconcile.streak import CleanStreak

__all__ = [
    "DEFAULT_CAP", "DEFAULT_GRACE_SECONDS", "CleanStreak", "Direction", "Finding", "ReconcileError",
    "ReconcileResult", "TableJob", "clean_streak", "direction_for_phase", "ensure_ledger", "reconcile_table",
    "reconcile_tables", "record_outcome",
]

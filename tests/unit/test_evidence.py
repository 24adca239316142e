"""The approval request's body: what each dangerous step shows before anyone decides."""

from __future__ import annotations

from migration_engine import evidence

FLAGS = {
    "wallet": {"primary_side": "source", "dual_write": True},
    "issuer": {"primary_side": "target", "dual_write": False},
}


def test_cutover_summary_shows_drift_per_table_sequences_and_what_flips():
    text = evidence.cutover_summary(
        soak={"hours": 30.5, "required_hours": 24}, streak={"consecutive_clean_runs": 4, "required": 3},
        final={"unrepaired": 1, "in_flight": 2, "per_table": [
            {"table": "wallet.users", "checked_rows": 900, "drifted": 3, "repaired": 2, "in_flight": 0, "unrepaired": 1}]},
        sequences=[{"table": "wallet.users", "column": "id", "source_position": 900, "target_before": 10, "target_after": 1900}],
        flags=FLAGS, dry_run=True,
    )
    assert text.startswith("**Dry run:**")
    assert "30.50 h in `soak` (required 24 h)" in text and "4 (required 3)" in text
    assert "1 row(s) left unrepaired, 2 in flight" in text
    assert "| wallet.users | 900 | 3 | 2 | 0 | 1 |" in text
    assert "| wallet.users | id | 900 | 10 | 1900 |" in text
    assert "| wallet | source | on | → target |" in text and "| issuer | target | OFF | stays |" in text


def test_rollback_summary_warns_when_dual_write_is_off():
    text = evidence.rollback_summary(phase={"phase": "cut_over", "since": "2026-01-02T03:04:05+00:00"}, flags=FLAGS)
    assert "`cut_over` since 2026-01-02T03:04:05+00:00" in text
    assert "| issuer | target | OFF | → source |" in text
    assert "dual-write is off for issuer" in text


def test_finalize_summary_names_what_each_app_loses():
    text = evidence.finalize_summary(
        soak={"hours": 48.0, "required_hours": 24}, streak={"consecutive_clean_runs": 3, "required": 3},
        final={"unrepaired": 0, "in_flight": 1, "per_table": [
            {"table": "wallet.users", "checked_rows": 9, "drifted": 2, "repaired": 1, "in_flight": 1, "unrepaired": 1}]},
        writable={"wallet": 14, "issuer": 0}, retention_days=7, dry_run=False,
    )
    assert "Dry run" not in text
    assert "| issuer | 0 |" in text and "| wallet | 14 |" in text
    assert "7 days" in text
    assert "| wallet.users | 9 | 2 | 1 | 1 | 1 |" in text and "Dual-write" in text

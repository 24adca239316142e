"""Where a run writes its reports."""

from __future__ import annotations

from pathlib import Path

from migration_engine.resources import artifact_folder


def test_artifact_folder_is_one_folder_per_run_under_the_configured_root(monkeypatch, tmp_path):
    monkeypatch.setenv("MIGRATION_ARTIFACT_DIR", str(tmp_path))
    assert artifact_folder("verify", "manual__2026-01-02T03:04:05+00:00") == tmp_path / "verify" / "manual__2026-01-02T03_04_05_00_00"
    # A run id cannot climb out of the root.
    assert artifact_folder("verify", "../../etc") == tmp_path / "verify" / ".._.._etc"


def test_artifact_folder_defaults_to_the_airflow_home(monkeypatch, tmp_path):
    monkeypatch.delenv("MIGRATION_ARTIFACT_DIR", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert artifact_folder("status", "latest") == Path(tmp_path) / "artifacts" / "status" / "latest"

"""Where the package's SQL files and manifests live, from a checkout or an installed wheel,
and where a run writes its reports.

A checkout keeps them in ``include/`` beside ``plugins/``; an installed wheel ships the
same tree inside the package as ``migration_engine/include/`` (see pyproject.toml).
Relative paths in a manifest (``schema_sql``, ``smoke_sql``) are read from the folder
that holds ``include/``, so the same manifest works in both.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_INSTALLED_INCLUDE = _PACKAGE / "include"

INCLUDE_ROOT = _INSTALLED_INCLUDE if _INSTALLED_INCLUDE.is_dir() else _PACKAGE.parents[1] / "include"
PROJECT_ROOT = INCLUDE_ROOT.parent
SQL_ROOT = INCLUDE_ROOT / "sql"
MANIFESTS_ROOT = INCLUDE_ROOT / "manifests"


def artifact_folder(dag_id: str, run_id: str) -> Path:
    """``MIGRATION_ARTIFACT_DIR``, else ``$AIRFLOW_HOME/artifacts``; one folder per run."""
    root = os.environ.get("MIGRATION_ARTIFACT_DIR") or Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow") / "artifacts"
    return Path(root) / _safe_path_part(dag_id) / _safe_path_part(run_id)


def _safe_path_part(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", value)

"""Where the package's SQL files and manifests live, from a checkout or an installed wheel.

A checkout keeps them in ``include/`` beside ``plugins/``; an installed wheel ships the
same tree inside the package as ``migration_engine/include/`` (see pyproject.toml).
Relative paths in a manifest (``schema_sql``, ``smoke_sql``) are read from the folder
that holds ``include/``, so the same manifest works in both.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_INSTALLED_INCLUDE = _PACKAGE / "include"

INCLUDE_ROOT = _INSTALLED_INCLUDE if _INSTALLED_INCLUDE.is_dir() else _PACKAGE.parents[1] / "include"
PROJECT_ROOT = INCLUDE_ROOT.parent
SQL_ROOT = INCLUDE_ROOT / "sql"
MANIFESTS_ROOT = INCLUDE_ROOT / "manifests"

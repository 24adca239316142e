"""Steps of the dual_write DAG as plain functions over Airflow connections. Its gates and the flag it sets
are steps other DAGs run too (``tasks/shared.py``); what is its own is the ledger's move."""

from __future__ import annotations

import logging

from migration_engine import dag_support as ds

log = logging.getLogger("migration.dual_write")


def record_dual_write(dag_id: str, run_id: str, flags: dict, *, dry_run: bool) -> bool:
    if dry_run:
        log.info("dry run: the ledger stays where it is")
        return False
    return ds.advance_phase(dag_id, run_id, "dual_write", {"flags": flags["flags"]})

"""Packing small tables into shared mapped tasks.

A mapped task per tiny table costs more in Airflow's scheduling than in work
(seconds per task instance, against milliseconds for a table of a few hundred
rows), so tables whose source is small share a task, in manifest order
(parents first); a large table keeps a task of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from migration_engine import dag_support as ds

Item = TypeVar("Item")

# Whole small tables share one mapped task up to this many source bytes.
SMALL_TABLES_TASK_BYTES = 64 * 1024 * 1024


def pack(items: Iterable[Item], size_of: Callable[[Item], int | None],
         task_bytes: int = SMALL_TABLES_TASK_BYTES) -> list[list[Item]]:
    """Items in order, grouped into tasks of up to ``task_bytes``; an item sized None gets a task of its own."""
    tasks: list[list[Item]] = []
    packing: list[Item] = []
    packed_bytes = 0
    for item in items:
        size = size_of(item)
        if size is None:
            tasks.append([item])
            packing, packed_bytes = [], 0
            continue
        if packing and packed_bytes + size > task_bytes:
            packing, packed_bytes = [], 0
        if not packing:
            tasks.append(packing)
        packing.append(item)
        packed_bytes += size
    return tasks


def source_table_bytes(tables: list[str], conns: ds.Connections) -> dict[str, int]:
    """Qualified table name -> its source table's total size, one connection per service."""
    from migration_engine.chunks import table_size

    m = ds.manifest()
    sizes = {}
    for service in m.services:
        mine = [m.table(t) for t in tables if m.table(t).service == service.name]
        if mine:
            with conns.source(service.name) as conn:
                sizes.update({t.qualified: table_size(conn, t)[1] for t in mine})
    return sizes


def table_groups(dag_id: str, tables: list[str], task_bytes: int = SMALL_TABLES_TASK_BYTES) -> list[dict]:
    """The mapped tasks of a per-table DAG (reconcile, catch-up): each a label and its tables, parents first."""
    sizes = source_table_bytes(tables, ds.Connections(dag_id))
    groups = pack(tables, lambda table: sizes[table] if sizes[table] <= task_bytes else None, task_bytes)
    return [{"label": group_label(group), "tables": group} for group in groups]


def group_label(tables: list[str]) -> str:
    if len(tables) == 1:
        return tables[0]
    return f"{tables[0]} .. {tables[-1]} ({len(tables)} tables)"

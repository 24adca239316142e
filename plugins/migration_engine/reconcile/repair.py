"""Confirmed repair of one batch of drifted keys, from the primary side to the other.

Each write is a compare-and-set: a row is copied only if the primary still
holds the value that was confirmed, and written over the other side only if
that side still holds the value that was confirmed there. A row that moved in
between belongs to a write in flight and is left alone (reported, not
repaired), so a repair can never put an older value over a newer one.
Each batch's write transaction is opened by the caller's ``write_transaction`` (the
ledger's fence): a batch of a run the ledger has moved past writes nothing.
Row values travel as text under pinned print settings through a COPY into a
temporary staging table; they never reach a log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial

import psycopg
from psycopg import sql

from migration_engine.canonical import pin_output_settings, row_hash
from migration_engine.reconcile.scan import TableShape, read_hashes

log = logging.getLogger("migration.reconcile")

STAGE_TABLE = "reconcile_stage"

# Opens the write transaction on the given (secondary) connection, committing only under the run's epoch.
WriteTransaction = Callable[[psycopg.Connection], AbstractContextManager]


@dataclass(frozen=True)
class Side:
    """One side of a repair: a connection and where the table lives there."""

    conn: psycopg.Connection
    ident: tuple[str, str]


@dataclass
class BatchOutcome:
    repaired: set = field(default_factory=set)
    raced: set = field(default_factory=set)
    # Refused key -> what refused it ("delete refused by constraint X"), never a value.
    failed: dict = field(default_factory=dict)


def repair_batch(shape: TableShape, primary: Side, secondary: Side, items: list[tuple],
                 write_transaction: WriteTransaction) -> BatchOutcome:
    """Apply ``items`` = [(key, primary_hash | None, secondary_hash | None)] to the secondary side.

    Deletes run before upserts so a unique value freed by a deleted row can be
    taken by an upserted one. A batch that breaks a constraint on the secondary
    (a child whose parent is not repaired yet) is split in halves until only the
    refused keys are left: those are reported as failed, not raised, and the
    next run repairs them once the parent is there; the rest of the batch lands.
    """
    outcome = BatchOutcome()
    deletes = [(k, s) for k, p, s in items if p is None]
    upserts = [(k, p, s) for k, p, s in items if p is not None]
    for label, apply, batch in (("delete", _delete, deletes), ("upsert", _upsert, upserts)):
        _apply_splitting(shape, primary, secondary, label, partial(apply, write_transaction=write_transaction), batch, outcome)
    return outcome


def _apply_splitting(shape: TableShape, primary: Side, secondary: Side, label: str, apply, batch: list[tuple],
                     outcome: BatchOutcome) -> None:
    if not batch:
        return
    try:
        apply(shape, primary, secondary, batch, outcome)
    except psycopg.errors.IntegrityError as exc:
        if len(batch) > 1:
            half = len(batch) // 2
            _apply_splitting(shape, primary, secondary, label, apply, batch[:half], outcome)
            _apply_splitting(shape, primary, secondary, label, apply, batch[half:], outcome)
            return
        # The message may quote values; the constraint name and state are enough.
        log.warning("%s: %s of key %s refused by constraint %s (SQLSTATE %s); left for the next run",
                    shape.qualified, label, batch[0][0], exc.diag.constraint_name, exc.sqlstate)
        outcome.failed[batch[0][0]] = f"{label} refused by constraint {exc.diag.constraint_name}"


def _delete(shape: TableShape, primary: Side, secondary: Side, batch: list[tuple], outcome: BatchOutcome, *,
            write_transaction: WriteTransaction) -> None:
    keys = [k for k, _ in batch]
    reappeared = read_hashes(primary.conn, shape, primary.ident, keys)
    outcome.raced.update(reappeared)
    wanted = [(k, h) for k, h in batch if k not in reappeared]
    if not wanted:
        return
    statement = sql.SQL(
        "DELETE FROM {table} AS t USING unnest({keys}, %(hashes)s::bigint[]) AS c(k, h)"
        " WHERE {column} = c.k AND {hash} = c.h RETURNING {key}"
    ).format(table=sql.Identifier(*secondary.ident), keys=shape.key_array("keys"),
             column=sql.Identifier("t", shape.key), hash=row_hash(shape.columns), key=shape.ordered_key())
    with write_transaction(secondary.conn):
        pin_output_settings(secondary.conn)
        done = {row[0] for row in secondary.conn.execute(statement, {"keys": [k for k, _ in wanted], "hashes": [h for _, h in wanted]})}
    outcome.repaired.update(done)
    outcome.raced.update(k for k, _ in wanted if k not in done)


def _upsert(shape: TableShape, primary: Side, secondary: Side, batch: list[tuple], outcome: BatchOutcome, *,
            write_transaction: WriteTransaction) -> None:
    columns = sql.SQL(", ").join(map(sql.Identifier, shape.columns))
    as_text = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier("t", c)) for c in shape.columns)
    read = sql.SQL(
        "SELECT {key}, {values} FROM {table} AS t JOIN unnest({keys}, %(hashes)s::bigint[]) AS c(k, h)"
        " ON {column} = c.k AND {hash} = c.h"
    ).format(key=shape.ordered_key(), values=as_text, table=sql.Identifier(*primary.ident), keys=shape.key_array("keys"),
             column=sql.Identifier("t", shape.key), hash=row_hash(shape.columns))
    changed = [(k, s) for k, _, s in batch if s is not None]
    if shape.value_columns:
        on_conflict = sql.SQL(
            "DO UPDATE SET {assignments} WHERE ({column}, {hash}) IN (SELECT * FROM unnest({changed_keys}, %(changed_hashes)s::bigint[]))"
        ).format(
            assignments=sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in shape.value_columns),
            column=sql.Identifier("t", shape.key), hash=row_hash(shape.columns), changed_keys=shape.key_array("changed_keys"),
        )
    else:
        on_conflict = sql.SQL("DO NOTHING")
    write = sql.SQL(
        "INSERT INTO {table} AS t ({columns}) SELECT {columns} FROM {stage} ON CONFLICT ({key_column}) {on_conflict} RETURNING {key}"
    ).format(table=sql.Identifier(*secondary.ident), columns=columns, stage=sql.Identifier(STAGE_TABLE),
             key_column=sql.Identifier(shape.key), on_conflict=on_conflict, key=shape.ordered_key())
    stage = sql.SQL("CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {columns} FROM {table} WITH NO DATA").format(
        stage=sql.Identifier(STAGE_TABLE), columns=columns, table=sql.Identifier(*secondary.ident))
    copy = sql.SQL("COPY {stage} ({columns}) FROM STDIN").format(stage=sql.Identifier(STAGE_TABLE), columns=columns)

    copied: set = set()
    with primary.conn.transaction(), write_transaction(secondary.conn):
        pin_output_settings(primary.conn)
        pin_output_settings(secondary.conn)
        secondary.conn.execute(stage)
        with primary.conn.cursor(name="reconcile_repair_read") as reader, secondary.conn.cursor().copy(copy) as writer:
            reader.execute(read, {"keys": [k for k, _, _ in batch], "hashes": [p for _, p, _ in batch]})
            for key, *values in reader:
                copied.add(key)
                writer.write_row(values)
        done = {row[0] for row in secondary.conn.execute(write, {"changed_keys": [k for k, _ in changed], "changed_hashes": [s for _, s in changed]})}
    outcome.repaired.update(done)
    outcome.raced.update(k for k, _, _ in batch if k not in done)

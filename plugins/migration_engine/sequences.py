"""Sequences of serial/identity columns, found from the catalog, and their sync source -> target
(or back, target -> source, for a rollback).

A sequence's position is the last value it handed out (``last_value`` when
``is_called``, one increment below otherwise). The target's sequence is moved
forward only, to at least max(source position, max target key) + gap, so a
new insert in the target never collides; running it again changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager

import psycopg
from psycopg import sql

from migration_engine.endpoints import Endpoint
from migration_engine.manifest import Manifest

# Opens the transaction of one sequence move on the connection of the side it moves.
WriteTransaction = Callable[[psycopg.Connection], AbstractContextManager]

OWNED_SEQUENCES = """
SELECT a.attname, n.nspname, s.relname, q.seqincrement, q.seqmin
FROM pg_depend d
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_namespace n ON n.oid = s.relnamespace
JOIN pg_sequence q ON q.seqrelid = s.oid
JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
  AND d.deptype IN ('a', 'i') AND d.refobjid = to_regclass(%(table)s)
ORDER BY a.attnum
"""


def owned_sequences(conn: psycopg.Connection, ident: tuple[str, str]) -> dict[str, dict]:
    """column -> {sequence (schema, name), increment, min} for serial and identity columns."""
    rows = conn.execute(OWNED_SEQUENCES, {"table": sql.Identifier(*ident).as_string(conn)}).fetchall()
    return {col: {"sequence": (schema, name), "increment": inc, "min": low} for col, schema, name, inc, low in rows}


def sequence_position(conn: psycopg.Connection, sequence: tuple[str, str], increment: int) -> int:
    last_value, is_called = conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(sql.Identifier(*sequence))).fetchone()
    return last_value if is_called else last_value - increment


def sequence_pairs(source_conns: Mapping[str, psycopg.Connection], target: psycopg.Connection, manifest: Manifest):
    """Yield (table, column, source info, target info) for every sequence-owning source column."""
    for table in manifest.tables:
        source_seqs = owned_sequences(source_conns[table.service], table.source_ident)
        if not source_seqs:
            continue
        target_seqs = owned_sequences(target, table.target_ident)
        for column, source_seq in source_seqs.items():
            if column not in target_seqs:
                raise ValueError(
                    f"{table.qualified}: column {column} owns sequence {'.'.join(source_seq['sequence'])} in the source "
                    "but no sequence in the target; the target schema must declare it serial or identity"
                )
            yield table, column, source_seq, target_seqs[column]


def _max_key(conn: psycopg.Connection, ident: tuple[str, str], column: str) -> int | None:
    return conn.execute(sql.SQL("SELECT max({}) FROM {}").format(sql.Identifier(column), sql.Identifier(*ident))).fetchone()[0]


def sync_sequences(
    source_endpoints: Mapping[str, Endpoint], target: Endpoint, manifest: Manifest, gap: int = 0, *,
    dry_run: bool = False, to_source: bool = False, write_transaction: WriteTransaction | None = None,
) -> list[dict]:
    """Move each target sequence to >= max(source position, max target key) + gap; one dict per sequence.

    ``to_source`` carries them back instead (a rollback: the apps drew ids on the target), each
    source sequence to >= max(target position, max source key) + gap. ``dry_run`` computes and
    returns the same moves without setting anything. ``write_transaction`` opens the transaction
    of each move on the side it moves (the ledger's fence); by default a plain transaction.
    """
    if gap < 0:
        raise ValueError(f"gap must be 0 or more, found {gap}")
    write_transaction = write_transaction or (lambda conn: conn.transaction())
    sources = {s.name: source_endpoints[s.name].connect(autocommit=True) for s in manifest.services}
    results = []
    try:
        with target.connect(autocommit=True) as tgt:
            for table, column, src, dst in sequence_pairs(sources, tgt, manifest):
                (ahead_conn, ahead), (behind_conn, behind, behind_ident) = (
                    ((tgt, dst), (sources[table.service], src, table.source_ident)) if to_source
                    else ((sources[table.service], src), (tgt, dst, table.target_ident)))
                with write_transaction(behind_conn):
                    ahead_pos = sequence_position(ahead_conn, ahead["sequence"], ahead["increment"])
                    max_key = _max_key(behind_conn, behind_ident, column)
                    before = sequence_position(behind_conn, behind["sequence"], behind["increment"])
                    wanted = max(ahead_pos, max_key if max_key is not None else ahead_pos) + gap
                    changed = wanted > before and wanted >= behind["min"]
                    if changed and not dry_run:
                        behind_conn.execute("SELECT setval(%s::regclass, %s, true)",
                                            (sql.Identifier(*behind["sequence"]).as_string(behind_conn), wanted))
                ahead_side, behind_side = ("target", "source") if to_source else ("source", "target")
                results.append({
                    "table": table.qualified,
                    "column": column,
                    "source_sequence": ".".join(src["sequence"]),
                    "target_sequence": ".".join(dst["sequence"]),
                    f"{ahead_side}_position": ahead_pos,
                    f"{behind_side}_max_key": max_key,
                    f"{behind_side}_before": before,
                    f"{behind_side}_after": wanted if changed else before,
                    "changed": changed,
                })
    finally:
        for conn in sources.values():
            conn.close()
    return results

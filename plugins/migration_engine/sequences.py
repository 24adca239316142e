"""Sequences of serial/identity columns, found from the catalog, and their sync source -> target.

A sequence's position is the last value it handed out (``last_value`` when
``is_called``, one increment below otherwise). The target's sequence is moved
forward only, to at least max(source position, max target key) + gap, so a
new insert in the target never collides; running it again changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

import psycopg
from psycopg import sql

from migration_engine.endpoints import Endpoint
from migration_engine.manifest import Manifest, Table

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


def _max_key(conn: psycopg.Connection, table: Table, column: str) -> int | None:
    return conn.execute(sql.SQL("SELECT max({}) FROM {}").format(sql.Identifier(column), sql.Identifier(*table.target_ident))).fetchone()[0]


def sync_sequences(
    source_endpoints: Mapping[str, Endpoint], target: Endpoint, manifest: Manifest, gap: int = 0, *, dry_run: bool = False
) -> list[dict]:
    """Move each target sequence to >= max(source position, max target key) + gap; one dict per sequence.

    ``dry_run`` computes and returns the same moves without setting anything.
    """
    if gap < 0:
        raise ValueError(f"gap must be 0 or more, found {gap}")
    app = "credity-migration-sequences"
    sources = {s.name: source_endpoints[s.name].connect(application_name=app, autocommit=True) for s in manifest.services}
    results = []
    try:
        with target.connect(application_name=app, autocommit=True) as tgt:
            for table, column, src, dst in sequence_pairs(sources, tgt, manifest):
                with tgt.transaction():
                    source_pos = sequence_position(sources[table.service], src["sequence"], src["increment"])
                    max_key = _max_key(tgt, table, column)
                    before = sequence_position(tgt, dst["sequence"], dst["increment"])
                    wanted = max(source_pos, max_key if max_key is not None else source_pos) + gap
                    changed = wanted > before and wanted >= dst["min"]
                    if changed and not dry_run:
                        tgt.execute("SELECT setval(%s::regclass, %s, true)", (sql.Identifier(*dst["sequence"]).as_string(tgt), wanted))
                results.append({
                    "table": table.qualified,
                    "column": column,
                    "source_sequence": ".".join(src["sequence"]),
                    "target_sequence": ".".join(dst["sequence"]),
                    "source_position": source_pos,
                    "target_max_key": max_key,
                    "target_before": before,
                    "target_after": wanted if changed else before,
                    "changed": changed,
                })
    finally:
        for conn in sources.values():
            conn.close()
    return results

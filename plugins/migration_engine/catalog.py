"""The one reader of the catalog: a table's description, and schema fingerprints with exact,
readable differences between two catalogs.

``describe_table`` gives what the data path needs of one table: its columns in
table order with their types (generated columns left out: they cannot be
copied and the target computes them) and how its key ranges (``segment.KeyKind``);
``size_estimate`` its size, and ``table_exists`` whether it is there at all.
Types print as ``format_type`` prints them with the table's own schema on the
search path, so an enum ``public.trust_status`` in a source and
``issuer.trust_status`` in the target both read ``trust_status``.

A fingerprint describes what the apps depend on in a schema: tables, columns
(type as ``format_type`` prints it, nullability, default, identity), constraints
(primary key, unique, foreign key with the referenced table and columns, check),
enums with their ordered values and secondary indexes. Schema names are taken
out of every expression, so ``public.users`` in a source and ``wallet.users`` in
the target fingerprint the same when they are the same; ``schema_digest`` is
then equal too. ``diff_catalogs`` is pure and names each difference the way a
person would say it; ``check_schema_matches_source`` is runbook phase B's gate over it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg

from migration_engine import sqlfiles
from migration_engine.checks import CheckFailed
from migration_engine.segment import KEY_KINDS_BY_TYPE, KeyKind

if TYPE_CHECKING:
    from migration_engine.manifest import Manifest

FK_ACTIONS = {"a": "no action", "r": "restrict", "c": "cascade", "n": "set null", "d": "set default"}
FK_MATCH = {"f": "full", "p": "partial", "s": "simple"}
KIND = {"p": "primary key", "u": "unique", "f": "foreign key", "c": "check", "x": "exclusion"}

# Created after the backfill (schema step post_load_constraints): a baseline gate
# run before it must not count their absence as a mismatch.
DEFERRED_KINDS = {"unique", "foreign key"}


@dataclass(frozen=True)
class Fingerprint:
    """Deterministic description of one or more schemas, keyed by schema name."""

    schemas: dict

    def to_json(self) -> str:
        return canonical_json(self.schemas)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def schema(self, name: str) -> dict:
        return self.schemas[name]


class ColumnMismatch(ValueError):
    pass


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    type_name: str
    typmod: int
    not_null: bool
    default: str | None
    identity: str
    generated: str
    needs_text_copy: bool
    enum_labels: tuple[str, ...]
    unique: bool
    # The table a single-column foreign key on it references (unqualified), if any.
    references: str | None


@dataclass(frozen=True)
class TableDescription:
    """One table's copyable columns in table order, and how its key ranges (None: it cannot)."""

    columns: tuple[Column, ...]
    key_kind: KeyKind | None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


def _pin_search_path(conn: psycopg.Connection, schema: str) -> None:
    # Names print unqualified for objects visible on the search_path; pg_catalog first, so a
    # built-in (gen_random_uuid) prints the same whatever extensions a schema holds.
    sqlfiles.run(conn, "catalog/pin_search_path", {"schema": schema})


def _columns(conn: psycopg.Connection, schema: str, table: str | None) -> list[tuple[str, Column]]:
    """(table, column) of every table of ``schema``, or of ``table`` alone, in table order."""
    rows = sqlfiles.run(conn, "catalog/select_columns", {"schema": schema, "table": table}).fetchall()
    return [(relname, Column(name, type_, type_name, typmod, not_null, default, identity, generated, text_copy,
                             tuple(labels), unique, references))
            for (relname, name, type_, type_name, typmod, not_null, default, identity, generated, text_copy,
                 labels, unique, references) in rows]


def size_estimate(conn: psycopg.Connection, ident: tuple[str, str]) -> tuple[int | None, int] | None:
    """(the planner's row estimate, None before the first ANALYZE; total bytes) of the table ``ident``
    (schema, name); None when it does not exist."""
    row = sqlfiles.run(conn, "catalog/select_table_size", {"schema": ident[0], "table": ident[1]}).fetchone()
    return None if row is None else (None if row[0] < 0 else row[0], row[1])


def heap_blocks(conn: psycopg.Connection, ident: tuple[str, str]) -> int:
    """How many blocks the table ``ident`` (schema, name) holds now; 0 when it does not exist."""
    row = sqlfiles.run(conn, "catalog/select_heap_blocks", {"schema": ident[0], "table": ident[1]}).fetchone()
    return 0 if row is None else row[0]


def table_exists(conn: psycopg.Connection, ident: tuple[str, str]) -> bool:
    return sqlfiles.run(conn, "catalog/select_table_exists", {"schema": ident[0], "table": ident[1]}).fetchone() is not None


def describe_table(conn: psycopg.Connection, ident: tuple[str, str], key: Sequence[str] = ()) -> TableDescription | None:
    """The table ``ident`` (schema, name), with the kind of its ``key`` when that is one rangeable
    column; None when the table does not exist."""
    with conn.transaction():
        if not table_exists(conn, ident):
            return None
        _pin_search_path(conn, ident[0])
        columns = tuple(c for _, c in _columns(conn, *ident) if not c.generated)
    key_column = next((c for c in columns if c.name == key[0]), None) if len(key) == 1 else None
    return TableDescription(columns, KEY_KINDS_BY_TYPE.get(key_column.type_name) if key_column else None)


def matching_columns(qualified: str, source: TableDescription | None, target: TableDescription | None, *,
                     source_name: str, target_name: str) -> tuple[Column, ...]:
    """The source's columns when the target has the same names and types; else a ColumnMismatch naming them."""
    if source is None:
        raise ColumnMismatch(f"{qualified}: table {source_name} does not exist in the source")
    if target is None:
        raise ColumnMismatch(f"{qualified}: table {target_name} does not exist in the target; apply the schema first")
    target_types = {c.name: c.type for c in target.columns}
    source_types = {c.name: c.type for c in source.columns}
    problems = []
    for column in source.columns:
        if column.name not in target_types:
            problems.append(f"column {column.name} ({column.type}) exists in source, missing in target")
        elif target_types[column.name] != column.type:
            problems.append(f"column {column.name} is {column.type} in source, {target_types[column.name]} in target")
    problems += [f"column {c.name} ({c.type}) exists in target, missing in source" for c in target.columns
                 if c.name not in source_types]
    if problems:
        raise ColumnMismatch(f"{qualified}: " + "; ".join(problems))
    return source.columns


def copy_format(columns: Iterable[Column]) -> str:
    return "text" if any(c.needs_text_copy for c in columns) else "binary"


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def schema_digest(fingerprint: Fingerprint, schema: str) -> str:
    """sha256 of one schema's content, independent of the schema's name."""
    return hashlib.sha256(canonical_json(fingerprint.schema(schema)).encode()).hexdigest()


def strip_schema(text: str | None, schema: str) -> str | None:
    """Remove ``schema.`` / ``"schema".`` qualifiers so expressions compare across schemas."""
    if text is None:
        return None
    pattern = r'(?<![\w$"])(?:"' + re.escape(schema.replace('"', '""')) + r'"|' + re.escape(schema) + r")\."
    return re.sub(pattern, "", text)


def _run(conn: psycopg.Connection, name: str, schema: str) -> list[tuple]:
    return sqlfiles.run(conn, f"catalog/{name}", {"schema": schema}).fetchall()


def fingerprint(conn: psycopg.Connection, schemas: Iterable[str]) -> Fingerprint:
    """Read the catalog of ``schemas`` in one read-only snapshot."""
    result = {}
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        for schema in schemas:
            _pin_search_path(conn, schema)
            result[schema] = _schema(conn, schema)
    return Fingerprint(result)


def _schema(conn: psycopg.Connection, schema: str) -> dict:
    tables: dict[str, dict] = {
        name: {"columns": {}, "constraints": {}, "indexes": {}} for (name,) in _run(conn, "select_tables", schema)
    }
    for table, column in _columns(conn, schema, None):
        tables[table]["columns"][column.name] = {
            "type": strip_schema(column.type, schema),
            "not_null": column.not_null,
            "default": strip_schema(column.default, schema),
            "identity": column.identity or None,
            "generated": column.generated or None,
        }
    for row in _run(conn, "select_constraints", schema):
        (table, name, contype, columns, ref_schema, ref_table, ref_columns,
         on_update, on_delete, match, validated, deferrable, deferred, definition) = row
        kind = KIND[contype]
        if kind == "foreign key":
            ref = ref_table if ref_schema == schema else f"{ref_schema}.{ref_table}"
            signature = f"foreign key ({', '.join(columns)}) references {ref} ({', '.join(ref_columns)})"
        elif kind in ("check", "exclusion"):
            signature = strip_schema(definition, schema)
        else:
            signature = f"{kind} ({', '.join(columns)})"
        info = {"name": name, "kind": kind, "validated": validated, "deferrable": deferrable, "initially_deferred": deferred}
        if kind == "foreign key":
            info.update(on_update=FK_ACTIONS[on_update], on_delete=FK_ACTIONS[on_delete], match=FK_MATCH[match])
        tables[table]["constraints"][signature] = info
    for table, index, definition in _run(conn, "select_indexes", schema):
        tables[table]["indexes"][index] = strip_schema(definition, schema)
    enums = {name: list(values) for name, values in _run(conn, "select_enums", schema)}
    return {"tables": tables, "enums": enums}


def diff_catalogs(
    source_fp: Fingerprint,
    target_fp: Fingerprint,
    schema_map: Mapping[str, str],
    *,
    tables: Mapping[str, Collection[str]] | None = None,
    deferred: bool = False,
    source_label: str = "source",
    target_label: str = "target",
) -> list[str]:
    """Every difference between the source schemas and the target schemas they map to.

    ``schema_map`` maps a source schema to its target schema; messages name the
    target schema (``wallet.users: ...``). ``tables`` (by target schema) limits the
    table comparison to those tables. ``deferred`` ignores unique and foreign-key
    constraints and secondary indexes, which are created after the backfill.
    """
    differences: list[str] = []
    for source_schema, target_schema in schema_map.items():
        src = source_fp.schemas.get(source_schema, {"tables": {}, "enums": {}})
        tgt = target_fp.schemas.get(target_schema, {"tables": {}, "enums": {}})
        wanted = set(tables[target_schema]) if tables is not None and target_schema in tables else None
        labels = (source_label, target_label)
        differences += _diff_enums(target_schema, src["enums"], tgt["enums"], labels)
        names = set(src["tables"]) | set(tgt["tables"])
        if wanted is not None:
            names &= wanted
        for table in sorted(names):
            where = f"{target_schema}.{table}"
            if table not in tgt["tables"]:
                differences.append(f"{where}: table exists in {source_label}, missing in {target_label}")
            elif table not in src["tables"]:
                differences.append(f"{where}: table exists in {target_label}, missing in {source_label}")
            else:
                differences += _diff_table(where, src["tables"][table], tgt["tables"][table], labels, deferred)
    return differences


def _diff_enums(schema: str, src: dict, tgt: dict, labels: tuple[str, str]) -> list[str]:
    s_label, t_label = labels
    out = []
    for name in sorted(set(src) | set(tgt)):
        where = f"{schema}.{name}"
        if name not in tgt:
            out.append(f"{where}: enum exists in {s_label}, missing in {t_label}")
            continue
        if name not in src:
            out.append(f"{where}: enum exists in {t_label}, missing in {s_label}")
            continue
        s_values, t_values = src[name], tgt[name]
        for value in s_values:
            if value not in t_values:
                out.append(f"{where}: enum value '{value}' exists in {s_label}, missing in {t_label}")
        for value in t_values:
            if value not in s_values:
                out.append(f"{where}: enum value '{value}' exists in {t_label}, missing in {s_label}")
        common_s = [v for v in s_values if v in t_values]
        common_t = [v for v in t_values if v in s_values]
        if common_s != common_t:
            out.append(f"{where}: enum values ordered {common_s} in {s_label}, {common_t} in {t_label}")
    return out


def _describe_default(value: str | None) -> str:
    return value if value is not None else "none"


def _diff_table(where: str, src: dict, tgt: dict, labels: tuple[str, str], deferred: bool) -> list[str]:
    s_label, t_label = labels
    out = []
    for column in sorted(set(src["columns"]) | set(tgt["columns"])):
        s, t = src["columns"].get(column), tgt["columns"].get(column)
        if t is None:
            out.append(f"{where}: column {column} ({s['type']}) exists in {s_label}, missing in {t_label}")
            continue
        if s is None:
            out.append(f"{where}: column {column} ({t['type']}) exists in {t_label}, missing in {s_label}")
            continue
        if s["type"] != t["type"]:
            out.append(f"{where}: column {column} type {s['type']} in {s_label}, {t['type']} in {t_label}")
        if s["not_null"] != t["not_null"]:
            null = {True: "NOT NULL", False: "nullable"}
            out.append(f"{where}: column {column} is {null[s['not_null']]} in {s_label}, {null[t['not_null']]} in {t_label}")
        if s["default"] != t["default"]:
            out.append(
                f"{where}: column {column} default {_describe_default(s['default'])} in {s_label}, "
                f"{_describe_default(t['default'])} in {t_label}"
            )
        for attribute in ("identity", "generated"):
            if s[attribute] != t[attribute]:
                out.append(f"{where}: column {column} {attribute} {s[attribute]!r} in {s_label}, {t[attribute]!r} in {t_label}")
    for signature in sorted(set(src["constraints"]) | set(tgt["constraints"])):
        s, t = src["constraints"].get(signature), tgt["constraints"].get(signature)
        kind = (s or t)["kind"]
        if deferred and kind in DEFERRED_KINDS:
            continue
        if t is None:
            out.append(f"{where}: {signature} exists in {s_label}, missing in {t_label}")
        elif s is None:
            out.append(f"{where}: {signature} exists in {t_label}, missing in {s_label}")
        else:
            if s["validated"] != t["validated"]:
                state = {True: "validated", False: "NOT VALID"}
                out.append(f"{where}: {signature} is {state[s['validated']]} in {s_label}, {state[t['validated']]} in {t_label}")
            for attribute in ("deferrable", "initially_deferred", "on_update", "on_delete", "match"):
                if s.get(attribute) != t.get(attribute):
                    out.append(
                        f"{where}: {signature} {attribute} {s.get(attribute)!r} in {s_label}, {t.get(attribute)!r} in {t_label}"
                    )
    if not deferred:
        for index in sorted(set(src["indexes"]) | set(tgt["indexes"])):
            s, t = src["indexes"].get(index), tgt["indexes"].get(index)
            if t is None:
                out.append(f"{where}: index {index} exists in {s_label}, missing in {t_label}: {s}")
            elif s is None:
                out.append(f"{where}: index {index} exists in {t_label}, missing in {s_label}: {t}")
            elif s != t:
                out.append(f"{where}: index {index} is {s} in {s_label}, {t} in {t_label}")
    return out

# -- phase B's gate: the target schema of every service matches its live source ---------------
# Compared per mapped table: columns, types, nullability, defaults (schema names taken out),
# primary keys, check constraints and enums with their values. Unique and foreign-key
# constraints and secondary indexes are left out by default: the schema step
# post_load_constraints adds them after the backfill (NOT VALID, then VALIDATE), so loading
# runs without per-row constraint checks while every row is still checked once before
# verification. A full compare (deferred=False) after that step includes them.


class SchemaMismatch(CheckFailed):
    pass


def schema_differences(
    source_conn: psycopg.Connection, target_conn: psycopg.Connection, manifest: Manifest, service: str, *, deferred: bool
) -> tuple[list[str], str]:
    """(differences, target schema digest) for one service."""
    svc = manifest.service(service)
    source_fp = fingerprint(source_conn, [svc.source_schema])
    target_fp = fingerprint(target_conn, [svc.target_schema])
    mapped = {t.name for t in svc.tables}
    differences = [
        f"{svc.target_schema}.{name}: table exists in the {service} source but is not in the manifest {manifest.file.name}"
        for name in sorted(set(source_fp.schema(svc.source_schema)["tables"]) - mapped)
    ]
    differences += diff_catalogs(
        source_fp, target_fp, {svc.source_schema: svc.target_schema}, tables={svc.target_schema: mapped}, deferred=deferred
    )
    return differences, schema_digest(target_fp, svc.target_schema)


def check_schema_matches_source(
    source_conn: psycopg.Connection, target_conn: psycopg.Connection, manifest: Manifest, service: str, *, deferred: bool = True
) -> str:
    """Raise SchemaMismatch listing every difference; return the target schema's digest."""
    differences, digest = schema_differences(source_conn, target_conn, manifest, service, deferred=deferred)
    if differences:
        raise SchemaMismatch(
            f"the {manifest.service(service).target_schema} schema in the target does not match the live {service} source "
            f"({len(differences)} difference(s)):\n  " + "\n  ".join(differences)
            + "\nFix the schema SQL under include/sql/schema (or the target), then run schema_baseline again."
        )
    return digest

"""Schema fingerprints and exact, readable differences between two catalogs.

A fingerprint describes what the apps depend on in a schema: tables, columns
(type as ``format_type`` prints it, nullability, default, identity), constraints
(primary key, unique, foreign key with the referenced table and columns, check),
enums with their ordered values and secondary indexes. Schema names are taken
out of every expression, so ``public.users`` in a source and ``wallet.users`` in
the target fingerprint the same when they are the same; ``schema_digest`` is
then equal too. ``diff_catalogs`` is pure and names each difference the way a
person would say it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

import psycopg

from migration_engine import sqlfiles

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
            # Expressions print unqualified for objects visible on the search_path; pg_catalog
            # first, so a built-in (gen_random_uuid) prints the same whatever extensions a schema holds.
            sqlfiles.run(conn, "catalog/pin_search_path", {"schema": schema})
            result[schema] = _schema(conn, schema)
    return Fingerprint(result)


def _schema(conn: psycopg.Connection, schema: str) -> dict:
    tables: dict[str, dict] = {
        name: {"columns": {}, "constraints": {}, "indexes": {}} for (name,) in _run(conn, "select_tables", schema)
    }
    for table, column, type_, not_null, default, identity, generated in _run(conn, "select_columns", schema):
        tables[table]["columns"][column] = {
            "type": strip_schema(type_, schema),
            "not_null": not_null,
            "default": strip_schema(default, schema),
            "identity": identity or None,
            "generated": generated or None,
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

"""A table's columns from the catalog, in table order, and the check that source and target agree.

Types are printed with the table's own schema on the search path, so an enum
``public.trust_status`` in the source and ``issuer.trust_status`` in the target
both read ``trust_status``. Generated columns are left out: they cannot be copied
and the target computes them.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

# Binary COPY writes element/field type OIDs into arrays, composites and ranges, and
# record_recv/array_recv may reject an OID other than their own: user-defined OIDs differ
# per database. Such columns are rare, so their tables go as text rather than risk it.
COLUMNS_QUERY = """
SELECT a.attname,
       format_type(a.atttypid, a.atttypmod),
       (b.typcategory = 'A' AND b.typelem >= 16384) OR (b.typtype IN ('c', 'r', 'm') AND b.oid >= 16384)
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE a.attrelid = to_regclass(%(table)s) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attnum
"""


class ColumnMismatch(ValueError):
    pass


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    needs_text_copy: bool = False


def table_columns(conn: psycopg.Connection, schema: str, table: str) -> list[Column]:
    """Columns of ``schema.table`` in table order; an empty list when the table does not exist."""
    with conn.transaction():
        conn.execute("SELECT set_config('search_path', %s, true)", (sql.Identifier(schema).as_string(conn),))
        rows = conn.execute(COLUMNS_QUERY, {"table": sql.Identifier(schema, table).as_string(conn)}).fetchall()
    return [Column(name, type_, bool(text)) for name, type_, text in rows]


def matching_columns(qualified: str, source: list[Column], target: list[Column], *, source_name: str, target_name: str) -> list[Column]:
    """The source's columns when the target has the same names and types; else a ColumnMismatch naming them."""
    if not source:
        raise ColumnMismatch(f"{qualified}: table {source_name} does not exist in the source")
    if not target:
        raise ColumnMismatch(f"{qualified}: table {target_name} does not exist in the target; apply the schema first")
    target_types = {c.name: c.type for c in target}
    source_types = {c.name: c.type for c in source}
    problems = []
    for column in source:
        if column.name not in target_types:
            problems.append(f"column {column.name} ({column.type}) exists in source, missing in target")
        elif target_types[column.name] != column.type:
            problems.append(f"column {column.name} is {column.type} in source, {target_types[column.name]} in target")
    problems += [f"column {c.name} ({c.type}) exists in target, missing in source" for c in target if c.name not in source_types]
    if problems:
        raise ColumnMismatch(f"{qualified}: " + "; ".join(problems))
    return source


def copy_format(columns: list[Column]) -> str:
    return "text" if any(c.needs_text_copy for c in columns) else "binary"

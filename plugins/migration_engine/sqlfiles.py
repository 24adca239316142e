"""Templated SQL files: one statement per file, identifiers quoted, values bound.

A file names identifiers as ``{{ name }}``; rendering replaces each with a
quoted identifier (``psycopg.sql.Identifier``), never with raw text, and an
unknown or missing name is an error naming the file. Values never go through
the template: files use ``%(name)s`` placeholders and callers bind them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from migration_engine.resources import PROJECT_ROOT, SQL_ROOT

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class TemplateError(ValueError):
    pass


@dataclass(frozen=True)
class SqlFile:
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text()

    @property
    def placeholders(self) -> set[str]:
        return set(PLACEHOLDER.findall(self.text))

    def render(self, **identifiers: str | tuple[str, ...]) -> sql.Composed:
        return render_template(self.text, identifiers, origin=str(self.path))


def sql_path(*parts: str) -> Path:
    return SQL_ROOT.joinpath(*parts)


def load(*parts: str) -> SqlFile:
    path = sql_path(*parts)
    if not path.suffix:
        path = path.with_suffix(".sql")
    if not path.is_file():
        raise TemplateError(f"SQL file not found: {path.relative_to(PROJECT_ROOT)}")
    return SqlFile(path)


def render_template(text: str, identifiers: dict, origin: str = "<sql>") -> sql.Composed:
    """Compose SQL text with each ``{{ name }}`` replaced by a quoted identifier.

    A tuple value becomes a qualified name (``schema.table``).
    """
    parts: list[sql.Composable] = []
    used: set[str] = set()
    position = 0
    for match in PLACEHOLDER.finditer(text):
        name = match.group(1)
        if name not in identifiers:
            raise TemplateError(f"{origin}: placeholder {{{{ {name} }}}} has no value; pass {name}=...")
        parts.append(sql.SQL(text[position : match.start()]))
        value = identifiers[name]
        parts.append(sql.Identifier(*value) if isinstance(value, tuple) else sql.Identifier(value))
        used.add(name)
        position = match.end()
    parts.append(sql.SQL(text[position:]))
    return sql.Composed(parts)

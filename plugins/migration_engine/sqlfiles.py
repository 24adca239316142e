"""Templated SQL files: one statement per file, identifiers quoted, values bound.

Files are Jinja templates, rendered by one Jinja configuration wherever they
run: inside Airflow tasks by the DAG's own environment (``dag_arguments`` hands
it ``FILTERS`` and ``JINJA_OPTIONS``, so the Rendered Template tab shows the
text that ran), and outside Airflow by ``environment()`` here, built the same
way. A file names an identifier as ``{{ name | ident }}``; ``ident`` quotes it
(a tuple becomes a qualified ``schema.table``). Any other expression in a
SQL template (a name with ``.sql``) is refused when rendered, so an identifier can never land
unquoted. Values never go through the template: files use ``%(name)s``
placeholders and callers bind them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

import jinja2
import jinja2.meta
import jinja2.sandbox
from psycopg import sql

from migration_engine.resources import PROJECT_ROOT, SQL_ROOT

TEMPLATE_SUFFIX = ".sql"


class TemplateError(ValueError):
    pass


class QuotedIdentifier(str):
    """Text that ``ident`` produced: the only kind of value a SQL template may emit."""


def ident(value: str | tuple[str, ...] | list[str]) -> QuotedIdentifier:
    """The ``ident`` filter: a quoted identifier, or a qualified name from a tuple or list."""
    if isinstance(value, jinja2.Undefined):
        value = str(value)  # a strict environment raises here, naming the missing identifier
    parts = tuple(value) if isinstance(value, tuple | list) else (value,)
    if not parts or not all(isinstance(part, str) and part for part in parts):
        raise TemplateError(f"an identifier must be a non-empty string or a tuple of them, not {value!r}")
    if any("\x00" in part for part in parts):
        raise TemplateError(f"an identifier cannot contain a NUL character: {value!r}")
    return QuotedIdentifier(sql.Identifier(*parts).as_string())


def ident_list(values: list | tuple) -> QuotedIdentifier:
    """The ``ident_list`` filter: identifiers (names, or qualified names as tuples), quoted and comma-separated."""
    if isinstance(values, str) or not values:
        raise TemplateError(f"an identifier list must be a non-empty list of identifiers, not {values!r}")
    return QuotedIdentifier(", ".join(ident(value) for value in values))


@jinja2.pass_context
def _only_quoted(context, value):
    """Jinja ``finalize``: in a SQL file, every ``{{ … }}`` must pass through ``| ident``."""
    name = context.name or ""
    if TEMPLATE_SUFFIX in name and not isinstance(value, QuotedIdentifier):
        raise TemplateError(
            f"{name}: an expression rendered {type(value).__name__} without quoting; write identifiers as "
            "{{ name | ident }} and bind values as %(name)s parameters"
        )
    return value


FILTERS = {"ident": ident, "ident_list": ident_list}
# What the DAGs pass as jinja_environment_kwargs: files render byte for byte as here.
JINJA_OPTIONS = {"finalize": _only_quoted, "keep_trailing_newline": True}


@cache
def environment() -> jinja2.Environment:
    """The Jinja environment of the engine, configured as the DAGs configure Airflow's."""
    env = jinja2.sandbox.SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(str(SQL_ROOT)), undefined=jinja2.StrictUndefined, **JINJA_OPTIONS
    )
    env.filters.update(FILTERS)
    return env


def render_text(
    text: str, identifiers: dict, origin: str = "<text>.sql", env: jinja2.Environment | None = None
) -> str:
    """Render SQL template text; a name without a value is an error naming the file."""
    env = env or environment()
    try:
        template = env.from_string(text)
        template.name = origin
        return template.render(**identifiers)
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"{origin}: {exc}; pass it as name=...") from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{origin} line {exc.lineno}: {exc.message}") from None


@dataclass(frozen=True)
class SqlFile:
    path: Path

    @property
    def text(self) -> str:
        return _file_text(self.path)

    @property
    def name(self) -> str:
        """The template name Airflow's loader knows it by (relative to ``include/sql``), else its path."""
        try:
            return self.path.relative_to(SQL_ROOT).as_posix()
        except ValueError:
            return str(self.path)

    @property
    def placeholders(self) -> frozenset[str]:
        return _placeholders(self.path)

    def render_text(self, env: jinja2.Environment | None = None, **identifiers: str | tuple[str, ...]) -> str:
        """The rendered text; a file under ``include/sql`` is loaded by the environment's own loader."""
        env = env or environment()
        if self.name == str(self.path):
            return render_text(self.text, identifiers, origin=self.name, env=env)
        try:
            return env.get_template(self.name).render(**identifiers)
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"{self.name}: {exc}; pass it as name=...") from None

    def render(self, **identifiers: str | tuple[str, ...]) -> sql.Composed:
        return sql.Composed([sql.SQL(self.render_text(**identifiers))])


@dataclass(frozen=True)
class PlannedStatement:
    """One file to run with its identifiers and bound values; ``text`` once rendered.

    ``service`` says which database it runs in when that is not the target.
    """

    name: str  # under include/sql, e.g. "cutover/set_read_path.sql"
    identifiers: dict
    params: dict = field(default_factory=dict)
    service: str | None = None
    text: str | None = None

    def rendered(self, env: jinja2.Environment | None = None) -> PlannedStatement:
        """Rendered by ``env`` (Airflow's, inside a task) or the engine's own environment."""
        return replace(self, text=load(self.name).render_text(env=env, **self.identifiers))

    @property
    def statement(self) -> sql.Composed:
        if self.text is None:
            raise TemplateError(f"{self.name} was not rendered before it was run")
        return sql.Composed([sql.SQL(self.text)])

    def display(self) -> str:
        """The statement as logged and shown in the Rendered Template tab, its bound values beside it."""
        heading = f"-- {self.name}" + (f" on the {self.service} source" if self.service else "")
        lines = [heading, (self.text or "").rstrip() + ";"]
        if self.params:
            lines.append(f"-- bound values: {json.dumps(self.params, default=str, sort_keys=True)}")
        return "\n".join(lines)


# The files ship with the package and do not change while it runs; parsing one costs milliseconds, and a
# reconcile of a few dozen tables runs hundreds of statements.
@cache
def _file_text(path: Path) -> str:
    return path.read_text()


@cache
def _placeholders(path: Path) -> frozenset[str]:
    return frozenset(jinja2.meta.find_undeclared_variables(environment().parse(_file_text(path))))


def sql_path(*parts: str) -> Path:
    return SQL_ROOT.joinpath(*parts)


def load(*parts: str) -> SqlFile:
    path = sql_path(*parts)
    if not path.suffix:
        path = path.with_suffix(TEMPLATE_SUFFIX)
    if not path.is_file():
        raise TemplateError(f"SQL file not found: {path.relative_to(PROJECT_ROOT)}")
    return SqlFile(path)


def statement(name: str, **identifiers) -> sql.Composed:
    """``phase/verb_object`` (``include/sql/<phase>/<verb_object>.sql``) rendered with the identifiers its
    placeholders name; others are ignored, so a module may pass its whole set of objects."""
    sql_file = load(*name.split("/"))
    return sql_file.render(**{k: v for k, v in identifiers.items() if k in sql_file.placeholders})


def run(conn, name: str, params: dict | None = None, **identifiers):
    """Execute one SQL file (see ``statement``) with its values bound; returns the cursor."""
    return conn.execute(statement(name, **identifiers), params)


def render_template(text: str, identifiers: dict, origin: str = "<text>.sql") -> sql.Composed:
    """Compose SQL template text that is not a file under ``include/sql`` (a drizzle statement)."""
    return sql.Composed([sql.SQL(render_text(text, identifiers, origin=origin))])

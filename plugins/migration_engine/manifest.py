"""The migration manifest: one YAML file describing one migration, loaded strictly.

Loading touches no database, so DAG files may load it at parse time. Every
problem is a ``ManifestError`` naming the file, the path inside it and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import yaml

from migration_engine.resources import MANIFESTS_ROOT, PROJECT_ROOT

DEFAULT_MANIFEST = MANIFESTS_ROOT / "credity.yaml"

MAX_IDENTIFIER_BYTES = 63


class ManifestError(ValueError):
    def __init__(self, file: Path | str, path: str, problem: str, fix: str):
        self.file, self.path, self.problem, self.fix = str(file), path, problem, fix
        super().__init__(f"{file}: {path or '<top>'}: {problem}. Fix: {fix}")


@dataclass(frozen=True)
class Connection:
    conn_id: str
    env_prefix: str | None = None


@dataclass(frozen=True)
class Table:
    service: str
    name: str
    key: tuple[str, ...]
    references: tuple[str, ...] = ()
    sensitive: tuple[str, ...] = ()
    chunk_rows: int | None = None
    source_schema: str = "public"
    target_schema: str = ""

    @property
    def qualified(self) -> str:
        """Human name, as the target knows it: ``wallet.users``."""
        return f"{self.target_schema}.{self.name}"

    @property
    def source_ident(self) -> tuple[str, str]:
        return (self.source_schema, self.name)

    @property
    def target_ident(self) -> tuple[str, str]:
        return (self.target_schema, self.name)


@dataclass(frozen=True)
class Service:
    name: str
    source: str
    source_schema: str
    target_schema: str
    tables: tuple[Table, ...]
    app_role: str | None = None

    def table(self, name: str) -> Table:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(f"{self.name} has no table {name!r}")


@dataclass(frozen=True)
class StateStore:
    table: str
    key_column: str
    updated_column: str
    max_age_hours: float
    keys_by_service: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class SchemaStep:
    name: str
    folder: str
    after_backfill: bool = False


@dataclass(frozen=True)
class Manifest:
    file: Path
    migration: str
    description: str
    sources: dict[str, Connection]
    target_direct: Connection
    target_pooler: Connection
    control_schema: str
    schema_sql: Path
    smoke_sql: Path
    services: tuple[Service, ...]
    state_store: StateStore
    schema_steps: tuple[SchemaStep, ...]
    extra: dict = field(default_factory=dict)

    def service(self, name: str) -> Service:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(f"no service {name!r} in {self.file}")

    @cached_property
    def tables(self) -> tuple[Table, ...]:
        """Every table, parents before children within each service."""
        ordered: list[Table] = []
        for service in self.services:
            ordered.extend(_topological(service.tables))
        return tuple(ordered)

    def table(self, qualified: str) -> Table:
        for table in self.tables:
            if table.qualified == qualified:
                return table
        known = ", ".join(t.qualified for t in self.tables)
        raise KeyError(f"table {qualified!r} is not in the manifest {self.file.name}; known tables: {known}")

    def source_conn_id(self, service: str) -> str:
        return self.sources[self.service(service).source].conn_id


def _topological(tables: tuple[Table, ...]) -> list[Table]:
    by_name = {t.name: t for t in tables}
    done: dict[str, Table] = {}

    def visit(table: Table) -> None:
        if table.name in done:
            return
        for parent in table.references:
            if parent != table.name:
                visit(by_name[parent])
        done[table.name] = table

    for table in tables:
        visit(table)
    return list(done.values())


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key repeated in one mapping (PyYAML keeps the last)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Reader:
    """Walks the parsed YAML, remembering the path so errors can name it."""

    def __init__(self, file: Path):
        self.file = file

    def fail(self, path: str, problem: str, fix: str) -> None:
        raise ManifestError(self.file, path, problem, fix)

    def mapping(self, value, path: str, required: set[str], optional: set[str] = frozenset()) -> dict:
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, found {type(value).__name__}", "write it as `key: value` lines")
        allowed = required | optional
        for key in value:
            if key not in allowed:
                self.fail(
                    _join(path, str(key)), f"unknown key {key!r}", f"remove it, or use one of: {', '.join(sorted(allowed))}"
                )
        for key in sorted(required):
            if key not in value:
                self.fail(_join(path, key), f"required key {key!r} is missing", f"add `{key}:`")
        return value

    def identifier(self, value, path: str) -> str:
        if not isinstance(value, str) or not value:
            self.fail(path, f"expected a non-empty name, found {value!r}", "write a PostgreSQL identifier")
        if len(value.encode()) > MAX_IDENTIFIER_BYTES:
            self.fail(path, f"name {value!r} is longer than {MAX_IDENTIFIER_BYTES} bytes", "shorten it")
        if any(ord(ch) < 32 for ch in value):
            self.fail(path, f"name {value!r} contains a control character", "remove it")
        return value

    def identifiers(self, value, path: str, allow_empty: bool = True) -> tuple[str, ...]:
        if not isinstance(value, list) or (not allow_empty and not value):
            self.fail(path, f"expected a {'non-empty ' if not allow_empty else ''}list of names, found {value!r}", "write `[a, b]`")
        names = tuple(self.identifier(v, f"{path}[{i}]") for i, v in enumerate(value))
        if len(set(names)) != len(names):
            self.fail(path, "a name is listed twice", "list each name once")
        return names

    def positive_number(self, value, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            self.fail(path, f"expected a positive number, found {value!r}", "write a number above 0")
        return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def load_manifest(file: Path | str = DEFAULT_MANIFEST) -> Manifest:
    file = Path(file)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ManifestError(file, "", f"cannot read the file ({exc.strerror})", "check the path") from None
    try:
        raw = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        if exc.problem and exc.problem.startswith("duplicate key"):
            raise ManifestError(file, where, exc.problem, "list each key once: remove or rename the second one") from None
        raise ManifestError(file, where, f"invalid YAML: {exc.problem}", "correct the YAML at that line") from None
    return _parse(_Reader(file), raw)


def _parse(r: _Reader, raw) -> Manifest:
    top = r.mapping(
        raw, "",
        required={"migration", "connections", "services", "state_store", "schema_steps", "control_schema", "schema_sql"},
        optional={"description", "smoke_sql"},
    )
    conns = r.mapping(top["connections"], "connections", required={"sources", "target"})
    sources_raw = r.mapping(conns["sources"], "connections.sources", required=set(), optional=set(conns["sources"] or {}))
    if not sources_raw:
        r.fail("connections.sources", "no source connection is defined", "add one entry per source database")
    sources = {name: _connection(r, value, f"connections.sources.{name}") for name, value in sources_raw.items()}
    target = r.mapping(conns["target"], "connections.target", required={"direct", "pooler"})
    direct = _connection(r, target["direct"], "connections.target.direct")
    pooler = _connection(r, target["pooler"], "connections.target.pooler")

    services_raw = top["services"]
    if not isinstance(services_raw, dict) or not services_raw:
        r.fail("services", "expected a mapping of services", "add at least one service")
    services = tuple(_service(r, name, value, sources) for name, value in services_raw.items())
    target_schemas: dict[str, str] = {}
    for service in services:
        if service.target_schema in target_schemas:
            r.fail(
                f"services.{service.name}.target_schema",
                f"schema {service.target_schema!r} is also the target of service {target_schemas[service.target_schema]!r}",
                "give each service its own target schema",
            )
        target_schemas[service.target_schema] = service.name

    control_schema = r.identifier(top["control_schema"], "control_schema")
    if control_schema in target_schemas:
        r.fail("control_schema", f"{control_schema!r} is also a service's target schema", "use a schema of its own")

    state_store = _state_store(r, top["state_store"], services)
    steps = _schema_steps(r, top["schema_steps"])
    schema_sql = PROJECT_ROOT / str(top["schema_sql"])
    if not schema_sql.is_dir():
        r.fail("schema_sql", f"folder {top['schema_sql']!r} does not exist", "give a folder relative to the folder that holds include/")
    smoke_sql = PROJECT_ROOT / str(top.get("smoke_sql", "include/sql/smoke"))
    if not smoke_sql.is_dir():
        r.fail("smoke_sql", f"folder {top['smoke_sql']!r} does not exist", "give a folder of smoke-check SQL files")
    return Manifest(
        file=r.file,
        migration=r.identifier(top["migration"], "migration"),
        description=str(top.get("description", "")).strip(),
        sources=sources,
        target_direct=direct,
        target_pooler=pooler,
        control_schema=control_schema,
        schema_sql=schema_sql,
        smoke_sql=smoke_sql,
        services=services,
        state_store=state_store,
        schema_steps=steps,
    )


def _connection(r: _Reader, value, path: str) -> Connection:
    conn = r.mapping(value, path, required={"conn_id"}, optional={"env_prefix"})
    conn_id = conn["conn_id"]
    if not isinstance(conn_id, str) or not conn_id.replace("_", "").replace("-", "").isalnum():
        r.fail(f"{path}.conn_id", f"connection id {conn_id!r} is not a valid Airflow conn_id", "use letters, digits, _ and -")
    prefix = conn.get("env_prefix")
    if prefix is not None and (not isinstance(prefix, str) or not prefix.replace("_", "").isalnum()):
        r.fail(f"{path}.env_prefix", f"env prefix {prefix!r} is not a valid variable prefix", "use letters, digits and _")
    return Connection(conn_id=conn_id, env_prefix=prefix)


TABLE_KEYS = {"key", "references", "sensitive", "chunk_rows"}


def _service(r: _Reader, name, value, sources: dict[str, Connection]) -> Service:
    path = f"services.{name}"
    r.identifier(name, path)
    svc = r.mapping(value, path, required={"source", "source_schema", "target_schema", "tables"}, optional={"app_role"})
    app_role = r.identifier(svc["app_role"], f"{path}.app_role") if "app_role" in svc else None
    if svc["source"] not in sources:
        r.fail(
            f"{path}.source",
            f"connection {svc['source']!r} is not defined",
            f"define it under connections.sources, or use one of: {', '.join(sources)}",
        )
    source_schema = r.identifier(svc["source_schema"], f"{path}.source_schema")
    target_schema = r.identifier(svc["target_schema"], f"{path}.target_schema")
    tables_raw = svc["tables"]
    if not isinstance(tables_raw, dict) or not tables_raw:
        r.fail(f"{path}.tables", "expected a mapping of tables", "list the service's tables with their keys")
    tables = []
    for table_name, spec in tables_raw.items():
        tpath = f"{path}.tables.{table_name}"
        r.identifier(table_name, tpath)
        if spec is None:
            r.fail(tpath, "table has no key", "add `key: [column]` naming its primary key column(s)")
        spec = r.mapping(spec, tpath, required=set(), optional=TABLE_KEYS)
        if "key" not in spec:
            r.fail(f"{tpath}.key", "table has no key", "add `key: [column]` naming its primary key column(s)")
        chunk_rows = spec.get("chunk_rows")
        if chunk_rows is not None:
            if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
                r.fail(f"{tpath}.chunk_rows", f"expected a whole number above 0, found {chunk_rows!r}", "write e.g. `chunk_rows: 200000`")
        tables.append(
            Table(
                service=name,
                name=table_name,
                key=r.identifiers(spec["key"], f"{tpath}.key", allow_empty=False),
                references=r.identifiers(spec.get("references", []), f"{tpath}.references"),
                sensitive=r.identifiers(spec.get("sensitive", []), f"{tpath}.sensitive"),
                chunk_rows=chunk_rows,
                source_schema=source_schema,
                target_schema=target_schema,
            )
        )
    names = {t.name for t in tables}
    for table in tables:
        for i, parent in enumerate(table.references):
            if parent not in names:
                r.fail(
                    f"{path}.tables.{table.name}.references[{i}]",
                    f"table {parent!r} is not a table of service {name!r}",
                    f"add {parent!r} to services.{name}.tables or remove the reference",
                )
    cycle = _find_cycle(tables)
    if cycle:
        r.fail(
            f"{path}.tables.{cycle[0]}.references",
            f"foreign-key cycle: {' -> '.join(cycle)}",
            "break the cycle: list only the references needed to load parents first",
        )
    return Service(
        name=name, source=svc["source"], source_schema=source_schema, target_schema=target_schema,
        tables=tuple(tables), app_role=app_role,
    )


def _find_cycle(tables: list[Table]) -> list[str] | None:
    graph = {t.name: [p for p in t.references if p != t.name] for t in tables}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for parent in graph[node]:
            if state.get(parent) == 1:
                return stack[stack.index(parent) :] + [parent]
            if parent not in state:
                found = visit(parent)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for name in graph:
        if name not in state:
            found = visit(name)
            if found:
                return found
    return None


def _state_store(r: _Reader, value, services: tuple[Service, ...]) -> StateStore:
    path = "state_store"
    spec = r.mapping(value, path, required={"table", "key_column", "updated_column", "max_age_hours", "keys_by_service"})
    table = r.identifier(spec["table"], f"{path}.table")
    by_service_raw = spec["keys_by_service"]
    if not isinstance(by_service_raw, dict) or not by_service_raw:
        r.fail(f"{path}.keys_by_service", "expected a mapping of service to keys", "list each service's state-store keys")
    service_names = {s.name for s in services}
    owner: dict[str, str] = {}
    keys_by_service: dict[str, tuple[str, ...]] = {}
    for service_name, keys in by_service_raw.items():
        kpath = f"{path}.keys_by_service.{service_name}"
        if service_name not in service_names:
            r.fail(kpath, f"service {service_name!r} is not defined", f"use one of: {', '.join(sorted(service_names))}")
        if not any(t.name == table for t in next(s for s in services if s.name == service_name).tables):
            r.fail(kpath, f"service {service_name!r} does not list table {table!r}", f"add {table} to services.{service_name}.tables")
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and k for k in keys):
            r.fail(kpath, f"expected a non-empty list of keys, found {keys!r}", "write `[key-a, key-b]`")
        for i, key in enumerate(keys):
            if key in owner:
                r.fail(f"{kpath}[{i}]", f"key {key!r} is already owned by service {owner[key]!r}", "give each key one owner")
            owner[key] = service_name
        keys_by_service[service_name] = tuple(keys)
    return StateStore(
        table=table,
        key_column=r.identifier(spec["key_column"], f"{path}.key_column"),
        updated_column=r.identifier(spec["updated_column"], f"{path}.updated_column"),
        max_age_hours=r.positive_number(spec["max_age_hours"], f"{path}.max_age_hours"),
        keys_by_service=keys_by_service,
    )


def _schema_steps(r: _Reader, value) -> tuple[SchemaStep, ...]:
    if not isinstance(value, list) or not value:
        r.fail("schema_steps", "expected an ordered list of steps", "list the steps as `- {name: ..., folder: ...}`")
    steps = []
    for i, raw in enumerate(value):
        spath = f"schema_steps[{i}]"
        spec = r.mapping(raw, spath, required={"name", "folder"}, optional={"after_backfill"})
        steps.append(SchemaStep(name=r.identifier(spec["name"], f"{spath}.name"), folder=str(spec["folder"]), after_backfill=bool(spec.get("after_backfill", False))))
    names = [s.name for s in steps]
    for i, name in enumerate(names):
        if names.index(name) != i:
            r.fail(f"schema_steps[{i}].name", f"step {name!r} is listed twice", "give each step one entry")
    return tuple(steps)

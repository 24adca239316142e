"""A dual-write writer simulator: imitates the apps during the soak.

It inserts, updates and deletes rows of the manifest's tables and upserts the
state-store keys, each write first on the primary (the source until cutover,
the target after it) and then, with dual-write on, the same write on the other
side, where a chosen fraction is dropped, delayed or reordered as a flaky
dual-write would. Rows are
built from the source catalog (types, enums, lengths, foreign keys), so it
needs no knowledge of the data model beyond the manifest. Inserts pick parents
that exist; deletes touch only tables no other table references, so the
source's foreign keys always hold. A target write that fails (e.g. a foreign
key added after the load) counts as dropped, as the app would lose it.

Every insert and update stamps the table's *version column* with a value that only grows
(``version_column``), across every simulator of the process, so a test can prove no repair
ever put an older row back, even over the rows an earlier simulator wrote.
It stops by itself after ``duration_s`` or ``max_writes`` and reports what it wrote.

With ``follow_read_path`` it behaves as the apps are told to (README, "Contract
for the apps"): it reads the flag store on the target every second and writes
each service's primary side first and, with dual-write on, the other side too;
where the flags cannot be read it keeps the last values (before any, the source
alone). It can then run from before preflight to after finalize untouched.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

from migration_engine import catalog
from migration_engine.canonical import pin_output_settings
from migration_engine.endpoints import Endpoint
from migration_engine.manifest import Manifest, Table

log = logging.getLogger("migration.simulator")

APPLICATION_NAME = "credity-dual-write-simulator"
READ_PATH_POLL_S = 1.0
KEY_POOL_SIZE = 2_000
VERSION_EPOCH = datetime(2030, 1, 1, tzinfo=UTC)
VERSION_TYPES = ("int4", "int8", "numeric", "timestamp", "timestamptz", "jsonb")
INTEGER_TYPES = ("int2", "int4", "int8")


@dataclass(frozen=True)
class TargetFaults:
    """Fractions of target writes that a broken dual-write loses, delays or swaps."""

    drop: float = 0.0
    delay: float = 0.0
    reorder: float = 0.0
    delay_seconds: float = 0.5

    def __post_init__(self):
        for name in ("drop", "delay", "reorder"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"target fault fraction {name} must be between 0 and 1, found {value}")
        if self.drop + self.delay + self.reorder > 1:
            raise ValueError("target fault fractions drop + delay + reorder must not exceed 1")


@dataclass(frozen=True)
class SimulatorConfig:
    rate_per_s: float = 50.0
    duration_s: float | None = 10.0
    max_writes: int | None = None
    dual_write: bool = True
    faults: TargetFaults = TargetFaults()
    insert_share: float = 0.4
    update_share: float = 0.45
    state_store_share: float = 0.1
    seed: int = 0
    tables: tuple[str, ...] | None = None
    # Where the apps write first: the source until cutover, the target after it.
    primary: str = "source"
    # Take primary and dual_write from the target's flag store, per service, as the apps do.
    follow_read_path: bool = False

    def __post_init__(self):
        if self.primary not in ("source", "target"):
            raise ValueError(f"primary must be 'source' or 'target', found {self.primary!r}")
        if self.rate_per_s <= 0:
            raise ValueError(f"rate_per_s must be above 0, found {self.rate_per_s}")
        if self.duration_s is None and self.max_writes is None:
            raise ValueError("the simulator needs a bound: give duration_s or max_writes")
        shares = (self.insert_share, self.update_share, self.state_store_share)
        if any(s < 0 for s in shares) or self.insert_share + self.update_share > 1:
            raise ValueError("insert_share and update_share must be 0 or more and add up to at most 1")


@dataclass
class SimColumn:
    name: str
    type_name: str
    nullable: bool
    has_default: bool
    max_length: int | None
    numeric_scale: tuple[int, int] | None
    enum_labels: tuple[str, ...]
    unique: bool
    parent: str | None  # qualified parent table when a foreign key column


@dataclass
class SimTable:
    table: Table
    columns: list[SimColumn]
    referenced: bool
    version: SimColumn | None
    keys: list = field(default_factory=list)

    @property
    def key(self) -> SimColumn:
        return next(c for c in self.columns if c.name == self.table.key[0])


@dataclass
class SimulatorReport:
    seconds: float = 0.0
    writes: dict = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    # What became of the dual-writes to the secondary side (the target before cutover).
    secondary: dict = field(default_factory=lambda: defaultdict(int))
    primary_errors: int = 0
    # Times the target connection was opened again after it broke.
    reconnects: int = 0
    latencies_ms: list = field(default_factory=list, repr=False)
    # Wall-clock start (time.time()) of each of those writes: a window can be cut by what else ran then.
    started_at: list = field(default_factory=list, repr=False)

    @property
    def total(self) -> int:
        return sum(n for per_table in self.writes.values() for n in per_table.values())

    def percentile_ms(self, fraction: float) -> float:
        return percentile(self.latencies_ms, fraction)

    def latencies_between(self, start: float, end: float) -> list[float]:
        """Latencies of the primary writes that started from ``start`` to ``end`` (time.time())."""
        # The writer thread may be appending: read only the writes both lists hold already.
        count = min(len(self.started_at), len(self.latencies_ms))
        return [ms for at, ms in zip(self.started_at[:count], self.latencies_ms[:count], strict=True) if start <= at <= end]

    def as_dict(self) -> dict:
        return {
            "seconds": round(self.seconds, 2), "writes": self.total,
            "writes_per_s": round(self.total / self.seconds, 1) if self.seconds else 0.0,
            "by_kind": {kind: dict(tables) for kind, tables in self.writes.items()},
            "secondary": dict(self.secondary), "primary_errors": self.primary_errors, "reconnects": self.reconnects,
            "primary_p50_ms": round(self.percentile_ms(0.5), 2), "primary_p95_ms": round(self.percentile_ms(0.95), 2),
        }


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` lie (nearest rank); 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def version_column(columns: list[SimColumn], key: str) -> SimColumn | None:
    """The column an update stamps with an ever-growing value: first of a comparable type."""
    for column in columns:
        if column.name != key and column.type_name in VERSION_TYPES and not column.unique and column.parent is None:
            return column
    return None


_REFERENCED = "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE contype = 'f' AND confrelid = to_regclass(format('%%I.%%I', %s::text, %s::text)))"


def simulated_table(conn: psycopg.Connection, table: Table) -> SimTable:
    """The table's columns as the simulator writes them, from the source catalog."""
    described = catalog.describe_table(conn, table.source_ident)
    if described is None:
        raise ValueError(f"{table.qualified}: table {'.'.join(table.source_ident)} does not exist on the source")
    columns = []
    for c in described.columns:
        max_length = c.typmod - 4 if c.type_name in ("varchar", "bpchar") and c.typmod > 0 else None
        scale = (((c.typmod - 4) >> 16) & 0xFFFF, (c.typmod - 4) & 0xFFFF) if c.type_name == "numeric" and c.typmod > 0 else None
        columns.append(SimColumn(c.name, c.type_name, not c.not_null, c.default is not None, max_length, scale, c.enum_labels,
                              c.unique, f"{table.target_schema}.{c.references}" if c.references else None))
    referenced = conn.execute(_REFERENCED, table.source_ident).fetchone()[0]
    return SimTable(table, columns, referenced, version_column(columns, table.key[0]))


# One sequence for every simulator of the process: a second writer must not stamp versions
# below the first one's on the same rows.
_VERSIONS = itertools.count(1)


class DualWriteSimulator:
    """Run with ``run()`` (blocking) or ``start()`` / ``join()`` (a background thread)."""

    def __init__(self, manifest: Manifest, sources: dict[str, Endpoint], target: Endpoint, config: SimulatorConfig):
        self.manifest, self.sources, self.target, self.config = manifest, sources, target, config
        self.rng = random.Random(config.seed)
        self.report = SimulatorReport()
        self.counter = 0
        self.version = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._held: list[tuple] = []  # delayed or reordered secondary writes: (due, conn, statement, params, label)
        store = manifest.state_store
        wanted = set(config.tables) if config.tables else None
        self.tables = [t for t in manifest.tables if t.name != store.table and (wanted is None or t.qualified in wanted)]
        self.state_keys = [(svc, key) for svc, keys in store.keys_by_service.items() for key in keys]
        # Per service: (primary side, dual-write on).
        self.flags = {svc.name: (config.primary, config.dual_write) for svc in manifest.services}
        if config.follow_read_path:
            self.flags = {svc.name: ("source", False) for svc in manifest.services}
        self.flags_read_at = 0.0
        self.reconnect_tried_at = 0.0

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> DualWriteSimulator:
        self._thread = threading.Thread(target=self.run, name="dual-write-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> SimulatorReport:
        if self._thread:
            self._thread.join(timeout)
        return self.report

    def run(self) -> SimulatorReport:
        services = {t.service for t in self.tables} | {svc for svc, _ in self.state_keys}
        conns: dict[str, psycopg.Connection] = {}
        try:
            for service in sorted(services):
                conns[service] = self.sources[service].named(APPLICATION_NAME).connect(autocommit=True)
            needs_target = self.config.dual_write or self.config.primary == "target" or self.config.follow_read_path
            target = self.target.named(APPLICATION_NAME).connect(autocommit=True) if needs_target else None
            self.sim_tables = [simulated_table(conns[t.service], t) for t in self.tables]
            for sim in self.sim_tables:
                self._load_keys(conns[sim.table.service], sim)
            target = self._loop(conns, target)
            if target is not None:
                self._flush(force=True)
                target.close()
        finally:
            for conn in conns.values():
                conn.close()
        log.info("simulator wrote %s", self.report.as_dict())
        return self.report

    def _loop(self, conns: dict[str, psycopg.Connection], target: psycopg.Connection | None) -> psycopg.Connection | None:
        """Write until stopped; returns the target connection in use at the end."""
        cfg = self.config
        started = time.monotonic()
        deadline = started + cfg.duration_s if cfg.duration_s is not None else float("inf")
        done = 0
        while not self._stop.is_set() and time.monotonic() < deadline and (cfg.max_writes is None or done < cfg.max_writes):
            pause = started + done / cfg.rate_per_s - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            target = self._reconnected(target)
            if self.config.follow_read_path:
                self._refresh_flags(target)
            self._one_write(conns, target)
            done += 1
            self._flush()
        self.report.seconds = time.monotonic() - started
        return target

    def _reconnected(self, target: psycopg.Connection | None) -> psycopg.Connection | None:
        """The target connection, opened again once it broke (a restart, a terminated backend), as an
        app's pool would; while the target cannot be reached the broken one stays and its writes fail."""
        if target is None or not (target.closed or target.broken):
            return target
        if time.monotonic() - self.reconnect_tried_at < READ_PATH_POLL_S:
            return target
        self.reconnect_tried_at = time.monotonic()
        try:
            fresh = self.target.named(APPLICATION_NAME).connect(autocommit=True)
        except psycopg.Error as exc:
            log.debug("target unreachable (SQLSTATE %s): retrying in %ss", exc.sqlstate, READ_PATH_POLL_S)
            return target
        self.report.reconnects += 1
        return fresh

    def _refresh_flags(self, target: psycopg.Connection) -> None:
        """Re-read the flag store at most once a second; keep the last values when it cannot be read."""
        from migration_engine.read_path import read_flags

        if time.monotonic() - self.flags_read_at < READ_PATH_POLL_S:
            return
        self.flags_read_at = time.monotonic()
        try:
            flags = read_flags(target, self.manifest)
        except psycopg.Error as exc:
            log.debug("flag store unreadable (SQLSTATE %s): keeping the last flags", exc.sqlstate)
            return
        for service, row in flags.items():
            if service in self.flags:
                self.flags[service] = (row["primary_side"], row["dual_write"])

    # -- one write -----------------------------------------------------------
    def _one_write(self, conns: dict[str, psycopg.Connection], target: psycopg.Connection | None) -> None:
        self.counter += 1
        self.version = next(_VERSIONS)
        roll = self.rng.random()
        if self.state_keys and roll < self.config.state_store_share:
            service, key = self.rng.choice(self.state_keys)
            self._state_upsert(*self._sides(service, conns[service], target), service, key)
            return
        sim = self.rng.choice(self.sim_tables)
        kind_roll = self.rng.random()
        if kind_roll < self.config.insert_share or not sim.keys:
            sim = self._insertable(sim)
            if sim is not None:
                self._insert(*self._sides(sim.table.service, conns[sim.table.service], target), sim)
        elif kind_roll < self.config.insert_share + self.config.update_share or sim.referenced:
            self._update(*self._sides(sim.table.service, conns[sim.table.service], target), sim)
        else:
            self._delete(*self._sides(sim.table.service, conns[sim.table.service], target), sim)

    def _sides(self, service: str, source: psycopg.Connection, target: psycopg.Connection | None) -> tuple:
        """(primary, secondary, primary is the source) for the service; the secondary is None without dual-write."""
        primary, dual_write = self.flags[service]
        if primary == "source":
            return source, target if dual_write else None, True
        return target, source if dual_write else None, False

    @staticmethod
    def _idents(on_source: bool, source_ident: tuple[str, str], target_ident: tuple[str, str]) -> tuple:
        """(primary, secondary) names of one table."""
        return (source_ident, target_ident) if on_source else (target_ident, source_ident)

    def _insertable(self, sim: SimTable) -> SimTable | None:
        """The table itself, or a parent first when a parent has no row to point at yet."""
        for column in sim.columns:
            if column.parent:
                parent = next(s for s in self.sim_tables if s.table.qualified == column.parent)
                if not parent.keys:
                    return self._insertable(parent)
        return sim

    def _insert(self, primary: psycopg.Connection, secondary, on_source: bool, sim: SimTable) -> None:
        into_primary, into_secondary = self._idents(on_source, sim.table.source_ident, sim.table.target_ident)
        columns = [c for c in sim.columns if not (c.name == sim.key.name and c.has_default)]
        values = [self._version_value(c) if c is sim.version else self._value(c) for c in columns]
        statement = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING {}").format(
            sql.Identifier(*into_primary), sql.SQL(", ").join(sql.Identifier(c.name) for c in columns),
            sql.SQL(", ").join(sql.Placeholder() * len(columns)), _as_text(sim.columns))
        row = self._primary_write(primary, statement, values, "insert", sim.table.qualified)
        if row is None:
            return
        self._remember(sim, row[[c.name for c in sim.columns].index(sim.key.name)])
        self._secondary_write(secondary, sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(*into_secondary), sql.SQL(", ").join(sql.Identifier(c.name) for c in sim.columns),
            sql.SQL(", ").join(sql.Placeholder() * len(sim.columns))), list(row), "insert", sim.table.qualified)

    def _both(self, primary, secondary, idents: tuple, build, params: list, kind: str, table: str) -> None:
        """The same statement on the primary, then (unless the primary refused it) on the secondary."""
        for conn, ident, write in ((primary, idents[0], self._primary_write), (secondary, idents[1], self._secondary_write)):
            if write(conn, build(ident), params, kind, table) is None and write == self._primary_write:
                return

    def _update(self, primary: psycopg.Connection, secondary, on_source: bool, sim: SimTable) -> None:
        column = sim.version or next(c for c in sim.columns if c.name != sim.key.name and not c.unique and c.parent is None)
        key = self.rng.choice(sim.keys)
        value = self._version_value(column) if column is sim.version else self._value(column)
        self._both(primary, secondary, self._idents(on_source, sim.table.source_ident, sim.table.target_ident),
                   lambda ident: sql.SQL("UPDATE {} SET {} = %s WHERE {} = %s RETURNING 1").format(
                       sql.Identifier(*ident), sql.Identifier(column.name), sql.Identifier(sim.key.name)),
                   [value, key], "update", sim.table.qualified)

    def _delete(self, primary: psycopg.Connection, secondary, on_source: bool, sim: SimTable) -> None:
        key = sim.keys.pop(self.rng.randrange(len(sim.keys)))
        self._both(primary, secondary, self._idents(on_source, sim.table.source_ident, sim.table.target_ident),
                   lambda ident: sql.SQL("DELETE FROM {} WHERE {} = %s RETURNING 1").format(
                       sql.Identifier(*ident), sql.Identifier(sim.key.name)),
                   [key], "delete", sim.table.qualified)

    def _state_upsert(self, primary: psycopg.Connection, secondary, on_source: bool, service: str, key: str) -> None:
        store = self.manifest.state_store
        schema = self.manifest.service(service)
        payload = json.dumps({"version": self.version, "seed": self.config.seed, "items": [self.rng.randrange(10**6) for _ in range(5)]})
        stamp = (VERSION_EPOCH + timedelta(seconds=self.version)).isoformat()
        self._both(primary, secondary, self._idents(on_source, (schema.source_schema, store.table), (schema.target_schema, store.table)),
                   lambda ident: sql.SQL(
                       "INSERT INTO {table} ({key}, payload, {updated}) VALUES (%s, %s::jsonb, %s)"
                       " ON CONFLICT ({key}) DO UPDATE SET payload = EXCLUDED.payload, {updated} = EXCLUDED.{updated} RETURNING 1"
                   ).format(table=sql.Identifier(*ident), key=sql.Identifier(store.key_column), updated=sql.Identifier(store.updated_column)),
                   [key, payload, stamp], "state_upsert", f"{schema.target_schema}.{store.table}")

    # -- the two sides -------------------------------------------------------
    def _primary_write(self, conn: psycopg.Connection, statement, params, kind: str, table: str):
        started_at, started = time.time(), time.perf_counter()
        try:
            with conn.transaction():
                pin_output_settings(conn)
                row = conn.execute(statement, params).fetchone()
        except psycopg.Error as exc:
            # A random value can collide with a unique one; the app would retry, we move on.
            self.report.primary_errors += 1
            log.debug("%s %s refused by the primary: %s", kind, table, exc.sqlstate)
            return None
        self.report.latencies_ms.append((time.perf_counter() - started) * 1000)
        self.report.started_at.append(started_at)
        if row is None:
            return None
        self.report.writes[kind][table] += 1
        return row

    def _secondary_write(self, conn, statement, params, kind: str, table: str):
        if conn is None:
            return True
        faults, roll = self.config.faults, self.rng.random()
        if roll < faults.drop:
            self.report.secondary["dropped"] += 1
        elif roll < faults.drop + faults.delay:
            self.report.secondary["delayed"] += 1
            self._held.append((time.monotonic() + faults.delay_seconds, conn, statement, params, f"{kind} {table}"))
        elif roll < faults.drop + faults.delay + faults.reorder:
            # Held until after the next write: the two land on the target in swapped order.
            self.report.secondary["reordered"] += 1
            self._held.append((0.0, conn, statement, params, f"{kind} {table}"))
        else:
            self._apply(conn, statement, params, f"{kind} {table}")
        return True

    def _flush(self, force: bool = False) -> None:
        now = time.monotonic()
        due = [h for h in self._held if force or h[0] <= now]
        self._held = [h for h in self._held if not (force or h[0] <= now)]
        for _, conn, statement, params, label in due:
            self._apply(conn, statement, params, label)

    def _apply(self, conn: psycopg.Connection, statement, params, label: str) -> None:
        try:
            with conn.transaction():
                pin_output_settings(conn)
                conn.execute(statement, params)
            self.report.secondary["applied"] += 1
        except psycopg.Error as exc:
            self.report.secondary["failed_as_dropped"] += 1
            log.debug("secondary %s refused (SQLSTATE %s): counted as dropped", label, exc.sqlstate)

    # -- values ----------------------------------------------------------------
    def _load_keys(self, conn: psycopg.Connection, sim: SimTable) -> None:
        query = sql.SQL("SELECT {} FROM {} LIMIT %s").format(sql.Identifier(sim.key.name), sql.Identifier(*sim.table.source_ident))
        sim.keys = [row[0] for row in conn.execute(query, [KEY_POOL_SIZE])]

    def _remember(self, sim: SimTable, key) -> None:
        if len(sim.keys) >= KEY_POOL_SIZE:
            sim.keys[self.rng.randrange(len(sim.keys))] = key
        else:
            sim.keys.append(key)

    def _version_value(self, column: SimColumn):
        if column.type_name in ("timestamp", "timestamptz"):
            return (VERSION_EPOCH + timedelta(seconds=self.version)).replace(tzinfo=None if column.type_name == "timestamp" else UTC)
        if column.type_name == "jsonb":
            return json.dumps({"version": self.version})
        return self.version

    def _value(self, column: SimColumn):
        rng, n = self.rng, self.counter
        if column.parent:
            parent = next(s for s in self.sim_tables if s.table.qualified == column.parent)
            return rng.choice(parent.keys)
        t = column.type_name
        if column.enum_labels:
            return rng.choice(column.enum_labels)
        if t in INTEGER_TYPES:
            return rng.randrange(1, 30_000) if t == "int2" else (2**30 + n * 7919 + rng.randrange(7919)) % (2**31 - 1) if column.unique else rng.randrange(1, 10**6)
        if t == "numeric":
            precision, scale = column.numeric_scale or (12, 2)
            return round(rng.random() * (10 ** (precision - scale) - 1), scale)
        if t == "bool":
            return rng.random() < 0.5
        if t in ("json", "jsonb"):
            return json.dumps({"sim": n, "r": rng.randrange(10**6)})
        if t in ("timestamp", "timestamptz"):
            return (VERSION_EPOCH + timedelta(seconds=n)).replace(tzinfo=None if t == "timestamp" else UTC)
        if t == "uuid":
            return uuid.UUID(int=rng.getrandbits(128), version=4)
        if t in ("text", "varchar", "bpchar"):
            text = f"sim-{self.config.seed}-{n}-{rng.getrandbits(40):x}"
            return text[: column.max_length] if column.max_length else text
        if column.nullable:
            return None
        raise ValueError(f"the simulator cannot make a value of type {t!r} for column {column.name!r}")


def _as_text(columns: list[SimColumn]) -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c.name)) for c in columns)

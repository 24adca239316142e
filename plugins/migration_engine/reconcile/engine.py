"""Reconcile one table: find drifted keys, confirm them, repair them from the
primary side, and record it all in the drift ledger.

Finding costs one hash scan per side (both sides at once) when the table is
clean; only buckets whose count or hash sum differ are read key by key.

Given a source ``horizon`` (``sync_points``: before dual-write, when only the
migration writes the target), drift is also explained or not: a row the source
wrote at or after the horizon, or deleted, is a write still on its way; a row
whose source version is older than the horizon cannot be, so that drift is
*unexplained* (the target was changed by something else, or lost the row). It is
reported by key and repaired only when ``repair_unexplained`` says so.

Given a ``target_horizon`` too (the cutover's drain, source → target just after
the read path flipped), a key whose target version was written at or after it
is the apps' own newer write on their new primary: it is left alone, in flight.

Given the ``window`` of a failed cutover (the xmin horizons of the source and
the target when the read path flipped), a rollback's repair (target → source)
is confined to it: a row the source wrote since the cutover is the apps' write,
kept and reported; a row the source lacks is inserted only when the target wrote
it since the cutover (otherwise the source deleted it since, and it stays gone).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from functools import partial

import psycopg

from migration_engine import ledger
from migration_engine.canonical import pin_output_settings
from migration_engine.endpoints import Endpoint
from migration_engine.manifest import Table
from migration_engine.pacing import HealthProbe, LoadBudget, ScanPacer
from migration_engine.reconcile import drift_ledger, scan
from migration_engine.reconcile.diff import (
    Drift,
    DriftKind,
    Outcome,
    confirm,
    diff_sorted,
    mismatched_buckets,
    over_cap,
)
from migration_engine.reconcile.repair import Side, WriteTransaction, repair_batch
from migration_engine.reconcile.scan import ReconcileError, TableShape

log = logging.getLogger("migration.reconcile")

DEFAULT_CAP = 1_000
DEFAULT_GRACE_SECONDS = 3.0
READ_BATCH_KEYS = 1_000
REPAIR_BATCH_KEYS = 200
LOGGED_KEYS = 5
LISTED_KEYS = 100


class Direction(Enum):
    SOURCE_TO_TARGET = "source_to_target"
    TARGET_TO_SOURCE = "target_to_source"


# The side that is the truth in each phase of the ledger; other phases do not reconcile.
DIRECTION_BY_PHASE = {
    "dual_write": Direction.SOURCE_TO_TARGET,
    "soak": Direction.SOURCE_TO_TARGET,
    # After a rollback the apps are back on the source, dual-write on: the way back to a soak.
    "rolled_back": Direction.SOURCE_TO_TARGET,
    "cut_over": Direction.TARGET_TO_SOURCE,
    # The retention window: the sources kept level with the apps' primary, so a rollback can still return.
    "finalized": Direction.TARGET_TO_SOURCE,
}


def direction_for_phase(phase: str) -> Direction | None:
    return DIRECTION_BY_PHASE.get(phase)


@dataclass(frozen=True)
class CutoverWindow:
    """The xmin horizons of a source and the target when the cutover flipped the read path."""

    source_horizon: int
    target_horizon: int


@dataclass(frozen=True)
class Finding:
    key: object
    kind: DriftKind
    source_hash: int | None
    target_hash: int | None
    repaired: bool = False
    in_flight: bool = False
    unexplained: bool = False
    # The secondary refused the repair (a child whose parent it does not have yet).
    refused: bool = False
    # Refused, and the source wrote it since the horizon: its parent may be a write still on its way.
    refused_late: bool = False
    # What refused it ("upsert refused by constraint users_tenant_id_fk"); empty when not refused.
    refused_by: str = ""


@dataclass
class ReconcileResult:
    table: str
    run_id: str
    direction: Direction
    dry_run: bool
    checked_rows: int = 0
    target_rows: int = 0
    buckets: int = 0
    mismatched_buckets: int = 0
    settled: int = 0
    cap: int = DEFAULT_CAP
    cap_exceeded: bool = False
    seconds: float = 0.0
    found_at: datetime | None = None
    repaired_at: datetime | None = None
    findings: list[Finding] = field(default_factory=list)
    # The scan pacer's decisions (``ScanPacer.report``), None when unpaced.
    pacing: dict | None = None

    @property
    def drifted(self) -> int:
        return len(self.findings)

    @property
    def repaired(self) -> int:
        return sum(f.repaired for f in self.findings)

    @property
    def in_flight(self) -> int:
        return sum(f.in_flight for f in self.findings)

    @property
    def unexplained(self) -> int:
        return sum(f.unexplained for f in self.findings)

    @property
    def refused(self) -> int:
        return sum(f.refused for f in self.findings)

    @property
    def refused_late(self) -> int:
        return sum(f.refused_late for f in self.findings)

    @property
    def held_back(self) -> int:
        """Unexplained rows left unrepaired on purpose."""
        return sum(f.unexplained and not f.repaired for f in self.findings)

    @property
    def unrepaired(self) -> int:
        return self.drifted - self.repaired

    @property
    def clean(self) -> bool:
        """Nothing left behind: every drifted row found was repaired, but rows still being written.

        Drift a run repaired does not make it unclean: under dual-write with a lossy
        writer, what the cutover gate needs to know is that the stores were brought
        level, not that no write was ever dropped.
        """
        return not self.cap_exceeded and self.unrepaired - self.in_flight == 0

    def by_kind(self) -> dict[str, int]:
        counts = {kind.value: 0 for kind in DriftKind}
        for finding in self.findings:
            counts[finding.kind.value] += 1
        return counts

    def summary(self) -> dict:
        """A JSON-ready summary: counts and keys' kinds, never row values."""
        return {
            "table": self.table, "run_id": self.run_id, "direction": self.direction.value, "dry_run": self.dry_run,
            "checked_rows": self.checked_rows, "target_rows": self.target_rows, "buckets": self.buckets,
            "mismatched_buckets": self.mismatched_buckets, "drifted": self.drifted, "by_kind": self.by_kind(),
            "repaired": self.repaired, "in_flight": self.in_flight, "settled": self.settled,
            "unrepaired": self.unrepaired, "unexplained": self.unexplained, "held_back": self.held_back, "refused": self.refused,
            "refused_late": self.refused_late, "refused_by": self.refused_by(), "cap": self.cap,
            "cap_exceeded": self.cap_exceeded, "clean": self.clean, "seconds": round(self.seconds, 3),
            "in_flight_keys": self.keys(lambda f: f.in_flight),
            "unexplained_keys": self.keys(lambda f: f.unexplained),
            "pacing": self.pacing,
        }

    def refused_by(self) -> dict[str, int]:
        """What refused the repairs refused, and how many each: what an operator looks at first."""
        return dict(Counter(f.refused_by for f in self.findings if f.refused))

    def keys(self, which) -> list[str]:
        """The first keys of the findings ``which`` picks, as text (a summary stays small)."""
        return [str(f.key) for f in self.findings if which(f)][:LISTED_KEYS]


@dataclass(frozen=True)
class TableJob:
    """One table to reconcile, with what is particular to it: its source, and the horizon or failed
    cutover window its drift is judged against (see the module's docstring)."""

    table: Table
    source: Endpoint
    horizon: int | None = None
    window: CutoverWindow | None = None
    # The probe budget of the apps' primary (the source before cutover, the target from the flip on): the
    # hash scans rest as its health asks (``pacing.ScanPacer``). None: unpaced.
    budget: LoadBudget | None = None


@dataclass(frozen=True)
class _Settings:
    run_id: str
    direction: Direction
    control_schema: str
    cap: int
    dry_run: bool
    repair_unexplained: bool
    target_horizon: int | None
    record: bool
    epoch: int | None
    # The last table's scan pacer on each apps' primary: the next table's scan there goes on at its pace.
    pacers: dict[Endpoint, ScanPacer] = field(default_factory=dict)


@dataclass
class _TablePass:
    """One table between its find and its finish."""

    job: TableJob
    result: ReconcileResult
    shape: TableShape | None = None
    found: list[Drift] = field(default_factory=list)
    found_monotonic: float = 0.0
    seconds: float = 0.0


def reconcile_table(table: Table, source: Endpoint, target: Endpoint, *, horizon: int | None = None,
                    window: CutoverWindow | None = None, budget: LoadBudget | None = None, **options) -> ReconcileResult:
    """One table; ``options`` as for ``reconcile_tables``. Raises what the table's reconciliation raised."""
    (outcome,) = reconcile_tables([TableJob(table, source, horizon, window, budget)], target, **options)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def reconcile_tables(
    jobs: list[TableJob],
    target: Endpoint,
    *,
    run_id: str,
    direction: Direction | str,
    control_schema: str,
    cap: int = DEFAULT_CAP,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    dry_run: bool = False,
    find_only: bool = False,
    repair_unexplained: bool = True,
    target_horizon: int | None = None,
    record: bool = True,
    epoch: int | None = None,
) -> list[ReconcileResult | Exception]:
    """Find, confirm and repair the drift of each table; record it unless ``dry_run``.

    Every table is found first, then the grace period passes once for all of them, then each is
    confirmed and repaired: a group of tables under writes waits once, not once per table. Each
    table's result, or the exception its reconciliation raised, comes back in its place, so one
    table that errors keeps no other from its repairs; ``ledger.StaleEpoch`` stops them all.

    ``dry_run`` reads only: nothing is written to either database, not even the
    ledger; the findings come back in the result; with a ``horizon``, each is
    marked in flight or unexplained. ``find_only`` stops after finding (used by
    benchmarks) and implies ``dry_run``. ``record`` False keeps the run out of
    the drift ledger (the catch-up, which is not part of the soak's record).

    Every write (repair batches, the drift ledger) is fenced by the ledger ``epoch``
    the calling run started under (None: the epoch as this call starts): once the
    ledger has moved, the next write raises ``ledger.StaleEpoch`` and writes nothing.
    """
    names = ", ".join(job.table.qualified for job in jobs)
    if cap < 0:
        raise ReconcileError(f"{names}: the repair cap must be 0 or more, found {cap}")
    if grace_seconds < 0:
        raise ReconcileError(f"{names}: the grace period must be 0 seconds or more, found {grace_seconds}")
    direction = Direction(direction)
    dry_run = dry_run or find_only
    if not dry_run and epoch is None:
        with target.connect(autocommit=True) as tgt:
            epoch = ledger.current_epoch(tgt, control_schema).number
    settings = _Settings(run_id, direction, control_schema, cap, dry_run, repair_unexplained, target_horizon, record, epoch)
    passes = [_TablePass(job, ReconcileResult(job.table.qualified, run_id, direction, dry_run, cap=cap)) for job in jobs]
    outcomes: list[ReconcileResult | Exception | None] = [None] * len(passes)

    def attempt(index: int, step) -> None:
        try:
            step(passes[index], target, settings)
        except ledger.StaleEpoch:
            raise
        except Exception as exc:
            outcomes[index] = exc

    for index in range(len(passes)):
        attempt(index, _find)
    waiting = [p for p, outcome in zip(passes, outcomes, strict=True) if outcome is None and p.found]
    if waiting:
        time.sleep(max(0.0, grace_seconds - (time.monotonic() - max(p.found_monotonic for p in waiting))))
    for index, table_pass in enumerate(passes):
        if outcomes[index] is None:
            attempt(index, _finish)
        if outcomes[index] is None:
            outcomes[index] = table_pass.result
            _log_result(table_pass.result)
    return outcomes


def _find(table_pass: _TablePass, target: Endpoint, settings: _Settings) -> None:
    """The drifted keys of one table; with the findings already decided when nothing will be repaired
    (a dry run, or the cap exceeded)."""
    started = time.monotonic()
    job, result = table_pass.job, table_pass.result
    table = job.table
    # The apps' primary, whose health paces the scans: the target after cutover, and from the flip on for the
    # drain (the pass given a target horizon), though that pass runs source → target.
    apps_on_target = settings.direction is Direction.TARGET_TO_SOURCE or settings.target_horizon is not None
    primary = target if apps_on_target else job.source
    with job.source.connect(autocommit=True) as src, \
         target.connect(autocommit=True) as tgt, \
         _paced(job.budget, primary, table.qualified, settings.pacers) as pacer:
        shape = scan.describe(src, tgt, table.qualified, table.source_ident, table.target_ident, table.key)
        found = find_drift(shape, src, table.source_ident, tgt, table.target_ident, result, pacer)
        result.pacing = pacer.report() if pacer else None
        result.found_at = datetime.now(UTC)
        result.cap_exceeded = over_cap(len(found), settings.cap)
        if settings.dry_run or result.cap_exceeded:
            written = _written_since(shape, src, table.source_ident, [d.key for d in found], job.horizon)
            result.findings = [Finding(d.key, d.kind, d.source_hash, d.target_hash, in_flight=written.get(d.key, False),
                                       unexplained=job.horizon is not None and not written.get(d.key, True))
                               for d in found]
            found = []
        if result.cap_exceeded:
            log.error("%s: %d+ drifted keys exceed the repair cap of %d; nothing repaired (is dual-write broken?)",
                      table.qualified, len(result.findings), settings.cap)
    table_pass.shape, table_pass.found = shape, found
    table_pass.found_monotonic = time.monotonic()
    table_pass.seconds = table_pass.found_monotonic - started


def _finish(table_pass: _TablePass, target: Endpoint, settings: _Settings) -> None:
    """Confirm the keys found (the grace period has passed), repair them, and record the run."""
    started = time.monotonic()
    job, result, shape, found = table_pass.job, table_pass.result, table_pass.shape, table_pass.found
    table = job.table
    if not found and (settings.dry_run or not settings.record):
        result.seconds = table_pass.seconds
        return
    with job.source.connect(autocommit=True) as src, \
         target.connect(autocommit=True) as tgt:
        write = partial(ledger.fenced, tgt, settings.control_schema, settings.epoch,
                        f"reconcile of {table.qualified} ({settings.direction.value})")
        if found:
            primary_is_source = settings.direction is Direction.SOURCE_TO_TARGET
            confirmed = confirm_drift(shape, src, table.source_ident, tgt, table.target_ident, found,
                                      primary_is_source, result)
            unexplained = _unexplained(shape, src, table.source_ident, confirmed, job.horizon)
            if job.window is not None:
                unexplained |= _outside_window(shape, src, table.source_ident, tgt, table.target_ident, confirmed, job.window)
            if not settings.repair_unexplained or job.window is not None:
                confirmed = [(d, Outcome.UNEXPLAINED if d.key in unexplained else o) for d, o in confirmed]
            newer_on_target = _newer_on_target(shape, tgt, table.target_ident, confirmed, settings.target_horizon)
            confirmed = [(d, Outcome.IN_FLIGHT if d.key in newer_on_target else o) for d, o in confirmed]
            primary = Side(src, table.source_ident) if primary_is_source else Side(tgt, table.target_ident)
            secondary = Side(tgt, table.target_ident) if primary_is_source else Side(src, table.source_ident)
            findings = repair(shape, primary, secondary, confirmed, primary_is_source, result, write)
            late = _written_since(shape, src, table.source_ident, [f.key for f in findings if f.refused], job.horizon)
            result.findings = [replace(f, unexplained=f.key in unexplained, refused_late=late.get(f.key, False))
                               for f in findings]
        result.seconds = table_pass.seconds + time.monotonic() - started
        if not settings.dry_run and settings.record:
            drift_ledger.ensure_ledger(tgt, settings.control_schema)
            with write():
                drift_ledger.record_run(tgt, settings.control_schema, result)


@contextmanager
def _paced(budget: LoadBudget | None, primary: Endpoint, label: str,
           pacers: dict[Endpoint, ScanPacer]) -> Iterator[ScanPacer | None]:
    """A scan pacer on ``primary`` for one table's scans, going on from the last one there in ``pacers``."""
    if budget is None:
        yield None
        return
    with HealthProbe(primary, ScanPacer(budget, label=label, after=pacers.get(primary))) as pacer:
        yield pacer
    pacers[primary] = pacer
    if pacer.rests:
        log.info("%s: pacer: rested %.1f s over %d of %d slices (at most %.1f× a slice's time); at most %.0f%% of the "
                 "probes over %.2f ms", label, pacer.rested_s, pacer.rests, pacer.slices,
                 pacer.highest_rest_ratio, pacer.highest_share_over * 100, budget.tail_limit_ms)


def find_drift(shape: TableShape, src: psycopg.Connection, src_ident: tuple[str, str], tgt: psycopg.Connection,
               tgt_ident: tuple[str, str], result: ReconcileResult, pacer: ScanPacer | None = None) -> list[Drift]:
    """Drifted keys, at most ``result.cap + 1`` of them: one more than the cap proves
    it exceeded, and memory stays bounded however broken dual-write is. Both sides' hash
    scans run at once, paced together by ``pacer`` when there is one, as are the key-by-key
    reads of the buckets that differ."""
    started = time.monotonic()
    boundaries = scan.sample_boundaries(src, shape, src_ident)
    if pacer is not None:
        # A row sample reads every page of the table in one statement: rest after it as after a slice.
        pacer.rest_after(time.monotonic() - started)
    with ThreadPoolExecutor(max_workers=2) as pool:
        src_future = pool.submit(scan.bucket_summaries, src, shape, src_ident, boundaries, pacer)
        tgt_future = pool.submit(scan.bucket_summaries, tgt, shape, tgt_ident, boundaries, pacer)
        src_buckets, tgt_buckets = src_future.result(), tgt_future.result()
    result.buckets = len(boundaries) + 1
    result.checked_rows = sum(b.rows for b in src_buckets.values())
    result.target_rows = sum(b.rows for b in tgt_buckets.values())
    mismatched = mismatched_buckets(src_buckets, tgt_buckets)
    result.mismatched_buckets = len(mismatched)
    found: list[Drift] = []
    limit = result.cap + 1
    with src.transaction(), tgt.transaction():
        pin_output_settings(src)
        pin_output_settings(tgt)
        for drift in diff_sorted(scan.stream_key_hashes(src, shape, src_ident, boundaries, mismatched, pacer),
                                 scan.stream_key_hashes(tgt, shape, tgt_ident, boundaries, mismatched, pacer)):
            found.append(drift)
            if len(found) >= limit:
                break
    return found


def confirm_drift(shape: TableShape, src: psycopg.Connection, src_ident: tuple[str, str], tgt: psycopg.Connection,
                  tgt_ident: tuple[str, str], found: list[Drift], primary_is_source: bool,
                  result: ReconcileResult) -> list[tuple[Drift, Outcome]]:
    """Re-read every drifted key (the grace period has passed) and decide its fate."""
    if not found:
        return []
    decided: list[tuple[Drift, Outcome]] = []
    for start in range(0, len(found), READ_BATCH_KEYS):
        batch = found[start:start + READ_BATCH_KEYS]
        keys = [d.key for d in batch]
        src_now = scan.read_hashes(src, shape, src_ident, keys)
        tgt_now = scan.read_hashes(tgt, shape, tgt_ident, keys)
        for drift in batch:
            source_hash, target_hash = src_now.get(drift.key), tgt_now.get(drift.key)
            outcome = confirm(drift, primary_is_source, source_hash, target_hash)
            if outcome is Outcome.SETTLED:
                result.settled += 1
            else:
                decided.append((Drift(drift.key, source_hash, target_hash) if outcome is Outcome.REPAIR else drift, outcome))
    return decided


def repair(shape: TableShape, primary: Side, secondary: Side, decided: list[tuple[Drift, Outcome]],
           primary_is_source: bool, result: ReconcileResult, write: WriteTransaction) -> list[Finding]:
    """Repair the confirmed keys in small transactions, each opened by ``write`` (fenced); return every
    finding with its fate."""
    to_repair = [d for d, outcome in decided if outcome is Outcome.REPAIR]
    repaired: set = set()
    raced: set = set()
    refused: dict = {}
    for start in range(0, len(to_repair), REPAIR_BATCH_KEYS):
        batch = to_repair[start:start + REPAIR_BATCH_KEYS]
        items = [(d.key, *((d.source_hash, d.target_hash) if primary_is_source else (d.target_hash, d.source_hash)))
                 for d in batch]
        outcome = repair_batch(shape, primary, secondary, items, write)
        repaired |= outcome.repaired
        raced |= outcome.raced
        refused.update(outcome.failed)
    if to_repair:
        result.repaired_at = datetime.now(UTC)
    return [
        Finding(d.key, d.kind, d.source_hash, d.target_hash, repaired=d.key in repaired,
                in_flight=outcome is Outcome.IN_FLIGHT or d.key in raced, refused=d.key in refused,
                refused_by=refused.get(d.key, ""))
        for d, outcome in decided
    ]


def _written_since(shape: TableShape, src: psycopg.Connection, ident: tuple[str, str], keys: list,
                   horizon: int | None) -> dict:
    """Key -> whether the source wrote it since ``horizon``; a key the source lacks was deleted since.
    Empty without a horizon."""
    if horizon is None or not keys:
        return {}
    written = {}
    for start in range(0, len(keys), READ_BATCH_KEYS):
        batch = keys[start:start + READ_BATCH_KEYS]
        present = scan.read_written_since(src, shape, ident, batch, horizon)
        written.update({key: present.get(key, True) for key in batch})
    return written


def _unexplained(shape: TableShape, src: psycopg.Connection, ident: tuple[str, str],
                 decided: list[tuple[Drift, Outcome]], horizon: int | None) -> set:
    """Keys confirmed for repair whose source version is older than ``horizon``."""
    written = _written_since(shape, src, ident, [d.key for d, o in decided if o is Outcome.REPAIR], horizon)
    return {key for key, since in written.items() if not since}


def _outside_window(shape: TableShape, src: psycopg.Connection, src_ident: tuple[str, str], tgt: psycopg.Connection,
                    tgt_ident: tuple[str, str], decided: list[tuple[Drift, Outcome]], window: CutoverWindow) -> set:
    """Keys confirmed for repair that the failed window does not explain: the source wrote them since the
    cutover, or the source lacks them and the target has not written them since."""
    keys = [d.key for d, o in decided if o is Outcome.REPAIR]
    held = set()
    for start in range(0, len(keys), READ_BATCH_KEYS):
        batch = keys[start:start + READ_BATCH_KEYS]
        on_source = scan.read_written_since(src, shape, src_ident, batch, window.source_horizon)
        held |= {key for key, since in on_source.items() if since}
        lacking = [key for key in batch if key not in on_source]
        on_target = scan.read_written_since(tgt, shape, tgt_ident, lacking, window.target_horizon) if lacking else {}
        held |= {key for key in lacking if not on_target.get(key, False)}
    return held


def _newer_on_target(shape: TableShape, tgt: psycopg.Connection, ident: tuple[str, str],
                     decided: list[tuple[Drift, Outcome]], horizon: int | None) -> set:
    """Keys confirmed for repair whose target version was written at or after ``horizon``. A key the
    target lacks counts as not written: after a flip that is most often an insert the old primary
    made whose copy was lost, not a delete the apps made since."""
    keys = [d.key for d, o in decided if o is Outcome.REPAIR]
    if horizon is None or not keys:
        return set()
    newer = set()
    for start in range(0, len(keys), READ_BATCH_KEYS):
        written = scan.read_written_since(tgt, shape, ident, keys[start:start + READ_BATCH_KEYS], horizon)
        newer |= {key for key, since in written.items() if since}
    return newer


def _log_result(result: ReconcileResult) -> None:
    sample = ", ".join(f"{f.key} ({f.kind.value})" for f in result.findings[:LOGGED_KEYS])
    log.info("%s: %s", result.table, result.summary())
    if sample:
        log.info("%s: first drifted keys: %s%s", result.table, sample, " ..." if result.drifted > LOGGED_KEYS else "")

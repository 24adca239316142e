"""Pacing the backfill's byte streams and the reconcile's scans: a fixed ceiling, the
apps' primary's health, and pacers that hold the apps within a budget, the way gh-ost
throttles on max-load.

``Pacer`` holds a stream to at most so many MB/s. A chunk's COPY runs as fast as
both servers allow, which a source that is also serving the apps may not afford.
The copier tells the pacer each block it has passed on; the pacer sleeps while the
stream is ahead of its rate. While it sleeps the copier reads nothing, so the
source's COPY waits on a full socket: both sides are paced, and memory stays one block.

The source's health is the latency of a probe (``probe_ms``, or for a stream ``probe_on_server_ms``). Why a probe's latency
rather than active sessions or wait events: it is what a statement the size of an
app's write feels on the same server at that moment (CPU, connection scheduling and
lock-manager pressure from our COPY all show up in it), it needs no privilege or
extension (a managed source gives neither), and it costs about half a millisecond of
the server's time, so it can run several times a second. Session counts and wait
events describe what the server is doing, not what the apps feel, and depend on how
the apps pool their connections.

``LoadAwarePacer`` measures instead of making the operator guess a rate: every
``PROBE_INTERVAL_S`` of streaming it times the probe on its own connection to the
source and keeps the median of the last few against a budget, the idle baseline
plus the allowed increase (default the runbook's +30 %):

- over the budget, the rate is halved (from what the stream really moved);
- over twice the budget, the stream pauses until the probe is back within it,
  for at most ``MAX_PAUSE_S``, then goes on at the floor rate;
- within the budget, the rate grows by a quarter per interval, up to the
  operator's ceiling, or to no limit when there is none.

Additive growth and multiplicative cuts settle near the highest rate the apps
can afford, the way TCP finds a link's. Clock, sleep and probe are arguments, so
tests drive every decision without waiting.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TypeVar

import psycopg

from migration_engine.endpoints import Endpoint

log = logging.getLogger("migration.pacer")

Key = TypeVar("Key")

MB = 1024 * 1024
# A stream that stalled (a busy source, a lock) may catch up by at most this much
# time's worth of bytes: a long stall must not turn into a burst at full speed.
BURST_SECONDS = 1.0


class Pacer:
    """``passed(n)`` after each block; ``mb_per_s`` None or 0 never waits."""

    def __init__(self, mb_per_s: float | None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if mb_per_s is not None and not mb_per_s >= 0:
            raise ValueError(f"a copy rate must be 0 (unlimited) or more MB/s, found {mb_per_s!r}")
        self.mb_per_s = mb_per_s or None
        self.ceiling = self.mb_per_s
        self.clock, self.sleep = clock, sleep
        self.slept_s = 0.0
        self._credit = 0.0  # bytes that may still pass without waiting
        self._at = clock()

    def passed(self, nbytes: int) -> None:
        """``nbytes`` went by: wait until the stream is back within its rate."""
        if self.mb_per_s is None:
            return
        rate = self.mb_per_s * MB
        now = self.clock()
        self._credit = min(self._credit + (now - self._at) * rate, BURST_SECONDS * rate) - nbytes
        self._at = now
        if self._credit < 0:
            wait = -self._credit / rate
            self.sleep(wait)
            self.slept_s += wait
            self._credit, self._at = 0.0, now + wait

    def report(self) -> dict | None:
        """Decisions worth reporting beyond the fixed rate: none."""
        return None


# The probe costs the server about what an app's write does (half a millisecond at rest here): a
# statement that short is preempted by a busy neighbour as the apps' statements are, where a SELECT 1
# slips through between time slices and reads the same under a COPY as at rest.
PROBE = "SELECT count(*) FROM generate_series(1, 5000)"
PROBE_ON_SERVER = f"SELECT 1000 * extract(epoch FROM clock_timestamp() - statement_timestamp()) FROM ({PROBE}) AS work"
BASELINE_SAMPLES = 30
BASELINE_INTERVAL_S = 0.05


def probe_ms(conn: psycopg.Connection) -> float:
    """The scans' probe: one round trip, in milliseconds, the second of two back to back. The first wakes
    a server that was idle; on a quiet machine that wake-up alone can cost more than a busy server's
    queue, which would hide the very load the probe is there to see. The second counts the wait for the
    server to run it, which is what a scan's slice does to the apps' writes."""
    conn.execute(PROBE).fetchone()
    started = time.perf_counter()
    conn.execute(PROBE).fetchone()
    return (time.perf_counter() - started) * 1000


def probe_on_server_ms(conn: psycopg.Connection) -> float:
    """The streams' probe: its time on the server, from the statement's start to the end of its work. A
    chunk's stream probes from its own thread, on a worker busy with the copy's client side; timed as a
    round trip, that worker's own queue reads as a busy source (in bench-load, a backfill whose chunks
    carried their pace over crawled at 0.25-0.75 MB/s)."""
    return float(conn.execute(PROBE_ON_SERVER).fetchone()[0])


def probes_at_rest(endpoints: Mapping[Key, Endpoint], probe: Callable[[psycopg.Connection], float] = probe_ms,
                   samples: int = BASELINE_SAMPLES, interval_s: float = BASELINE_INTERVAL_S) -> dict[Key, list[float]]:
    """The ``probe``'s latencies on each endpoint before the work starts (``LoadBudget.at_rest`` makes a
    budget of them). One probe at a time, each after ``interval_s`` of quiet, as the pacers probe: two
    at once on one server queue behind each other."""
    with ExitStack() as stack:
        conns = {key: stack.enter_context(endpoint.connect(autocommit=True)) for key, endpoint in endpoints.items()}
        for conn in conns.values():
            probe(conn)  # the first probe pays for the session's catalog cache
        measured: dict[Key, list[float]] = {key: [] for key in conns}
        for _ in range(samples):
            for key, conn in conns.items():
                time.sleep(interval_s)
                measured[key].append(probe(conn))
    return measured


def spread_at_rest(latencies: list[float]) -> float:
    """How far the stream pacer's yardstick, the median of ``PROBE_WINDOW`` probes in a row, rises above
    the median of them all nine times in ten at rest: what is never taken for load."""
    median = statistics.median(latencies)
    windows = [statistics.median(latencies[i:i + PROBE_WINDOW]) for i in range(len(latencies) - PROBE_WINDOW + 1)]
    p90 = statistics.quantiles(windows, n=10)[-1] if len(windows) > 1 else median
    return round(max(0.0, p90 - median), 3)


def tail_at_rest(latencies: list[float]) -> float:
    """The probe's p95 at rest: the scan pacer's yardstick (``ScanPacer``)."""
    return round(statistics.quantiles(latencies, n=20)[-1] if len(latencies) > 1 else latencies[0], 3)


PROBE_INTERVAL_S = 0.25
PROBE_WINDOW = 8
GROWTH = 1.25
CUT = 0.5
# Never slower than this while not paused: a chunk must still finish.
FLOOR_MB_PER_S = 0.25
# Without a ceiling, a rate this many times what the stream moves is no limit at all.
UNLIMITED_AT = 4.0
# A source that stays busy for reasons of its own must not stall the copy for good: after this
# long paused, the stream goes on at the floor rate (and pauses again if the probe gets worse).
MAX_PAUSE_S = 60.0
# One log line per this many seconds at most, pauses and resumptions aside.
LOG_EVERY_S = 5.0


@dataclass(frozen=True)
class LoadBudget:
    """The probe's median at rest, the increase over it the apps can afford (0.3 = +30 %), the
    probe's own spread at rest (``spread_at_rest``) and its p95 at rest (``tail_at_rest``; None:
    not measured, the median's limit serves)."""

    baseline_ms: float
    max_increase: float
    spread_ms: float = 0.0
    tail_ms: float | None = None

    @classmethod
    def at_rest(cls, latencies: list[float], max_increase: float) -> LoadBudget:
        return cls(round(statistics.median(latencies), 3), max_increase, spread_at_rest(latencies),
                   tail_at_rest(latencies))

    @property
    def limit_ms(self) -> float:
        """What the median of the stream pacer's probes may reach."""
        # A server whose probe wavers at rest by more than the budget's share would otherwise look busy
        # all the time, and hold a copy at its floor on an idle source.
        return self.baseline_ms + max(self.baseline_ms * self.max_increase, self.spread_ms)

    @property
    def tail_limit_ms(self) -> float:
        """What a probe may reach before the scan pacer counts it as one that met the scan: +30 % of
        the probe's p95 at rest, as the runbook's rollback trigger is +30 % of the apps' p95."""
        if self.tail_ms is None:
            return self.limit_ms
        return max(self.tail_ms * (1 + self.max_increase), self.limit_ms)


class LoadAwarePacer(Pacer):
    def __init__(self, ceiling_mb_per_s: float | None, budget: LoadBudget, probe: Callable[[], float], *,
                 label: str = "copy", clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, after: LoadAwarePacer | None = None):
        super().__init__(ceiling_mb_per_s, clock=clock, sleep=sleep)
        self.budget, self.probe, self.label = budget, probe, label
        self.latencies: deque[float] = deque(maxlen=PROBE_WINDOW)
        if after is not None:
            # The stream before this one from the same source (the task's previous chunk): go on at the rate it
            # reached, judged by its latest probes. Most chunks end before their first probe is due, and each
            # starting at full speed again would never be paced at all.
            self.mb_per_s = after.mb_per_s
            self.latencies.extend(after.latencies)
        self.probes = self.cuts = self.pauses = 0
        self.paused_s = 0.0
        self.slowest_mb_per_s: float | None = None
        self.highest_probe_ms = 0.0
        self._probed_at = clock()
        self._bytes_since_probe = 0
        self._logged_at = float("-inf")

    def passed(self, nbytes: int) -> None:
        self._bytes_since_probe += nbytes
        if self.clock() - self._probed_at >= PROBE_INTERVAL_S:
            self._adjust()
        while self._over(2):
            self._pause()
        super().passed(nbytes)

    def _measure(self) -> float:
        self.latencies.append(self.probe())
        self.probes += 1
        now_ms = statistics.median(self.latencies)
        self.highest_probe_ms = max(self.highest_probe_ms, now_ms)
        return now_ms

    def _over(self, times: float) -> bool:
        return bool(self.latencies) and statistics.median(self.latencies) > times * self.budget.limit_ms

    def _adjust(self) -> None:
        now = self.clock()
        moved_mb_per_s = self._bytes_since_probe / MB / max(now - self._probed_at, 1e-6)
        self._probed_at, self._bytes_since_probe = now, 0
        probe_ms = self._measure()
        if probe_ms > self.budget.limit_ms:
            self.mb_per_s = max(FLOOR_MB_PER_S, CUT * min(moved_mb_per_s, self.mb_per_s or moved_mb_per_s))
            self.cuts += 1
            self.slowest_mb_per_s = min(self.slowest_mb_per_s or self.mb_per_s, self.mb_per_s)
            self._log(f"probe {probe_ms:.2f} ms over the budget of {self.budget.limit_ms:.2f} ms: "
                      f"down to {self.mb_per_s:.2f} MB/s")
        elif self.mb_per_s is not None and self.mb_per_s != self.ceiling:
            grown = self.mb_per_s * GROWTH
            if self.ceiling is not None:
                self.mb_per_s = min(grown, self.ceiling)
            else:
                self.mb_per_s = None if grown > UNLIMITED_AT * max(moved_mb_per_s, FLOOR_MB_PER_S) else grown
            self._log(f"probe {probe_ms:.2f} ms within the budget: up to "
                      f"{'no limit' if self.mb_per_s is None else f'{self.mb_per_s:.2f} MB/s'}")

    def _pause(self) -> None:
        self.pauses += 1
        self._log(f"probe {statistics.median(self.latencies):.2f} ms over twice the budget: paused", force=True)
        started = self.clock()
        while self._measure_after_a_wait() > self.budget.limit_ms:
            if self.clock() - started >= MAX_PAUSE_S:
                self.mb_per_s = FLOOR_MB_PER_S
                self.latencies.clear()
                break
        waited = self.clock() - started
        self.paused_s += waited
        self.slept_s += waited
        self._probed_at, self._bytes_since_probe = self.clock(), 0
        self._at, self._credit = self.clock(), 0.0
        self._log(f"resumed after {waited:.1f} s at {self.mb_per_s or 'no limit'} MB/s", force=True)

    def _measure_after_a_wait(self) -> float:
        self.sleep(PROBE_INTERVAL_S)
        return self._measure()

    def _log(self, message: str, force: bool = False) -> None:
        now = self.clock()
        if force or now - self._logged_at >= LOG_EVERY_S:
            log.info("%s: pacer: %s", self.label, message)
            self._logged_at = now

    def report(self) -> dict:
        """What the pacer decided, for the chunk's summary and the status page."""
        return {
            "baseline_probe_ms": self.budget.baseline_ms, "budget_probe_ms": round(self.budget.limit_ms, 3),
            # None: the stream ended before its first probe was due (a chunk shorter than an interval).
            "highest_probe_ms": round(self.highest_probe_ms, 3) if self.probes else None,
            "probes": self.probes, "cuts": self.cuts,
            "pauses": self.pauses, "paused_s": round(self.paused_s, 2),
            "slowest_mb_per_s": None if self.slowest_mb_per_s is None else round(self.slowest_mb_per_s, 2),
            "ceiling_mb_per_s": self.ceiling,
        }


# The scan pacer probes twice as often as the stream pacer: it counts the probes that meet a slice, and a share
# of 5 % needs a few dozen of them to be told from none.
SCAN_PROBE_INTERVAL_S = 0.125
# The last 5 s of probes.
SCAN_PROBE_WINDOW = 40
# What a p95 allows: over the budget while more than this share of the window's probes is over the tail limit.
OVER_SHARE = 0.05
# A decision waits for a second of new probes: the window still holds the probes taken before the last change.
DECIDE_EVERY_PROBES = 8
# A scan starts resting 4× each slice's time (busy a fifth of the time) until its probes say whether the apps
# have room: a scan that started at full speed would hurt them for the seconds its first judgement takes.
START_REST_RATIO = 4.0
# Over the budget the rest doubles per decision up to this (the scan then runs a 33rd of the time, 3 %).
MAX_REST_RATIO = 32.0
# With room (at most half the share allowed over the tail limit) the rest eases by this per decision,
# and below LEAST_REST_RATIO stops: eased more gently than doubled, so the pace settles rather than swings.
EASE = 0.7
LEAST_REST_RATIO = 0.1


class ScanPacer:
    """Paces a scan made of bounded queries (a reconcile's hash scan, a slice of blocks at a time) by the
    apps' primary's health, as ``LoadAwarePacer`` paces a byte stream.

    A server-side aggregate cannot be slowed while it runs, so the scan rests between its slices:
    after a slice that took ``busy_s``, it sleeps ``rest_ratio × busy_s``. Its yardstick is not the
    median of its probes but the share of them over the budget's tail limit (``LoadBudget.tail_limit_ms``),
    sampled on a connection of its own while the slices run (``HealthProbe``). A scan loads the server
    in bursts between rests, so most probes land in a rest and read the server idle: their median stays
    low while every write that meets a slice waits, and the apps' p95 is made of exactly those. The
    share of probes that meet a slice is the share of the apps' writes that do; the pacer holds it
    under ``OVER_SHARE``, the 5 % a p95 allows.

    Both sides' scans share one pacer, so a busy primary slows the whole comparison. Thread-safe;
    ``sleep`` is an argument and latencies come in through ``observe``, so tests drive every decision
    without waiting.
    """

    def __init__(self, budget: LoadBudget, *, label: str = "scan", sleep: Callable[[float], None] = time.sleep,
                 after: ScanPacer | None = None):
        self.budget, self.label, self.sleep = budget, label, sleep
        self.latencies: deque[float] = deque(maxlen=SCAN_PROBE_WINDOW)
        self.rest_ratio = START_REST_RATIO
        if after is not None:
            # The scan before this one on the same primary (the previous table of the run): go on at the pace it
            # reached, judged by its latest probes, rather than start cautious and learn the server again.
            self.latencies.extend(after.latencies)
            self.rest_ratio = after.rest_ratio
        self.slices = self.rests = self.probes = self.decisions = 0
        self.rested_s = 0.0
        self.highest_probe_ms: float | None = None
        self.highest_share_over = 0.0
        self.highest_rest_ratio = self.rest_ratio
        self._probes_at_decision = 0
        self._lock = threading.Lock()

    def observe(self, probe_ms: float) -> None:
        with self._lock:
            self.latencies.append(probe_ms)
            self.probes += 1
            self.highest_probe_ms = max(self.highest_probe_ms or 0.0, probe_ms)

    def share_over(self) -> float:
        """The share of the window's probes over the tail limit."""
        limit = self.budget.tail_limit_ms
        return sum(ms > limit for ms in self.latencies) / len(self.latencies) if self.latencies else 0.0

    def rest_after(self, busy_s: float) -> None:
        """A slice took ``busy_s``: rest as long as the apps' health asks."""
        with self._lock:
            self.slices += 1
            if self.probes - self._probes_at_decision >= DECIDE_EVERY_PROBES:
                self._decide()
            rest = self.rest_ratio * busy_s
            if rest:
                self.rests += 1
                self.rested_s += rest
        if rest:
            self.sleep(rest)

    def _decide(self) -> None:
        self._probes_at_decision = self.probes
        self.decisions += 1
        share = self.share_over()
        self.highest_share_over = max(self.highest_share_over, share)
        if share > OVER_SHARE:
            self.rest_ratio = min(MAX_REST_RATIO, max(START_REST_RATIO, self.rest_ratio * 2))
            if self.rest_ratio > self.highest_rest_ratio:
                self.highest_rest_ratio = self.rest_ratio
                log.info("%s: pacer: %.0f%% of the probes over %.2f ms: resting %.1f× each slice's time",
                         self.label, share * 100, self.budget.tail_limit_ms, self.rest_ratio)
        elif share <= OVER_SHARE / 2 and self.rest_ratio:
            eased = self.rest_ratio * EASE
            self.rest_ratio = eased if eased >= LEAST_REST_RATIO else 0.0

    def report(self) -> dict:
        """What the pacer decided, for the table's summary."""
        return {
            "baseline_probe_ms": self.budget.baseline_ms, "budget_probe_ms": round(self.budget.tail_limit_ms, 3),
            "highest_probe_ms": None if self.highest_probe_ms is None else round(self.highest_probe_ms, 3),
            "highest_share_over": round(self.highest_share_over, 3),
            "probes": self.probes, "decisions": self.decisions, "slices": self.slices, "rests": self.rests,
            "rested_s": round(self.rested_s, 2), "highest_rest_ratio": self.highest_rest_ratio,
            "last_rest_ratio": round(self.rest_ratio, 2),
        }


class HealthProbe:
    """Times the probe on its own connection every ``SCAN_PROBE_INTERVAL_S`` while a scan runs, telling a
    ``ScanPacer`` each latency: the scan's own sessions are busy with its slices."""

    def __init__(self, endpoint: Endpoint, pacer: ScanPacer, interval_s: float = SCAN_PROBE_INTERVAL_S):
        self.endpoint, self.pacer, self.interval_s = endpoint, pacer, interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ScanPacer:
        conn = self.endpoint.connect(autocommit=True)
        probe_ms(conn)  # the first probe pays for the session's catalog cache
        self.pacer.observe(probe_ms(conn))
        self._thread = threading.Thread(target=self._run, args=(conn,), name=f"probe {self.pacer.label}", daemon=True)
        self._thread.start()
        return self.pacer

    def _run(self, conn: psycopg.Connection) -> None:
        with conn:
            while not self._stop.wait(self.interval_s):
                try:
                    self.pacer.observe(probe_ms(conn))
                except psycopg.Error as exc:
                    # The scan's own sessions will meet the same fault and fail the task; until then it
                    # goes on at the pace last decided.
                    log.warning("%s: pacer: the probe failed (%s); no more probes this scan",
                                self.pacer.label, type(exc).__name__)
                    return

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

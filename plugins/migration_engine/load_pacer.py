"""Pace a copy by the source's health, the way gh-ost throttles on max-load.

The fixed MB/s of ``Pacer`` makes the operator guess what the source can spare.
This pacer measures instead: every ``PROBE_INTERVAL_S`` of streaming it times a
probe on its own connection to the source (``source_health``) and keeps the
median of the last few against a budget, the idle baseline plus the allowed
increase (default the runbook's +30 %):

- over the budget, the rate is halved (from what the stream really moved);
- over twice the budget, the stream pauses until the probe is back within it,
  for at most ``MAX_PAUSE_S``, then goes on at the floor rate;
- within the budget, the rate grows by a quarter per interval, up to the
  operator's ceiling, or to no limit when there is none.

Additive growth and multiplicative cuts settle near the highest rate the apps
can afford, the way TCP finds a link's. While the pacer waits the copier reads
nothing, so the source's COPY waits on a full socket. Clock, sleep and probe are
arguments, so tests drive every decision without waiting.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from migration_engine.pacer import MB, Pacer

log = logging.getLogger("migration.pacer")

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
    """The probe's idle median and the increase over it the apps can afford (0.3 = +30 %)."""

    baseline_ms: float
    max_increase: float

    @property
    def limit_ms(self) -> float:
        return self.baseline_ms * (1 + self.max_increase)


class LoadAwarePacer(Pacer):
    def __init__(self, ceiling_mb_per_s: float | None, budget: LoadBudget, probe: Callable[[], float], *,
                 label: str = "copy", clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        super().__init__(ceiling_mb_per_s, clock=clock, sleep=sleep)
        self.budget, self.probe, self.label = budget, probe, label
        self.latencies: deque[float] = deque(maxlen=PROBE_WINDOW)
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

"""Hold a byte stream to at most so many MB/s: the backfill's throttle.

A chunk's COPY runs as fast as both servers allow, which a source that is also
serving the apps may not afford. The copier tells the pacer each block it has
passed on; the pacer sleeps while the stream is ahead of its rate. While it
sleeps the copier reads nothing, so the source's COPY waits on a full socket:
both sides are paced, and memory stays one block.

The clock and the sleep are arguments, so tests check the pacing without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable

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

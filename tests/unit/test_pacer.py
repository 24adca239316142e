"""The backfill's throttle: a stream held to its rate, on a clock the test drives (nothing waits)."""

from __future__ import annotations

import math

import pytest

from migration_engine.pacer import BURST_SECONDS, MB, Pacer


class FakeClock:
    """Time moves only when the stream works (``advance``) or the pacer sleeps."""

    def __init__(self):
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def pacer(mb_per_s, clock: FakeClock) -> Pacer:
    return Pacer(mb_per_s, clock=clock, sleep=clock.sleep)


@pytest.mark.parametrize("unlimited", [None, 0])
def test_no_rate_never_waits(unlimited):
    clock = FakeClock()
    p = pacer(unlimited, clock)
    for _ in range(50):
        p.passed(MB)
    assert clock.sleeps == [] and p.slept_s == 0 and p.mb_per_s is None


def test_a_fast_stream_is_held_to_its_rate_at_every_block():
    clock, started = FakeClock(), 100.0
    p = pacer(2, clock)
    sent = 0
    for _ in range(10):
        p.passed(MB)  # the servers would move it at once
        sent += MB
        assert sent <= 2 * MB * (clock.now - started) + 1e-6, "ahead of 2 MB/s"
    assert clock.now - started == pytest.approx(5.0)
    assert p.slept_s == pytest.approx(5.0)


def test_a_stream_slower_than_its_rate_never_waits():
    clock = FakeClock()
    p = pacer(4, clock)
    for _ in range(10):
        clock.advance(0.5)  # 1 MB in 0.5 s: 2 MB/s
        p.passed(MB)
    assert clock.sleeps == []


def test_the_wait_covers_only_what_the_work_did_not():
    clock = FakeClock()
    p = pacer(1, clock)
    clock.advance(0.3)
    p.passed(MB)
    assert clock.sleeps == [pytest.approx(0.7)]


def test_a_stall_banks_at_most_one_burst_so_catching_up_is_paced():
    clock = FakeClock()
    p = pacer(1, clock)
    clock.advance(60)  # a long stall, e.g. a lock on the source
    for _ in range(5):
        p.passed(MB)
    # One burst's worth went through at once; the rest at 1 MB/s.
    assert sum(clock.sleeps) == pytest.approx(5 - BURST_SECONDS)


def test_uneven_blocks_keep_the_rate_and_lose_no_time():
    clock, started = FakeClock(), 100.0
    p = pacer(3, clock)
    sent = 0
    for size in [MB // 3, 2 * MB, 17, MB, 5 * MB, 4096, MB]:
        clock.advance(0.01)
        p.passed(size)
        sent += size
        assert sent <= 3 * MB * (clock.now - started) + 1e-6, "ahead of 3 MB/s"
    # Not held below the rate either: the last block ends exactly on the 3 MB/s line.
    assert clock.now - started == pytest.approx(sent / (3 * MB))


@pytest.mark.parametrize("bad", [-1, -0.001, math.nan])
def test_a_negative_or_undefined_rate_is_refused(bad):
    with pytest.raises(ValueError, match="copy rate"):
        Pacer(bad)

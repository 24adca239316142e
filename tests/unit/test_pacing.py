"""The pacers: a fixed MB/s ceiling, the load-aware pacer's decisions on a clock and a probe the test drives, and
the scan pacer's rests between slices on latencies the test feeds it (nothing waits)."""

from __future__ import annotations

import math

import pytest

from migration_engine.pacing import (
    BURST_SECONDS,
    DECIDE_EVERY_PROBES,
    EASE,
    FLOOR_MB_PER_S,
    MAX_PAUSE_S,
    MAX_REST_RATIO,
    MB,
    OVER_SHARE,
    PROBE_INTERVAL_S,
    SCAN_PROBE_WINDOW,
    START_REST_RATIO,
    LoadAwarePacer,
    LoadBudget,
    Pacer,
    ScanPacer,
    spread_at_rest,
)


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


BUDGET = LoadBudget(baseline_ms=1.0, max_increase=0.3)


class Probe:
    """Answers with the latency the test sets; counts its calls."""

    def __init__(self, ms: float):
        self.ms, self.calls = ms, 0

    def __call__(self) -> float:
        self.calls += 1
        return self.ms


def stream(pacer: LoadAwarePacer, clock: FakeClock, blocks: int, seconds_per_block: float = 0.01) -> None:
    for _ in range(blocks):
        clock.advance(seconds_per_block)  # the servers move a block at 100 MB/s
        pacer.passed(MB)


def test_a_healthy_source_is_never_held_back_without_a_ceiling():
    clock, probe = FakeClock(), Probe(1.1)
    pacer = LoadAwarePacer(None, BUDGET, probe, clock=clock, sleep=clock.sleep)
    stream(pacer, clock, 200)
    assert probe.calls >= 7, "probed every interval"
    assert pacer.mb_per_s is None and clock.sleeps == []
    assert pacer.report()["cuts"] == 0 and pacer.report()["pauses"] == 0


def test_over_the_budget_the_rate_is_halved_from_what_the_stream_moved_then_grows_back_to_the_ceiling():
    clock, probe = FakeClock(), Probe(1.5)  # over 1.3 ms, under twice it
    pacer = LoadAwarePacer(40, BUDGET, probe, clock=clock, sleep=clock.sleep)
    stream(pacer, clock, 30)
    assert pacer.cuts >= 1
    assert pacer.mb_per_s is not None and pacer.mb_per_s < 40
    slowest = pacer.slowest_mb_per_s
    assert FLOOR_MB_PER_S <= slowest <= 20
    probe.ms = 1.0
    stream(pacer, clock, 400)
    assert pacer.mb_per_s == 40, "back to the operator's ceiling, never above it"
    assert pacer.report()["slowest_mb_per_s"] == round(slowest, 2)


def test_the_next_chunks_stream_goes_on_at_the_rate_the_last_one_reached_from_the_same_source():
    clock, probe = FakeClock(), Probe(1.5)
    first = LoadAwarePacer(None, BUDGET, probe, clock=clock, sleep=clock.sleep)
    stream(first, clock, 30)
    assert first.mb_per_s is not None
    following = LoadAwarePacer(None, BUDGET, probe, clock=clock, sleep=clock.sleep, after=first)
    assert following.mb_per_s == first.mb_per_s and list(following.latencies) == list(first.latencies)
    assert following.report()["cuts"] == 0, "each chunk reports its own decisions"
    waited = len(clock.sleeps)
    stream(following, clock, 3)
    assert len(clock.sleeps) > waited, "held from its first block, before any probe of its own"


def test_far_over_the_budget_the_stream_pauses_until_the_probe_recovers():
    clock, probe = FakeClock(), Probe(1.0)
    pacer = LoadAwarePacer(None, BUDGET, probe, clock=clock, sleep=clock.sleep)
    stream(pacer, clock, 30)
    probe.ms = 5.0
    recover_at = clock.now + 3.0

    def recovering() -> float:
        probe.calls += 1
        return 1.0 if clock.now >= recover_at else 5.0

    pacer.probe = recovering
    stream(pacer, clock, 30)
    report = pacer.report()
    assert report["pauses"] >= 1
    assert 2.0 <= report["paused_s"] < MAX_PAUSE_S
    assert report["highest_probe_ms"] >= 5.0


def test_a_source_busy_for_good_does_not_stall_the_copy_forever():
    clock, probe = FakeClock(), Probe(9.0)
    pacer = LoadAwarePacer(None, BUDGET, probe, clock=clock, sleep=clock.sleep)
    started = clock.now
    stream(pacer, clock, 100)
    assert pacer.pauses >= 1
    assert pacer.paused_s >= MAX_PAUSE_S
    assert clock.now - started < 100 * (MAX_PAUSE_S + 10), "the stream goes on at the floor rate between pauses"
    assert pacer.mb_per_s is not None and pacer.mb_per_s <= FLOOR_MB_PER_S * 2


def test_probes_are_spaced_by_the_interval_however_many_blocks_pass():
    clock, probe = FakeClock(), Probe(1.0)
    pacer = LoadAwarePacer(None, BUDGET, probe, clock=clock, sleep=clock.sleep)
    stream(pacer, clock, 1000, seconds_per_block=0.001)  # 1 s of streaming
    assert probe.calls <= 1.0 / PROBE_INTERVAL_S + 1


def test_a_stream_shorter_than_one_interval_reports_no_probe_rather_than_zero_latency():
    clock, probe = FakeClock(), Probe(1.0)
    pacer = LoadAwarePacer(None, BUDGET, probe, clock=clock, sleep=clock.sleep)
    stream(pacer, clock, 3)
    assert probe.calls == 0 and pacer.report()["highest_probe_ms"] is None


def scan_pacer(sleeps: list[float]) -> ScanPacer:
    return ScanPacer(BUDGET, sleep=sleeps.append)


def probes(scans: ScanPacer, latencies: list[float]) -> None:
    for ms in latencies:
        scans.observe(ms)


def one_in(n: int, over: float = 5.0, within: float = 1.0) -> list[float]:
    """A second of probes (DECIDE_EVERY_PROBES of them) where one in ``n`` met a slice."""
    return [over if i % n == 0 else within for i in range(DECIDE_EVERY_PROBES)]


def test_a_scan_starts_at_a_cautious_pace_and_holds_it_until_a_second_of_probes_is_in():
    sleeps: list[float] = []
    scans = scan_pacer(sleeps)
    scans.rest_after(1.0)
    probes(scans, [1.0] * (DECIDE_EVERY_PROBES - 1))
    scans.rest_after(1.0)
    assert sleeps == [START_REST_RATIO, START_REST_RATIO] and scans.report()["decisions"] == 0


def test_with_room_the_rest_eases_away_and_the_scan_runs_at_full_speed():
    sleeps: list[float] = []
    scans = scan_pacer(sleeps)
    for _ in range(20):
        probes(scans, [1.1] * DECIDE_EVERY_PROBES)  # within the budget
        scans.rest_after(1.0)
    ratios = sleeps[:5]
    assert ratios == [pytest.approx(START_REST_RATIO * EASE ** n) for n in range(1, 6)]
    assert sleeps[-1] > 0 and scans.rest_ratio == 0.0
    scans.rest_after(1.0)
    assert len(sleeps) == scans.report()["rests"], "no rest once eased away"


def test_more_than_one_probe_in_twenty_over_the_limit_doubles_the_rest_up_to_the_most():
    sleeps: list[float] = []
    scans = scan_pacer(sleeps)
    for _ in range(6):
        probes(scans, one_in(4))  # a quarter of the probes met a slice
        scans.rest_after(1.0)
    assert sleeps == [8.0, 16.0, MAX_REST_RATIO, MAX_REST_RATIO, MAX_REST_RATIO, MAX_REST_RATIO]
    report = scans.report()
    assert report["highest_rest_ratio"] == MAX_REST_RATIO and report["highest_probe_ms"] == 5.0
    assert report["highest_share_over"] == 0.25 and report["decisions"] == 6


def test_a_share_over_the_limit_that_a_p95_allows_holds_the_pace():
    sleeps: list[float] = []
    scans = scan_pacer(sleeps)
    # One in 40 over the limit: within half of what a p95 allows, so the rest eases.
    probes(scans, [1.0] * (SCAN_PROBE_WINDOW - 1) + [5.0])
    scans.rest_after(1.0)
    assert sleeps == [pytest.approx(START_REST_RATIO * EASE)]
    # Two in 40 (5 %): not over, not enough room either: the rest holds.
    probes(scans, [1.0] * (DECIDE_EVERY_PROBES - 1) + [5.0])
    assert scans.share_over() == pytest.approx(OVER_SHARE)
    scans.rest_after(1.0)
    assert sleeps[-1] == sleeps[0]


def test_the_judgement_is_the_share_of_probes_over_the_p95_limit_not_their_median():
    sleeps: list[float] = []
    scans = ScanPacer(LoadBudget(baseline_ms=1.0, max_increase=0.3, tail_ms=2.0), sleep=sleeps.append)
    probes(scans, [2.5] * DECIDE_EVERY_PROBES)  # over the median's limit (1.3 ms), within the tail's (2.6 ms)
    scans.rest_after(1.0)
    assert scans.share_over() == 0 and sleeps == [pytest.approx(START_REST_RATIO * EASE)]
    probes(scans, one_in(2, over=2.7, within=1.0))  # the median is 1 ms, half the probes met a slice
    scans.rest_after(1.0)
    assert sleeps[-1] == pytest.approx(2 * START_REST_RATIO * EASE)


def test_the_next_tables_scan_goes_on_at_the_pace_the_last_one_reached_on_the_same_primary():
    sleeps: list[float] = []
    first = scan_pacer(sleeps)
    for _ in range(2):
        probes(first, one_in(4))
        first.rest_after(1.0)
    assert first.rest_ratio == 16.0
    following = ScanPacer(BUDGET, sleep=sleeps.append, after=first)
    following.rest_after(1.0)
    assert sleeps[-1] == 16.0 and following.share_over() == first.share_over()
    report = following.report()
    assert report["slices"] == 1 and report["probes"] == 0 and report["highest_rest_ratio"] == 16.0


def test_a_rest_is_in_proportion_to_the_slice_it_follows():
    sleeps: list[float] = []
    scans = scan_pacer(sleeps)
    scans.rest_after(0.2)
    scans.rest_after(3.0)
    assert sleeps == [pytest.approx(0.2 * START_REST_RATIO), pytest.approx(3.0 * START_REST_RATIO)]


def test_the_tail_limit_is_the_runbooks_increase_over_the_probes_p95_at_rest():
    assert LoadBudget(1.0, 0.3, tail_ms=2.0).tail_limit_ms == pytest.approx(2.6)
    assert LoadBudget(1.0, 0.3).tail_limit_ms == LoadBudget(1.0, 0.3).limit_ms, "not measured: the median's limit"
    at_rest = LoadBudget.at_rest([1.0] * 38 + [3.0, 3.0], 0.3)
    assert at_rest.baseline_ms == 1.0 and at_rest.tail_ms == pytest.approx(2.9)


def test_the_probes_own_spread_at_rest_is_never_taken_for_load():
    assert LoadBudget(2.0, 0.3).limit_ms == pytest.approx(2.6)
    assert LoadBudget(2.0, 0.3, spread_ms=0.9).limit_ms == pytest.approx(2.9)
    assert LoadBudget(2.0, 0.3, spread_ms=0.1).limit_ms == pytest.approx(2.6)


def test_the_spread_at_rest_is_that_of_the_median_of_eight_probes_not_of_one():
    wavering = [1.0, 3.0] * 20  # single probes 1 and 3 ms apart, every window of eight has median 2 ms
    assert spread_at_rest(wavering) == 0.0
    drifting = [1.0] * 20 + [1.5] * 20  # the yardstick itself moves by half a millisecond at rest
    assert spread_at_rest(drifting) == pytest.approx(0.25)

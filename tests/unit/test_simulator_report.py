"""The writer simulator's latency figures: percentiles, and a window cut by time."""

from __future__ import annotations

from migration_engine.simulator import SimulatorReport, percentile


def test_percentile_is_the_nearest_rank_and_zero_without_writes():
    latencies = [float(ms) for ms in range(1, 101)]  # 1 .. 100 ms
    assert percentile(latencies[::-1], 0.95) == 96.0
    assert percentile(latencies, 0.5) == 51.0
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([], 0.95) == 0.0


def test_latencies_between_keeps_the_writes_that_started_in_the_span():
    report = SimulatorReport(latencies_ms=[1.0, 2.0, 30.0, 40.0, 5.0], started_at=[10.0, 11.0, 12.0, 13.0, 14.0])
    assert report.latencies_between(12.0, 13.0) == [30.0, 40.0]
    assert report.latencies_between(20.0, 30.0) == []
    assert report.percentile_ms(0.95) == 40.0

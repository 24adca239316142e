"""The drift chart as pure SVG: axis scale, one group per run, values escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from migration_engine.drift_chart import nice_ceiling, render_drift_chart

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(("peak", "expected"), [(0, (1, 1)), (3, (3, 1)), (6, (6, 2)), (17, (20, 5)), (950, (1000, 500)),
                                                 (1001, (1500, 500))])
def test_axis_top_and_step(peak, expected):
    assert nice_ceiling(peak) == expected


def runs(n: int) -> list[dict]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [{"run_id": f"scheduled__{i}", "finished_at": start + timedelta(hours=i), "clean": i % 2 == 0,
             "drifted": i, "repaired": i // 2, "in_flight": 0, "unrepaired": i - i // 2} for i in range(n)]


def test_one_group_per_run_in_order_with_its_values():
    svg = ET.fromstring(render_drift_chart(runs(72)))
    groups = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "run"]
    assert [g.get("data-run-id") for g in groups] == [f"scheduled__{i}" for i in range(72)]
    assert [int(g.get("data-unrepaired")) for g in groups] == [i - i // 2 for i in range(72)]
    # Hourly runs: minutes tell them apart; ten labels at most.
    labels = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "when"]
    assert labels[:2] == ["01-01 00:00", "01-01 08:00"] and len(labels) <= 10


def test_run_ids_are_escaped():
    bad = runs(1)
    bad[0]["run_id"] = 'manual__<script>alert("x")</script>'
    text = render_drift_chart(bad)
    assert "<script>" not in text
    assert ET.fromstring(text).find(f"{SVG}g").get("data-run-id") == bad[0]["run_id"]

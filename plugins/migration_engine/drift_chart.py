"""The drift-per-reconcile-run chart of the status report, as inline SVG.

Plain SVG written here, no plotting library and nothing fetched at view time:
the report opens from a file on a machine without network. One group per run
(oldest left), four bars each: drifted, repaired, in flight, unrepaired; a dot
under the axis says whether the run was clean. Every group and bar carries its
numbers as ``data-*`` attributes and a ``<title>`` tooltip, so the chart can be
read by a person hovering and checked by a test parsing it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape

SERIES = (
    ("drifted", "drifted", "#5b6f9c"),
    ("repaired", "repaired", "#2e9d5b"),
    ("in_flight", "in flight", "#e0a526"),
    ("unrepaired", "unrepaired", "#d23f3f"),
)
WIDTH, HEIGHT = 1160, 340
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 40, 70
MAX_LABELS = 10


def nice_ceiling(value: float) -> tuple[int, int]:
    """The axis top and tick step: 1, 2 or 5 times a power of ten, at most about four steps."""
    value = max(value, 1)
    raw = value / 4
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(1, int(step))
    return int(math.ceil(value / step) * step), step


def _when(value, fmt: str = "%m-%d %H:%M") -> str:
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).strftime(fmt)
    return "" if value is None else str(value)


def _time_format(runs: Sequence[Mapping]) -> str:
    """Minutes tell hourly runs apart; runs closer than that need the seconds."""
    minutes = [_when(r["finished_at"]) for r in runs]
    return "%m-%d %H:%M:%S" if len(set(minutes)) < len(minutes) else "%m-%d %H:%M"


def _attr(value) -> str:
    return escape("" if value is None else str(value), quote=True)


def render_drift_chart(runs: Sequence[Mapping]) -> str:
    """SVG for ``runs`` (oldest first, each with run_id, finished_at, clean and the four counts)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top, step = nice_ceiling(max((int(r[key]) for r in runs for key, _, _ in SERIES), default=0))
    base = TOP + plot_h
    group_w = plot_w / max(len(runs), 1)
    bar_w = max(1.0, min(16.0, group_w * 0.8 / len(SERIES)))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="drift-chart" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="Drift per reconciliation run">',
        '<style>text{font:12px sans-serif;fill:#333}.axis{stroke:#888}.grid{stroke:#e4e4e4}</style>',
    ]
    for n, (key, label, colour) in enumerate(SERIES):
        x = LEFT + n * 120
        out.append(f'<rect class="legend {key}" x="{x}" y="10" width="12" height="12" fill="{colour}"/>'
                   f'<text x="{x + 17}" y="21">{label}</text>')
    out.append(f'<circle cx="{LEFT + 500}" cy="16" r="5" fill="#2e9d5b"/><text x="{LEFT + 510}" y="21">clean run</text>'
               f'<circle cx="{LEFT + 600}" cy="16" r="5" fill="#d23f3f"/><text x="{LEFT + 610}" y="21">drift left over</text>')
    for tick in range(0, top + 1, step):
        y = base - plot_h * tick / top
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                   f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
    out.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}"/>'
               f'<text x="14" y="{TOP + plot_h / 2}" transform="rotate(-90 14 {TOP + plot_h / 2})" '
               'text-anchor="middle">rows (keys)</text>')
    label_every = max(1, math.ceil(len(runs) / MAX_LABELS))
    fmt = _time_format(runs)
    for i, run in enumerate(runs):
        x0 = LEFT + i * group_w + (group_w - bar_w * len(SERIES)) / 2
        counts = {key: int(run[key]) for key, _, _ in SERIES}
        tooltip = f"{run['run_id']} at {_when(run['finished_at'], fmt)}: " + ", ".join(
            f"{label} {counts[key]}" for key, label, _ in SERIES)
        data = " ".join(f'data-{key.replace("_", "-")}="{counts[key]}"' for key, _, _ in SERIES)
        out.append(f'<g class="run" data-run-id="{_attr(run["run_id"])}" data-finished-at="{_attr(run["finished_at"])}" '
                   f'data-clean="{str(bool(run["clean"])).lower()}" {data}><title>{escape(tooltip)}</title>')
        for n, (key, label, colour) in enumerate(SERIES):
            h = plot_h * counts[key] / top
            out.append(f'<rect class="bar {key}" data-value="{counts[key]}" x="{x0 + n * bar_w:.1f}" y="{base - h:.1f}" '
                       f'width="{bar_w:.1f}" height="{h:.1f}" fill="{colour}"><title>{escape(label)}: {counts[key]}</title></rect>')
        centre = LEFT + (i + 0.5) * group_w
        out.append(f'<circle class="status {"clean" if run["clean"] else "unclean"}" cx="{centre:.1f}" cy="{base + 10}" r="4" '
                   f'fill="{"#2e9d5b" if run["clean"] else "#d23f3f"}"/>')
        if i % label_every == 0:
            out.append(f'<text class="when" x="{centre:.1f}" y="{base + 30}" text-anchor="middle">{escape(_when(run["finished_at"], fmt))}</text>')
        out.append("</g>")
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 8}" text-anchor="middle">reconcile run, finished at (UTC), oldest left</text>')
    out.append("</svg>")
    return "\n".join(out)

"""What an approver reads before a dangerous step: the evidence as Markdown.

Cutover, rollback and finalize gather their evidence in a task; its Markdown is
the body of the approval request the Required Actions page shows. Pure
functions over the tasks' XCom values: counts, names and times, never a row
value or a connection string.
"""

from __future__ import annotations


def _table(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    if not rows:
        return ["_none_"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _flags(flags: dict, want_side: str) -> list[str]:
    rows = [
        (service, f["primary_side"], "on" if f["dual_write"] else "OFF", "stays" if f["primary_side"] == want_side else f"→ {want_side}")
        for service, f in sorted(flags.items())
    ]
    return _table(("service", "read path now", "dual-write", "change"), rows)


def _dry_run(dry_run: bool) -> list[str]:
    return ["**Dry run:** every statement is rendered and logged; nothing is changed.", ""] if dry_run else []


def cutover_summary(*, soak: dict, streak: dict, final: dict, sequences: list[dict], flags: dict, dry_run: bool) -> str:
    lines = _dry_run(dry_run) + [
        f"- **Soak:** {soak['hours']:.2f} h in `soak` (required {soak['required_hours']:g} h).",
        f"- **Clean reconciliation runs in a row:** {streak['consecutive_clean_runs']} (required {streak['required']}).",
        "",
        *_final_reconcile(final),
        "",
        "### Sequences (target set at least the gap above the source)",
        *_table(("table", "column", "source", "target now", "target after"), [
            (s["table"], s["column"], s.get("source_position", ""), s["target_before"], s["target_after"]) for s in sequences
        ]),
        "",
        "### Read path: what approving flips",
        *_flags(flags, "target"),
    ]
    return "\n".join(lines)


def _final_reconcile(final: dict) -> list[str]:
    return [
        f"### Final reconciliation: {final['unrepaired']} row(s) left unrepaired, {final['in_flight']} in flight",
        *_table(("table", "rows checked", "drifted", "repaired", "in flight", "unrepaired"), [
            (t["table"], t["checked_rows"], t["drifted"], t["repaired"], t["in_flight"], t["unrepaired"])
            for t in final["per_table"]
        ]),
    ]


def rollback_summary(*, phase: dict, flags: dict) -> str:
    dual_off = sorted(service for service, f in flags.items() if not f["dual_write"])
    lines = [
        f"**Ledger:** `{phase['phase']}` since {phase['since']}.",
        "",
        "### Read path: what approving flips back",
        *_flags(flags, "source"),
    ]
    if dual_off:
        lines += ["", f"**Warning:** dual-write is off for {', '.join(dual_off)}: writes made on the target since "
                      "cutover reach the source only through the repair after this rollback."]
    return "\n".join(lines)


def finalize_summary(*, soak: dict, streak: dict, final: dict, writable: dict, retention_days: int, dry_run: bool) -> str:
    lines = _dry_run(dry_run) + [
        f"- **Cut over for:** {soak['hours']:.2f} h (required {soak['required_hours']:g} h).",
        f"- **Clean reconciliation runs in a row:** {streak['consecutive_clean_runs']} (required {streak['required']}).",
        f"- **Rollback retention recorded:** {retention_days} days.",
        "- **Dual-write:** turned off for every service before the sources stop taking the apps' writes.",
        "",
        *_final_reconcile(final),
        "",
        "### What approving revokes: INSERT, UPDATE, DELETE, TRUNCATE of each app role on its source",
        *_table(("service", "tables the app can write now"), sorted(writable.items())),
    ]
    return "\n".join(lines)

"""Failure and drift alerts. Without a configured channel they go to the task log."""

from __future__ import annotations

import logging

log = logging.getLogger("migration.alerts")


def alert_text(context: dict, detail: str = "") -> str:
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    map_index = getattr(ti, "map_index", -1)
    run_id = getattr(ti, "run_id", context.get("run_id", "?"))
    where = f"{dag_id}.{task_id}" + (f"[{map_index}]" if map_index not in (None, -1) else "")
    link = getattr(ti, "log_url", None) or ""
    return f"migration alert: {where} in run {run_id} failed. {detail}".strip() + (f" {link}" if link else "")


def notify_failure(context: dict) -> None:
    exception = context.get("exception")
    log.error(alert_text(context, f"Reason: {exception}" if exception else ""))

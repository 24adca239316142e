"""Failure and drift alerts: always to the task log, and by email through Airflow's
``SmtpNotifier`` when ``ALERT_EMAIL_TO`` is set.

Environment (see ``.env.example``):
- ``ALERT_EMAIL_TO``: comma-separated recipients; unset means the task log only.
- ``ALERT_SMTP_CONN_ID``: the Airflow SMTP connection (default ``smtp_default``).
- ``ALERT_EMAIL_FROM``: sender; else the connection's ``from_email`` extra.

An alert names the DAG, the task (with its map index), the table when there is
one, the run, and a link to the task in the Airflow UI. Exception text is
redacted before it is written anywhere. A channel that fails to send is logged
and never hides the failure being reported.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from migration_engine.endpoints import redact

log = logging.getLogger("migration.alerts")

DEFAULT_SMTP_CONN_ID = "smtp_default"


@dataclass(frozen=True)
class Alert:
    kind: str
    dag_id: str
    task: str
    run_id: str
    table: str | None
    detail: str
    link: str | None

    @property
    def subject(self) -> str:
        where = self.table or self.task
        return f"[migration {self.kind}] {self.dag_id}: {where}"

    def lines(self) -> list[tuple[str, str]]:
        rows = [("DAG", self.dag_id), ("Task", self.task), ("Table", self.table or "-"), ("Run", self.run_id),
                ("What happened", self.detail or "-")]
        if self.link:
            rows.append(("Link", self.link))
        return rows

    def text(self) -> str:
        return f"migration {self.kind}: " + "; ".join(f"{name}: {value}" for name, value in self.lines())

    def html(self) -> str:
        cells = "".join(
            f"<tr><th align='left'>{html.escape(name)}</th><td>"
            + (f"<a href='{html.escape(value, quote=True)}'>{html.escape(value)}</a>" if name == "Link" else html.escape(value))
            + "</td></tr>"
            for name, value in self.lines()
        )
        return f"<p>Migration {html.escape(self.kind)} alert</p><table>{cells}</table>"


def alert_from_context(context: Mapping, kind: str, *, table: str | None = None, detail: str = "") -> Alert:
    ti = context.get("ti") or context.get("task_instance")
    dag_id = getattr(ti, "dag_id", None) or "?"
    task_id = getattr(ti, "task_id", None) or "?"
    map_index = getattr(ti, "map_index", -1)
    task = task_id + (f"[{map_index}]" if map_index not in (None, -1) else "")
    params = context.get("params") or {}
    table = table or context.get("table") or params.get("table")
    run_id = getattr(ti, "run_id", None) or context.get("run_id") or "?"
    link = getattr(ti, "log_url", None)
    return Alert(kind, dag_id, task, str(run_id), table, redact(detail), link)


@dataclass(frozen=True)
class EmailChannel:
    to: tuple[str, ...]
    smtp_conn_id: str
    from_email: str | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> EmailChannel | None:
        to = tuple(a.strip() for a in (environ.get("ALERT_EMAIL_TO") or "").split(",") if a.strip())
        if not to:
            return None
        return cls(to, environ.get("ALERT_SMTP_CONN_ID") or DEFAULT_SMTP_CONN_ID, environ.get("ALERT_EMAIL_FROM") or None)

    def send(self, alert: Alert, context: Mapping) -> None:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        # notify() directly, not __call__: the text is final and must not be rendered as Jinja.
        SmtpNotifier(to=list(self.to), from_email=self.from_email, subject=alert.subject, html_content=alert.html(),
                     smtp_conn_id=self.smtp_conn_id).notify(context)


def send_alert(alert: Alert, context: Mapping, environ: Mapping[str, str] = os.environ) -> None:
    log.error(alert.text())
    channel = EmailChannel.from_env(environ)
    if channel is None:
        return
    try:
        channel.send(alert, context)
        log.info("alert emailed to %d recipient(s) through connection %s", len(channel.to), channel.smtp_conn_id)
    except Exception as exc:  # an alert channel must never mask the failure it reports
        log.error("alert email through connection %s failed: %s", channel.smtp_conn_id, redact(f"{type(exc).__name__}: {exc}"))


def notify_failure(context: dict) -> None:
    """``on_failure_callback`` of every task (dag_support.default_args)."""
    exception = context.get("exception")
    detail = f"failed: {type(exception).__name__}: {exception}" if exception else "failed"
    send_alert(alert_from_context(context, "failure", detail=detail), context)


def notify_drift(context: Mapping, table: str, drifted_rows: int, detail: str = "") -> None:
    """Called by a reconcile task when a table's target differs from its source."""
    what = f"{drifted_rows} drifted row(s)" + (f"; {detail}" if detail else "")
    send_alert(alert_from_context(context, "drift", table=table, detail=what), context)

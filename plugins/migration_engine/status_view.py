"""The migration status page inside the Airflow UI: a FastAPI app the plugin
``plugins/migration_status_plugin.py`` mounts in the API server.

Each request reads the ledgers afresh (``status_report.read``: one read-only
snapshot of the target's control schema, through the Airflow connection of the
manifest's direct target URL) and renders the same page the DAGs write to a file.

Only a signed-in user who may see the Airflow UI gets it: the API server's own
dependency checks the JWT the UI holds (its ``_token`` cookie, which the
embedded frame sends, or an ``Authorization: Bearer`` header), and the auth
manager's permission to view the website. Anonymous requests get 401, an
invalid token 403, and neither touches the target. The page may only be framed
by the Airflow UI itself, runs no script and is never cached.
"""

from __future__ import annotations

import logging
from html import escape

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse

log = logging.getLogger(__name__)

# The page is inline CSS and SVG, nothing else: no script, no fetch, framed by the UI's origin only.
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'",
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
}


def render_page() -> HTMLResponse:
    """The page from the ledgers as they stand, or a 503 page naming the connection that failed (no secret)."""
    from airflow.sdk.exceptions import AirflowNotFoundException

    from migration_engine import dag_support, status_report
    from migration_engine.endpoints import EndpointError, redact

    manifest = dag_support.manifest()
    target = None
    try:
        # Its sessions are called credity-migration-status-report, as a DAG's are after the DAG.
        target = dag_support.Connections("status-report").target_endpoint
        data = status_report.read(target, manifest)
    except (status_report.StatusReportError, EndpointError, AirflowNotFoundException) as exc:
        message = redact(str(exc), target and target.password)
        log.warning("migration status page: %s", message)
        conn_id = manifest.target_direct.conn_id
        return HTMLResponse(
            f"<!doctype html><title>Migration status unavailable</title><h1>Migration status unavailable</h1>"
            f"<p>The ledgers could not be read through the Airflow connection <code>{escape(conn_id)}</code>: "
            f"{escape(message)}</p>", status_code=503, headers=HEADERS)
    return HTMLResponse(status_report.render_html(data), headers=HEADERS)


def create_app() -> FastAPI:
    """The app; built in the API server only (the plugin builds it on the first request)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view

    app = FastAPI(title="Migration status", docs_url=None, redoc_url=None, openapi_url=None)
    signed_in = [Depends(requires_access_view(AccessView.WEBSITE))]

    # A plain def: FastAPI runs it in a worker thread, so the blocking ledger read never stalls the server.
    @app.get("/", response_class=HTMLResponse, dependencies=signed_in, summary="The migration status page")
    def migration_status() -> HTMLResponse:
        return render_page()

    return app

"""Airflow plugin: the migration status page in the Airflow UI.

It mounts ``migration_engine.status_view`` (a FastAPI app) in the API server at
``/migration-status/`` and adds "Migration" to the UI's navigation bar, which
shows that page inside the UI. Signed-in users see the ledgers as they stand;
anonymous requests get 401 (see ``status_view``).

Every Airflow process imports this file (scheduler, dag-processor, task
runners), but only the API server serves the page: the app, FastAPI and the
API server's security module are imported on the first request, not here.
"""

from __future__ import annotations

from urllib.parse import quote

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/migration-status"
# Short: the UI's navigation bar cuts longer names.
NAME = "Migration"

# Two databases and an arrow between them, inline so the navigation fetches nothing.
ICON_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="{colour}" stroke-width="2" '
            'stroke-linecap="round" stroke-linejoin="round"><ellipse cx="4" cy="6" rx="3" ry="1.5"/>'
            '<path d="M1 6v12c0 .8 1.3 1.5 3 1.5s3-.7 3-1.5V6"/><ellipse cx="20" cy="6" rx="3" ry="1.5"/>'
            '<path d="M17 6v12c0 .8 1.3 1.5 3 1.5s3-.7 3-1.5V6"/><path d="M9 12h6m-2.5-2.5L15 12l-2.5 2.5"/></svg>')


def icon(colour: str) -> str:
    return "data:image/svg+xml," + quote(ICON_SVG.format(colour=colour))


class BuiltOnFirstRequest:
    """An ASGI app that builds ``status_view``'s app when the first request arrives."""

    def __init__(self) -> None:
        self.app = None

    async def __call__(self, scope, receive, send) -> None:
        if self.app is None:
            from migration_engine.status_view import create_app

            self.app = create_app()
        await self.app(scope, receive, send)


class MigrationStatusPlugin(AirflowPlugin):
    name = "migration_status"
    fastapi_apps = [{"app": BuiltOnFirstRequest(), "url_prefix": URL_PREFIX, "name": NAME}]
    # url_route set: the UI shows the page in a frame at /plugin/migration-status, beside its own navigation.
    # href without a leading slash: the UI resolves it against its base URL, so a sub-path deployment works too.
    external_views = [{
        "name": NAME,
        "icon": icon("#4a5568"),
        "icon_dark_mode": icon("#e2e8f0"),
        "href": f"{URL_PREFIX.lstrip('/')}/",
        "url_route": URL_PREFIX.lstrip("/"),
        "destination": "nav",
        "nav_top_level": True,
    }]

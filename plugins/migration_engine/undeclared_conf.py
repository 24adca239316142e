"""Conf keys a DAG does not declare, and the refusal that names them.

Airflow 3.3 validates the value of each declared Param when a run is triggered,
but accepts any other key (it becomes a Param without a schema), so a misspelt or
misplaced key, say ``dry_run`` on a DAG that has none, would be silently ignored.
The package refuses such keys twice, with the same words: in the API server when
the run is triggered (``RefuseUndeclaredConf`` below), and in every task's
``pre_execute`` for the runs that bypass the API server (``airflow dags trigger``,
``airflow dags test``).

The middleware, ``RefuseUndeclaredConf``, is an ASGI middleware the plugin
``plugins/strict_conf_plugin.py`` installs in front of Airflow's routes. It looks only at the two requests that create runs with a conf, the
REST API's (and the UI's Trigger button's) ``POST /api/v2/dags/{dag_id}/dagRuns`` and
the trigger dialog's backfill, ``POST /api/v2/backfills`` (``dag_run_conf``), and
only when the DAG's latest serialized version, read through the API server's own DAG
bag, carries the tag ``strict-conf``. Such a request gets 400, with a detail naming
the DAG, the undeclared keys and the declared Params, before any run is created.

It answers only a caller Airflow would let trigger that DAG: the caller is
authenticated and authorized with the API server's own dependencies, and any other
request goes on unchanged, so Airflow answers it (401, 403, 404) exactly as before and
nobody learns a DAG's Params without the right to read them. A body that is not JSON,
a conf that is not an object, an unknown DAG or one without the tag also go on to
Airflow untouched. The body is read once and handed on as it came.

Only key names ever appear in a refusal or a log line, never a value.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable

# The tag the package's DAGs carry: the API server refuses undeclared conf keys
# for a DAG with this tag and leaves every other DAG alone.
STRICT_CONF_TAG = "strict-conf"


def undeclared_keys(conf: dict | None, declared: Iterable[str]) -> list[str]:
    return sorted(set(conf or {}) - set(declared))


def refusal(dag_id: str, unknown: list[str], declared: Iterable[str]) -> str:
    """What is wrong, without what to do next: each caller adds what happened to the run."""
    several = len(unknown) > 1
    hint = (" It has no dry run: the README's Params section lists the DAGs that have one."
            if "dry_run" in unknown else "")
    return (f"conf key{'s' if several else ''} {', '.join(map(repr, unknown))} "
            f"{'are' if several else 'is'} not a Param of DAG {dag_id!r}, which declares "
            f"{', '.join(sorted(declared)) or 'none'}.{hint}")


def trigger_again(unknown: list[str]) -> str:
    return f"trigger it again without {'them' if len(unknown) > 1 else 'it'}."


log = logging.getLogger(__name__)

TRIGGER_PATH = re.compile(r"^/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns/?$")
BACKFILL_PATH = re.compile(r"^/api/v2/backfills/?$")


def route_path(scope) -> str:
    """The path Airflow's router matches: without the deployment's root path (``[api] base_url``)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


def creates_runs(scope) -> bool:
    if scope["type"] != "http" or scope["method"] != "POST":
        return False
    path = route_path(scope)
    return bool(TRIGGER_PATH.match(path) or BACKFILL_PATH.match(path))


def dag_and_conf(path: str, body: bytes) -> tuple[str, dict] | None:
    """The DAG and the non-empty conf a run-creating request carries, or None."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(payload, dict):
        return None
    trigger = TRIGGER_PATH.match(path)
    dag_id = trigger["dag_id"] if trigger else payload.get("dag_id")
    conf = payload.get("conf" if trigger else "dag_run_conf")
    if not isinstance(dag_id, str) or not isinstance(conf, dict) or not conf:
        return None
    return dag_id, conf


async def read_body(receive) -> bytes | None:
    """The whole request body, or None when the client went away first."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


def replaying(body: bytes, receive):
    """A ``receive`` that hands the body already read to the app, then listens to the client again."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay():
        return pending.pop() if pending else await receive()

    return replay


async def caller(request):
    """The signed-in user, by the API server's own rule (bearer token, else the UI's cookie); None if there is none."""
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user
    from fastapi import HTTPException

    try:
        return await get_user(request, None, await bearer_scheme(request))
    except HTTPException:
        return None


def refusal_for(request, user, dag_id: str, conf: dict) -> dict | None:
    """The 400's body for this trigger, or None to let Airflow handle it. Blocking: run in a thread."""
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag
    from airflow.utils.session import create_session
    from fastapi import HTTPException

    try:
        requires_access_dag("POST", DagAccessEntity.RUN, dag_id)(request, user)
    except HTTPException:
        return None
    with create_session() as session:
        dag = request.app.state.dag_bag.get_latest_version_of_dag(dag_id, session=session)
    if dag is None or STRICT_CONF_TAG not in dag.tags:
        return None
    declared = list(dag.params.keys())
    unknown = undeclared_keys(conf, declared)
    if not unknown:
        return None
    log.warning("Refused a run of DAG %s for %s: undeclared conf keys %s", dag_id, user.get_name(), ", ".join(unknown))
    message = f"{refusal(dag_id, unknown, declared)} No run was created; {trigger_again(unknown)}"
    return {"detail": message, "dag_id": dag_id, "undeclared_conf_keys": unknown}


class RefuseUndeclaredConf:
    """The ASGI middleware; Airflow and FastAPI are imported on the first request that creates a run."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if not creates_runs(scope):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:
            return
        found = dag_and_conf(route_path(scope), body)
        refused = await self.refusal(scope, found) if found else None
        if refused is None:
            await self.app(scope, replaying(body, receive), send)
            return
        from fastapi.responses import JSONResponse

        await JSONResponse(refused, status_code=400)(scope, receive, send)

    @staticmethod
    async def refusal(scope, found: tuple[str, dict]) -> dict | None:
        from starlette.concurrency import run_in_threadpool
        from starlette.requests import Request

        request = Request(scope)
        user = await caller(request)
        return await run_in_threadpool(refusal_for, request, user, *found) if user else None

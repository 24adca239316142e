"""Steps whose SQL Airflow renders: the read-path flips and the revoke of the apps' writes.

Airflow renders a task's template fields before it runs it and records them
(the Rendered Template tab). Here the one field, ``sql``, is filled from the
statements this run plans (files under ``include/sql/``, identifiers through
``ident``) by the DAG's own Jinja environment, each with its bound values
beside it; the task then runs exactly those texts with those values. A dry run
is that rendering, logged, with nothing executed.
"""

from __future__ import annotations

from collections.abc import Callable

from airflow.sdk import BaseOperator

from migration_engine.sqlfiles import PlannedStatement

Plan = Callable[[str, str], list[PlannedStatement]]  # (dag_id, run_id) -> statements
Run = Callable[[str, str, list[PlannedStatement], bool], dict]  # (dag_id, run_id, rendered, dry_run) -> XCom


class RenderedSqlOperator(BaseOperator):
    """Render ``plan``'s statements with Airflow's environment, then hand them to ``run``.

    ``dry_run`` follows the DAG's Param of that name (a DAG without one never dry-runs).
    """

    template_fields = ("sql",)
    template_fields_renderers = {"sql": "sql"}

    def __init__(self, *, plan: Plan, run: Run, **kwargs) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.run = run
        self.sql = "-- rendered from include/sql/ when the task runs"
        self.statements: list[PlannedStatement] = []

    def render_template_fields(self, context, jinja_env=None) -> None:
        jinja_env = jinja_env or self.get_template_env()
        planned = self.plan(context["dag"].dag_id, context["run_id"])
        self.statements = [statement.rendered(jinja_env) for statement in planned]
        self.sql = "\n\n".join(statement.display() for statement in self.statements)

    def execute(self, context) -> dict:
        dry_run = bool(context["params"].get("dry_run", False))
        return self.run(context["dag"].dag_id, context["run_id"], self.statements, dry_run)

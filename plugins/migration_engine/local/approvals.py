"""Answering a run's approval requests without a browser, for ``airflow dags test``.

``airflow dags test`` parks a human-in-the-loop task in ``awaiting_input`` and waits
for a response recorded in its metadata DB; it never answers by itself, and it runs
no scheduler to enforce the timeout. The harness answers through the handler behind
the REST API's ``PATCH …/taskInstances/{task}/{map_index}/hitlDetails`` (what the
Required Actions page calls), as the named user ``HARNESS_USER``: the answer is
validated against the request's options, recorded with who gave it, and resumes the
task exactly as a click would. The DAGs themselves have no way around the approval.

Automation against a real deployment answers through that REST endpoint with its
own account (see the README), so every approval names who or what gave it.

``python -m migration_engine.local.approvals <dag_id> <option>`` answers every
request of the DAG still waiting, in the Airflow the environment points at.
"""

from __future__ import annotations

import sys

# At module level so that importing this module loads them: the runner does that before its answering
# thread starts (see dag_test_runner.run_one).
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session
from airflow.utils.state import TaskInstanceState
from sqlalchemy import select

HARNESS_USER = "migration-harness"


def answer_waiting(dag_id: str, option: str, user: str = HARNESS_USER) -> list[str]:
    """Answer each of the DAG's task instances waiting for input; returns ``run_id/task_id`` of each."""
    answered = []
    with create_session() as session:
        waiting = session.scalars(select(TaskInstance).where(
            TaskInstance.dag_id == dag_id, TaskInstance.state == TaskInstanceState.AWAITING_INPUT)).all()
        for ti in waiting:
            update_hitl_detail(
                dag_id=ti.dag_id, dag_run_id=ti.run_id, task_id=ti.task_id,
                update_hitl_detail_payload=UpdateHITLDetailPayload(chosen_options=[option]),
                user=SimpleAuthManagerUser(username=user, role="admin"), session=session, map_index=ti.map_index,
            )
            answered.append(f"{ti.run_id}/{ti.task_id}")
    return answered


def answer_and_report(dag_id: str, option: str) -> list[str]:
    """``answer_waiting``, one line per answer saying what was answered to which task, and by whom."""
    return [f"answered {option!r} to {dag_id}/{answered} as {HARNESS_USER}" for answered in answer_waiting(dag_id, option)]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m migration_engine.local.approvals <dag_id> <option>", file=sys.stderr)
        return 2
    dag_id, option = argv
    for line in answer_and_report(dag_id, option):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

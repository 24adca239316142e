"""Airflow plugin: a conf key a DAG does not declare is refused when the run is triggered.

It installs ``migration_engine.undeclared_conf.RefuseUndeclaredConf`` in the API server, in front
of Airflow's own routes: a trigger through the REST API or the UI (Trigger, or the
trigger dialog's backfill) of a DAG tagged ``strict-conf`` whose conf holds a key the
DAG declares no Param for gets 400 naming the DAG and the keys, and no run is
created. Other DAGs are left alone.

Runs created without the API server (``airflow dags trigger``, ``airflow dags test``)
are refused by every task's ``pre_execute`` instead (``dag_support``).

Every Airflow process imports this file; the middleware imports the API server's
modules only when a request that creates a run arrives.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from migration_engine.undeclared_conf import RefuseUndeclaredConf


class StrictConfPlugin(AirflowPlugin):
    name = "strict_conf"
    fastapi_root_middlewares = [{"middleware": RefuseUndeclaredConf, "name": "Refuse undeclared conf keys"}]

"""Conf keys a DAG does not declare, and the refusal that names them.

Airflow 3.3 validates the value of each declared Param when a run is triggered,
but accepts any other key (it becomes a Param without a schema), so a misspelt or
misplaced key, say ``dry_run`` on a DAG that has none, would be silently ignored.
The package refuses such keys twice, with the same words: in the API server when
the run is triggered (``conf_refusal_middleware``), and in every task's
``pre_execute`` for the runs that bypass the API server (``airflow dags trigger``,
``airflow dags test``).

Only key names ever appear in a refusal, never a value.
"""

from __future__ import annotations

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

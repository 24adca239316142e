"""Failures that retrying cannot fix.

A check that finds a wrong schema, a stale key or an out-of-order phase raises
``CheckFailed``; DAG tasks run their engine call inside
``fail_without_retry()`` so Airflow fails the task at once instead of retrying
it, while connection errors (which may pass) keep their retries.
"""

from __future__ import annotations

from contextlib import contextmanager


class CheckFailed(RuntimeError):
    """A check found a problem in the data or the catalog; the message names it."""


@contextmanager
def fail_without_retry():
    try:
        yield
    except CheckFailed as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(str(exc)) from None

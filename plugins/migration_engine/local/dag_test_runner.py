"""``airflow dags test`` runs one after another in one process, which imports Airflow once.

A child process that runs the command afresh spends about 2 s of CPU importing Airflow and
starting its in-process execution API before the first task; a test session or a demo runs
it hundreds of times on two cores. Each run here is still Airflow's own ``dags test``
command, parsed by Airflow's CLI parser: its DAG file and the whole bundle are parsed again
and synced to the metadata DB, and every task runs through the same execution API.

Each request is one JSON line on stdin: ``dag_id``, ``logical_date``, ``conf``, ``env`` (the
run's whole environment, which replaces this process's) and ``approval`` (the option each of
the run's approval requests is answered with, as ``local.approvals`` describes, or null).
The run's output follows on stdout, then ``END_OF_RUN`` and the exit status the command
would have had. End of input ends the process.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import traceback

END_OF_RUN = "\x1edags-test-run-ended "
APPROVAL_POLL_SECONDS = 1.0


def run_one(request: dict) -> int:
    from airflow.cli.cli_parser import get_parser

    # Before any second thread starts: two threads importing Airflow's modules at once can deadlock.
    import migration_engine.local.approvals  # noqa: F401

    os.environ.clear()
    os.environ.update(request["env"])
    dag_id = request["dag_id"]
    # Every DAG lives in the file named after it: dags test finds it without parsing the folder first.
    args = ["dags", "test", dag_id, *([request["logical_date"]] if request.get("logical_date") else []),
            "--dagfile-path", os.path.join(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], f"{dag_id}.py")]
    if request.get("conf"):
        args += ["--conf", json.dumps(request["conf"])]
    run_ended = threading.Event()
    answering = None
    if request.get("approval"):
        answering = threading.Thread(target=_answer_approvals, args=(dag_id, request["approval"], run_ended), daemon=True)
        answering.start()
    try:
        parsed = get_parser().parse_args(args)
        parsed.func(parsed)
        return 0
    except SystemExit as exc:
        return _exit_status(exc.code)
    except Exception:  # noqa: BLE001 - the command would have printed it and exited 1
        traceback.print_exc(file=sys.stdout)
        return 1
    finally:
        run_ended.set()
        if answering:
            answering.join()


def _exit_status(code) -> int:
    """What ``sys.exit(code)`` would leave as the process's status, printing a message as it would."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, flush=True)
    return 1


def _answer_approvals(dag_id: str, option: str, run_ended: threading.Event) -> None:
    """While the run lasts, answer ``option`` to each of its requests as soon as one waits."""
    from migration_engine.local.approvals import answer_and_report  # imported by run_one's thread already

    while not run_ended.wait(APPROVAL_POLL_SECONDS):
        try:
            for line in answer_and_report(dag_id, option):
                print(f"harness: {line}", flush=True)
        except Exception as exc:  # noqa: BLE001 - the run goes on waiting; the output says why nobody answered
            print(f"harness: could not answer {dag_id}: {exc}", flush=True)


def main() -> int:
    for line in sys.stdin:
        status = run_one(json.loads(line))
        sys.stderr.flush()
        # On a line of its own even when the run's last output (a child's, say) ended without a newline.
        print(f"\n{END_OF_RUN}{status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The harness's side of the runner protocol: a run's output and exit status, however the run ends."""

from __future__ import annotations

import subprocess
import sys

from migration_engine.local.airflow_env import _run_on
from migration_engine.local.dag_test_runner import END_OF_RUN, _exit_status

# Stands in for the runner: reads one request, prints what a run might, ends the run as told.
FAKE_RUNNER = r'''
import sys
request = sys.stdin.readline()
print("task log line")
sys.stdout.write("a child's output without a newline")
sys.stdout.flush()
if "die" in request:
    sys.exit(7)
print("\n" + sys.argv[1] + "3", flush=True)
sys.stdin.readline()
'''


def fake_runner() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", FAKE_RUNNER, END_OF_RUN], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)


def test_a_run_ends_at_its_marker_even_after_output_without_a_newline():
    runner = fake_runner()
    seen = []
    assert _run_on(runner, {"dag_id": "backfill"}, timeout=60, on_line=seen.append) == (
        3, "task log line\na child's output without a newline")
    assert seen == ["task log line", "a child's output without a newline"]
    assert runner.poll() is None, "the runner waits for its next request"
    runner.stdin.close()
    runner.wait()


def test_a_runner_that_dies_mid_run_gives_its_own_exit_status_and_the_output_so_far():
    assert _run_on(fake_runner(), {"dag_id": "die"}, timeout=60, on_line=None) == (
        7, "task log line\na child's output without a newline")


def test_a_run_past_its_timeout_is_killed():
    runner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert _run_on(runner, {"dag_id": "slow"}, timeout=1, on_line=None) == (-9, "")


def test_exit_status_is_what_the_command_would_have_exited_with(capsys):
    assert (_exit_status(None), _exit_status(0), _exit_status(2)) == (0, 0, 2)
    assert _exit_status("DagRun failed") == 1
    assert capsys.readouterr().out == "DagRun failed\n"

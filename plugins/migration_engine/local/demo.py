"""The full lifecycle on throwaway servers, every DAG run through Airflow in the
runbook's order, with the apps imitated by the writer simulator.

    make demo                       # default scale, a few minutes here
    DEMO_SCALE=20 make demo         # bigger
    DEMO_ROLLBACK=1 make demo       # a rollback after the first cutover, timed, then the way back

Ends with one line stating the proof and the path of an HTML report; exits
non-zero if anything does not hold.
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from migration_engine.local.airflow_env import AirflowHome, create_metadata_db
from migration_engine.local.estate import Estate
from migration_engine.manifest import DEFAULT_MANIFEST, load_manifest

REPO_ROOT = Path(__file__).resolve().parents[3]
DEMO_HOME = REPO_ROOT / ".airflow" / "demo"
METADATA_DB = "pgmig_airflow_demo"
# Our own loggers' lines in the `dags test` output: what a person wants to follow.
PROGRESS = re.compile(r"\[(?:info|warning|error)\s*\]\s+(.*?)\s+\[(migration\.[a-z_.]+)\]")


class DemoFailed(RuntimeError):
    pass


@dataclass
class Demo:
    scale: float
    seed: int
    soak_runs: int
    rollback: bool = False
    started: float = field(default_factory=time.monotonic)

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:7.1f}s] {text}", flush=True)

    def run_dag(self, home: AirflowHome, env: dict, dag_id: str, conf: dict | None = None, expect_success: bool = True):
        self.say(f"▶ {dag_id} {conf or ''}")

        def show(line: str) -> None:
            match = PROGRESS.search(line)
            if match:
                print(f"           {match.group(1)[:160]}", flush=True)

        result = home.run_dag(dag_id, conf, extra_env=env, on_line=show)
        states = ", ".join(f"{task}={state}" for task, state in sorted(result.task_states.items()) if state != "success")
        if expect_success and not result.succeeded:
            tail = "\n".join(result.output.splitlines()[-40:])
            raise DemoFailed(f"{dag_id} did not succeed (exit {result.returncode}; {states})\n{tail}")
        mark = "✔" if result.succeeded else "✘"
        self.say(f"{mark} {dag_id}: {len(result.task_states)} task instances" + (f" ({states})" if states else ""))
        return result


def main() -> int:
    from migration_engine.local import demo_flow

    demo = Demo(
        scale=float(os.environ.get("DEMO_SCALE", "1")),
        seed=int(os.environ.get("DEMO_SEED", "42")),
        soak_runs=int(os.environ.get("DEMO_SOAK_RUNS", "2")),
        rollback=os.environ.get("DEMO_ROLLBACK", "0") == "1",
    )
    manifest = load_manifest(os.environ.get("MIGRATION_MANIFEST") or DEFAULT_MANIFEST)
    demo.say(f"starting throwaway source, target and pgbouncer for migration {manifest.migration}")
    with Estate(manifest) as estate:
        home = AirflowHome(DEMO_HOME, create_metadata_db(METADATA_DB))
        demo.say(f"Airflow home {DEMO_HOME}, metadata DB {METADATA_DB} on the machine's PostgreSQL")
        home.migrate()
        try:
            proof = demo_flow.run(demo, estate, home)
        except DemoFailed as exc:
            print(f"DEMO FAILED: {exc}", file=sys.stderr, flush=True)
            return 1
    print(proof, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

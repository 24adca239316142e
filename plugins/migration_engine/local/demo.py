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
import sys

from migration_engine.local import demo_flow
from migration_engine.local.airflow_env import AirflowHome, create_metadata_db
from migration_engine.local.demo_flow import REPO_ROOT, Demo, DemoFailed
from migration_engine.local.estate import Estate
from migration_engine.manifest import DEFAULT_MANIFEST, load_manifest

DEMO_HOME = REPO_ROOT / ".airflow" / "demo"
METADATA_DB = "pgmig_airflow_demo"


def main() -> int:
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
        finally:
            home.close()
    print(proof, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

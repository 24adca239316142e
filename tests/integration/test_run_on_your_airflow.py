"""The README's "Run it on your Airflow" steps, run verbatim on a fresh virtualenv and AIRFLOW_HOME.

The block marked ``run-on-your-airflow`` is taken from README.md as it stands and run by bash
in a copy of the checkout, with only what the README asks the user to set beforehand:
``AIRFLOW_HOME``, the metadata DB (a database of its own on the machine's PostgreSQL,
dropped afterwards) and a ``.env`` naming a throwaway estate. It installs Airflow and the
package into a new venv (2 to 3 minutes from pip's cache), migrates, imports the pools, lists
the DAGs and runs preflight: 5 to 7 minutes in all on this 2-core machine under other load.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from migration_engine import ledger
from migration_engine.local.airflow_env import create_metadata_db, drop_metadata_db
from tests.dags.test_dag_integrity import EXPECTED_DAGS
from tests.integration.backfill_support import fill_sources

REPO = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```bash run-on-your-airflow\n(.*?)^```", re.M | re.S)


def readme_steps() -> str:
    blocks = BLOCK.findall((REPO / "README.md").read_text())
    assert len(blocks) == 1, "README.md must hold exactly one ```bash run-on-your-airflow block"
    return blocks[0]


def fresh_checkout(into: Path) -> Path:
    """The files a clone would hold (tracked, plus new files not ignored), nothing built."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, into / name)
    return into


def dotenv_for(estate, manifest) -> str:
    """A .env as a user fills it in from .env.example: the apps' URLs, single-quoted."""
    urls = {f"{service.name.upper()}_DATABASE_URL_DIRECT": estate.source_url(service.name) for service in manifest.services}
    urls |= {"DATABASE_URL_DIRECT": estate.target_url(), "DATABASE_URL": estate.pooler_url(), "DB_POOL_MAX": "4"}
    return "".join(f"{name}='{value}'\n" for name, value in urls.items())


def user_shell_env(airflow_home: Path, metadata_db: str) -> dict[str, str]:
    """A login shell's environment: none of this project's venv, PYTHONPATH or Airflow settings."""
    ours = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV", "MIGRATION_")) and k != "PATH"}
    env["PATH"] = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != ours)
    # COLUMNS: a terminal's width, so `airflow dags list` does not wrap the dag ids.
    env |= {"AIRFLOW_HOME": str(airflow_home), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db, "COLUMNS": "250"}
    return env


@pytest.mark.airflow
def test_the_readme_steps_install_and_run_a_dag_on_a_fresh_airflow(estate, manifest, tmp_path):
    fill_sources(estate, manifest)
    checkout = fresh_checkout(tmp_path / "checkout")
    (checkout / ".env").write_text(dotenv_for(estate, manifest))
    dbname = f"pgmig_readme_{os.getpid()}"
    env = user_shell_env(tmp_path / "airflow", create_metadata_db(dbname))
    try:
        proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", readme_steps()], cwd=checkout, env=env,
                              capture_output=True, text=True, timeout=2400)
    finally:
        drop_metadata_db(dbname)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-5000:]
    assert "No data found" in proc.stdout, "airflow dags list-import-errors reported errors:\n" + proc.stdout[-5000:]
    for dag_id in EXPECTED_DAGS:
        assert re.search(rf"^[\s|]*{dag_id}\s", proc.stdout, re.M), f"{dag_id} missing from airflow dags list"
    assert (tmp_path / "airflow" / "venv" / "bin" / "migration-env-contract").is_file()
    with estate.target_endpoint().connect(autocommit=True) as conn:
        assert ledger.current_phase(conn, manifest.control_schema) == "preflight_passed"
    for secret in estate.secrets():
        assert secret not in output

"""A local Airflow on the embedded default, and the chain run through it with ``dag.test`` in this
process (the demo and ``osmf evaluate ab --world-config``).

Airflow's state lives under ``$OSMF_HOME/airflow`` (SQLite metadata, ``airflow db migrate`` on first
use) unless ``AIRFLOW_HOME`` is set; its DAG folder is this repository's ``dags/``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from osmf_app import chain

DAGS_DIR = Path(__file__).resolve().parent.parent / "dags"


def airflow_env(settings) -> dict[str, str]:
    home = settings.airflow_home.resolve()
    return {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")}


def ensure_airflow(settings) -> Path:
    """Point this process at ``$OSMF_HOME/airflow`` (unless ``AIRFLOW_HOME`` is already set: then
    that Airflow is used as configured) and migrate its metadata DB once."""
    os.environ["OSMF_HOME"] = str(Path(settings.home).resolve())
    if "AIRFLOW_HOME" not in os.environ:
        os.environ.update(airflow_env(settings))
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS_DIR))
    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    stamp = home / ".osmf-migrated"
    if not stamp.exists():
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=dict(os.environ), check=True,
                       stdout=subprocess.DEVNULL)
        stamp.touch()
    return home


def load_dags(settings) -> dict:
    ensure_airflow(settings)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_DIR))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    return bag.dags


def run_dag(dags: dict, dag_id: str, run_date: str, conf: dict | None = None) -> str:
    """``dag.test`` for a run date; raises when the run does not succeed."""
    day = datetime.fromisoformat(run_date).replace(tzinfo=timezone.utc)
    dr = dags[dag_id].test(logical_date=day, run_conf={"run_date": run_date, **(conf or {})})
    state = str(getattr(dr, "state", dr))
    if "success" not in state:
        raise RuntimeError(f"DAG {dag_id} for {run_date} ended {state}; see $AIRFLOW_HOME/logs")
    return state


def run_chain(settings, dates: list[str], say=print, conf: dict | None = None) -> None:
    """The daily stages for every date, then every other stage, in chain order, for the last one."""
    dags = load_dags(settings)
    for stage in chain.STAGES:
        days = dates if stage in chain.DAILY else dates[-1:]
        for k, d in enumerate(days, 1):
            say(f"airflow: {stage.dag_id} {d}" + (f" ({k}/{len(days)})" if len(days) > 1 else ""))
            run_dag(dags, stage.dag_id, d, conf)
    say("airflow: chain done")

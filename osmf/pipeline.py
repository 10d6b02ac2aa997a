"""The whole nightly chain through Airflow (``dag.test`` in this process, on the embedded default)
and the commands built on it: the demo (README command 1) and ``osmf evaluate ab``.

Airflow's state lives under ``$OSMF_HOME/airflow`` (SQLite metadata, ``airflow db migrate`` on
first use); its DAG folder is this repository's ``dags/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

DAGS_DIR = Path(__file__).resolve().parent.parent / "dags"
CHAIN = ("osmf_regroup", "osmf_train", "osmf_generate")


def airflow_env(settings) -> dict[str, str]:
    home = Path(settings.home).resolve() / "airflow"
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


def run_chain(settings, dates: list[str], say=print, train_conf: dict | None = None) -> None:
    """osmf_ingest for every date, then regroup -> train -> generate for the last one."""
    dags = load_dags(settings)
    for k, d in enumerate(dates, 1):
        say(f"airflow: osmf_ingest {d} ({k}/{len(dates)})")
        run_dag(dags, "osmf_ingest", d)
    for dag_id in CHAIN:
        say(f"airflow: {dag_id} {dates[-1]}")
        run_dag(dags, dag_id, dates[-1], train_conf if dag_id == "osmf_train" else None)
    say("airflow: chain done")


def grouping_report(settings, run_date: str) -> dict:
    from osmf import evaluate_grouping

    path = Path(settings.home) / "reports" / f"grouping_{run_date}.json"
    if not path.exists():
        report = evaluate_grouping.evaluate(run_date, settings)
        evaluate_grouping.write(report, path, path.with_suffix(".png"))
    return json.loads(path.read_text())


def ab(settings, run_date: str, json_path: Path | None = None, html_path: Path | None = None) -> dict:
    from osmf import evaluate_ab

    reports = Path(settings.home) / "reports"
    json_path = json_path or reports / f"ab_{run_date}.json"
    html_path = html_path or Path(json_path).with_suffix(".html")
    report, per_group = evaluate_ab.evaluate_ab(run_date, settings, grouping_report=grouping_report(settings, run_date))
    evaluate_ab.write(report, per_group, json_path, html_path, settings)
    print(evaluate_ab.render_table(report))
    print(f"wrote {json_path} and {html_path}")
    return report


def ab_command(settings, run_date, json_path, html_path, world_config) -> int:
    from osmf.world import WorldConfig, generate_world, read_manifest

    if world_config:
        if (Path(settings.home) / "lake").exists():
            raise ValueError(f"{settings.home} already holds a lake; point OSMF_HOME at an empty directory "
                             "to run a new world")
        summary = generate_world(WorldConfig.from_toml(world_config), settings.home)
        run_chain(settings, list(summary.dates))
    run_date = run_date or read_manifest(settings.home)["dates"][-1]
    ab(settings, run_date, json_path, html_path)
    return 0

"""What the Airflow tasks call. Stdlib-only at import time (DAG files import this while parsing);
every job is imported inside the call.

How Spark jobs are launched: in the task's own process, through the job's ``run`` function (the
same code ``python -m jobs.<name> --run-date D`` runs). The Spark master comes from settings
(``OSMF_SPARK_MASTER``: ``local[*]`` embedded, ``spark://spark-master:7077`` in docker-compose), so a
task runs the same way locally and against a cluster (client mode: the Airflow worker is the
driver). Training and generation tasks go to the queue ``[models].train_queue`` (env
``OSMF_MODELS_TRAIN_QUEUE``), e.g. a GPU worker's.

The run date of a task: ``dag_run.conf["run_date"]`` if given, else the run's logical date, else the
``run_date`` in the extra of the asset event that triggered the run (asset-triggered runs have no
logical date in Airflow 3).
"""

from __future__ import annotations

import os
from datetime import timedelta

DEFAULT_ARGS = {"owner": "osmf", "retries": 2, "retry_delay": timedelta(minutes=2),
                "retry_exponential_backoff": True, "execution_timeout": timedelta(hours=2)}


def train_queue() -> str:
    """The queue of training/generation tasks (an environment variable: cheap at parse time)."""
    return os.environ.get("OSMF_MODELS_TRAIN_QUEUE", "default")


def run_date(context) -> str:
    conf = (getattr(context.get("dag_run"), "conf", None) or {})
    if conf.get("run_date"):
        return _check(conf["run_date"])
    if context.get("logical_date"):
        return context["logical_date"].strftime("%Y-%m-%d")
    events = context.get("triggering_asset_events") or {}
    dates = [e.extra["run_date"] for evs in events.values() for e in evs if (e.extra or {}).get("run_date")]
    if dates:
        return max(dates)
    raise ValueError("no run date: trigger with conf {'run_date': 'YYYY-MM-DD'} or from an asset event carrying one")


def _check(value: str) -> str:
    from osmf.runinfo import parse_run_date

    return parse_run_date(value)


def _settings():
    from jobs._common import setup_logging
    from osmf.settings import apply_offline_env, load_settings

    apply_offline_env()
    s = load_settings()
    setup_logging(s.log_level)
    return s


def _run_id(context) -> str:
    dr = context.get("dag_run")
    return f"airflow:{dr.dag_id}:{dr.run_id}" if dr is not None else "airflow"


def emit(context, asset: str, day: str, **extra) -> None:
    """Tell downstream DAGs which run date the asset was updated for."""
    from airflow.sdk import Asset

    context["outlet_events"][Asset(asset)].extra = {"run_date": day, **extra}


def validate(tables, day: str | None) -> dict:
    """Run the quality suites; a failure fails the task without retrying and stops downstream work."""
    from airflow.sdk.exceptions import AirflowFailException

    from jobs import validate_table

    s = _settings()
    failed, out = [], {}
    for t in tables:
        report = validate_table.run(t, day, s)
        out[t] = "passed" if report.success else "failed"
        if not report.success:
            failed.append(report.summary())
    if failed:
        raise AirflowFailException("quality gate failed:\n" + "\n".join(failed))
    return out


# ---- the steps -------------------------------------------------------------------------------------
def ingest(context) -> dict:
    from jobs import ingest_events

    day = run_date(context)
    res = ingest_events.run(day, _settings(), run_id=_run_id(context))
    return {"run_date": day, **{k: res.total(k) for k in ("lines_read", "accepted", "duplicates", "quarantined")}}


def grouping_step(context, name: str) -> dict:
    import importlib

    day = run_date(context)
    job = importlib.import_module(f"jobs.{name}")
    out = job.run(day, _settings(), run_id=_run_id(context))
    return {"run_date": day, **{k: v for k, v in dict(out).items() if isinstance(v, (int, float, str))}}


def train_grm(context) -> dict:
    from jobs import train_grm as job

    s = _settings()
    m = job.run(run_date(context), s)
    return {"version": m["version"], "grm_pair_accuracy": m["grm_pair_accuracy"], "promotion": job.promote(s)}


def pretrain_gmllm(context) -> dict:
    """Pre-train when there is no base model yet, or when the run's conf says ``pretrain: true``."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from jobs import train_gmllm
    from osmf import tracking
    from osmf.generation import GMLLM_NAME

    s = _settings()
    tracking.setup(s)
    asked = bool((getattr(context.get("dag_run"), "conf", None) or {}).get("pretrain"))
    try:
        base = MlflowClient().get_model_version_by_alias(GMLLM_NAME, "base").version
    except MlflowException:
        base = None
    if base and not asked:
        return {"skipped": f"base version {base} exists (trigger with conf pretrain=true to retrain)"}
    m = train_gmllm.run(run_date(context), s)
    return {"version": m["version"], "prompt_style_match": m["prompt_style_match"]}


def group_dpo(context) -> dict:
    from jobs import train_group_dpo

    s = _settings()
    m = train_group_dpo.run(run_date(context), s)
    return {"version": m["version"], "promotion": train_group_dpo.promote(s),
            **{k: m[k] for k in ("base_grm_reward", "group_dpo_grm_reward", "pooled_dpo_grm_reward")}}


def generate(context) -> dict:
    from jobs import generate_creatives

    return generate_creatives.run(run_date(context), _settings(), run_id=_run_id(context))

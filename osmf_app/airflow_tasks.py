"""What the tasks of the DAG files call: the Airflow context becomes a run date, a run id and a
conf, and a step of ``osmf_app.chain`` runs in the task's own process. Stdlib only at import time
(DAG files import this while parsing).

How Spark jobs are launched: in the task's process, through the job's ``run`` function (the same
code ``python -m jobs.<name> --run-date D`` runs). The Spark master comes from settings
(``OSMF_SPARK_MASTER``: ``local[2]`` embedded, ``spark://spark-master:7077`` in docker-compose), so
a task runs the same way locally and against a cluster (client mode: the Airflow worker is the
driver). Training and generation tasks go to the queue ``[models].train_queue``.

The run date of a task: ``dag_run.conf["run_date"]`` if given, else the run's logical date, else the
``run_date`` in the extra of the asset event that triggered the run (asset-triggered runs have no
logical date in Airflow 3).
"""

from __future__ import annotations

from datetime import timedelta

DEFAULT_ARGS = {"owner": "osmf", "retries": 2, "retry_delay": timedelta(minutes=2),
                "retry_exponential_backoff": True, "execution_timeout": timedelta(hours=2)}


def train_queue() -> str:
    """``[models].train_queue`` (settings file or ``OSMF_MODELS_TRAIN_QUEUE``; cheap at parse time)."""
    from osmf.settings import load_models

    return load_models().train_queue


def task_options(step) -> dict:
    """The ``@task`` options of a chain step: its timeout, and the models queue when it has one."""
    opts = {"task_id": step.name, "execution_timeout": timedelta(minutes=step.timeout_minutes),
            "max_active_tis_per_dag": 1}
    if step.models_queue:
        opts["queue"] = train_queue()
    return opts


def airflow_config():
    """``[airflow]`` settings (cheap at parse time)."""
    from osmf.settings import load_airflow

    return load_airflow()


def _conf(context) -> dict:
    return dict(getattr(context.get("dag_run"), "conf", None) or {})


def run_date(context) -> str:
    from osmf.runinfo import parse_run_date

    conf = _conf(context)
    if conf.get("run_date"):
        return parse_run_date(conf["run_date"])
    if context.get("logical_date"):
        return context["logical_date"].strftime("%Y-%m-%d")
    events = context.get("triggering_asset_events") or {}
    dates = [e.extra["run_date"] for evs in events.values() for e in evs if (e.extra or {}).get("run_date")]
    if dates:
        return max(dates)
    raise ValueError("no run date: trigger with conf {'run_date': 'YYYY-MM-DD'} or from an asset event carrying one")


def run_id(context) -> str:
    dr = context.get("dag_run")
    return f"airflow:{dr.dag_id}:{dr.run_id}" if dr is not None else "airflow"


def landing_marker(context):
    """The completion marker of the run date's landing folder (what ``wait_for_landing`` waits for)."""
    from osmf.entrypoint import task_settings

    return task_settings().landing_marker(run_date(context))


def check_inputs(dag_id: str, context) -> dict:
    """The first task of a stage that reads the lake: skips the run (and so every task after it,
    and the asset event) with the reason when the run date's input is not there yet, or, for a
    scheduled run, when an asset-triggered run already built the date."""
    from airflow.sdk.exceptions import AirflowSkipException

    from osmf.entrypoint import task_settings
    from osmf_app import chain, steps

    stage, day, settings = chain.stage(dag_id), run_date(context), task_settings()
    reason = steps.missing_inputs(stage, day, settings)
    dr = context.get("dag_run")
    run_type = getattr(dr, "run_type", None)
    if reason is None and getattr(run_type, "value", run_type) == "scheduled":
        reason = steps.already_built(stage, day, settings)
    if reason:
        raise AirflowSkipException(f"skipped {dag_id} for {day}: {reason}")
    return {"run_date": day}


def run_step(dag_id: str, step: str, context) -> dict:
    """One chain step for the task's run date."""
    from osmf.entrypoint import task_settings
    from osmf_app import chain, steps

    chain.stage(dag_id).step(step)  # a typo in a DAG file fails here, naming the stage's steps
    return getattr(steps, step)(run_date(context), task_settings(), run_id=run_id(context), conf=_conf(context))


def publish(dag_id: str, summary: dict | None, context) -> dict:
    """The stage's quality gate, then its asset event (extra: the run date and the last step's
    summary). A failed suite fails the task without retrying and stops downstream work."""
    from airflow.sdk import Asset
    from airflow.sdk.exceptions import AirflowFailException

    from osmf.entrypoint import task_settings
    from osmf_app import chain

    stage = chain.stage(dag_id)
    day = run_date(context)
    try:
        out = chain.validate(stage, day, task_settings())
    except chain.QualityGateFailed as exc:
        raise AirflowFailException(str(exc)) from None
    extra = {k: v for k, v in (summary or {}).items() if isinstance(v, (int, float, str, bool))}
    context["outlet_events"][Asset(stage.asset)].extra = {**extra, "run_date": day}
    return out

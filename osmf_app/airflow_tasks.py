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


def parse_settings():
    """The settings the DAG files are built with (the settings file and ``OSMF_*`` variables: a
    small TOML read, the only I/O while parsing): ``[airflow]`` and ``[models].train_queue``."""
    from osmf.config.settings import load_settings

    return load_settings()


def task_options(step, settings) -> dict:
    """The ``@task`` options of a chain step: its timeout, and the models queue when it has one."""
    opts = {"task_id": step.name, "execution_timeout": timedelta(minutes=step.timeout_minutes),
            "max_active_tis_per_dag": 1}
    if step.models_queue:
        opts["queue"] = settings.models.train_queue
    return opts


def _conf(context) -> dict:
    return dict(getattr(context.get("dag_run"), "conf", None) or {})


def run_date(context) -> str:
    from osmf.config.runinfo import parse_run_date

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


def job_context(context):
    """The job context of a task: the task's settings, run date, run id and the run's conf."""
    from osmf.runtime.context import JobContext
    from osmf.runtime.entrypoint import task_settings

    ti = context.get("ti")
    job = f"{ti.dag_id}.{ti.task_id}" if ti is not None else ""
    return JobContext(task_settings(), run_date(context), run_id(context), _conf(context), job=job)


def landing_marker(context):
    """The completion marker of the run date's landing folder (what ``wait_for_landing`` waits for)."""
    from osmf.runtime.entrypoint import task_settings

    return task_settings().landing_marker(run_date(context))


def check_inputs(stage, context) -> dict:
    """The first task of a stage that reads the lake: skips the run (and so every task after it,
    and the asset event) with the reason when the run date's input is not there yet, or, for a
    scheduled run, when an asset-triggered run already built the date."""
    from airflow.sdk.exceptions import AirflowSkipException

    from osmf_app import chain

    ctx = job_context(context)
    reason = chain.missing_inputs(stage, ctx)
    dr = context.get("dag_run")
    run_type = getattr(dr, "run_type", None)
    if reason is None and getattr(run_type, "value", run_type) == "scheduled":
        reason = chain.already_built(stage, ctx)
    if reason:
        raise AirflowSkipException(f"skipped {stage.dag_id} for {ctx.run_date}: {reason}")
    return {"run_date": ctx.run_date}


def run_step(step, context) -> dict:
    """One chain step (``osmf_app.chain.Step``: its job's ``run(ctx)``) for the task's run date. A drop
    the landing check refuses fails the task without retrying (a retry would read the same drop)."""
    from airflow.sdk.exceptions import AirflowFailException

    from osmf.ingest.landing import LandingRefused
    from osmf_app import chain

    try:
        return chain.run_step(step, job_context(context))
    except LandingRefused as exc:
        raise AirflowFailException(str(exc)) from None


def publish(stage, summary: dict | None, context) -> dict:
    """The stage's quality gate, then its asset event (extra: the run date and the last step's
    summary). A failed suite fails the task without retrying and stops downstream work."""
    from airflow.sdk import Asset
    from airflow.sdk.exceptions import AirflowFailException

    from osmf_app import chain

    ctx = job_context(context)
    try:
        out = chain.validate(stage, ctx)
    except chain.QualityGateFailed as exc:
        raise AirflowFailException(str(exc)) from None
    extra = {k: v for k, v in (summary or {}).items() if isinstance(v, (int, float, str, bool))}
    context["outlet_events"][Asset(stage.asset)].extra = {**extra, "run_date": ctx.run_date}
    return out

"""Builds the Airflow DAG of a chain stage: a first task that waits for or checks the stage's input,
one task per step (in order, each passing its summary to the next), then ``publish`` (the stage's
quality gate and its asset event). The DAG files in ``dags/`` call :func:`stage_dag` with the
stage's schedule and docs; nothing heavy is imported while parsing (the chain names each step's
job module; a job imports its libraries when it runs). Each step task calls that job's
``run(ctx)`` through ``osmf_app.airflow_tasks.run_step``.

* ``osmf_ingest`` starts with ``wait_for_landing``: a deferrable sensor on the run date's
  ``_SUCCESS`` marker. Its runs may overlap (``[airflow].ingest_max_active_runs``), so a scheduled
  run waiting for tonight's landing never blocks a triggered run or a backfill; the ingest task
  itself runs one date at a time.
* The other stages start with ``check_inputs``: when the run date's input is missing (or, for a
  scheduled run, the date is already built) the run is skipped, with the reason in the task log,
  and no asset event is sent. They run one at a time (``max_active_runs=1``).
* Every step runs one at a time per DAG (``max_active_tis_per_dag=1``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from osmf_app.airflow_tasks import DEFAULT_ARGS, parse_settings, task_options
from osmf_app.chain import INGEST, Stage, Step

START = datetime(2026, 1, 1)


def stage_dag(stage: Stage, schedule, tags: list[str], doc_md: str | None):
    from airflow.sdk import Asset, dag, task

    settings = parse_settings()
    cfg = settings.airflow
    runs = cfg.ingest_max_active_runs if stage is INGEST else 1

    @dag(dag_id=stage.dag_id, schedule=schedule, start_date=START, catchup=False, max_active_runs=runs,
         default_args=DEFAULT_ARGS, tags=["osmf", *tags], doc_md=doc_md)
    def build():
        def step_task(s: Step):
            @task(**task_options(s, settings))
            def step(upstream: dict | None = None, **context):
                from osmf_app.airflow_tasks import run_step

                return run_step(s, context)

            return step

        @task(task_id="check_inputs", retries=0)
        def check_inputs(**context):
            from osmf_app.airflow_tasks import check_inputs

            return check_inputs(stage, context)

        @task(task_id="publish", outlets=[Asset(stage.asset)], execution_timeout=timedelta(minutes=30))
        def publish(summary: dict | None, **context):
            from osmf_app.airflow_tasks import publish

            return publish(stage, summary, context)

        if stage is INGEST:
            from osmf_app.airflow_sensors import LandingSensor

            out = None
            wait = timedelta(minutes=cfg.landing_timeout_minutes)
            first = LandingSensor(task_id="wait_for_landing", retries=0, poke_interval=cfg.landing_poke_seconds,
                                  timeout=wait.total_seconds(), execution_timeout=wait + timedelta(minutes=5))
        else:
            out = first = check_inputs()
        for i, s in enumerate(stage.steps):
            out = step_task(s)(out)
            if i == 0 and stage is INGEST:
                first >> out
        publish(out)

    return build()

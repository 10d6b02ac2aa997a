"""Builds the Airflow DAG of a chain stage: one task per step (in order, each passing its summary
to the next), then ``publish`` (the stage's quality gate and its asset event). The DAG files in
``dags/`` call :func:`stage_dag` with the stage's schedule and docs; nothing heavy is imported while
parsing (the tasks import their jobs when they run)."""

from __future__ import annotations

from datetime import datetime, timedelta

from osmf_app.airflow_tasks import DEFAULT_ARGS, task_options
from osmf_app.chain import Stage

START = datetime(2026, 1, 1)


def stage_dag(stage: Stage, schedule, tags: list[str], doc_md: str | None):
    from airflow.sdk import Asset, dag, task

    @dag(dag_id=stage.dag_id, schedule=schedule, start_date=START, catchup=False, max_active_runs=1,
         default_args=DEFAULT_ARGS, tags=["osmf", *tags], doc_md=doc_md)
    def build():
        @task
        def step(name: str, upstream: dict | None = None, **context):
            from osmf_app.airflow_tasks import run_step

            return run_step(stage.dag_id, name, context)

        @task(task_id="publish", outlets=[Asset(stage.asset)], execution_timeout=timedelta(minutes=30))
        def publish(summary: dict | None, **context):
            from osmf_app.airflow_tasks import publish

            return publish(stage.dag_id, summary, context)

        out = None
        for s in stage.steps:
            out = step.override(**task_options(s))(s.name, out)
        publish(out)

    return build()

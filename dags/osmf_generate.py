"""osmf_generate: one creative per (product, group) with the champion models.

Nightly at 04:00 UTC, and when ``osmf_train`` updates the ``models`` asset. Best-of-N G-MLLM
prompts ranked by the GRM, rendered around the untouched product, written to
``generated_creatives`` (the run date's partition replaced), validated, then the
``generated_creatives`` asset is updated.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from osmf.orchestration import DEFAULT_ARGS, train_queue


@dag(dag_id="osmf_generate", start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=1,
     schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 4 * * *", timezone="UTC"), assets=[Asset("models")]),
     default_args=DEFAULT_ARGS, tags=["osmf", "generation", "mlflow"], doc_md=__doc__)
def osmf_generate():
    @task(queue=train_queue(), execution_timeout=timedelta(hours=2))
    def generate(**context):
        from osmf.orchestration import generate

        return generate(context)

    @task(outlets=[Asset("generated_creatives")], execution_timeout=timedelta(minutes=30))
    def validate(_: dict, **context):
        from osmf.orchestration import emit, run_date, validate

        out = validate(["generated_creatives"], run_date(context))
        emit(context, "generated_creatives", run_date(context))
        return out

    validate(generate())


osmf_generate()

"""osmf_ingest: land one day of impression/click logs in Delta.

Daily. ``ingest`` parses the run date's landing files (malformed lines to ``quarantine`` with a
reason, duplicates skipped by MERGE), ``validate`` runs the quality suites of the day's partitions
and the dimensions, and the ``impressions`` asset is updated with the run date, which triggers
``osmf_regroup``. Backfill: ``airflow backfill create --dag-id osmf_ingest --from-date A --to-date B``;
rerunning a date replaces exactly that date's rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, dag, task

from osmf.orchestration import DEFAULT_ARGS


@dag(dag_id="osmf_ingest", schedule="@daily", start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=1,
     default_args=DEFAULT_ARGS, tags=["osmf", "ingest", "spark"], doc_md=__doc__)
def osmf_ingest():
    @task(execution_timeout=timedelta(hours=1))
    def ingest(**context):
        from osmf.orchestration import ingest

        return ingest(context)

    @task(outlets=[Asset("impressions")], execution_timeout=timedelta(minutes=30))
    def validate(summary: dict, **context):
        from osmf.orchestration import emit, validate

        out = validate(["impressions", "quarantine", "ingest_audit"], summary["run_date"])
        out.update(validate(["users", "products", "creatives"], None))
        emit(context, "impressions", summary["run_date"], accepted=summary["accepted"])
        return out

    validate(ingest())


osmf_ingest()

"""osmf_regroup: product-aware user grouping for a run date.

Nightly at 02:00 UTC, and whenever ``osmf_ingest`` updates the ``impressions`` asset. PAAG
embeddings of each product's audience -> K-Means groups per product (K chosen per product) ->
group x creative CTR and per-group preference pairs -> quality suites of the five group tables ->
the ``groups`` asset (triggers ``osmf_train``). Every step replaces only the run date's partition,
so reruns and backfills are idempotent.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from osmf.orchestration import DEFAULT_ARGS

GROUP_TABLES = ["user_product_embeddings", "user_groups", "groups", "group_creative_ctr", "group_preference_pairs"]


@dag(dag_id="osmf_regroup", start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=1,
     schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 2 * * *", timezone="UTC"),
                                  assets=[Asset("impressions")]),
     default_args=DEFAULT_ARGS, tags=["osmf", "grouping", "spark"], doc_md=__doc__)
def osmf_regroup():
    @task(execution_timeout=timedelta(hours=1))
    def paag_embeddings(**context):
        from osmf.orchestration import grouping_step

        return grouping_step(context, "paag_embeddings")

    @task(execution_timeout=timedelta(hours=1))
    def group_users(_: dict, **context):
        from osmf.orchestration import grouping_step

        return grouping_step(context, "group_users")

    @task(execution_timeout=timedelta(hours=1))
    def group_ctr(_: dict, **context):
        from osmf.orchestration import grouping_step

        return grouping_step(context, "group_ctr")

    @task(outlets=[Asset("groups")], execution_timeout=timedelta(minutes=30))
    def validate(summary: dict, **context):
        from osmf.orchestration import emit, validate

        out = validate(GROUP_TABLES, summary["run_date"])
        emit(context, "groups", summary["run_date"])
        return out

    validate(group_ctr(group_users(paag_embeddings())))


osmf_regroup()

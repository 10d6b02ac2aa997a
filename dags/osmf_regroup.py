"""osmf_regroup: product-aware user grouping for a run date.

Whenever ``osmf_ingest`` updates the ``impressions`` asset (for the date in the event), and as a
fallback nightly at 02:00 UTC for the day before (skipped if that day is already built or not yet
ingested). ``check_inputs`` skips the run, with the reason, when the date has no impressions. PAAG
embeddings of each product's audience -> K-Means groups per product (K chosen per product) ->
group x creative CTR and per-group preference pairs -> ``publish``: the quality suites of the five
group tables, then the ``groups`` asset (triggers ``osmf_train``). Every step replaces only the run
date's partition, so reruns and backfills are idempotent.
"""

from airflow.sdk import Asset, AssetOrTimeSchedule, CronDataIntervalTimetable

from osmf_app.airflow_dags import stage_dag
from osmf_app.chain import REGROUP

dag = stage_dag(REGROUP, tags=["grouping", "spark"], doc_md=__doc__,
                schedule=AssetOrTimeSchedule(timetable=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
                                             assets=[Asset("impressions")]))

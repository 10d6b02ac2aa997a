"""osmf_regroup: product-aware user grouping for a run date.

Nightly at 02:00 UTC, and whenever ``osmf_ingest`` updates the ``impressions`` asset. PAAG
embeddings of each product's audience -> K-Means groups per product (K chosen per product) ->
group x creative CTR and per-group preference pairs -> ``publish``: the quality suites of the five
group tables, then the ``groups`` asset (triggers ``osmf_train``). Every step replaces only the run
date's partition, so reruns and backfills are idempotent.
"""

from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable

from osmf_app.airflow_dags import stage_dag
from osmf_app.chain import REGROUP

dag = stage_dag(REGROUP, tags=["grouping", "spark"], doc_md=__doc__,
                schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 2 * * *", timezone="UTC"),
                                             assets=[Asset("impressions")]))

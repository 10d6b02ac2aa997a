"""osmf_generate: one creative per (product, group) with the champion models.

When ``osmf_train`` updates the ``models`` asset, and as a fallback nightly at 04:00 UTC for the
day before. ``check_inputs`` skips the run, with the reason, when the date has no groups or there
is no champion model yet (and a nightly run when the date is already built). Best-of-N G-MLLM
prompts ranked by the GRM, rendered around the untouched product, written to
``generated_creatives`` (the run date's partition replaced); ``serving`` then writes
``serving_assignments`` (every user x product: the group and creative to show); ``publish``
validates both and updates the ``generated_creatives`` asset. ``generate`` runs on the queue
``[models].train_queue``.
"""

from airflow.sdk import Asset, AssetOrTimeSchedule, CronDataIntervalTimetable

from osmf_app.airflow_dags import stage_dag
from osmf_app.chain import GENERATE

dag = stage_dag(GENERATE, tags=["generation", "mlflow"], doc_md=__doc__,
                schedule=AssetOrTimeSchedule(timetable=CronDataIntervalTimetable("0 4 * * *", timezone="UTC"),
                                             assets=[Asset("models")]))

"""osmf_generate: one creative per (product, group) with the champion models.

Nightly at 04:00 UTC, and when ``osmf_train`` updates the ``models`` asset. Best-of-N G-MLLM
prompts ranked by the GRM, rendered around the untouched product, written to
``generated_creatives`` (the run date's partition replaced); ``publish`` validates it and updates
the ``generated_creatives`` asset. Runs on the queue ``[models].train_queue``.
"""

from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable

from osmf_app.airflow_dags import stage_dag
from osmf_app.chain import GENERATE

dag = stage_dag(GENERATE, tags=["generation", "mlflow"], doc_md=__doc__,
                schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 4 * * *", timezone="UTC"),
                                             assets=[Asset("models")]))

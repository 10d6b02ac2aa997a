"""osmf_ingest: land one day of impression/click logs in Delta.

Daily: the run for day D starts at 00:00 UTC on D+1 (a data-interval schedule: the run's logical
date is D, the day it ingests). ``wait_for_landing`` waits (deferred, in the triggerer) for
``landing/events/event_date=D/_SUCCESS``, up to ``[airflow].landing_timeout_minutes``; ``ingest``
(``jobs/ingest_events.py``) parses D's landing files: malformed lines go to ``quarantine`` with a
reason; events already in D's impressions or repeated in the landing are counted as duplicates and
skipped (an anti-join against the date's rows, then one staged append); ``publish`` runs the quality suites of D's partitions and the dimensions, then updates the
``impressions`` asset with the run date, which triggers ``osmf_regroup``. Runs of different dates
may overlap (a scheduled run waiting for tonight's landing never blocks a triggered one); the ingest
task runs one date at a time. Backfill:
``airflow backfill create --dag-id osmf_ingest --from-date A --to-date B --reprocess-behavior completed``;
rerunning a date appends nothing new and rewrites only that date's quarantine and audit rows.
"""

from airflow.sdk import CronDataIntervalTimetable

from osmf_app.airflow_dags import stage_dag
from osmf_app.chain import INGEST

dag = stage_dag(INGEST, schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"), tags=["ingest", "spark"],
                doc_md=__doc__)

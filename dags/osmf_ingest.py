"""osmf_ingest: land one day of impression/click logs in Delta.

Daily. ``ingest`` parses the run date's landing files (malformed lines to ``quarantine`` with a
reason, duplicates skipped by MERGE); ``publish`` runs the quality suites of the day's partitions
and the dimensions, then updates the ``impressions`` asset with the run date, which triggers
``osmf_regroup``. Backfill: ``airflow backfill create --dag-id osmf_ingest --from-date A --to-date B``;
rerunning a date replaces exactly that date's rows.
"""

from osmf_app.airflow_dags import stage_dag
from osmf_app.chain import INGEST

dag = stage_dag(INGEST, schedule="@daily", tags=["ingest", "spark"], doc_md=__doc__)

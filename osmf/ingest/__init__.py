"""Ingest: landing events -> ``impressions`` and ``quarantine`` (``events``: the contract and the
Spark job's plan; ``lines``: the per-line work in the tasks), and the dimension tables from the
landing's files (``dimensions``)."""

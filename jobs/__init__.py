"""Spark jobs. Each is runnable as ``python -m jobs.<name> --run-date YYYY-MM-DD``."""

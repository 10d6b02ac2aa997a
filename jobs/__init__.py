"""Spark and training jobs, thin: parse arguments, read, call the library (``osmf``), write, log.
Each is runnable as ``python -m jobs.<name> --run-date YYYY-MM-DD``."""

"""What every job and command shares: the job context (``context.JobContext``: settings, run date,
run id, the lake, Spark on demand, the run's conf) and the command-line plumbing (``entrypoint``:
``--run-date``, logging, readable errors)."""

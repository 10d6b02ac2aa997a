"""Ingest one day of landing events: landing JSONL -> ``impressions`` (new events appended, deduplicated
on event_id within the date) and ``quarantine`` (raw line, source file, line number, reason), with a
per-file ``ingest_audit``.

The landing check (``osmf.ingest.landing``) runs first: a drop with errors stops the task before
anything is written. The contract (what counts as accepted, duplicate or quarantined, the per-file invariant, reruns)
and how it runs are in :mod:`osmf.ingest.events`; this job loads the dimensions, reads, calls it, writes
and logs. One Spark job parses, classifies and writes (the write tasks of ``Lake.stage_spark`` write the
new events and the quarantined lines); only file names and counts reach the driver, which checks the
invariant and then commits quarantine, the audit and the new events.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from osmf.runtime.context import JobContext
from osmf.runtime.entrypoint import job_main

log = logging.getLogger("osmf.ingest")
JOB = "ingest_events"
EXISTING_COLS = ["event_id", "source_file", "source_line"]


def _classify_input(lake, spark, settings, paths: list[str], names: list[str], window,
                    run_date: str):
    """The day's lines, parsed and id-checked in the tasks, and the date's ``impressions`` keys (if
    any), bucketed and shuffled for the classification in the writer's tasks."""
    from osmf.ingest import events as ingest

    dims = ingest.dimension_keys(lake.read_arrow("users", columns=["user_id"]),
                                 lake.read_arrow("products", columns=["product_id"]),
                                 lake.read_arrow("creatives", columns=["creative_id", "product_id"]))
    shuffle = ingest.plan_shuffle(paths, settings.spark_shuffle_partitions)
    blobs = ingest.parse_landing(spark, paths, names, window, dims, shuffle)
    existing = (lake.read_spark(spark, "impressions", partition=run_date, columns=EXISTING_COLS)
                if lake.exists("impressions") else None)
    return ingest.classify_input(blobs, existing, names, shuffle)


def _commit(lake, staged, counts, run_date: str, run_id: str, seen: frozenset) -> None:
    """Quarantine (partition replace), audit, then the new events (an append: one commit, none when
    there is nothing new). ``seen``: the date's impressions files the classification read; if
    another writer changed them since (two ingests of one date at once), nothing is committed."""
    from osmf.ingest import events as ingest

    if staged.rows("impressions") != counts.new:
        raise RuntimeError(f"ingest: {staged.rows('impressions')} new rows written, {counts.new} counted")
    if lake.partition_files("impressions", run_date) != seen:
        raise RuntimeError(f"ingest {run_date}: the date's impressions changed while this run classified its lines "
                           "(another ingest of the same date?); nothing was committed, rerun it")
    staged.commit("quarantine", partition=run_date, run_id=run_id, job=JOB)
    lake.replace_partition("ingest_audit", ingest.audit_table(counts.files, run_date), run_date,
                           run_id=run_id, job=JOB)
    staged.commit("impressions", run_id=run_id, job=JOB)


def ingest_day(ctx: JobContext, now: dt.datetime | None = None):
    """Ingest ``ctx.run_date``; the ``osmf.ingest.events.IngestResult`` (per-file counts)."""
    from osmf.ingest import events as ingest
    from osmf.ingest.dimensions import load_dimensions
    from osmf.ingest.events import IngestResult
    from osmf.ingest.landing import require_clean

    t0 = time.perf_counter()
    settings, lake, run_date, run_id = ctx.settings, ctx.lake, ctx.run_date, ctx.run_id
    # the landing check first (the contract, the dimensions and their assets, the day's events): a bad
    # drop stops here, with every problem in the task log, before anything is written
    landing = require_clean(settings, [run_date])
    paths = ingest.landing_files(settings, run_date)
    load_dimensions(lake, settings, run_id, landing.dimensions)
    names = ingest.source_names(settings, paths)
    log.info("ingest %s: %d landing files (run %s)", run_date, len(paths), run_id)

    seen = lake.partition_files("impressions", run_date)
    lines = _classify_input(lake, ctx.spark, settings, paths, names, ingest.day_window(run_date, now), run_date)
    # ONE pass: the writer's tasks classify the lines, write the new events and the quarantined
    # lines, and count every line
    staged = lake.stage_spark(lines, "status", ingest.ROUTES, report_by=ingest.REPORT_BY, report_max="line_number",
                              transform=ingest.CLASSIFY, transform_args={"names": names, "run_date": run_date})
    try:
        counts = ingest.tally(names, staged.counts)  # the invariant, checked before anything commits
        _commit(lake, staged, counts, run_date, run_id, seen)
    finally:
        staged.discard()  # the files of whatever was not committed

    result = IngestResult(run_date, run_id, counts.files, counts.reasons, time.perf_counter() - t0)
    log.info("ingest %s done in %.1fs: %d lines, %d accepted (%d new), %d duplicates, %d quarantined",
             run_date, result.seconds, result.total("lines_read"), result.total("accepted"),
             counts.new, result.total("duplicates"), result.total("quarantined"))
    return result


def run(ctx: JobContext) -> dict:
    """The job contract: ingest the run date; the totals (and the per-file table as text)."""
    res = ingest_day(ctx)
    return {"run_date": ctx.run_date, **{k: res.total(k) for k in ("lines_read", "accepted", "duplicates", "quarantined")},
            "report": res.table()}


def main(argv=None) -> int:
    return job_main(run, __doc__, argv, show=lambda out: out["report"])


if __name__ == "__main__":
    raise SystemExit(main())

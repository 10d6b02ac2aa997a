"""Ingest one day of landing events: landing JSONL -> ``impressions`` (new events appended, deduplicated
on event_id within the date) and ``quarantine`` (raw line, source file, line number, reason), with a
per-file ``ingest_audit``.

The contract (what counts as accepted, duplicate or quarantined, the per-file invariant, reruns)
is in :mod:`osmf.ingest`; this job loads the dimensions, reads, calls it, writes and logs. Nothing
is collected to the driver but the counts: the tables are written by the Spark data source writer.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from jobs import load_dimensions
from osmf import ingest
from osmf.entrypoint import job_parser, run_main
from osmf.ingest import IngestResult
from osmf.lake import Lake
from osmf.runinfo import resolve_run_id
from osmf.settings import Settings

log = logging.getLogger("osmf.ingest")
JOB = "ingest_events"
EXISTING_COLS = ["event_id", "source_file", "source_line"]


def _classify(lake: Lake, spark, parsed, run_date: str):
    """Read the dimensions and the date's ``impressions`` keys (if any), and classify every line."""
    users, products, creatives = (lake.read_spark(spark, name) for name in ("users", "products", "creatives"))
    existing = (lake.read_spark(spark, "impressions", partition=run_date, columns=EXISTING_COLS)
                if lake.exists("impressions") else None)
    return ingest.classify_lines(parsed, users, products, creatives, existing)


def _write(lake: Lake, lines, counts: ingest.Tally, run_date: str, run_id: str) -> None:
    """Quarantine (partition replace), audit, then the new events (an append: one commit, none when
    there is nothing new)."""
    lake.write_spark(ingest.quarantine_rows(lines, run_date), "quarantine", partition=run_date,
                     run_id=run_id, job=JOB)
    lake.replace_partition("ingest_audit", ingest.audit_table(counts.files, run_date), run_date,
                           run_id=run_id, job=JOB)
    if counts.new:
        lake.write_spark(ingest.new_events(lines, run_date), "impressions", mode="append", run_id=run_id, job=JOB)
    else:
        lake.ensure("impressions")


def run(run_date: str, settings: Settings, run_id: str | None = None, spark=None,
        lake: Lake | None = None, now: dt.datetime | None = None) -> IngestResult:
    from osmf.spark import get_spark

    t0 = time.perf_counter()
    lake = lake or Lake(settings)
    spark = spark or get_spark(settings)
    run_id = resolve_run_id(settings, run_id)
    paths = ingest.landing_files(settings, run_date)  # before anything commits: no landing, no write
    load_dimensions.run(settings, run_id, lake)
    names = ingest.source_names(settings, paths)
    log.info("ingest %s: %d landing files (run %s)", run_date, len(paths), run_id)

    parsed = ingest.parse_landing(spark, paths, names, ingest.day_window(run_date, now))
    lines = _classify(lake, spark, parsed, run_date).persist()
    try:
        counts = ingest.tally(names, lines)  # the first action fills the cache; nothing is written yet
        _write(lake, lines, counts, run_date, run_id)
    finally:
        lines.unpersist()

    result = IngestResult(run_date, run_id, counts.files, counts.reasons, time.perf_counter() - t0)
    log.info("ingest %s done in %.1fs: %d lines, %d accepted (%d new), %d duplicates, %d quarantined",
             run_date, result.seconds, result.total("lines_read"), result.total("accepted"),
             counts.new, result.total("duplicates"), result.total("quarantined"))
    return result


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])

    def go(args, settings):
        print(run(args.run_date, settings, args.run_id).table())

    return run_main(parser, go, argv)


if __name__ == "__main__":
    raise SystemExit(main())

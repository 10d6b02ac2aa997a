"""Ingest one day of landing events: landing JSONL -> ``impressions`` (MERGE on event_id) and
``quarantine`` (raw line, source file, line number, reason), with a per-file ``ingest_audit``.

The contract (what counts as accepted, duplicate or quarantined, the per-file invariant, reruns)
is in :mod:`osmf.ingest`; this job loads the dimensions, reads, calls it, writes and logs.
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


def _read_and_split(lake: Lake, spark, parsed, run_date: str) -> ingest.IngestFrames:
    """Read the dimensions and the date's ``impressions`` (if any), and split the parsed lines."""
    users, products, creatives = (lake.read_spark(spark, name) for name in ("users", "products", "creatives"))
    existing = lake.read_spark(spark, "impressions", partition=run_date) if lake.exists("impressions") else None
    return ingest.split_lines(parsed, run_date, users, products, creatives, existing)


def _write(lake: Lake, frames: ingest.IngestFrames, files: list[dict], run_date: str, run_id: str) -> int:
    """Quarantine (partition replace), audit, then the MERGE of new events; returns the new rows."""
    lake.write_spark(frames.quarantined, "quarantine", partition=run_date, run_id=run_id, job=JOB)
    lake.replace_partition("ingest_audit", ingest.audit_table(files, run_date), run_date, run_id=run_id, job=JOB)
    new_rows = ingest.new_events(frames.first, run_date).toArrow()
    if new_rows.num_rows or not lake.exists("impressions"):
        lake.merge_insert("impressions", new_rows, run_id=run_id, job=JOB, partition=run_date)
    return new_rows.num_rows


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
    frames = _read_and_split(lake, spark, parsed, run_date)
    files, reasons = ingest.tally(names, frames)
    new = _write(lake, frames, files, run_date, run_id)
    parsed.unpersist()

    result = IngestResult(run_date, run_id, files, reasons, time.perf_counter() - t0)
    log.info("ingest %s done in %.1fs: %d lines, %d accepted (%d new), %d duplicates, %d quarantined",
             run_date, result.seconds, result.total("lines_read"), result.total("accepted"),
             new, result.total("duplicates"), result.total("quarantined"))
    return result


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])

    def go(args, settings):
        print(run(args.run_date, settings, args.run_id).table())

    return run_main(parser, go, argv)


if __name__ == "__main__":
    raise SystemExit(main())

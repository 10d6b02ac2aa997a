"""The ingest contract: one day of landing JSONL -> ``impressions`` (deduplicated on event_id within
the date) and ``quarantine`` (raw line, source file, line number, reason), with a per-file
``ingest_audit``.

Invariant, enforced by :func:`tally` and recorded in ``ingest_audit``: for every landing file,
lines read = rows accepted + duplicates skipped + lines quarantined.

* accepted: the line's event is in ``impressions`` and came from this very (file, line); on a rerun
  the same lines count as accepted again, so the audit is identical.
* duplicates: a later copy of an event_id (first by file name, then line number, wins), or an
  event_id already in the date's ``impressions`` from another line.
* quarantined: a line that cannot be accepted; ``reason`` is one of REASONS.

Rerunning a date changes no table content: quarantine and audit partitions are replaced with the
same rows, and only events not yet in the date's partition are appended (none on a rerun: no commit).

How it runs: ONE Spark job (plus a counting pass over files larger than one byte range, for their
line numbers), in which nothing but file names, counts and the dimensions' keys cross the driver, and the
lines stay columnar (Arrow) from the parse to the Parquet files (the per-line work is in
:mod:`osmf.ingest.lines`):

1. map tasks (``parse_landing``): the landing files, cut into byte ranges, are parsed with exact line
   numbers: a typed C decoder (msgspec) takes every line it can vouch for, ``validate_line`` (the
   definition of a valid line) decides every other one; the ids are checked against the dimensions'
   keys (shipped to the tasks like a broadcast join's side); the lines are cut by a hash of
   event_id into buckets, each an Arrow IPC payload. The date's ``impressions`` keys are bucketed
   the same way. Spark's shuffle then moves these few large rows, one bucket to one task.
2. write tasks (``Lake.stage_spark`` with the ``classify_blobs`` transform): each task orders its
   buckets by a hash of event_id, gives every line one status (STATUSES), writes the new events to
   ``impressions`` files and the quarantined lines to ``quarantine`` files, and counts.
3. the driver (``jobs.ingest_events``): the counts give the audit; the invariant is checked, then
   quarantine (partition replace), the audit and the new events (an append) are committed.
"""

from __future__ import annotations

import datetime as dt
import glob
import math
import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from osmf.ingest.lines import (BLOB_DDL, DAY_MS, EVENT_FIELDS, LINES_DDL, PARSED_DDL, REASONS, STATUSES,  # noqa: F401
                               DimKeys, bucket_existing, count_ranges, parse_ranges, validate_line)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from osmf.config.settings import Settings

# --- the day's landing files and the result ------------------------------------------------------

@dataclass
class IngestResult:
    run_date: str
    run_id: str
    files: list[dict] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def total(self, key: str) -> int:
        return sum(f[key] for f in self.files)

    def table(self) -> str:
        head = f"{'source_file':<44} {'lines':>9} {'accepted':>9} {'dups':>7} {'quarant.':>8}"
        lines = [head, "-" * len(head)]
        for f in self.files:
            lines.append(f"{f['source_file']:<44} {f['lines_read']:>9} {f['accepted']:>9} "
                         f"{f['duplicates']:>7} {f['quarantined']:>8}")
        lines.append(f"{'total':<44} {self.total('lines_read'):>9} {self.total('accepted'):>9} "
                     f"{self.total('duplicates'):>7} {self.total('quarantined'):>8}")
        if self.reasons:
            lines.append("quarantine reasons: " + ", ".join(f"{k}={v}" for k, v in sorted(self.reasons.items())))
        return "\n".join(lines)


def landing_files(settings: Settings, run_date: str) -> list[str]:
    day_dir = settings.landing_day(run_date)
    files = sorted(glob.glob(str(day_dir / "*.jsonl")))
    if not files:
        raise FileNotFoundError(
            f"no landing files for {run_date}: {day_dir}/*.jsonl matched nothing "
            "(generate the world with `osmf world generate`, or check the date)"
        )
    return files


def source_names(settings: Settings, files: list[str]) -> list[str]:
    """The ``source_file`` recorded for each landing file: its path relative to the landing root."""
    root = Path(settings.landing_root)
    return [os.path.relpath(f, root) for f in files]


@dataclass(frozen=True)
class DayWindow:
    """The landing date as epoch milliseconds [start, end), and the time of ingestion."""
    start_ms: int
    end_ms: int
    now_ms: int


def day_window(run_date: str, now: dt.datetime | None = None) -> DayWindow:
    day = dt.datetime.fromisoformat(run_date).replace(tzinfo=dt.timezone.utc)
    start_ms = int(day.timestamp() * 1000)
    now_ms = int((now or dt.datetime.now(dt.timezone.utc)).timestamp() * 1000)
    return DayWindow(start_ms, start_ms + DAY_MS, now_ms)


# --- Spark transformations ---------------------------------------------------------------------

RANGES_DDL = "path string, file_idx int, start long, end long, first_line long"
RANGE_BYTES = 128 << 20  # a landing file larger than this is parsed by several tasks
BUCKET_BYTES = 64 << 20  # landing bytes per write task (its lines are sorted in its memory)
CLASSIFY = "osmf.ingest.lines:classify_blobs"  # the writer's transform (Lake.stage_spark)


def plan_ranges(files: list[str], names: list[str], range_bytes: int = RANGE_BYTES) -> list[tuple]:
    """(path, file_idx, start, end) byte ranges of at most ``range_bytes``, one at least per file;
    ``file_idx`` is the file's position in ``sorted(names)``."""
    rank = {n: i for i, n in enumerate(sorted(names))}
    out = []
    for path, name in zip(files, names):
        size = os.path.getsize(path)
        out += [(path, rank[name], s, min(s + range_bytes, size)) for s in range(0, max(size, 1), range_bytes)]
    return out


def _first_lines(spark: SparkSession, ranges: list[tuple]) -> list[int]:
    """The number of the first line of each range: 1 for a file's first range; for the others, a
    counting pass over the files (in the tasks: newlines counted in C) gives the lines before."""
    split = {r[0] for i, r in enumerate(ranges) if i and ranges[i - 1][0] == r[0]}
    counts: dict[tuple[str, int], int] = {}
    if split:
        todo = [(*r, 0) for r in ranges if r[0] in split]
        df = spark.createDataFrame(spark.sparkContext.parallelize(todo, min(len(todo), 256)), RANGES_DDL)
        out = df.mapInArrow(count_ranges, "path string, start long, lines long").collect()
        counts = {(r.path, r.start): r.lines for r in out}
    firsts, before = [], {}
    for path, _, start, _ in ranges:
        firsts.append(before.get(path, 0) + 1)
        before[path] = before.get(path, 0) + counts.get((path, start), 0)
    return firsts


@dataclass(frozen=True)
class Shuffle:
    """``partitions`` write tasks; ``labels[p]`` is a bucket value that Spark's hash partitioning
    sends to task p, so each bucket is exactly one task."""
    partitions: int
    labels: list[int]


def _spark_hash_int(value: int, seed: int = 42) -> int:
    """Spark's ``hash()`` of an int column (Murmur3_x86_32.hashInt with seed 42), as ``repartition``
    uses it; checked against Spark in the tests."""
    def rotl(x, r):
        return ((x << r) | (x >> (32 - r))) & 0xFFFFFFFF

    k1 = rotl((value * 0xCC9E2D51) & 0xFFFFFFFF, 15) * 0x1B873593 & 0xFFFFFFFF
    h1 = (rotl(seed ^ k1, 13) * 5 + 0xE6546B64) & 0xFFFFFFFF
    h1 ^= 4
    h1 = ((h1 ^ (h1 >> 16)) * 0x85EBCA6B) & 0xFFFFFFFF
    h1 = ((h1 ^ (h1 >> 13)) * 0xC2B2AE35) & 0xFFFFFFFF
    h1 ^= h1 >> 16
    return h1 - (1 << 32) if h1 & 0x80000000 else h1


def plan_shuffle(files: list[str], min_partitions: int) -> Shuffle:
    """About BUCKET_BYTES of landing per write task, at least ``min_partitions`` tasks."""
    size = sum(os.path.getsize(f) for f in files)
    n = max(min_partitions, math.ceil(size / BUCKET_BYTES), 1)
    labels: dict[int, int] = {}
    value = 0
    while len(labels) < n:
        labels.setdefault(_spark_hash_int(value) % n, value)  # Python's % is Spark's pmod for n > 0
        value += 1
    return Shuffle(n, [labels[p] for p in range(n)])


def parse_landing(spark: SparkSession, files: list[str], names: list[str], window: DayWindow, dims: DimKeys,
                  shuffle: Shuffle, range_bytes: int = RANGE_BYTES) -> DataFrame:
    """Every line of the landing files, parsed and id-checked in the tasks, numbered from 1 per file,
    as BLOB_DDL rows (kind 1: PARSED_DDL lines in Arrow IPC), bucketed by event_id."""
    ranges = plan_ranges(files, names, range_bytes)
    rows = [(*r, first) for r, first in zip(ranges, _first_lines(spark, ranges))]
    df = spark.createDataFrame(spark.sparkContext.parallelize(rows, len(rows)), RANGES_DDL)  # a task per range
    parse = partial(parse_ranges, window=(window.start_ms, window.end_ms, window.now_ms), dims=dims,
                    labels=shuffle.labels)
    return df.mapInArrow(parse, BLOB_DDL)


def classify_input(blobs: DataFrame, existing: DataFrame | None, names: list[str], shuffle: Shuffle) -> DataFrame:
    """The parsed lines and the date's ``impressions`` keys (``existing``: event_id, source_file,
    source_line; None when there is no table), bucketed alike and shuffled: one bucket per write
    task, for ``CLASSIFY``."""
    from pyspark.sql import functions as F

    if existing is not None:
        keys = existing.mapInArrow(partial(bucket_existing, names=sorted(names), labels=shuffle.labels), BLOB_DDL)
        blobs = blobs.unionByName(keys)
    return blobs.repartition(shuffle.partitions, F.col("bucket"))


def dimension_keys(users: pa.Table, products: pa.Table, creatives: pa.Table) -> DimKeys:
    return DimKeys(users.column("user_id").combine_chunks(), products.column("product_id").combine_chunks(),
                   creatives.column("creative_id").combine_chunks(), creatives.column("product_id").combine_chunks())


# --- counts and the invariant --------------------------------------------------------------------

@dataclass
class Tally:
    files: list[dict]  # per landing file: source_file, lines_read, accepted, duplicates, quarantined
    reasons: dict[str, int]  # lines quarantined per reason
    new: int  # accepted lines whose event is not in ``impressions`` yet


def tally(names: list[str], counts: list[dict]) -> Tally:
    """Per-file counts and quarantine reasons from the counts of the classified lines (rows and last
    line number per source_file, status, reason); the invariant checked."""
    per_file = {n: {"source_file": n, "lines_read": 0, "accepted": 0, "duplicates": 0, "quarantined": 0}
                for n in names}
    last_line = dict.fromkeys(names, 0)
    reasons: dict[str, int] = {}
    new = 0
    key = {"new": "accepted", "accepted": "accepted", "duplicate": "duplicates", "quarantined": "quarantined"}
    for c in counts:
        f = per_file[c["source_file"]]
        f["lines_read"] += c["rows"]
        f[key[c["status"]]] += c["rows"]
        last_line[c["source_file"]] = max(last_line[c["source_file"]], c["max"] or 0)
        new += c["rows"] if c["status"] == "new" else 0
        if c["status"] == "quarantined":
            reasons[c["reason"]] = reasons.get(c["reason"], 0) + c["rows"]
    files = [per_file[n] for n in names]
    check_invariant(files, last_line)
    return Tally(files, reasons, new)


def check_invariant(files: list[dict], last_line: dict[str, int] | None = None) -> None:
    """lines read = accepted + duplicates + quarantined, for every file, and (given each file's last
    line number) every line counted once: a break is a bug, never bad data."""
    for f in files:
        if f["lines_read"] != f["accepted"] + f["duplicates"] + f["quarantined"]:
            raise RuntimeError(f"ingest invariant broken for {f}")
        if last_line is not None and f["lines_read"] != last_line[f["source_file"]]:
            raise RuntimeError(f"ingest invariant broken for {f}: the last line is number "
                               f"{last_line[f['source_file']]}")


# --- what gets written ---------------------------------------------------------------------------

ROUTES = {"new": "impressions", "quarantined": "quarantine"}  # status -> the table its lines go to
REPORT_BY = ["source_file", "status", "reason"]


def audit_table(files: list[dict], run_date: str) -> pa.Table:
    """The ``ingest_audit`` rows of the day."""
    return pa.Table.from_pylist([dict(f, event_date=dt.date.fromisoformat(run_date)) for f in files])

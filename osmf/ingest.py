"""The ingest contract: one day of landing JSONL -> ``impressions`` (MERGE on event_id) and
``quarantine`` (raw line, source file, line number, reason), with a per-file ``ingest_audit``.

Invariant, enforced by :func:`tally` and recorded in ``ingest_audit``: for every landing file,
lines read = rows accepted + duplicates skipped + lines quarantined.

* accepted: the line's event is in ``impressions`` and came from this very (file, line); on a rerun
  the same lines count as accepted again, so the audit is identical.
* duplicates: a later copy of an event_id (first by file name, then line number, wins), or an
  event_id already in ``impressions`` from another line.
* quarantined: a line that cannot be accepted; ``reason`` is one of REASONS.

Rerunning a date changes no table content: quarantine and audit partitions are replaced with the
same rows, and the MERGE inserts nothing that is already there.

This module holds the pure parts (line validation, the ``mapInArrow`` parser, the Spark
transformations, the counts); ``jobs.ingest_events`` reads the inputs, calls these and writes.
Spark is imported inside the functions that need it, so importing REASONS stays cheap.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pyarrow as pa

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from osmf.settings import Settings

REASONS = {
    "invalid_encoding": "the line is not UTF-8",
    "empty_line": "the line is blank",
    "invalid_json": "the line is not a JSON object",
    "missing_field": "a required field is absent or null (detail names it)",
    "wrong_type": "a field has the wrong type or value (detail names it)",
    "negative_timestamp": "event_ts is below zero",
    "future_timestamp": "event_ts is after the time of ingestion",
    "timestamp_outside_date": "event_ts is not within the landing date (UTC)",
    "unknown_id": "user_id, product_id or creative_id is not in its dimension table (detail names it)",
    "creative_product_mismatch": "the creative does not belong to the event's product",
}
STRING_FIELDS = ("event_id", "user_id", "product_id", "creative_id")
REQUIRED_FIELDS = ("event_id", "event_ts", "user_id", "product_id", "creative_id", "clicked")
EVENT_FIELDS = ("event_id", "event_ts_ms", "user_id", "product_id", "creative_id", "clicked")
PARSED_DDL = ("source_file string, line_number long, raw_line string, reason string, detail string, "
              "event_id string, event_ts_ms long, user_id string, product_id string, "
              "creative_id string, clicked int")
_PARSED_COLS = [c.strip().split(" ")[0] for c in PARSED_DDL.split(",")]
QUARANTINE_COLS = ["source_file", "line_number", "raw_line", "reason", "detail"]
DAY_MS = 86_400_000


# --- one line, one file: pure Python (runs inside the Spark workers) -------------------------------

def validate_line(line: str, day_start_ms: int, day_end_ms: int, now_ms: int):
    """Pure check of one landing line. Returns ``(event, None, None)`` or ``(None, reason, detail)``."""
    if not line.strip():
        return None, "empty_line", None
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        return None, "invalid_json", str(exc)[:200]
    if not isinstance(obj, dict):
        return None, "invalid_json", f"top level is {type(obj).__name__}, not an object"
    for key in REQUIRED_FIELDS:
        if obj.get(key) is None:
            return None, "missing_field", key
    for key in STRING_FIELDS:
        if not isinstance(obj[key], str) or not obj[key]:
            return None, "wrong_type", f"{key}={obj[key]!r} is not a non-empty string"
    ts = obj["event_ts"]
    if isinstance(ts, bool) or not isinstance(ts, int):
        return None, "wrong_type", f"event_ts={ts!r} is not an integer (epoch milliseconds)"
    clicked = obj["clicked"]
    if isinstance(clicked, bool) or clicked not in (0, 1):
        return None, "wrong_type", f"clicked={clicked!r} is not 0 or 1"
    if ts < 0:
        return None, "negative_timestamp", str(ts)
    if ts > now_ms:
        return None, "future_timestamp", str(ts)
    if not (day_start_ms <= ts < day_end_ms):
        return None, "timestamp_outside_date", str(ts)
    return {"event_id": obj["event_id"], "event_ts_ms": ts, "user_id": obj["user_id"],
            "product_id": obj["product_id"], "creative_id": obj["creative_id"], "clicked": clicked}, None, None


def _read_line(raw: bytes, day_start_ms: int, day_end_ms: int, now_ms: int):
    """One raw landing line (newline included) -> ``(text, event, reason, detail)``."""
    raw = raw.rstrip(b"\n").rstrip(b"\r")
    try:
        line = raw.decode("utf-8")
        event, reason, detail = validate_line(line, day_start_ms, day_end_ms, now_ms)
    except UnicodeDecodeError as exc:
        line = raw.decode("utf-8", "backslashreplace")
        event, reason, detail = None, "invalid_encoding", str(exc)[:200]
    return line, event, reason, detail


def _parsed_arrow_schema() -> pa.Schema:
    types = {"string": pa.string(), "long": pa.int64(), "int": pa.int32()}
    return pa.schema([(c.strip().split(" ")[0], types[c.strip().split(" ")[1]]) for c in PARSED_DDL.split(",")])


def _parse_file(path: str, source_file: str, day_start_ms: int, day_end_ms: int, now_ms: int,
                chunk: int) -> Iterator[pa.RecordBatch]:
    """Every line of one landing file as PARSED_DDL rows, in batches of at most ``chunk`` rows."""
    schema = _parsed_arrow_schema()
    rows = {c: [] for c in _PARSED_COLS}
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            line, event, reason, detail = _read_line(raw, day_start_ms, day_end_ms, now_ms)
            rows["source_file"].append(source_file)
            rows["line_number"].append(number)
            rows["raw_line"].append(line)
            rows["reason"].append(reason)
            rows["detail"].append(detail)
            for k in EVENT_FIELDS:
                rows[k].append(event[k] if event else None)
            if len(rows["line_number"]) >= chunk:
                yield pa.RecordBatch.from_pydict(rows, schema=schema)
                rows = {c: [] for c in _PARSED_COLS}
    if rows["line_number"]:
        yield pa.RecordBatch.from_pydict(rows, schema=schema)


def _parse_files(batches, day_start_ms: int, day_end_ms: int, now_ms: int, chunk: int = 50_000):
    """mapInArrow body: each input row names a landing file; yields one output row per line."""
    for batch in batches:
        for path, rel in zip(batch.column("path").to_pylist(), batch.column("source_file").to_pylist()):
            yield from _parse_file(path, rel, day_start_ms, day_end_ms, now_ms, chunk)


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

def parse_landing(spark: SparkSession, files: list[str], names: list[str], window: DayWindow) -> DataFrame:
    """Every line of the landing files as a persisted PARSED_DDL DataFrame (``reason`` set on
    lines that fail :func:`validate_line`). The caller unpersists it when done."""
    files_df = spark.createDataFrame(list(zip(files, names)), "path string, source_file string")
    files_df = files_df.repartition(max(1, min(len(files), 64)))
    parse = partial(_parse_files, day_start_ms=window.start_ms, day_end_ms=window.end_ms, now_ms=window.now_ms)
    return files_df.mapInArrow(parse, PARSED_DDL).persist()


def _id_checks() -> tuple[Column, Column]:
    """(reason, detail) of a line whose ids were left-joined to the dimensions (``_u``, ``_p``, ``_cp``)."""
    from pyspark.sql import functions as F

    reason = (F.when(F.col("_u").isNull(), F.lit("unknown_id"))
              .when(F.col("_p").isNull(), F.lit("unknown_id"))
              .when(F.col("_cp").isNull(), F.lit("unknown_id"))
              .when(F.col("_cp") != F.col("product_id"), F.lit("creative_product_mismatch")))
    detail = (F.when(F.col("_u").isNull(), F.concat(F.lit("user_id="), "user_id"))
              .when(F.col("_p").isNull(), F.concat(F.lit("product_id="), "product_id"))
              .when(F.col("_cp").isNull(), F.concat(F.lit("creative_id="), "creative_id"))
              .otherwise(F.concat(F.lit("creative_id="), "creative_id", F.lit(" belongs to "), "_cp")))
    return reason, detail


def check_ids(ok: DataFrame, users: DataFrame, products: DataFrame, creatives: DataFrame) -> DataFrame:
    """Well-formed lines checked against the dimension tables: ``reason``/``detail`` become
    ``unknown_id`` or ``creative_product_mismatch`` where an id does not fit, else stay null."""
    from pyspark.sql import functions as F

    users = users.select("user_id", F.lit(True).alias("_u"))
    prods = products.select("product_id", F.lit(True).alias("_p"))
    cres = creatives.select("creative_id", F.col("product_id").alias("_cp"))
    checked = (ok.join(F.broadcast(users), "user_id", "left")
               .join(F.broadcast(prods), "product_id", "left")
               .join(F.broadcast(cres), "creative_id", "left"))
    reason, detail = _id_checks()
    return checked.withColumn("reason", reason).withColumn("detail", F.when(reason.isNotNull(), detail))


def quarantine_rows(parsed: DataFrame, checked: DataFrame, run_date: str) -> DataFrame:
    """The ``quarantine`` rows of the day: malformed lines, then lines whose ids do not fit."""
    from pyspark.sql import functions as F

    return (parsed.where("reason IS NOT NULL").select(*QUARANTINE_COLS)
            .unionByName(checked.where("reason IS NOT NULL").select(*QUARANTINE_COLS))
            .withColumn("event_date", F.lit(run_date).cast("date")))


def rank_duplicates(valid: DataFrame) -> DataFrame:
    """``_rank`` of each copy of an event_id: 1 for the first by (source_file, line_number)."""
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    w = Window.partitionBy("event_id").orderBy("source_file", "line_number")
    return valid.withColumn("_rank", F.row_number().over(w))


def classify_first(first: DataFrame, existing: DataFrame | None) -> DataFrame:
    """``_status`` of each first copy against the date's ``impressions`` (None: no table yet):
    ``new`` (not there), ``accepted`` (there from this very file and line) or ``duplicate``."""
    from pyspark.sql import functions as F

    if existing is not None:
        existing = existing.select("event_id", F.col("source_file").alias("_ef"), F.col("source_line").alias("_el"))
        first = first.join(existing, "event_id", "left")
    else:
        first = first.withColumn("_ef", F.lit(None).cast("string")).withColumn("_el", F.lit(None).cast("long"))
    status = (F.when(F.col("_ef").isNull(), F.lit("new"))
              .when((F.col("_ef") == F.col("source_file")) & (F.col("_el") == F.col("line_number")), F.lit("accepted"))
              .otherwise(F.lit("duplicate")))
    return first.withColumn("_status", status)


@dataclass
class IngestFrames:
    """The day's lines, split: ``parsed`` (every line), ``quarantined`` (quarantine rows), ``valid``
    (lines with ids that fit, ranked by ``_rank``), ``first`` (``_rank = 1``, with ``_status``)."""
    parsed: DataFrame
    quarantined: DataFrame
    valid: DataFrame
    first: DataFrame


def split_lines(parsed: DataFrame, run_date: str, users: DataFrame, products: DataFrame,
                creatives: DataFrame, existing: DataFrame | None) -> IngestFrames:
    """Parsed lines -> quarantined, duplicates and first copies classified against ``existing``
    (the date's partition of ``impressions``, None when the table does not exist)."""
    checked = check_ids(parsed.where("reason IS NULL"), users, products, creatives)
    quarantined = quarantine_rows(parsed, checked, run_date)
    valid = rank_duplicates(checked.where("reason IS NULL"))
    first = classify_first(valid.where("_rank = 1"), existing)
    return IngestFrames(parsed, quarantined, valid, first)


# --- counts and the invariant --------------------------------------------------------------------

def count_files(names: list[str], frames: IngestFrames) -> list[dict]:
    """Per landing file (in ``names`` order): lines_read, accepted, duplicates, quarantined."""
    per_file = {n: {"source_file": n, "lines_read": 0, "accepted": 0, "duplicates": 0, "quarantined": 0}
                for n in names}
    for row in frames.parsed.groupBy("source_file").count().collect():
        per_file[row.source_file]["lines_read"] = row["count"]
    for row in frames.quarantined.groupBy("source_file").count().collect():
        per_file[row.source_file]["quarantined"] = row["count"]
    for row in frames.valid.where("_rank > 1").groupBy("source_file").count().collect():
        per_file[row.source_file]["duplicates"] += row["count"]
    for row in frames.first.groupBy("source_file", "_status").count().collect():
        key = "duplicates" if row["_status"] == "duplicate" else "accepted"
        per_file[row.source_file][key] += row["count"]
    return [per_file[n] for n in names]


def count_reasons(quarantined: DataFrame) -> dict[str, int]:
    return {r.reason: r["count"] for r in quarantined.groupBy("reason").count().collect()}


def check_invariant(files: list[dict]) -> None:
    """lines read = accepted + duplicates + quarantined, for every file; a break is a bug, never bad data."""
    for f in files:
        if f["lines_read"] != f["accepted"] + f["duplicates"] + f["quarantined"]:
            raise RuntimeError(f"ingest invariant broken for {f}")


def tally(names: list[str], frames: IngestFrames) -> tuple[list[dict], dict[str, int]]:
    """(per-file counts, count per quarantine reason), the invariant checked."""
    files = count_files(names, frames)
    reasons = count_reasons(frames.quarantined)
    check_invariant(files)
    return files, reasons


# --- what gets written ---------------------------------------------------------------------------

def audit_table(files: list[dict], run_date: str) -> pa.Table:
    """The ``ingest_audit`` rows of the day."""
    return pa.Table.from_pylist([dict(f, event_date=dt.date.fromisoformat(run_date)) for f in files])


def new_events(first: DataFrame, run_date: str) -> DataFrame:
    """The ``impressions`` rows to MERGE: first copies not yet in the table."""
    from pyspark.sql import functions as F

    return (first.where("_status = 'new'")
            .select("event_id", F.timestamp_millis("event_ts_ms").alias("event_ts"),
                    F.lit(run_date).cast("date").alias("event_date"), "user_id", "product_id",
                    "creative_id", "clicked", "source_file", F.col("line_number").alias("source_line")))

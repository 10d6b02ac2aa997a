"""Ingest one day of landing events: landing JSONL -> ``impressions`` (MERGE on event_id) and
``quarantine`` (raw line, source file, line number, reason), with a per-file ``ingest_audit``.

Invariant, enforced here and recorded in ``ingest_audit``: for every landing file,
lines read = rows accepted + duplicates skipped + lines quarantined.

* accepted: the line's event is in ``impressions`` and came from this very (file, line); on a rerun
  the same lines count as accepted again, so the audit is identical.
* duplicates: a later copy of an event_id (first by file name, then line number, wins), or an
  event_id already in ``impressions`` from another line.
* quarantined: a line that cannot be accepted; ``reason`` is one of REASONS.

Rerunning a date changes no table content: quarantine and audit partitions are replaced with the
same rows, and the MERGE inserts nothing that is already there.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import logging
import os
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pyarrow as pa

from jobs import load_dimensions
from jobs._common import job_parser, run_main
from osmf.lake import Lake
from osmf.runinfo import resolve_run_id
from osmf.settings import Settings

log = logging.getLogger("osmf.ingest")

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
PARSED_DDL = ("source_file string, line_number long, raw_line string, reason string, detail string, "
              "event_id string, event_ts_ms long, user_id string, product_id string, "
              "creative_id string, clicked int")
_PARSED_COLS = [c.strip().split(" ")[0] for c in PARSED_DDL.split(",")]


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
    for key in ("event_id", "event_ts", "user_id", "product_id", "creative_id", "clicked"):
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


def _parse_files(batches, day_start_ms: int, day_end_ms: int, now_ms: int, chunk: int = 50_000):
    """mapInArrow body: each input row names a landing file; yields one output row per line."""

    def empty():
        return {c: [] for c in _PARSED_COLS}

    def flush(rows):
        return pa.RecordBatch.from_pydict(rows, schema=_parsed_arrow_schema())

    for batch in batches:
        for path, rel in zip(batch.column("path").to_pylist(), batch.column("source_file").to_pylist()):
            rows = empty()
            with open(path, "rb") as fh:
                for number, raw in enumerate(fh, start=1):
                    raw = raw.rstrip(b"\n").rstrip(b"\r")
                    try:
                        line = raw.decode("utf-8")
                        event, reason, detail = validate_line(line, day_start_ms, day_end_ms, now_ms)
                    except UnicodeDecodeError as exc:
                        line = raw.decode("utf-8", "backslashreplace")
                        event, reason, detail = None, "invalid_encoding", str(exc)[:200]
                    rows["source_file"].append(rel)
                    rows["line_number"].append(number)
                    rows["raw_line"].append(line)
                    rows["reason"].append(reason)
                    rows["detail"].append(detail)
                    for k in ("event_id", "event_ts_ms", "user_id", "product_id", "creative_id", "clicked"):
                        rows[k].append(event[k] if event else None)
                    if len(rows["line_number"]) >= chunk:
                        yield flush(rows)
                        rows = empty()
            if rows["line_number"]:
                yield flush(rows)


def _parsed_arrow_schema() -> pa.Schema:
    types = {"string": pa.string(), "long": pa.int64(), "int": pa.int32()}
    return pa.schema([(c.strip().split(" ")[0], types[c.strip().split(" ")[1]]) for c in PARSED_DDL.split(",")])


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
    day_dir = Path(settings.landing_root) / "events" / f"event_date={run_date}"
    files = sorted(glob.glob(str(day_dir / "*.jsonl")))
    if not files:
        raise FileNotFoundError(
            f"no landing files for {run_date}: {day_dir}/*.jsonl matched nothing "
            "(generate the world with `osmf world generate`, or check the date)"
        )
    return files


def run(run_date: str, settings: Settings, run_id: str | None = None, spark=None,
        lake: Lake | None = None, now: dt.datetime | None = None) -> IngestResult:
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    from osmf.spark import get_spark

    t0 = time.perf_counter()
    lake = lake or Lake(settings)
    spark = spark or get_spark(settings)
    run_id = resolve_run_id(settings, run_id)
    load_dimensions.run(settings, run_id, lake)
    files = landing_files(settings, run_date)
    root = Path(settings.landing_root)
    rel = [os.path.relpath(f, root) for f in files]
    day = dt.datetime.fromisoformat(run_date).replace(tzinfo=dt.timezone.utc)
    start_ms = int(day.timestamp() * 1000)
    now_ms = int((now or dt.datetime.now(dt.timezone.utc)).timestamp() * 1000)
    log.info("ingest %s: %d landing files (run %s)", run_date, len(files), run_id)

    files_df = spark.createDataFrame(list(zip(files, rel)), "path string, source_file string")
    files_df = files_df.repartition(max(1, min(len(files), 64)))
    parse = partial(_parse_files, day_start_ms=start_ms, day_end_ms=start_ms + 86_400_000, now_ms=now_ms)
    parsed = files_df.mapInArrow(parse, PARSED_DDL).persist()

    ok = parsed.where("reason IS NULL")
    users = lake.read_spark(spark, "users").select("user_id", F.lit(True).alias("_u"))
    prods = lake.read_spark(spark, "products").select("product_id", F.lit(True).alias("_p"))
    cres = lake.read_spark(spark, "creatives").select("creative_id", F.col("product_id").alias("_cp"))
    checked = (ok.join(F.broadcast(users), "user_id", "left")
               .join(F.broadcast(prods), "product_id", "left")
               .join(F.broadcast(cres), "creative_id", "left"))
    id_reason = (F.when(F.col("_u").isNull(), F.lit("unknown_id"))
                 .when(F.col("_p").isNull(), F.lit("unknown_id"))
                 .when(F.col("_cp").isNull(), F.lit("unknown_id"))
                 .when(F.col("_cp") != F.col("product_id"), F.lit("creative_product_mismatch")))
    id_detail = (F.when(F.col("_u").isNull(), F.concat(F.lit("user_id="), "user_id"))
                 .when(F.col("_p").isNull(), F.concat(F.lit("product_id="), "product_id"))
                 .when(F.col("_cp").isNull(), F.concat(F.lit("creative_id="), "creative_id"))
                 .otherwise(F.concat(F.lit("creative_id="), "creative_id", F.lit(" belongs to "), "_cp")))
    checked = checked.withColumn("reason", id_reason).withColumn("detail", F.when(id_reason.isNotNull(), id_detail))

    qcols = ["source_file", "line_number", "raw_line", "reason", "detail"]
    quarantined = (parsed.where("reason IS NOT NULL").select(*qcols)
                   .unionByName(checked.where("reason IS NOT NULL").select(*qcols))
                   .withColumn("event_date", F.lit(run_date).cast("date")))

    valid = checked.where("reason IS NULL")
    w = Window.partitionBy("event_id").orderBy("source_file", "line_number")
    valid = valid.withColumn("_rank", F.row_number().over(w))
    first = valid.where("_rank = 1")
    if lake.exists("impressions"):
        existing = (lake.read_spark(spark, "impressions", partition=run_date)
                    .select("event_id", F.col("source_file").alias("_ef"), F.col("source_line").alias("_el")))
        first = first.join(existing, "event_id", "left")
    else:
        first = first.withColumn("_ef", F.lit(None).cast("string")).withColumn("_el", F.lit(None).cast("long"))
    status = (F.when(F.col("_ef").isNull(), F.lit("new"))
              .when((F.col("_ef") == F.col("source_file")) & (F.col("_el") == F.col("line_number")), F.lit("accepted"))
              .otherwise(F.lit("duplicate")))
    first = first.withColumn("_status", status)

    # counts per file, and per quarantine reason
    per_file = {r: {"source_file": r, "lines_read": 0, "accepted": 0, "duplicates": 0, "quarantined": 0} for r in rel}
    for row in parsed.groupBy("source_file").count().collect():
        per_file[row.source_file]["lines_read"] = row["count"]
    for row in quarantined.groupBy("source_file").count().collect():
        per_file[row.source_file]["quarantined"] = row["count"]
    for row in valid.where("_rank > 1").groupBy("source_file").count().collect():
        per_file[row.source_file]["duplicates"] += row["count"]
    for row in first.groupBy("source_file", "_status").count().collect():
        key = "duplicates" if row["_status"] == "duplicate" else "accepted"
        per_file[row.source_file][key] += row["count"]
    reasons = {r.reason: r["count"] for r in quarantined.groupBy("reason").count().collect()}
    for f in per_file.values():
        if f["lines_read"] != f["accepted"] + f["duplicates"] + f["quarantined"]:
            raise RuntimeError(f"ingest invariant broken for {f}")  # a bug, never bad data

    # writes: quarantine (Spark writer, partition replace), audit, then the MERGE of new events
    lake.write_spark(quarantined, "quarantine", partition=run_date, run_id=run_id, job="ingest_events")
    audit = pa.Table.from_pylist([dict(f, event_date=dt.date.fromisoformat(run_date)) for f in per_file.values()])
    lake.replace_partition("ingest_audit", audit, run_date, run_id=run_id, job="ingest_events")
    new = (first.where("_status = 'new'")
           .select("event_id", F.timestamp_millis("event_ts_ms").alias("event_ts"),
                   F.lit(run_date).cast("date").alias("event_date"), "user_id", "product_id",
                   "creative_id", "clicked", "source_file", F.col("line_number").alias("source_line")))
    new_rows = new.toArrow()
    if new_rows.num_rows or not lake.exists("impressions"):
        lake.merge_insert("impressions", new_rows, run_id=run_id, job="ingest_events", partition=run_date)
    parsed.unpersist()
    result = IngestResult(run_date, run_id, [per_file[r] for r in rel], reasons, time.perf_counter() - t0)
    log.info("ingest %s done in %.1fs: %d lines, %d accepted (%d new), %d duplicates, %d quarantined",
             run_date, result.seconds, result.total("lines_read"), result.total("accepted"),
             new_rows.num_rows, result.total("duplicates"), result.total("quarantined"))
    return result


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])

    def go(args, settings):
        print(run(args.run_date, settings, args.run_id).table())

    return run_main(parser, go, argv)


if __name__ == "__main__":
    raise SystemExit(main())

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

How it runs, with no table collected to the driver:

1. ``parse_landing``: the landing files, cut into byte ranges, are parsed in the tasks
   (``mapInArrow``): a typed C decoder (msgspec) takes every line it can vouch for, and
   ``validate_line``, the definition of what is valid, decides every other line (reason, detail).
   Lines keep their exact numbers (a counting pass numbers the ranges of a file cut in several).
2. ``classify_lines``: broadcast joins check the ids against the dimensions, then one shuffle by
   event_id ranks the copies of each event and compares the first with the date's ``impressions``
   rows (which ride along in the same shuffle): every line gets one status of STATUSES.
3. ``tally``: one small aggregate gives the audit and the reasons; the job then writes quarantine
   and the new events through the Spark data source writer (tasks write, one Delta commit each).

This module holds the pure parts (line validation, the parser, the Spark transformations, the
counts); ``jobs.ingest_events`` reads the inputs, calls these and writes. Spark is imported inside
the functions that need it, so importing REASONS stays cheap.
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
# one row per landing line, as parsed; ``file_idx`` is the file's position in the day's file names sorted
PARSED_DDL = ("file_idx int, line_number long, raw_line string, reason string, detail string, "
              "event_id string, event_ts_ms long, user_id string, product_id string, "
              "creative_id string, clicked int")
# one row per landing line, classified: what the writer routes to ``impressions`` (status ``new``) and
# ``quarantine`` (status ``quarantined``), and counts
LINES_DDL = ("status string, source_file string, line_number long, source_line long, raw_line string, "
             "reason string, detail string, event_id string, event_ts timestamp, event_date date, "
             "user_id string, product_id string, creative_id string, clicked int")
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


def _arrow_schema(ddl: str = PARSED_DDL) -> pa.Schema:
    types = {"string": pa.string(), "long": pa.int64(), "int": pa.int32(), "date": pa.date32(),
             "timestamp": pa.timestamp("us", tz="UTC")}
    return pa.schema([(c.strip().split(" ")[0], types[c.strip().split(" ")[1]]) for c in ddl.split(",")])


# --- the fast path: a typed decoder in C for the lines it can vouch for ------------------------------
#
# ``msgspec`` decodes a line straight into the six typed fields, with the checks of validate_line as
# constraints (non-empty strings, event_ts in [day start, min(day end, now + 1)), clicked in {0, 1}).
# A line it decodes is exactly a line validate_line accepts, with the same values: both are strict
# JSON (same whitespace, escapes, duplicate keys: the last wins), msgspec never turns a bool, a float
# or a string into an int, and the two places where msgspec is laxer are closed here: it does not
# check UTF-8 inside the values of fields it skips (so the block, or the line, is checked first), and
# nesting deeper than Python's recursion limit (lines longer than MAX_FAST_LINE never take this
# path). Every line it refuses goes to validate_line, which gives the reason and detail as before.

MAX_FAST_LINE = 1024  # bytes; a line this short cannot nest deep enough to reach a recursion limit
BLOCK_BYTES = 4 << 20  # bytes of whole lines parsed as one batch


def fast_decoder(start_ms: int, end_ms: int, now_ms: int):
    """(msgspec decoder of the lines validate_line accepts, or None when no timestamp can pass;
    the event Struct type, fields in EVENT_FIELDS order)."""
    from typing import Annotated

    import msgspec

    lo, hi = max(start_ms, 0), min(end_ms, now_ms + 1)
    text = Annotated[str, msgspec.Meta(min_length=1)]
    ts = Annotated[int, msgspec.Meta(ge=lo, lt=hi)] if hi > lo else int
    event = msgspec.defstruct("Event", [
        ("event_id", text), ("event_ts_ms", ts), ("user_id", text), ("product_id", text),
        ("creative_id", text), ("clicked", Annotated[int, msgspec.Meta(ge=0, le=1)])],
        rename={"event_ts_ms": "event_ts"}, gc=False)
    return (msgspec.json.Decoder(event).decode if hi > lo else None), event


def _block_lines(block: bytes) -> list[bytes]:
    """The lines of a block of whole lines, as Python's file iteration and ``_read_line`` see them:
    split on ``\\n`` only, trailing ``\\r`` removed."""
    lines = block.split(b"\n")
    if block.endswith(b"\n"):
        lines.pop()
    if b"\r" in block:
        lines = [line.rstrip(b"\r") for line in lines]
    return lines


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _decode_lines(lines: list[bytes], decode, utf8_ok: bool) -> tuple[list, list[int]]:
    """(decoded event or None per line, positions of the lines the fast path refused)."""
    events: list = [None] * len(lines)
    slow: list[int] = []
    if decode is None:
        return events, list(range(len(lines)))
    for i, line in enumerate(lines):
        if len(line) > MAX_FAST_LINE:
            slow.append(i)
            continue
        try:
            if not utf8_ok:
                line.decode("utf-8")
            events[i] = decode(line)
        except Exception:  # noqa: BLE001 - any refusal goes to validate_line, which decides
            slow.append(i)
    return events, slow


def _parse_block(block: bytes, first_line: int, file_idx: int, window: tuple, fast) -> pa.RecordBatch:
    """One block of whole lines (numbered from ``first_line``) as PARSED_DDL rows: the fast path
    first, validate_line (via ``_read_line``) for every line it refused."""
    from operator import attrgetter

    decode, event_type = fast
    lines = _block_lines(block)
    n = len(lines)
    events, slow = _decode_lines(lines, decode, _is_utf8(block))
    reason: list = [None] * n
    detail: list = [None] * n
    raw: list = lines
    if slow:
        raw = list(lines)
        empty = event_type(*[None] * len(EVENT_FIELDS))
        for i in slow:
            raw[i], event, reason[i], detail[i] = _read_line(lines[i], *window)
            events[i] = event_type(*[event[k] for k in EVENT_FIELDS]) if event else empty
    schema = _arrow_schema()
    arrays = [pa.repeat(pa.scalar(file_idx, pa.int32()), n),
              pa.array(range(first_line, first_line + n), pa.int64()),
              pa.array(raw, pa.string()), pa.array(reason, pa.string()), pa.array(detail, pa.string())]
    arrays += [pa.array(list(map(attrgetter(k), events)), schema.field(k).type) for k in EVENT_FIELDS]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _range_blocks(path: str, start: int, end: int, block_bytes: int = BLOCK_BYTES) -> Iterator[bytes]:
    """Blocks of whole lines holding exactly the lines that START in bytes [start, end) of the file
    (a line that starts before ``start`` belongs to the range before; one that starts before ``end``
    is read to its end)."""
    with open(path, "rb") as fh:
        if start > 0:
            fh.seek(start - 1)
            if fh.read(1) != b"\n":
                fh.readline()  # the rest of a line that started in the range before
        pos = fh.tell()
        while pos < end:
            data = fh.read(min(block_bytes, end - pos))
            if not data:
                break
            if not data.endswith(b"\n"):
                data += fh.readline()
            pos = fh.tell()
            yield data


def count_line_starts(path: str, start: int, end: int) -> int:
    """How many lines start in bytes [start, end) of the file (a line starts at 0 and after each
    ``\\n`` that is not the file's last byte)."""
    if end <= start:
        return 0
    count = 1 if start == 0 else 0
    with open(path, "rb") as fh:
        fh.seek(max(start - 1, 0))
        left = end - 1 - max(start - 1, 0)
        while left > 0:
            data = fh.read(min(BLOCK_BYTES, left))
            if not data:
                break
            count += data.count(b"\n")
            left -= len(data)
    return count


def _parse_ranges(batches, day_start_ms: int, day_end_ms: int, now_ms: int):
    """mapInArrow body: each input row is a byte range of a landing file (RANGES_DDL); yields one
    output row per line that starts in it, numbered from the row's ``first_line``."""
    window = (day_start_ms, day_end_ms, now_ms)
    fast = fast_decoder(*window)
    for batch in batches:
        for r in batch.to_pylist():
            number = r["first_line"]
            for block in _range_blocks(r["path"], r["start"], r["end"]):
                out = _parse_block(block, number, r["file_idx"], window, fast)
                number += out.num_rows
                yield out


def _count_ranges(batches):
    """mapInArrow body of the counting pass: the lines that start in each range."""
    for batch in batches:
        rows = batch.to_pylist()
        counts = [count_line_starts(r["path"], r["start"], r["end"]) for r in rows]
        yield pa.RecordBatch.from_pydict({"path": [r["path"] for r in rows], "start": [r["start"] for r in rows],
                                          "lines": counts}, schema=pa.schema([("path", pa.string()), ("start", pa.int64()),
                                                                              ("lines", pa.int64())]))


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
STATUSES = ("quarantined", "duplicate", "accepted", "new")  # the status of a line (codes 0..3)


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
        df = spark.createDataFrame(todo, RANGES_DDL).repartition(min(len(todo), 64))
        out = df.mapInArrow(_count_ranges, "path string, start long, lines long").collect()
        counts = {(r.path, r.start): r.lines for r in out}
    firsts, before = [], {}
    for path, _, start, _ in ranges:
        firsts.append(before.get(path, 0) + 1)
        before[path] = before.get(path, 0) + counts.get((path, start), 0)
    return firsts


def parse_landing(spark: SparkSession, files: list[str], names: list[str], window: DayWindow,
                  range_bytes: int = RANGE_BYTES) -> DataFrame:
    """Every line of the landing files as PARSED_DDL rows, numbered from 1 per file (``reason`` set
    on the lines validate_line refuses). Files are cut into byte ranges, parsed in parallel."""
    ranges = plan_ranges(files, names, range_bytes)
    rows = [(*r, first) for r, first in zip(ranges, _first_lines(spark, ranges))]
    df = spark.createDataFrame(rows, RANGES_DDL).repartition(max(1, min(len(rows), 256)))
    parse = partial(_parse_ranges, day_start_ms=window.start_ms, day_end_ms=window.end_ms, now_ms=window.now_ms)
    return df.mapInArrow(parse, PARSED_DDL)


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


def check_ids(parsed: DataFrame, users: DataFrame, products: DataFrame, creatives: DataFrame) -> DataFrame:
    """Every parsed line; those the parse accepted are checked against the dimension tables
    (broadcast joins, no shuffle): their ``reason``/``detail`` become ``unknown_id`` or
    ``creative_product_mismatch`` where an id does not fit, else stay null."""
    from pyspark.sql import functions as F

    users = users.select("user_id", F.lit(True).alias("_u"))
    prods = products.select("product_id", F.lit(True).alias("_p"))
    cres = creatives.select("creative_id", F.col("product_id").alias("_cp"))
    checked = (parsed.join(F.broadcast(users), "user_id", "left")
               .join(F.broadcast(prods), "product_id", "left")
               .join(F.broadcast(cres), "creative_id", "left"))
    id_reason, id_detail = _id_checks()
    parsed_ok = F.col("reason").isNull()
    return (checked.withColumn("detail", F.when(parsed_ok, F.when(id_reason.isNotNull(), id_detail))
                               .otherwise(F.col("detail")))
            .withColumn("reason", F.when(parsed_ok, id_reason).otherwise(F.col("reason")))
            .drop("_u", "_p", "_cp"))


def _sorted_by_event(checked: DataFrame, existing: DataFrame | None, names: list[str]) -> DataFrame:
    """The lines (``_src`` 1) and the date's ``impressions`` keys (``_src`` 0), in one shuffle by
    event_id, sorted within each partition by (hash, event_id, _src, _bad, file_idx, line_number):
    every copy of an event is together, the table's row first, then the good lines in landing order."""
    from pyspark.sql import functions as F

    bad = F.col("reason").isNotNull()
    lines = checked.select("file_idx", "line_number", F.when(bad, F.col("raw_line")).alias("raw_line"), "reason",
                           "detail", *[c for c in EVENT_FIELDS], F.lit(1).alias("_src"), bad.cast("int").alias("_bad"))
    if existing is not None:
        pairs = [x for i, n in enumerate(sorted(names)) for x in (F.lit(n), F.lit(i))]
        file_idx = F.coalesce(F.element_at(F.create_map(*pairs), F.col("source_file")), F.lit(-1)) if pairs else F.lit(-1)
        old = existing.select("event_id", file_idx.cast("int").alias("file_idx"),
                              F.col("source_line").alias("line_number"), F.lit(0).alias("_src"), F.lit(0).alias("_bad"))
        lines = lines.unionByName(old, allowMissingColumns=True)
    # lines without an event_id are spread by their position; they sort first and are quarantined
    spread = F.coalesce("event_id", F.concat_ws(":", F.col("file_idx").cast("string"), F.col("line_number").cast("string")))
    # the copies of an event are adjacent in any total order that starts with event_id; a hash in
    # front gives the sorter's 8-byte prefix something to tell rows apart (event ids share prefixes)
    return (lines.repartition(spread)
            .sortWithinPartitions(F.xxhash64("event_id"), "event_id", "_src", "_bad", "file_idx", "line_number"))


def classify_input(parsed: DataFrame, users: DataFrame, products: DataFrame, creatives: DataFrame,
                   existing: DataFrame | None, names: list[str]) -> DataFrame:
    """Parsed lines, id-checked, with the date's ``impressions`` keys (``existing``: event_id,
    source_file, source_line; None when there is no table), shuffled and sorted so that
    :func:`classify_sorted` can give every line its status in one streaming pass per partition."""
    return _sorted_by_event(check_ids(parsed, users, products, creatives), existing, names)


CLASSIFY = "osmf.ingest:classify_sorted"  # run inside the writer's tasks (Lake.stage_spark transform)


def classify_sorted(batches, names: list[str], run_date: str):
    """Batches of :func:`classify_input` (one partition, in order) -> LINES_DDL batches: every line
    with its status (STATUSES) and the columns of ``impressions`` and ``quarantine``:

    * ``quarantined``: the parse or the id checks gave a reason (``raw_line`` kept for these only);
    * ``duplicate``: a later copy of an event_id (by file name, then line number), or the first copy
      when the event is in the date's ``impressions`` from another line;
    * ``accepted``: the first copy, in the date's ``impressions`` from this very file and line;
    * ``new``: the first copy, not in the date's ``impressions``.

    A run of rows with one event_id may cross batches: its first row and length are carried."""
    names_arr = pa.array(sorted(names), pa.string())
    day = dt.date.fromisoformat(run_date)
    carry = None
    for batch in batches:
        out, carry = _classify_batch(batch, carry, names_arr, day)
        if out.num_rows:
            yield out


def _classify_batch(batch: pa.RecordBatch, carry, names: pa.Array, day: dt.date):
    """One sorted batch -> (its lines as LINES_DDL, the carry for the next batch): the carry is
    (event_id, first row's _src, file_idx, line_number, rows so far) of the batch's last run."""
    import numpy as np
    import pyarrow.compute as pc

    n = batch.num_rows
    if n == 0:
        return pa.RecordBatch.from_pylist([], schema=_arrow_schema(LINES_DDL)), carry
    eid = batch.column("event_id")
    src, bad, fidx, line = (batch.column(c).to_numpy(zero_copy_only=False)
                            for c in ("_src", "_bad", "file_idx", "line_number"))
    same = np.zeros(n, bool)  # this row continues the run of the row before
    if n > 1:
        same[1:] = pc.fill_null(pc.equal(eid[1:], eid[:-1]), False).to_numpy(zero_copy_only=False)
    same[0] = carry is not None and eid[0].is_valid and eid[0].as_py() == carry[0]
    at = np.arange(n)
    start = np.maximum.accumulate(np.where(same, -1, at))  # first row of each row's run (-1: carried)
    first = np.maximum(start, 0)
    f_src, f_file, f_line, pos = src[first], fidx[first], line[first], at - start
    cont = start < 0
    if cont.any():
        f_src[cont], f_file[cont], f_line[cont] = carry[1], carry[2], carry[3]
        pos[cont] = carry[4] + at[cont]
    in_table = f_src == 0
    rank = pos + 1 - in_table
    code = np.select([bad == 1, rank > 1, in_table & (f_file == fidx) & (f_line == line), in_table],
                     [0, 1, 2, 1], default=3)
    last = eid[n - 1]
    carry = (last.as_py(), f_src[-1], f_file[-1], f_line[-1], pos[-1] + 1) if last.is_valid else None
    keep = pa.array(src == 1)
    b = batch.filter(keep)
    ts = pc.cast(pc.multiply(b.column("event_ts_ms"), 1000), pa.timestamp("us", tz="UTC"))
    m = b.num_rows
    arrays = [pa.array(STATUSES, pa.string()).take(pa.array(code).filter(keep)), names.take(b.column("file_idx")),
              b.column("line_number"), b.column("line_number"), b.column("raw_line"), b.column("reason"),
              b.column("detail"), b.column("event_id"), ts, pa.repeat(pa.scalar(day, pa.date32()), m),
              b.column("user_id"), b.column("product_id"), b.column("creative_id"), b.column("clicked")]
    return pa.RecordBatch.from_arrays(arrays, schema=_arrow_schema(LINES_DDL)), carry


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

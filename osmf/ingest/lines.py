"""Ingest, the part that runs in the tasks: pure Python and Arrow, no Spark (see :mod:`osmf.ingest.events`).

* one line: :func:`validate_line`, the definition of a valid landing line and of every quarantine
  reason but ``unknown_id`` and ``creative_product_mismatch``;
* the fast path: a typed C decoder (msgspec) for the lines it can vouch for; everything else goes to
  validate_line;
* byte ranges of landing files, parsed block by block with exact line numbers;
* the id checks against the dimensions' keys (vectorised);
* buckets: the parsed lines (and the date's ``impressions`` keys) cut by a hash of event_id into
  Arrow IPC payloads, so that Spark's shuffle moves a few large opaque rows instead of every line;
* the classification of one bucket (sorted in Arrow): every line's status.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from operator import attrgetter
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
# one row per (chunk of lines, bucket): ``kind`` 1 = parsed lines (PARSED_DDL), 0 = the date's
# ``impressions`` keys (event_id, file_idx, line_number); ``payload`` is an Arrow IPC stream
BLOB_DDL = "bucket int, kind int, payload binary"
STATUSES = ("quarantined", "duplicate", "accepted", "new")  # the status of a line (codes 0..3)
DAY_MS = 86_400_000


def arrow_schema(ddl: str = PARSED_DDL) -> pa.Schema:
    types = {"string": pa.string(), "long": pa.int64(), "int": pa.int32(), "date": pa.date32(),
             "timestamp": pa.timestamp("us", tz="UTC"), "binary": pa.binary()}
    return pa.schema([(c.strip().split(" ")[0], types[c.strip().split(" ")[1]]) for c in ddl.split(",")])


# --- one line: the definition ---------------------------------------------------------------------

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


def _parse_block(block: bytes, first_line: int, file_idx: int, window: tuple, fast,
                 lines: list[bytes] | None = None) -> pa.RecordBatch:
    """One block of whole lines (numbered from ``first_line``) as PARSED_DDL rows: the fast path
    first, validate_line (via ``_read_line``) for every line it refused. ``raw_line`` is set on the
    lines validate_line saw; give ``lines`` (a list, filled with the block's lines) to leave it null
    on the others (see :func:`check_ids`)."""
    decode, event_type = fast
    split = _block_lines(block)
    n = len(split)
    events, slow = _decode_lines(split, decode, _is_utf8(block))
    reason: list = [None] * n
    detail: list = [None] * n
    raw: list = split if lines is None else [None] * n
    if lines is not None:
        lines += split
    if slow:
        raw = list(raw)
        empty = event_type(*[None] * len(EVENT_FIELDS))
        for i in slow:
            raw[i], event, reason[i], detail[i] = _read_line(split[i], *window)
            events[i] = event_type(*[event[k] for k in EVENT_FIELDS]) if event else empty
    schema = arrow_schema()
    arrays = [pa.repeat(pa.scalar(file_idx, pa.int32()), n),
              pa.array(np.arange(first_line, first_line + n, dtype=np.int64)),
              pa.array(raw, pa.string()), pa.array(reason, pa.string()), pa.array(detail, pa.string())]
    # the events' fields as columns, one attribute of every Struct at a time (C loops; about 3.5x
    # faster than one struct array from the Structs' tuples)
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




# --- the id checks: the dimensions' keys, in the tasks -------------------------------------------

@dataclass
class DimKeys:
    """The keys the ids of a line are checked against (what a broadcast join would ship to every
    task): users' and products' ids, and each creative's id with its product's."""
    users: pa.Array
    products: pa.Array
    creatives: pa.Array
    creative_products: pa.Array


def check_ids(parsed: pa.Table, dims: DimKeys, lines: list[bytes] | None = None) -> pa.Table:
    """The lines the parse accepted, checked against the dimensions in this order: an unknown
    user_id, product_id or creative_id (``unknown_id``, detail ``<field>=<id>``), then a creative
    of another product (``creative_product_mismatch``, detail ``creative_id=<c> belongs to <p>``).
    ``raw_line`` is then kept for the quarantined lines only (taken from ``lines``, the raw lines of
    the rows, where the parse left it null)."""
    ok = pc.is_null(parsed.column("reason")).to_numpy(zero_copy_only=False)
    user_ok = pc.is_in(parsed.column("user_id"), value_set=dims.users).to_numpy(zero_copy_only=False)
    prod_ok = pc.is_in(parsed.column("product_id"), value_set=dims.products).to_numpy(zero_copy_only=False)
    at = pc.index_in(parsed.column("creative_id"), value_set=dims.creatives)
    owner = pc.take(dims.creative_products, at)
    cre_ok = pc.is_valid(at).to_numpy(zero_copy_only=False)
    same = pc.fill_null(pc.equal(owner, parsed.column("product_id")), False).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(ok & ~(user_ok & prod_ok & cre_ok & same))
    if len(bad):
        reason = parsed.column("reason").to_pylist()
        detail = parsed.column("detail").to_pylist()
        if lines is not None:  # the lines the fast path took are valid UTF-8
            raw = parsed.column("raw_line").to_pylist()
            for i in bad.tolist():
                raw[i] = lines[i].decode("utf-8") if raw[i] is None else raw[i]
            parsed = parsed.set_column(parsed.schema.get_field_index("raw_line"), "raw_line", pa.array(raw, pa.string()))
        u, p, c, o = (pc.take(col, pa.array(bad)).to_pylist() for col in
                      (parsed.column("user_id"), parsed.column("product_id"), parsed.column("creative_id"), owner))
        for j, i in enumerate(bad.tolist()):
            if not user_ok[i]:
                reason[i], detail[i] = "unknown_id", f"user_id={u[j]}"
            elif not prod_ok[i]:
                reason[i], detail[i] = "unknown_id", f"product_id={p[j]}"
            elif not cre_ok[i]:
                reason[i], detail[i] = "unknown_id", f"creative_id={c[j]}"
            else:
                reason[i], detail[i] = "creative_product_mismatch", f"creative_id={c[j]} belongs to {o[j]}"
        parsed = parsed.set_column(parsed.schema.get_field_index("reason"), "reason", pa.array(reason, pa.string()))
        parsed = parsed.set_column(parsed.schema.get_field_index("detail"), "detail", pa.array(detail, pa.string()))
    raw = pc.if_else(pc.is_null(parsed.column("reason")), pa.scalar(None, pa.string()), parsed.column("raw_line"))
    return parsed.set_column(parsed.schema.get_field_index("raw_line"), "raw_line", raw)


# --- buckets: lines cut by a hash of event_id, as Arrow IPC payloads ----------------------------------

IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")  # Arrow's LZ4 frames: the shuffle moves half the bytes


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=IPC_OPTIONS) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def string_hash(values: pa.ChunkedArray | pa.Array, chunk: int = 16384) -> np.ndarray:
    """A 64-bit hash of each string, computed on its UTF-8 bytes with numpy alone (the same on every
    machine and version: every copy of an event_id, wherever it is read, lands in one bucket): a
    polynomial over the bytes and the length, then the splitmix64 finaliser. Nulls hash as "".
    Computed ``chunk`` strings at a time, so the temporaries stay in the CPU's cache."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if len(arr) <= chunk:
        return _string_hash(arr)
    return np.concatenate([_string_hash(arr.slice(i, chunk)) for i in range(0, len(arr), chunk)])


def _string_hash(arr: pa.Array) -> np.ndarray:
    arr = arr.cast(pa.large_binary())
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64, count=n + 1, offset=arr.offset * 8)
    lengths = np.diff(offsets)
    h = lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    total = int(offsets[-1] - offsets[0])
    if total:
        data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
        powers = np.ones(int(lengths.max()), np.uint64)
        powers[1:] = np.cumprod(np.full(len(powers) - 1, 0x100000001B3, np.uint64))  # wraps mod 2**64
        filled = lengths > 0
        starts = (offsets[:-1] - offsets[0])[filled]
        first = np.zeros(total, np.int64)
        first[starts] = starts  # each byte's string starts at the last start at or before it
        pos = np.arange(total, dtype=np.int64) - np.maximum.accumulate(first)
        h[filled] += np.add.reduceat(data * powers[pos], starts)
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def bucket_of(event_id: pa.ChunkedArray | pa.Array, spread: np.ndarray, n: int) -> np.ndarray:
    """The bucket (0..n-1) of each row: a hash of its event_id, or ``spread`` (e.g. the line
    number) where there is no event_id."""
    h = (string_hash(event_id) % np.uint64(n)).astype(np.int64)
    return np.where(pc.is_null(event_id).to_numpy(zero_copy_only=False), spread.astype(np.int64) % n, h)


def to_blobs(table: pa.Table, buckets: np.ndarray, labels: list[int], kind: int) -> pa.RecordBatch:
    """BLOB_DDL rows: the table's rows of each bucket as one IPC payload, labelled for the shuffle."""
    order = np.argsort(buckets, kind="stable")
    table, buckets = table.take(pa.array(order)), buckets[order]
    edges = np.flatnonzero(np.diff(buckets)) + 1
    starts, stops = np.r_[0, edges], np.r_[edges, len(buckets)]
    rows = [(labels[int(buckets[a])], _ipc(table.slice(a, b - a))) for a, b in zip(starts, stops) if b > a]
    return pa.RecordBatch.from_arrays(
        [pa.array([r[0] for r in rows], pa.int32()), pa.array([kind] * len(rows), pa.int32()),
         pa.array([r[1] for r in rows], pa.binary())], schema=arrow_schema(BLOB_DDL))


CHUNK_LINES = 1 << 18  # lines id-checked and bucketed together (the dimension hash sets are built per chunk)


def parse_ranges(batches, window: tuple, dims: DimKeys, labels: list[int]):
    """mapInArrow body: each input row is a byte range of a landing file (path, file_idx, start, end,
    first_line); its lines are parsed, id-checked and yielded as BLOB_DDL rows."""
    fast = fast_decoder(*window)
    for batch in batches:
        for r in batch.to_pylist():
            number, pending, raws = r["first_line"], [], []
            for block in _range_blocks(r["path"], r["start"], r["end"]):
                pending.append(_parse_block(block, number, r["file_idx"], window, fast, raws))
                number += pending[-1].num_rows
                if len(raws) >= CHUNK_LINES:
                    yield _checked_blobs(pending, raws, dims, labels)
                    pending, raws = [], []
            if pending:
                yield _checked_blobs(pending, raws, dims, labels)


def _checked_blobs(batches: list[pa.RecordBatch], raws: list[bytes], dims: DimKeys, labels: list[int]) -> pa.RecordBatch:
    lines = check_ids(pa.Table.from_batches(batches), dims, raws)
    buckets = bucket_of(lines.column("event_id"), lines.column("line_number").to_numpy(), len(labels))
    return to_blobs(lines, buckets, labels, kind=1)


def bucket_existing(batches, names: list[str], labels: list[int]):
    """mapInArrow body over the date's ``impressions`` keys (event_id, source_file, source_line):
    BLOB_DDL rows of kind 0, the file named by its position in ``names`` (sorted; -1: not a file
    of this landing day)."""
    index = {n: i for i, n in enumerate(names)}
    for batch in batches:
        files = [index.get(f, -1) for f in batch.column("source_file").to_pylist()]
        keys = pa.table({"event_id": batch.column("event_id"), "file_idx": pa.array(files, pa.int32()),
                         "line_number": batch.column("source_line").cast(pa.int64())})
        yield to_blobs(keys, bucket_of(keys.column("event_id"), np.zeros(keys.num_rows, np.int64), len(labels)),
                       labels, kind=0)


def count_ranges(batches):
    """mapInArrow body of the counting pass: the lines that start in each range."""
    for batch in batches:
        rows = batch.to_pylist()
        counts = [count_line_starts(r["path"], r["start"], r["end"]) for r in rows]
        yield pa.RecordBatch.from_pydict({"path": [r["path"] for r in rows], "start": [r["start"] for r in rows],
                                          "lines": counts}, schema=pa.schema([("path", pa.string()), ("start", pa.int64()),
                                                                              ("lines", pa.int64())]))


# --- one bucket: every line's status -----------------------------------------------------------------

def classify_blobs(batches, names: list[str], run_date: str, chunk: int = 1 << 16):
    """The writer's transform (``Lake.stage_spark``): the BLOB_DDL rows of one task's buckets ->
    LINES_DDL batches, every line with its status (STATUSES):

    * ``quarantined``: the parse or the id checks gave a reason (``raw_line`` kept for these only);
    * ``duplicate``: a later copy of an event_id (by file name, then line number), or the first copy
      when the event is in the date's ``impressions`` from another line;
    * ``accepted``: the first copy, in the date's ``impressions`` from this very file and line;
    * ``new``: the first copy, not in the date's ``impressions``.

    The task's rows are ordered by (event_id, table row first, good lines first, file, line) with
    event_id compared by hash (:func:`_run_order`): every copy of an event is in the same bucket, so
    in the same task."""
    parts: dict[int, list] = {0: [], 1: []}
    for batch in batches:
        payloads = batch.column("payload")
        for i, kind in enumerate(batch.column("kind").to_pylist()):
            parts[kind].append(pa.ipc.open_stream(payloads[i].as_buffer()).read_all())  # no copy
    if not parts[1]:
        return
    lines = pa.concat_tables(parts[1])
    lines = lines.append_column("_src", pa.array(np.ones(lines.num_rows, np.int32)))
    lines = lines.append_column("_bad", pc.cast(pc.is_valid(lines.column("reason")), pa.int32()))
    rows = lines
    if parts[0]:
        old = pa.concat_tables(parts[0])
        old = old.append_column("_src", pa.array(np.zeros(old.num_rows, np.int32)))
        old = old.append_column("_bad", pa.array(np.zeros(old.num_rows, np.int32)))
        rows = pa.concat_tables([lines, old], promote_options="default")
    rows = rows.combine_chunks()
    rows = rows.take(pa.array(_run_order(rows)))
    out = classify_sorted(rows, pa.array(sorted(names), pa.string()), dt.date.fromisoformat(run_date))
    yield from out.to_batches(max_chunksize=chunk)


def _run_order(rows: pa.Table) -> np.ndarray:
    """The order classify_sorted needs: every copy of an event_id together (the table's row first,
    then good lines before bad, then by file and line). Sorted by a 64-bit hash of event_id and the
    integer keys (numpy lexsort, several times faster than Arrow's sort on the strings); if two
    different event_ids share a hash and end up interleaved, by the strings themselves."""
    eid = rows.column("event_id")
    keys = [rows.column(c).to_numpy() for c in ("line_number", "file_idx", "_bad", "_src")]
    h = string_hash(eid)
    order = np.lexsort([*keys, h])
    if len(order) > 1:
        e, hs = eid.take(pa.array(order)), h[order]
        same_hash = hs[1:] == hs[:-1]
        same_id = pc.fill_null(pc.equal(e.slice(1), e.slice(0, len(order) - 1)), False).to_numpy(zero_copy_only=False)
        null = pc.is_null(e).to_numpy(zero_copy_only=False)
        if np.any(same_hash & ~same_id & ~(null[1:] & null[:-1])):  # a collision: sort the strings
            return pc.sort_indices(rows, sort_keys=[(k, "ascending") for k in
                                                    ("event_id", "_src", "_bad", "file_idx", "line_number")]).to_numpy()
    return order


def classify_sorted(rows: pa.Table, names: pa.Array, day: dt.date) -> pa.Table:
    """Sorted rows (see :func:`classify_blobs`) -> the lines as LINES_DDL: a run of rows with one
    event_id starts with the table's row, if any, then the good copies in landing order."""
    n = rows.num_rows
    eid = rows.column("event_id")
    src, bad, fidx, line = (rows.column(c).to_numpy() for c in ("_src", "_bad", "file_idx", "line_number"))
    same = np.zeros(n, bool)  # this row continues the run of the row before (nulls never do)
    if n > 1:
        same[1:] = pc.fill_null(pc.equal(eid.slice(1), eid.slice(0, n - 1)), False).to_numpy(zero_copy_only=False)
    at = np.arange(n)
    start = np.maximum.accumulate(np.where(same, 0, at))  # the first row of each row's run
    in_table = src[start] == 0
    rank = at - start + 1 - in_table  # copies of the event among the lines, this one included
    code = np.select([bad == 1, rank > 1, in_table & (fidx[start] == fidx) & (line[start] == line), in_table],
                     [0, 1, 2, 1], default=3)
    keep = pa.array(src == 1)
    b = rows.filter(keep)
    ts = pc.cast(pc.multiply(b.column("event_ts_ms"), 1000), pa.timestamp("us", tz="UTC"))
    arrays = [pa.array(STATUSES, pa.string()).take(pa.array(code).filter(keep)),
              pc.take(names, b.column("file_idx")), b.column("line_number"), b.column("line_number"),
              b.column("raw_line"), b.column("reason"), b.column("detail"), b.column("event_id"), ts,
              pa.repeat(pa.scalar(day, pa.date32()), b.num_rows), b.column("user_id"), b.column("product_id"),
              b.column("creative_id"), b.column("clicked")]
    return pa.Table.from_arrays(arrays, schema=arrow_schema(LINES_DDL))

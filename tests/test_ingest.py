"""Ingest: the quarantine invariant with every malformed kind, and idempotent reruns."""

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pytest

from osmf.ingest.events import REASONS, validate_line
from osmf.world.generate import MALFORMED_KINDS

DAY = int(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
NOW = DAY + 365 * 86_400_000
GOOD = {"event_id": "e1", "event_ts": DAY + 5, "user_id": "u", "product_id": "p", "creative_id": "c", "clicked": 1}


def _line(**over):
    rec = {**GOOD, **over}
    return json.dumps({k: v for k, v in rec.items() if v is not ...})


@pytest.mark.parametrize("line, reason, detail", [
    (_line(), None, None),
    ("", "empty_line", None),
    ('{"event_id": "e1", ', "invalid_json", None),
    ("[1, 2]", "invalid_json", "list"),
    (_line(user_id=...), "missing_field", "user_id"),
    (_line(clicked=None), "missing_field", "clicked"),
    (_line(clicked="yes"), "wrong_type", "clicked"),
    (_line(clicked=True), "wrong_type", "clicked"),
    (_line(clicked=2), "wrong_type", "clicked"),
    (_line(event_ts="noon"), "wrong_type", "event_ts"),
    (_line(user_id=12345), "wrong_type", "user_id"),
    (_line(event_ts=-5), "negative_timestamp", None),
    (_line(event_ts=NOW + 1), "future_timestamp", None),
    (_line(event_ts=DAY - 1), "timestamp_outside_date", None),
    (_line(event_ts=DAY + 86_400_000), "timestamp_outside_date", None),
])
def test_validate_line(line, reason, detail):
    event, got_reason, got_detail = validate_line(line, DAY, DAY + 86_400_000, NOW)
    assert got_reason == reason
    assert (event is None) == (reason is not None)
    if detail:
        assert detail in got_detail
    if reason:
        assert reason in REASONS


def test_invariant_every_file_every_kind(ingested, lake, world_home):
    truth = json.loads((world_home / "truth/landing_stats.json").read_text())
    audit = lake.read_pandas("ingest_audit")
    assert len(audit) == len(truth)
    for row in audit.itertuples():
        t = truth[row.source_file.removeprefix("events/")]
        assert row.lines_read == t["lines"]
        assert row.lines_read == row.accepted + row.duplicates + row.quarantined
        assert row.quarantined == t["malformed"]  # every malformed line is caught, nothing else is
    q = lake.read_pandas("quarantine")
    # every malformed kind of the generator arrives with its reason (unknown ids via the dimension joins)
    assert set(MALFORMED_KINDS) <= set(q.reason)
    assert q.raw_line.notna().all() and q.source_file.notna().all()
    imp = lake.read_pandas("impressions")
    assert imp.event_id.is_unique
    assert len(imp) == audit.accepted.sum()
    assert audit.duplicates.sum() == sum(t["duplicates"] for t in truth.values())


def test_rerun_changes_no_table_content(ingested, settings, spark, lake):
    from conftest import make_ctx
    from jobs import ingest_events

    date = sorted(ingested)[0]
    def snapshot():
        return {t: lake.read_pandas(t).sort_values(list(lake_key(t))).reset_index(drop=True)
                for t in ("impressions", "quarantine", "ingest_audit", "users", "products", "creatives")}

    def lake_key(t):
        from osmf.lake.tables import spec
        return spec(t).key

    before, v_imp, v_users = snapshot(), lake.version("impressions"), lake.version("users")
    again = ingest_events.ingest_day(make_ctx(settings, date, "rerun", spark, lake))
    after = snapshot()
    for t in before:
        assert before[t].equals(after[t]), t
    assert again.files == ingested[date].files  # the audit says the same thing twice
    assert lake.version("impressions") == v_imp  # nothing new to append: no commit at all
    assert lake.version("users") == v_users  # unchanged dimensions are not rewritten


def test_a_concurrent_change_of_the_date_commits_nothing(ingested, settings, spark, lake, monkeypatch):
    """If the date's impressions change while a run classifies its lines (another ingest of the same
    date, simulated here by rewriting the partition with the same rows), the run commits nothing."""
    from conftest import make_ctx
    from jobs import ingest_events
    from osmf.ingest import events as ingest

    date = sorted(ingested)[0]
    versions = {t: lake.version(t) for t in ("quarantine", "ingest_audit")}
    real = ingest.tally

    def tally_while_another_writer_commits(*args, **kwargs):
        lake.replace_partition("impressions", lake.read_arrow("impressions", partition=date), date)
        return real(*args, **kwargs)

    monkeypatch.setattr(ingest, "tally", tally_while_another_writer_commits)
    with pytest.raises(RuntimeError, match=f"ingest {date}: the date's impressions changed"):
        ingest_events.run(make_ctx(settings, date, "racing", spark, lake))
    assert {t: lake.version(t) for t in versions} == versions


def test_missing_landing_date_is_a_clear_error(settings, spark, lake):
    from conftest import make_ctx
    from jobs import ingest_events

    from osmf.ingest.landing import LandingRefused

    with pytest.raises(LandingRefused, match="no landing folder for 2030-01-01: expected events/event_date=2030-01-01"):
        ingest_events.run(make_ctx(settings, "2030-01-01", spark=spark, lake=lake))


# --- the fast path, byte ranges, the id checks and the classification (pure: no Spark) ---------------

def _window():
    return (DAY, DAY + 86_400_000, NOW)


TRICKY = [
    _line(), _line(event_id="e2"), "", "   ", "\t", '{"event_id": "e1", ', "[1, 2]", "null", '"text"',
    _line(user_id=...), _line(clicked=None), _line(clicked="yes"), _line(clicked=True), _line(clicked=2),
    _line(clicked=1.0), _line(clicked=0.0), _line(event_ts="noon"), _line(event_ts=float(DAY + 5)),
    _line(event_ts=True), _line(user_id=12345), _line(user_id=""), _line(event_ts=-5), _line(event_ts=NOW + 1),
    _line(event_ts=DAY - 1), _line(event_ts=DAY + 86_400_000), _line(event_ts=10**30),
    " " + _line() + " \t", _line() + " x", _line() + "}", _line().replace('"e1"', '"e\\u0031"'),
    _line().replace('"event_id"', '"event\\u005fid"'), _line(extra={"nested": [1, {"a": None}]}),
    _line(extra=float("nan")).replace("NaN", "NaN"), '{"event_id": "a", "event_id": "e1"' + _line()[1 + len('"event_id": "e1"'):],
    _line()[:-1] + ', "event_id": null}', _line()[:-1] + ', "event_id": 5}',
    _line()[:-1] + ', "pad": "' + "x" * 2000 + '"}', _line()[:-1] + ', "deep": ' + "[" * 600 + "]" * 600 + "}",
    "\ufeff" + _line(), _line(event_id="caf\u00e9 \u2603"), _line(event_id="e\u0000"),
]
RAW_TRICKY = [b'{"event_id": "e1\xff", "event_ts": 1}', _line().encode()[:-1] + b', "x": "\xc3\x28"}',
              _line().encode() + b"\r", _line().encode() + b"\r\r", b"\xef\xbb\xbf" + _line().encode(),
              _line().encode().replace(b'"u"', b'"caf\xc3\xa9"'), _line().encode().replace(b'"u"', b'"caf\xc3"')]


def test_fast_path_agrees_with_validate_line_on_every_line():
    """The block parser (typed decoder first, validate_line for the rest) gives every line exactly
    what validate_line gives it: text, event values, reason and detail."""
    from osmf.ingest.lines import EVENT_FIELDS, _parse_block, _read_line, fast_decoder

    raws = [s.encode() for s in TRICKY] + RAW_TRICKY
    block = b"\n".join(raws) + b"\n"
    got = _parse_block(block, 1, 0, _window(), fast_decoder(*_window())).to_pylist()
    assert [g["line_number"] for g in got] == list(range(1, len(raws) + 1))
    for raw, row in zip(raws, got):
        text, event, reason, detail = _read_line(raw, *_window())
        assert (row["raw_line"], row["reason"], row["detail"]) == (text, reason, detail), raw
        want = {k: (event or {}).get(k) for k in EVENT_FIELDS}
        assert {k: row[k] for k in EVENT_FIELDS} == want, raw
    assert sum(r["reason"] is None for r in got) >= 8  # the good variants were accepted


def test_byte_ranges_number_every_line_exactly(tmp_path):
    """A file cut into byte ranges of any size gives the lines of Python's own file iteration,
    numbered from 1, whatever the cut (lines across range ends, blank lines, CRLF, no final newline)."""
    from osmf.ingest.events import plan_ranges
    from osmf.ingest.lines import _parse_block, _range_blocks, count_line_starts, fast_decoder

    body = b"\n".join([_line(event_id=f"e{i}").encode() for i in range(40)] + [b"", b"  ", b"{bad", b"x\r"])
    body = body.replace(b"\n", b"\r\n", 3)
    for ending in (b"", b"\n", b"\n\n"):
        path = tmp_path / "part-0000.jsonl"
        path.write_bytes(body + ending)
        with open(path, "rb") as fh:
            want = [(n, _parse_block(raw, n, 0, _window(), fast_decoder(*_window())).to_pylist()[0]["raw_line"])
                    for n, raw in enumerate(fh, start=1)]
        for size in (1, 2, 7, 64, 500, 10**6):
            got, first = [], 1
            for p, _, start, end in plan_ranges([str(path)], ["f"], size):
                counted = count_line_starts(p, start, end)
                for block in _range_blocks(p, start, end, block_bytes=max(1, size // 3)):
                    rows = _parse_block(block, first, 0, _window(), fast_decoder(*_window())).to_pylist()
                    got += [(r["line_number"], r["raw_line"]) for r in rows]
                    first += len(rows)
                    counted -= len(rows)
                assert counted == 0, (size, start)  # the counting pass agrees with the parse, range by range
            assert got == want, (size, ending)


def _parsed(rows):
    from osmf.ingest.lines import arrow_schema

    cols = {f.name: [r.get(f.name) for r in rows] for f in arrow_schema()}
    return pa.table(cols, schema=arrow_schema())


def test_id_checks_in_order_with_details():
    from osmf.ingest.lines import DimKeys, check_ids

    dims = DimKeys(pa.array(["u1"]), pa.array(["p1", "p2"]), pa.array(["c1", "c2"]), pa.array(["p1", "p2"]))
    base = {"file_idx": 0, "raw_line": "raw", "event_id": "e", "event_ts_ms": DAY, "clicked": 0}
    rows = [dict(base, line_number=1, user_id="u1", product_id="p1", creative_id="c1"),
            dict(base, line_number=2, user_id="u9", product_id="p9", creative_id="c9"),
            dict(base, line_number=3, user_id="u1", product_id="p9", creative_id="c9"),
            dict(base, line_number=4, user_id="u1", product_id="p1", creative_id="c9"),
            dict(base, line_number=5, user_id="u1", product_id="p1", creative_id="c2"),
            dict(base, line_number=6, reason="invalid_json", detail="d")]
    out = check_ids(_parsed(rows), dims).to_pylist()
    assert [(r["reason"], r["detail"]) for r in out] == [
        (None, None), ("unknown_id", "user_id=u9"), ("unknown_id", "product_id=p9"),
        ("unknown_id", "creative_id=c9"), ("creative_product_mismatch", "creative_id=c2 belongs to p2"),
        ("invalid_json", "d")]
    assert [r["raw_line"] for r in out] == [None, "raw", "raw", "raw", "raw", "raw"]  # kept for quarantine only
    # the parse leaves raw_line null on the lines its fast path took: the raw lines fill it in
    fast = [dict(r, raw_line=None) if r.get("reason") is None else r for r in rows]
    out = check_ids(_parsed(fast), dims, [f"line {i}".encode() for i in range(1, 7)]).to_pylist()
    assert [r["raw_line"] for r in out] == [None, "line 2", "line 3", "line 4", "line 5", "raw"]


@pytest.mark.parametrize("collide", [False, True])
def test_classification_of_copies_and_table_rows_whatever_the_buckets(collide, monkeypatch):
    """Statuses: the first copy by (file name, line) is new, or accepted when the table has the
    event from this very line; later copies and copies of an event the table has from another line
    are duplicates; lines with a reason are quarantined (even with an event_id that has good copies).
    The same whatever the number of buckets and payloads the lines arrive in, and when every
    event_id has the same hash (the classification's hash order then falls back to the strings)."""
    from osmf.ingest import lines as ingest_lines
    from osmf.ingest.lines import bucket_existing, bucket_of, classify_blobs, to_blobs

    if collide:
        monkeypatch.setattr(ingest_lines, "string_hash", lambda values: np.zeros(len(values), np.uint64))

    names = ["f0", "f1"]
    ok = {"raw_line": None, "event_ts_ms": DAY, "user_id": "u", "product_id": "p", "creative_id": "c", "clicked": 1}
    lines = [dict(ok, file_idx=1, line_number=1, event_id="a"),   # later file: duplicate of f0:5
             dict(ok, file_idx=0, line_number=5, event_id="a"),   # first copy: new
             dict(ok, file_idx=0, line_number=2, event_id="b"),   # in the table from this line: accepted
             dict(ok, file_idx=0, line_number=3, event_id="b"),   # duplicate
             dict(ok, file_idx=0, line_number=4, event_id="c"),   # in the table from f1:9: duplicate
             dict(ok, file_idx=0, line_number=1, event_id="a", reason="unknown_id", detail="user_id=u"),
             dict(file_idx=1, line_number=2, raw_line="{", reason="invalid_json", detail="x"),
             dict(file_idx=1, line_number=3, raw_line="", reason="empty_line")]
    want = {(1, 1): "duplicate", (0, 5): "new", (0, 2): "accepted", (0, 3): "duplicate", (0, 4): "duplicate",
            (0, 1): "quarantined", (1, 2): "quarantined", (1, 3): "quarantined"}
    table = pa.table({"event_id": ["b", "c", "z"], "source_file": ["f0", "f1", "gone"], "source_line": [2, 9, 1]})
    parsed = _parsed(lines)
    for n in (1, 2, 5):
        labels = list(range(n))
        chunks = [parsed.slice(i, 3) for i in range(0, parsed.num_rows, 3)]
        blobs = [to_blobs(c, bucket_of(c.column("event_id"), c.column("line_number").to_numpy(), n), labels, 1)
                 for c in chunks]
        blobs += list(bucket_existing(table.to_batches(), names, labels))
        got = {}
        for label in labels:  # one write task per bucket
            mine = [b.filter(pa.compute.equal(b.column("bucket"), label)) for b in blobs]
            for out in classify_blobs(mine, names, "2026-01-01"):
                got.update({(names.index(r["source_file"]), r["line_number"]): r["status"] for r in out.to_pylist()})
        assert got == want, n


def test_bucket_labels_are_what_spark_hashes_them_to(spark):
    from osmf.ingest.events import _spark_hash_int, plan_shuffle

    values = [0, 1, 2, 7, 42, 12345, -1, 2**31 - 1]
    rows = spark.createDataFrame([(v,) for v in values], "v int").selectExpr("hash(v) AS h").collect()
    assert [_spark_hash_int(v) for v in values] == [r.h for r in rows]
    shuffle = plan_shuffle([], 5)
    got = spark.createDataFrame([(v, p) for p, v in enumerate(shuffle.labels)], "v int, p int") \
        .repartition(shuffle.partitions, "v").rdd.mapPartitionsWithIndex(lambda i, it: [(i, r.p) for r in it]).collect()
    assert sorted(got) == [(p, p) for p in range(5)]  # each label lands on its own task


def test_split_ranges_ingest_the_same_lines(settings, spark, lake, ingested):
    """Parsing the tiny world's files cut into many small ranges (with the counting pass) gives the
    same lines, numbers and reasons as one range per file."""
    from osmf.ingest import events as ingest
    from osmf.ingest.lines import DimKeys

    date = sorted(ingested)[0]
    paths = ingest.landing_files(settings, date)
    names = ingest.source_names(settings, paths)
    dims = DimKeys(*(pa.array([], pa.string()) for _ in range(4)))
    shuffle = ingest.Shuffle(1, [0])

    def lines(range_bytes):
        blobs = ingest.parse_landing(spark, paths, names, ingest.day_window(date), dims, shuffle, range_bytes).collect()
        rows = pa.concat_tables([pa.ipc.open_stream(b.payload).read_all() for b in blobs]).to_pylist()
        return sorted((r["file_idx"], r["line_number"], r["raw_line"], r["reason"], r["detail"]) for r in rows)

    one, many = lines(10**9), lines(4096)
    assert one == many
    assert len(one) == sum(f["lines_read"] for f in ingested[date].files)


def test_event_id_hash_is_fixed_and_chunk_free():
    """Every copy of an event_id, read by any task on any machine, must land in the same bucket:
    the hash is numpy arithmetic on the UTF-8 bytes (pinned values), the same in any slicing."""
    from osmf.ingest.lines import string_hash

    ids = pa.array(["", "a", "ab", None, "ba", "caf\u00e9", "ev2026010100000001"])
    h = string_hash(ids)
    assert h.tolist()[:3] == [0, 5718913436695043505, 17395046374481967768] and h[3] == h[0]
    assert len(set(h.tolist())) == 6
    many = pa.chunked_array([ids.slice(0, 2), ids.slice(2)])
    assert (string_hash(many, chunk=3) == h).all() and (string_hash(ids.slice(4)) == h[4:]).all()

"""The events part of ``osmf landing check``: one landing day's JSONL, parsed exactly as ingest parses
it (``osmf.ingest.lines``: the same reasons), in this process.

A day is refused (errors) when its ``_SUCCESS`` marker or its files are missing, when more than
``[landing].max_bad_line_share`` of its lines are malformed (a changed format, not a few bad
lines), or when an id missing from its dimension is referenced by ``[landing].unknown_id_min_lines``
lines or more (a missing dimension row, not a corrupt line). Rarer bad lines are warnings: ingest
quarantines them with their reason.
"""

from __future__ import annotations

import os
from collections import Counter

import pyarrow as pa

from osmf.config.settings import LANDING_MARKER, Settings

FIELD_DIMENSION = {"user_id": "users", "product_id": "products", "creative_id": "creatives"}


def _scan_file(path: str, file_idx: int, window: tuple, dims, fast):
    """Every line of one landing file: (lines, reasons Counter, first line per reason,
    {(field, id): [count, first line]} of unknown ids and creative/product mismatches)."""
    from osmf.ingest.lines import _block_lines, _parse_block, _range_blocks, check_ids

    n, reasons, first, unknown = 0, Counter(), {}, {}
    for block in _range_blocks(path, 0, os.path.getsize(path)):
        raws: list[bytes] = []
        batch = _parse_block(block, n + 1, file_idx, window, fast, raws)
        if dims is not None:
            batch = check_ids(pa.Table.from_batches([batch]), dims, raws)
        n += len(_block_lines(block))
        reason = batch.column("reason").to_pylist()
        detail = batch.column("detail").to_pylist()
        line_no = batch.column("line_number").to_pylist()
        for r, d, ln in zip(reason, detail, line_no):
            if r is None:
                continue
            reasons[r] += 1
            first.setdefault(r, (ln, d))
            if r in ("unknown_id", "creative_product_mismatch"):
                key = (r, d.split(" belongs")[0])
                unknown.setdefault(key, [0, ln])[0] += 1
    return n, reasons, first, unknown


def check_events_day(settings: Settings, date: str, dims: dict, sink) -> None:
    """Check one landing day; problems go to ``sink`` (see :mod:`osmf.ingest.landing`)."""
    from osmf.ingest.events import day_window, dimension_keys
    from osmf.ingest.lines import fast_decoder

    day = settings.landing_day(date)
    rel_day = os.path.relpath(day, settings.landing_root)
    if not day.is_dir():
        sink.add("error", rel_day, "", "", f"no landing folder for {date}: expected {rel_day}/*.jsonl then {LANDING_MARKER}")
        return
    if not (day / LANDING_MARKER).exists():
        sink.add("error", f"{rel_day}/{LANDING_MARKER}", "", "", f"{date} is not marked complete: a producer writes "
                 f"{LANDING_MARKER} after the day's last file (the nightly ingest waits for it)")
    files = sorted(p for p in day.glob("*.jsonl"))
    if not files:
        sink.add("error", rel_day, "", "", f"no *.jsonl files for {date}")
        return
    keys = (dimension_keys(dims["users"], dims["products"], dims["creatives"])
            if {"users", "products", "creatives"} <= set(dims) else None)
    w = day_window(date)
    window, fast = (w.start_ms, w.end_ms, w.now_ms), fast_decoder(w.start_ms, w.end_ms, w.now_ms)
    total, reasons, first, unknown = 0, Counter(), {}, {}
    for i, path in enumerate(files):
        rel = os.path.relpath(path, settings.landing_root)
        n, r_file, f_file, u_file = _scan_file(str(path), i, window, keys, fast)
        total += n
        reasons.update(r_file)
        for r, (ln, detail) in f_file.items():
            first.setdefault(r, (rel, ln, detail))
        for key, (count, ln) in u_file.items():
            unknown.setdefault(key, [0, rel, ln])[0] += count
    _report_unknown(unknown, settings.landing.unknown_id_min_lines, sink)
    for r, c in sorted(reasons.items()):
        rel, ln, detail = first[r]
        sink.add("warning", rel, f"line {ln}", "", f"{c} line(s) of {date} with reason {r} will be quarantined at "
                 f"ingest (the first here{': ' + detail if detail else ''})", f"reason {r}")
    bad = sum(reasons.values())
    share = bad / total if total else 0.0
    if share > settings.landing.max_bad_line_share:
        sink.add("error", rel_day, "", "", f"{bad} of {total} lines ({share:.1%}) are malformed, more than "
                 f"[landing].max_bad_line_share = {settings.landing.max_bad_line_share:.1%}: the format has "
                 "changed or the files are damaged (the warnings say how)")


def _report_unknown(unknown: dict, min_lines: int, sink) -> None:
    for (reason, detail), (count, rel, ln) in sorted(unknown.items()):
        if count < min_lines:
            continue
        field_, _, value = detail.partition("=")
        if reason == "unknown_id":
            msg = (f"{field_} {value!r} is referenced by {count} lines of the day (first: this line) but is not in "
                   f"dimensions/{FIELD_DIMENSION.get(field_, '?')}.parquet: a missing dimension row")
        else:
            msg = (f"{count} lines of the day (first: this line) show creative {value!r} with another product than its "
                   "own in dimensions/creatives.parquet")
        sink.add("error", rel, f"line {ln}", field_, msg, f"unknown {field_}")

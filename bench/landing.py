"""Synthetic landing lines for the ingest benchmark, written fast enough for 20M+ events.

A small world (``generate_world``) provides the dimension files (users, products, creatives) and the
manifest; this module then replaces its one landing day with ``events`` lines in the generator's
format: compact JSON objects in the generator's field order, a ``malformed_rate`` share replaced by
the generator's own malformed lines (every kind, the same code), and a ``duplicate_rate`` share of
exact copies of good lines, shuffled over ``files`` landing files. Lines are formatted in vectorised
Arrow kernels, one file at a time, so memory stays at a few hundred bytes per event in flight.

Also writes ``valid.jsonl``: the lines of the day that are neither malformed nor unknown (the good
events and their duplicates), for the benchmark's parse baselines.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from osmf.world.generate import MALFORMED_KINDS, _malformed_line

FIELDS = ("event_id", "event_ts", "user_id", "product_id", "creative_id", "clicked")


@dataclass
class Landing:
    lines: int
    malformed: int
    duplicates: int
    bytes: int
    valid_path: Path | None


def _events(n: int, date: str, world_dir: Path, rng: np.random.Generator) -> dict:
    users = pq.read_table(world_dir / "users.parquet", columns=["user_id"]).column(0).combine_chunks()
    cre = pq.read_table(world_dir / "creatives.parquet", columns=["creative_id", "product_id"])
    c = rng.integers(0, cre.num_rows, n)
    day_ms = int(dt.datetime.fromisoformat(date).replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
    return {"user": rng.integers(0, len(users), n), "cre": c, "ts": day_ms + rng.integers(0, 86_400_000, n),
            "clicked": (rng.random(n) < 0.05).astype(np.int8), "ymd": date.replace("-", ""),
            "user_ids": users, "cre_ids": cre.column("creative_id").combine_chunks(),
            "cre_prods": cre.column("product_id").combine_chunks()}


def _format(ev: dict, idx: np.ndarray) -> pa.Array:
    """The JSON lines of events ``idx`` (positions into ``ev``), as one Arrow string array."""
    take = pa.array(idx)
    ids = pc.binary_join_element_wise(ev["ymd"], pc.utf8_lpad(pc.cast(take, pa.string()), 8, "0"), "")
    parts = ['{"event_id":"ev', ids, '","event_ts":', pc.cast(pa.array(ev["ts"][idx]), pa.string()),
             ',"user_id":"', ev["user_ids"].take(pa.array(ev["user"][idx])),
             '","product_id":"', ev["cre_prods"].take(pa.array(ev["cre"][idx])),
             '","creative_id":"', ev["cre_ids"].take(pa.array(ev["cre"][idx])),
             '","clicked":', pc.cast(pa.array(ev["clicked"][idx]), pa.string()), "}"]
    return pc.binary_join_element_wise(*parts, "")


def _record(ev: dict, i: int) -> list:
    return [f"ev{ev['ymd']}{i:08d}", int(ev["ts"][i]), ev["user_ids"][int(ev["user"][i])].as_py(),
            ev["cre_prods"][int(ev["cre"][i])].as_py(), ev["cre_ids"][int(ev["cre"][i])].as_py(),
            int(ev["clicked"][i])]


def write_landing(day_dir: Path, world_dir: Path, date: str, events: int, files: int = 8,
                  malformed_rate: float = 0.01, duplicate_rate: float = 0.01, seed: int = 7,
                  valid_path: Path | None = None) -> Landing:
    """Replace the landing files of ``day_dir`` by ``events`` synthetic events (see the module)."""
    rng = np.random.default_rng(seed)
    ev = _events(events, date, world_dir, rng)
    n_bad = int(round(events * malformed_rate))
    bad = rng.choice(events, n_bad, replace=False) if n_bad else np.array([], np.int64)
    kind_of = {int(i): MALFORMED_KINDS[k % len(MALFORMED_KINDS)] for k, i in enumerate(bad.tolist())}
    variant_of = {int(i): k // len(MALFORMED_KINDS) for k, i in enumerate(bad.tolist())}
    good = np.setdiff1d(np.arange(events), bad)
    n_dup = int(round(events * duplicate_rate))
    order = rng.permutation(np.concatenate([np.arange(events), rng.choice(good, n_dup, replace=False)]))
    for old in day_dir.glob("*.jsonl"):
        old.unlink()
    valid = open(valid_path, "wb") if valid_path else None
    total = 0
    try:
        for f_i, chunk in enumerate(np.array_split(order, files)):
            lines = _format(ev, chunk)
            is_bad = np.isin(chunk, bad)
            if is_bad.any():
                py = lines.to_pylist()
                for pos in np.flatnonzero(is_bad).tolist():
                    i = int(chunk[pos])
                    py[pos] = _malformed_line(py[pos], _record(ev, i), kind_of[i], variant_of[i])
                lines = pa.array(py, pa.string())
            body = ("\n".join(lines.to_pylist()) + "\n").encode() if len(chunk) else b""
            (day_dir / f"part-{f_i:04d}.jsonl").write_bytes(body)
            total += len(body)
            if valid is not None:
                ok = lines.filter(pa.array(~is_bad))
                valid.write(("\n".join(ok.to_pylist()) + "\n").encode() if len(ok) else b"")
    finally:
        if valid is not None:
            valid.close()
    (day_dir / "_SUCCESS").touch()  # the day is complete (the landing contract)
    return Landing(len(order), n_bad, n_dup, total, valid_path)

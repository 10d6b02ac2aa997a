"""Ingest benchmark: a world with N events in one day (default 5,000,000), ingested by the real job,
next to the raw pyarrow -> Parquet write of the same accepted events.

    make bench                      # or: .venv/bin/python bench/bench_ingest.py --events 5000000

Prints the world generation time, ingest wall time and events/s (Spark session already started,
so its start-up is not counted), the raw write's events/s, and the ratio. State goes to
bench/out/home (not your .osmf).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--home", type=Path, default=Path(__file__).resolve().parent / "out" / "home")
    ap.add_argument("--driver-memory", default="8g")
    args = ap.parse_args()
    if args.home.exists():
        shutil.rmtree(args.home)
    os.environ["OSMF_HOME"] = str(args.home)
    os.environ["OSMF_SPARK_DRIVER_MEMORY"] = args.driver_memory
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    import pyarrow.parquet as pq

    from jobs import ingest_events
    from osmf.lake import Lake
    from osmf.settings import load_settings
    from osmf.spark import get_spark
    from osmf.world import WorldConfig, generate_world

    settings = load_settings()
    cfg = WorldConfig.from_dict({"world": {
        "seed": 1, "n_users": 100_000, "n_products": 1000, "n_categories": 8, "n_segments": 3,
        "n_styles": 6, "days": 1, "impressions_per_day": args.events, "malformed_rate": 0.01,
        "duplicate_rate": 0.01, "files_per_day": args.files, "image_size": 16}})
    t = time.perf_counter()
    w = generate_world(cfg, settings.home, progress=lambda m: print("  world:", m, flush=True))
    gen_s = time.perf_counter() - t
    landing_bytes = sum(p.stat().st_size for p in (settings.home / "landing").rglob("*.jsonl"))
    print(f"world: {w.n_lines:,} landing lines ({landing_bytes / 1e6:.0f} MB) in {gen_s:.1f}s", flush=True)

    spark = get_spark(settings)
    spark.range(1).count()  # start-up is not part of the figure
    lake = Lake(settings)
    t = time.perf_counter()
    res = ingest_events.run(cfg.dates[0], settings, run_id="bench", spark=spark, lake=lake)
    ingest_s = time.perf_counter() - t

    events = lake.read_arrow("impressions")
    out = settings.home / "raw_parquet" / "events.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    pq.write_table(events, out, compression="zstd")
    raw_s = time.perf_counter() - t

    lines = res.total("lines_read")
    print()
    print(f"lines read            {lines:>12,}")
    print(f"accepted              {res.total('accepted'):>12,}")
    print(f"duplicates skipped    {res.total('duplicates'):>12,}")
    print(f"quarantined           {res.total('quarantined'):>12,}")
    print(f"ingest wall time      {ingest_s:>12.1f} s   -> {lines / ingest_s:>12,.0f} events/s")
    print(f"raw pyarrow->Parquet  {raw_s:>12.1f} s   -> {events.num_rows / raw_s:>12,.0f} events/s")
    print(f"ratio (raw / ingest)  {(events.num_rows / raw_s) / (lines / ingest_s):>12.1f} x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

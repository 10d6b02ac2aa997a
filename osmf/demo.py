"""The main job on the embedded default: generate the world, ingest every day, validate every
partition and dimension, and print what is in the lake. One Spark session for the whole run."""

from __future__ import annotations

import time

from osmf.settings import Settings


def run_demo(settings: Settings, cfg) -> int:
    from jobs import ingest_events, validate_table
    from osmf.cli import lake_summary
    from osmf.lake import Lake
    from osmf.spark import get_spark
    from osmf.world import generate_world

    t0 = time.perf_counter()
    step = lambda msg: print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", flush=True)  # noqa: E731
    step(f"generating the world (seed {cfg.seed}, {cfg.days} days x {cfg.impressions_per_day} impressions) "
         f"into {settings.home}")
    summary = generate_world(cfg, settings.home)
    step(f"world ready: {summary.n_lines} landing lines in {summary.seconds:.1f}s")
    step("starting Spark (local)")
    spark = get_spark(settings)
    lake = Lake(settings)
    failures = []
    for k, date in enumerate(summary.dates, start=1):
        res = ingest_events.run(date, settings, spark=spark, lake=lake)
        step(f"[{k}/{len(summary.dates)}] ingested {date}: {res.total('lines_read')} lines -> "
             f"{res.total('accepted')} accepted, {res.total('duplicates')} duplicates, "
             f"{res.total('quarantined')} quarantined")
        for table in ("impressions", "quarantine", "ingest_audit"):
            report = validate_table.run(table, date, settings)
            if not report.success:
                failures.append(report)
                print(report.summary())
    for table in ("users", "products", "creatives"):
        report = validate_table.run(table, None, settings)
        if not report.success:
            failures.append(report)
            print(report.summary())
    step(f"quality gates: {'all passed' if not failures else f'{len(failures)} FAILED'}")
    print()
    print(lake_summary(lake))
    print()
    from osmf import sqlrun

    q = sqlrun.load_query("category_daily_volume")
    df = sqlrun.run_query(q, {"start_date": summary.dates[0], "end_date": summary.dates[-1]}, "spark", lake, spark)
    print("Impressions and CTR per category and day (sql/category_daily_volume.sql):")
    print(sqlrun.render(df))
    step("done")
    return 1 if failures else 0

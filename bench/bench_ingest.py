"""Ingest benchmark: N events of one day (default 5,000,000) ingested by the real job, beside the
fair baseline (the same valid lines parsed AND written: pyarrow.json.read_json + Parquet, one
thread), a json.loads loop, and the old baseline (already-parsed events -> Parquet); then the
driver's peak RSS while ingesting N and 4N events.

    make bench                                    # or: .venv/bin/python bench/bench_ingest.py
    .venv/bin/python bench/bench_ingest.py --events 500000 --rss-events 500000 2000000   # quick

One run prints:

* ingest: wall time of ``jobs.ingest_events.ingest_day`` in a fresh process (Spark and its Python workers
  already started: their start-up is not counted), as landing lines/s (every line read, malformed
  ones included);
* fair baseline: ``pyarrow.json.read_json`` (explicit schema, ``use_threads=False``) of the day's
  valid lines (the lines that are neither malformed nor of unknown ids: good events and their
  duplicates) + ``pyarrow.parquet.write_table`` (zstd), lines/s: the fastest of three runs (this
  machine's speed varies from run to run; the fastest is the tightest limit);
* json.loads loop: the same valid lines, one ``json.loads`` each into column lists, then the same
  Parquet write, lines/s;
* old baseline: the ingested ``impressions`` (already parsed, read back) -> Parquet, events/s;
* the ratios of the ingest to each, and the goal (ingest >= 1/3 of the fair baseline);
* driver peak RSS: each size ingested in a fresh process (its own Spark), RSS sampled every 50 ms
  during the ingest: the Python driver and the driver JVM (with ``--rss-master`` ``local-cluster``,
  the default, executors are separate JVMs, so the driver JVM is the driver alone; with ``local[*]``
  the JVM also runs the tasks), and the 4N/N ratios.

Landing lines are synthetic (``bench/landing.py``: the generator's format, malformed kinds and
duplicates, written in Arrow kernels); the dimensions come from a small generated world. State goes
to ``bench/out/home`` (not your .osmf).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATE = "2026-01-01"


def _world(home: Path) -> None:
    """A small world for the dimensions (100k users, 1000 products); its landing is replaced."""
    from osmf.world import WorldConfig, generate_world

    cfg = WorldConfig.from_dict({"world": {
        "seed": 1, "n_users": 100_000, "n_products": 1000, "n_categories": 8, "n_segments": 3,
        "n_styles": 6, "days": 1, "impressions_per_day": 1000, "malformed_rate": 0.01,
        "duplicate_rate": 0.01, "files_per_day": 1, "image_size": 16}})
    assert cfg.dates[0] == DATE, cfg.dates
    generate_world(cfg, home)


def _landing(home: Path, events: int, files: int, valid: bool):
    sys.path.insert(0, str(HERE))
    from landing import write_landing

    t = time.perf_counter()
    out = write_landing(home / "landing" / "events" / f"event_date={DATE}", home / "landing" / "dimensions", DATE, events,
                        files=files, valid_path=home / "valid.jsonl" if valid else None)
    print(f"landing: {out.lines:,} lines ({out.bytes / 1e6:,.0f} MB, {out.malformed:,} malformed, "
          f"{out.duplicates:,} duplicates) written in {time.perf_counter() - t:.1f}s", flush=True)
    return out


# --- one ingest in a fresh process (the child) -----------------------------------------------------

class _RssSampler(threading.Thread):
    """Peak RSS of this process and of its driver JVM (the java process it started), every 50 ms."""

    def __init__(self):
        super().__init__(daemon=True)
        import psutil

        self.me = psutil.Process()
        self.jvm = next((p for p in self.me.children() if "java" in p.name()), None)
        self.peak = {"python": 0, "jvm": 0}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.peak["python"] = max(self.peak["python"], self.me.memory_info().rss)
                if self.jvm is not None:
                    self.peak["jvm"] = max(self.peak["jvm"], self.jvm.memory_info().rss)
            except Exception:  # noqa: BLE001 - a process gone at the end
                pass
            self.stop.wait(0.05)


def child(args) -> int:
    os.environ["OSMF_HOME"] = str(args.home)
    os.environ["OSMF_SPARK_DRIVER_MEMORY"] = args.driver_memory
    if args.master:
        os.environ["OSMF_SPARK_MASTER"] = args.master
    from jobs import ingest_events
    from osmf.lake import Lake
    from osmf.config.settings import load_settings
    from osmf.lake.spark import get_spark

    settings = load_settings()
    spark = get_spark(settings)
    # start-up is not part of the figure: the JVM, and the Python workers the tasks run in
    spark.range(0, 2, numPartitions=2).mapInArrow(lambda batches: batches, "id long").count()
    sampler = _RssSampler()
    sampler.start()
    t = time.perf_counter()
    from osmf.runtime.context import JobContext

    res = ingest_events.ingest_day(JobContext(settings, DATE, "bench", _lake=Lake(settings), _spark=spark))
    seconds = time.perf_counter() - t
    sampler.stop.set()
    sampler.join()
    print("RESULT " + json.dumps({"seconds": seconds, "lines": res.total("lines_read"),
                                  "accepted": res.total("accepted"), "duplicates": res.total("duplicates"),
                                  "quarantined": res.total("quarantined"), "reasons": res.reasons,
                                  "rss_python": sampler.peak["python"], "rss_jvm": sampler.peak["jvm"]}), flush=True)
    return 0


def _run_child(args, master: str | None, driver_memory: str) -> dict:
    if (args.home / "lake").exists():
        shutil.rmtree(args.home / "lake")
    cmd = [sys.executable, __file__, "--child", "--home", str(args.home), "--driver-memory", driver_memory]
    if master:
        cmd += ["--master", master]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
    raise SystemExit(f"the ingest child failed (exit {proc.returncode})")


# --- the baselines (in this process, on the same lines) ----------------------------------------------

FAIR_RUNS = 3


def _baselines(home: Path) -> dict:
    import pyarrow as pa
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    from osmf.lake import Lake
    from osmf.config.settings import load_settings

    schema = pa.schema([("event_id", pa.string()), ("event_ts", pa.int64()), ("user_id", pa.string()),
                        ("product_id", pa.string()), ("creative_id", pa.string()), ("clicked", pa.int32())])
    out = home / "baselines"
    out.mkdir(exist_ok=True)
    valid = home / "valid.jsonl"
    fair = None
    for _ in range(FAIR_RUNS):  # the fastest run: the tightest limit (this machine's speed varies)
        t = time.perf_counter()
        tbl = pj.read_json(valid, read_options=pj.ReadOptions(use_threads=False),
                           parse_options=pj.ParseOptions(explicit_schema=schema))
        pq.write_table(tbl, out / "fair.parquet", compression="zstd")
        run = (tbl.num_rows, time.perf_counter() - t)
        fair = run if fair is None or run[1] < fair[1] else fair
        del tbl
    t = time.perf_counter()
    cols = {f.name: [] for f in schema}
    appends = [(k, cols[k].append) for k in cols]
    with open(valid, "rb") as fh:
        for line in fh:
            obj = json.loads(line)
            for k, add in appends:
                add(obj[k])
    pq.write_table(pa.table(cols, schema=schema), out / "loads.parquet", compression="zstd")
    loads = (len(cols["event_id"]), time.perf_counter() - t)
    del cols, appends
    events = Lake(load_settings({"OSMF_HOME": str(home)})).read_arrow("impressions")
    t = time.perf_counter()
    pq.write_table(events, out / "old.parquet", compression="zstd")
    old = (events.num_rows, time.perf_counter() - t)
    return {"fair": fair, "loads": loads, "old": old}


def _report(res: dict, base: dict) -> None:
    rate = res["lines"] / res["seconds"]
    fair, loads, old = (n / s for n, s in (base["fair"], base["loads"], base["old"]))
    print()
    print(f"lines read              {res['lines']:>12,}")
    print(f"accepted                {res['accepted']:>12,}")
    print(f"duplicates skipped      {res['duplicates']:>12,}")
    print(f"quarantined             {res['quarantined']:>12,}   " +
          ", ".join(f"{k}={v}" for k, v in sorted(res["reasons"].items())))
    print(f"ingest                  {res['seconds']:>10.1f} s -> {rate:>12,.0f} lines/s   (jobs.ingest_events.run, Spark started)")
    print(f"fair baseline           {base['fair'][1]:>10.1f} s -> {fair:>12,.0f} lines/s   "
          f"(pyarrow.json.read_json + Parquet, 1 thread, {base['fair'][0]:,} valid lines, fastest of {FAIR_RUNS})")
    print(f"json.loads loop         {base['loads'][1]:>10.1f} s -> {loads:>12,.0f} lines/s   (+ the same Parquet write)")
    print(f"old baseline            {base['old'][1]:>10.1f} s -> {old:>12,.0f} events/s  (parsed events -> Parquet)")
    print(f"ratio ingest / fair     {rate / fair:>12.2f}   (goal >= 0.33)")
    print(f"ratio ingest / loads    {rate / loads:>12.2f}")
    print(f"ratio ingest / old      {rate / old:>12.2f}")


def _rss(args) -> None:
    small, big = args.rss_events
    peaks = []
    for n in (small, big):
        _landing(args.home, n, args.files, valid=False)
        r = _run_child(args, args.rss_master, args.rss_driver_memory)
        peaks.append(r)
        print(f"driver peak RSS, {n:>11,} events: python {r['rss_python'] / 2**20:>7,.0f} MiB, "
              f"driver JVM {r['rss_jvm'] / 2**20:>7,.0f} MiB   (ingest {r['seconds']:.1f} s, master {args.rss_master})",
              flush=True)
    a, b = peaks
    print(f"ratio {big / small:.0f}x events:        python {b['rss_python'] / a['rss_python']:>7.2f}x, "
          f"driver JVM {b['rss_jvm'] / max(a['rss_jvm'], 1):>7.2f}x")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--rss-events", type=int, nargs=2, default=[5_000_000, 20_000_000], metavar=("N", "4N"))
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--home", type=Path, default=HERE / "out" / "home")
    ap.add_argument("--driver-memory", default="8g", help="the timing run (local mode: also the executors')")
    ap.add_argument("--rss-master", default="local-cluster[1,2,6144]",
                    help="Spark master of the RSS runs (local-cluster: executors in their own JVM)")
    ap.add_argument("--rss-driver-memory", default="2g")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--master", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    if args.home.exists():
        shutil.rmtree(args.home)
    args.home.mkdir(parents=True)
    t = time.perf_counter()
    _world(args.home)
    print(f"world (dimensions): {time.perf_counter() - t:.1f}s", flush=True)
    _landing(args.home, args.events, args.files, valid=True)
    res = _run_child(args, None, args.driver_memory)
    _report(res, _baselines(args.home))
    if not args.skip_rss:
        print()
        _rss(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

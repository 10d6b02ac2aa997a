"""The full nightly chain on a world preset (default ``medium``): ``osmf_ingest`` for every day, then
``osmf_regroup`` -> ``osmf_train`` -> ``osmf_generate`` for the last day, in one process with one
Spark session: the same stages the Airflow tasks run (``osmf_app.chain.run_stage``), without the
scheduler. Prints each stage's wall time, the total, and the driver's peak RSS (this Python process
and its Spark JVM, sampled every 0.5 s), with the date and commit.

    .venv/bin/python bench/bench_chain.py                       # medium: generates the world first
    .venv/bin/python bench/bench_chain.py --home bench/out/chain-medium --reuse-world
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class PeakRSS:
    """Samples the RSS of this process and of its Spark JVM (a child) in a thread."""

    def __init__(self, every: float = 0.5):
        import psutil

        self.me, self.every = psutil.Process(), every
        self.python = self.jvm = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                self.python = max(self.python, self.me.memory_info().rss)
                jvm = sum(p.memory_info().rss for p in self.me.children(recursive=True) if "java" in p.name())
                self.jvm = max(self.jvm, jvm)
            except psutil.Error:
                pass
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="medium", choices=["tiny", "small", "medium"])
    ap.add_argument("--home", type=Path, default=None, help="OSMF_HOME (default bench/out/chain-<preset>)")
    ap.add_argument("--reuse-world", action="store_true", help="keep the world already in --home (a fresh lake)")
    args = ap.parse_args(argv)
    home = (args.home or ROOT / "bench" / "out" / f"chain-{args.preset}").resolve()
    os.environ["OSMF_HOME"] = str(home)
    from osmf.config.settings import load_settings
    from osmf.world import read_manifest

    home.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if not args.reuse_world or not (home / "truth" / "manifest.json").exists():
        # in a child process: the generator's memory is not the chain's driver RSS
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "osmf_app.cli", "world", "generate", "--preset", args.preset],
                       check=True, cwd=ROOT, env=dict(os.environ, OSMF_HOME=str(home)))
        print(f"world {args.preset} generated in {time.perf_counter() - t:.0f}s", flush=True)
    for d in ("lake", "mlflow.db", "mlartifacts", "models", "generated", "quality"):
        subprocess.run(["rm", "-rf", str(home / d)], check=True)  # a fresh lake and registry, same world
    dates = read_manifest(home)["dates"]
    rss = PeakRSS()
    times = run_chain(load_settings(), dates)
    rss.stop()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    print(f"\nchain on {args.preset} ({len(dates)} days), {time.strftime('%Y-%m-%d')}, commit {commit.strip()}, "
          f"{os.cpu_count()} cores:")
    for name, secs in times.items():
        print(f"  {name:<28} {secs:8.1f} s")
    print(f"  {'total (chain)':<28} {sum(times.values()):8.1f} s  ({sum(times.values()) / 60:.1f} min)")
    print(f"  driver peak RSS: Python {rss.python / 2**30:.2f} GiB, Spark JVM {rss.jvm / 2**30:.2f} GiB")
    print(f"  wall with the world: {time.perf_counter() - t0:.0f} s")
    return 0


def run_chain(settings, dates: list[str]) -> dict[str, float]:
    from osmf.lake import Lake
    from osmf.lake.spark import get_spark
    from osmf.runtime.context import JobContext
    from osmf_app.chain import DAILY, STAGES, run_stage

    spark, lake = get_spark(settings), Lake(settings)
    times: dict[str, float] = {}
    for stage in STAGES:
        for day in (dates if stage in DAILY else dates[-1:]):
            t = time.perf_counter()
            run_stage(stage, JobContext(settings, day, f"bench-{day}", _lake=lake, _spark=spark),
                      say=lambda m: print("  " + m, flush=True))
            key = f"{stage.dag_id} {day}" if stage not in DAILY else stage.dag_id
            times[key] = times.get(key, 0.0) + time.perf_counter() - t
    return times


if __name__ == "__main__":
    sys.exit(main())

"""The main job on the embedded default (README command 1): generate the world, run the nightly
chain through Airflow (``osmf_ingest`` for every day, then ``osmf_regroup`` -> ``osmf_train`` ->
``osmf_generate`` for the last day), then evaluate the grouping and the simulated A/B test, print
the results and write the reports under ``$OSMF_HOME/reports``."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from osmf.config.settings import Settings


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_demo(settings: Settings, cfg) -> int:
    from osmf.lake import Lake, summary
    from osmf.world import generate_world
    from osmf_app.airflow_local import run_chain
    from osmf_app.evaluation import ab, grouping_report, print_grouping

    t0 = time.perf_counter()

    def step(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", flush=True)

    if settings.mlflow_db.exists() or settings.lake_root.exists():
        step(f"note: {settings.home} already holds a lake or a model registry from an earlier run: its champions "
             "compete with this run's challengers and stay if not beaten, so the figures may reflect older code. "
             "For figures of this code alone, start from an empty home (`make clean`, or another OSMF_HOME)")
    step(f"generating the world (seed {cfg.seed}, {cfg.days} days x {cfg.impressions_per_day} impressions) "
         f"into {settings.home}")
    world = generate_world(cfg, settings.home)
    step(f"world ready: {world.n_lines} landing lines in {world.seconds:.1f}s")
    run_chain(settings, list(world.dates), say=step)
    last = world.dates[-1]
    step("evaluating the grouping and the simulated A/B test (the only steps that read the hidden truth)")
    report = grouping_report(settings, last)
    print()
    print(summary(Lake(settings)))
    print()
    print_grouping(report, last)
    print()
    r = ab(settings, last)
    lo, hi = r.get("grm_pair_accuracy_gain_ci") or (None, None)
    pairs = r.get("grm_heldout_pairs")
    interval = f"; gain 95% interval [{lo:+.3f}, {hi:+.3f}]" if lo is not None else ""  # GRMs from before: none
    print(f"  GRM held-out pair accuracy {r['grm_pair_accuracy']:.3f} (group-blind {r['grm_baseline_pair_accuracy']:.3f}"
          f"{interval}, {int(pairs) if pairs is not None else '?'} held-out pairs)")
    print(f"  measured {time.strftime('%Y-%m-%d')} at commit {_commit()}, world seed {cfg.seed}")
    print()
    print("Browse the same state:")
    print(f"  MLflow UI : .venv/bin/mlflow ui --backend-store-uri {settings.mlflow_uri} --host 127.0.0.1 --port 5000")
    print(f"  Airflow UI: AIRFLOW_HOME={settings.airflow_home.resolve()} AIRFLOW__CORE__DAGS_FOLDER=$PWD/dags "
          ".venv/bin/airflow standalone   (then http://127.0.0.1:8080)")
    step("done")
    return 0

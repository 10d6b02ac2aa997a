"""The main job on the embedded default (README command 1): generate the world, run the nightly
chain through Airflow (``osmf_ingest`` for every day, then ``osmf_regroup`` -> ``osmf_train`` ->
``osmf_generate`` for the last day), then evaluate the grouping and the simulated A/B test, print
the results and write the reports under ``$OSMF_HOME/reports``."""

from __future__ import annotations

import time

from osmf.settings import Settings


def run_demo(settings: Settings, cfg) -> int:
    from osmf.cli import lake_summary
    from osmf.lake import Lake
    from osmf.pipeline import ab, grouping_report, run_chain
    from osmf.world import generate_world

    t0 = time.perf_counter()
    step = lambda msg: print(f"[{time.perf_counter() - t0:6.1f}s] {msg}", flush=True)  # noqa: E731
    step(f"generating the world (seed {cfg.seed}, {cfg.days} days x {cfg.impressions_per_day} impressions) "
         f"into {settings.home}")
    summary = generate_world(cfg, settings.home)
    step(f"world ready: {summary.n_lines} landing lines in {summary.seconds:.1f}s")
    run_chain(settings, list(summary.dates), say=lambda m: step(m))
    last = summary.dates[-1]
    step("evaluating the grouping and the simulated A/B test (the only steps that read the hidden truth)")
    report = grouping_report(settings, last)
    print()
    print(lake_summary(Lake(settings)))
    print()
    print(f"Grouping of {last} (reports/grouping_{last}.json, .png):")
    print(f"  {'K':>3} {'NDCG@5 vs overall':>18} {'NDCG@5 vs truth':>16} {'ARI vs segments':>16}")
    for k in report["ndcg5_by_k"]:
        ari = report["ari_product_aware_by_k"].get(k)
        print(f"  {k:>3} {report['ndcg5_by_k'][k]:>18.4f} {report['ndcg5_truth_by_k'][k]:>16.4f} "
              f"{'' if ari is None else f'{ari:.3f}':>16}")
    print(f"  ARI of the chosen groups: product-aware {report['ari_product_aware']:.3f}, "
          f"product-agnostic baseline {report['ari_product_agnostic']:.3f}")
    print()
    r = ab(settings, last)
    print(f"  GRM held-out pair accuracy {r['grm_pair_accuracy']:.3f} (group-blind {r['grm_baseline_pair_accuracy']:.3f})")
    print()
    print("Browse the same state:")
    print(f"  MLflow UI : .venv/bin/mlflow ui --backend-store-uri {settings.mlflow_uri} --host 127.0.0.1 --port 5000")
    print(f"  Airflow UI: AIRFLOW_HOME={settings.home.resolve() / 'airflow'} AIRFLOW__CORE__DAGS_FOLDER=$PWD/dags "
          ".venv/bin/airflow standalone   (then http://127.0.0.1:8080)")
    step("done")
    return 0

"""The main job on the embedded default: generate the world, ingest every day, validate every
partition and dimension, regroup the last day (PAAG -> K-Means -> group CTR and pairs), evaluate
the grouping, and print what is in the lake. One Spark session for the whole run."""

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
    if failures:
        return 1
    from osmf import evaluate_grouping
    from osmf.regroup import regroup

    last = summary.dates[-1]
    out = regroup(last, settings, spark=spark, lake=lake, say=lambda m: print(m, flush=True))
    paag = out["PAAG embeddings"]
    step(f"PAAG held-out AUC {paag['holdout_auc']:.3f} (style-only {paag['holdout_auc_style_only']:.3f}); "
         f"groups: {out['grouping']['groups']} for {out['grouping']['products']} products, K chosen {out['grouping']['chosen_k']}")
    step("evaluating the grouping on the simulator (reads the hidden truth)")
    report = evaluate_grouping.evaluate(last, settings, spark, lake)
    reports = settings.home / "reports"
    evaluate_grouping.write(report, reports / f"grouping_{last}.json", reports / f"grouping_{last}.png")
    from jobs import train_grm

    step("training the group reward model (MLflow run, registered as osmf-grm challenger)")
    grm = train_grm.run(last, settings, lake=lake)
    decision = train_grm.promote(settings, lake)
    step(f"GRM v{grm['version']}: held-out pair accuracy {grm['grm_pair_accuracy']:.3f} "
         f"(group-blind baseline {grm['baseline_pair_accuracy']:.3f}) on {grm['grm_pairs']} pairs, "
         f"AUROC {grm['grm_auroc']:.3f} ({grm['baseline_auroc']:.3f}); "
         f"promotion: {'promoted' if decision['promoted'] else 'refused'} ({decision['reason']})")
    print()
    print(lake_summary(lake))
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
    from osmf import sqlrun

    q = sqlrun.load_query("category_daily_volume")
    df = sqlrun.run_query(q, {"start_date": summary.dates[0], "end_date": summary.dates[-1]}, "spark", lake, spark)
    print("Impressions and CTR per category and day (sql/category_daily_volume.sql):")
    print(sqlrun.render(df))
    q = sqlrun.load_query("group_disagreement")
    df = sqlrun.run_query(q, {"run_date": last}, "duckdb", lake)
    print()
    print(f"How much each product's groups disagree on {last} (sql/group_disagreement.sql, top 10):")
    print(sqlrun.render(df.head(10)))
    step("done")
    return 0

"""``osmf evaluate grouping`` and ``osmf evaluate ab``: run the evaluations (the only code that reads
the world's hidden truth), write their reports under ``$OSMF_HOME/reports`` and print them."""

from __future__ import annotations

import json
from pathlib import Path


def grouping_report(settings, run_date: str, json_path: Path | None = None, plot_path: Path | None = None,
                    reuse: bool = True) -> dict:
    """The grouping evaluation of a run date, reused from its JSON when ``reuse`` and the JSON was
    made from the lake's current ``user_groups`` (a regroup, or a new world in the same home, since
    makes it stale)."""
    from osmf.evaluation import grouping as evaluate_grouping
    from osmf.lake import Lake

    json_path = Path(json_path or settings.reports_root / f"grouping_{run_date}.json")
    last = Lake(settings).history("user_groups", 1)[0]
    version = f"{last.get('version')}@{last.get('timestamp')}"  # a new lake in the same home restarts versions
    if reuse and json_path.exists():
        old = json.loads(json_path.read_text())
        if old.get("user_groups_version") == version:
            return old
    report = {**evaluate_grouping.evaluate(run_date, settings), "user_groups_version": version}
    evaluate_grouping.write(report, json_path, Path(plot_path or json_path.with_suffix(".png")))
    return report


def ab(settings, run_date: str, json_path: Path | None = None, html_path: Path | None = None) -> dict:
    """The simulated A/B test of a run date: JSON and HTML written, the table printed."""
    from osmf.evaluation import ab as evaluate_ab

    json_path = Path(json_path or settings.reports_root / f"ab_{run_date}.json")
    html_path = Path(html_path or json_path.with_suffix(".html"))
    report, per_group = evaluate_ab.evaluate_ab(run_date, settings, grouping_report=grouping_report(settings, run_date))
    evaluate_ab.write(report, per_group, json_path, html_path, settings)
    print(evaluate_ab.render_table(report))
    print(f"wrote {json_path} and {html_path}")
    return report


def ab_on_new_world(settings, world_config: Path) -> str:
    """Generate a world from ``world_config`` into an empty ``$OSMF_HOME`` and run the whole chain
    through Airflow; returns its last date."""
    from osmf.world import WorldConfig, generate_world
    from osmf_app.airflow_local import run_chain

    if settings.lake_root.exists():
        raise ValueError(f"{settings.home} already holds a lake; point OSMF_HOME at an empty directory "
                         "to run a new world")
    summary = generate_world(WorldConfig.from_toml(world_config), settings.home)
    run_chain(settings, list(summary.dates))
    return summary.dates[-1]


def print_grouping(report: dict, run_date: str) -> None:
    print(f"Grouping of {run_date} (reports/grouping_{run_date}.json, .png):")
    print(f"  {'K':>3} {'NDCG@5 vs overall':>18} {'NDCG@5 vs truth':>16} {'ARI vs segments':>16}")
    for k in report["ndcg5_by_k"]:
        ari = report["ari_product_aware_by_k"].get(k)
        print(f"  {k:>3} {report['ndcg5_by_k'][k]:>18.4f} {report['ndcg5_truth_by_k'][k]:>16.4f} "
              f"{'' if ari is None else f'{ari:.3f}':>16}")
    print(f"  ARI of the chosen groups: product-aware {report['ari_product_aware']:.3f}, "
          f"product-agnostic baseline {report['ari_product_agnostic']:.3f}")

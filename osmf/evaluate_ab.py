"""Simulated A/B evaluation of a run date (reads the hidden truth: evaluation only).

On the users held out from training (``osmf.audience``: their clicks never reached group CTR, pairs
or any model), each product's audience (``user_groups``) is shown, per arm:

* ``one_size``: one creative per product from the plain-DPO model (pairs pooled, no group
  conditioning; the ``pooled_dpo`` artifact of the champion G-MLLM's run), best of N by the GRM
  scored for the whole audience;
* ``osmf``: each group's generated creative (``generated_creatives``);
* ``oracle``: every user the truly best style for their segment;
* ``best_historical``: the product's historical creative with the best observed CTR.

Expected CTR comes from the simulator; a generated creative's style is read from its prompt (the
tiny diffusion renderer's pixels carry no style on CPU). Figures are user-weighted means.
``lift_vs_one_size`` = osmf / one_size - 1; ``oracle_fraction`` = (osmf - one_size) / (oracle - one_size).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from osmf.plots import AB_ARMS as ARMS

log = logging.getLogger("osmf.evaluate_ab")


def one_size_prompts(settings, lake, run_date: str) -> tuple[pd.DataFrame, str]:
    """Per product: the one-size-fits-all prompt of the plain-DPO model (and where it came from)."""
    import mlflow

    from osmf import registry
    from osmf.candidates import best_of_n
    from osmf.rendering import make_renderer, product_assets
    from osmf.settings import load_models
    from osmf.training_data import load_group_data
    from osmf_models.gmllm import GMLLM
    from osmf_models.gmllm.data import full_prompt, product_images
    from osmf_models.group_dpo.train import audience_features

    champ = registry.require(registry.GMLLM, "champion")
    path = mlflow.artifacts.download_artifacts(run_id=champ.run_id, artifact_path="pooled_dpo",
                                               dst_path=str(settings.home / "tmp" / f"pooled_v{champ.version}"))
    pooled = GMLLM.load(path)
    grm, _ = registry.load(registry.GRM, "champion")
    d = load_group_data(lake, settings.home, run_date)
    G_aud = audience_features(d.ex, d.ex["size"].to_numpy(float))
    first = d.ex.drop_duplicates("product_id").index.to_numpy()
    ex = d.ex.loc[first].assign(features=list(G_aud[first].numpy())).reset_index(drop=True)
    m = load_models()
    backgrounds, _, _ = best_of_n(pooled, grm, ex, G_aud[first], product_images(ex, settings.home, pooled.cfg.image_size),
                                  product_assets(d.frames["products"], settings.home), make_renderer("procedural"),
                                  m.best_of_n, m.temperature)
    prompts = [full_prompt(t, b) for t, b in zip(ex.title, backgrounds)]
    return pd.DataFrame({"product_id": ex.product_id, "prompt": prompts}), f"{registry.GMLLM} v{champ.version} run {champ.run_id}/pooled_dpo"


def evaluate_ab(run_date: str, settings, lake=None, grouping_report: dict | None = None) -> tuple[dict, pd.DataFrame]:
    """(report, per-group table)."""
    from mlflow import MlflowClient

    from osmf import registry, tracking
    from osmf.audience import is_heldout
    from osmf.lake import Lake
    from osmf.settings import load_grouping
    from osmf.world.simulator import Simulator

    lake = lake or Lake(settings)
    tracking.setup(settings)
    g = load_grouping()
    sim = Simulator(settings.home)
    ug = lake.read_pandas("user_groups", partition=run_date)
    gen = lake.read_pandas("generated_creatives", partition=run_date)
    if gen.empty:
        raise ValueError(f"generated_creatives has no rows for {run_date}; run `osmf generate --run-date {run_date}`")
    ug = ug[ug.user_id.map(lambda u: is_heldout(u, g.eval_holdout_fraction))]
    one, one_src = one_size_prompts(settings, lake, run_date)
    one = dict(zip(one.product_id, one.prompt))
    ctr = lake.read_pandas("group_creative_ctr", partition=run_date)
    overall = ctr.groupby(["product_id", "creative_id"])[["clicks", "impressions"]].sum()
    best_hist = (overall.clicks / overall.impressions).reset_index(name="ctr").sort_values(
        ["product_id", "ctr", "creative_id"], ascending=[True, False, True]).drop_duplicates("product_id")
    creatives = lake.read_pandas("creatives", columns=["creative_id", "style"])
    style = dict(zip(creatives.creative_id, creatives["style"]))
    hist = {p: style[c] for p, c in zip(best_hist.product_id, best_hist.creative_id)}
    gen_prompt = {(p, gid): pr for p, gid, pr in zip(gen.product_id, gen.group_id, gen.prompt)}
    rows = []
    # users in a fixed order, so the truth's mean over them is the same to the last bit on every run
    for (pid, gid), users in ug.sort_values("user_id").groupby(["product_id", "group_id"]).user_id:
        users = list(users)
        if (pid, gid) not in gen_prompt:
            continue
        rows.append({"product_id": pid, "group_id": int(gid), "users": len(users),
                     "one_size": sim.expected_ctr(pid, users, prompt=one[pid]),
                     "osmf": sim.expected_ctr(pid, users, prompt=gen_prompt[(pid, gid)]),
                     "oracle": sim.oracle_ctr(pid, users),
                     "best_historical": sim.expected_ctr(pid, users, style=hist[pid]),
                     "osmf_style": sim.resolve_style(prompt=gen_prompt[(pid, gid)]),
                     "one_size_style": sim.resolve_style(prompt=one[pid])})
    per_group = pd.DataFrame(rows)
    if per_group.empty:
        raise ValueError(f"no held-out users in the groups of {run_date}; raise [grouping].eval_holdout_fraction")
    w = per_group.users.to_numpy()
    ctrs = {a: float(np.average(per_group[a], weights=w)) for a in ARMS}
    gap = ctrs["oracle"] - ctrs["one_size"]
    client = MlflowClient()
    grm_v = registry.require(registry.GRM, "champion")
    grm_metrics = client.get_run(grm_v.run_id).data.metrics
    report = {
        "run_date": run_date, "heldout_users": int(ug.user_id.nunique()), "groups": int(len(per_group)),
        "products": int(per_group.product_id.nunique()),
        **{f"ctr_{a}": v for a, v in ctrs.items()},
        "lift_vs_one_size": ctrs["osmf"] / ctrs["one_size"] - 1,
        "lift_vs_best_historical": ctrs["osmf"] / ctrs["best_historical"] - 1,
        "oracle_fraction": (ctrs["osmf"] - ctrs["one_size"]) / gap if gap > 0 else float("nan"),
        "osmf_style_readable": float(per_group.osmf_style.notna().mean()),
        "grm_pair_accuracy": grm_metrics.get("grm_pair_accuracy"),
        "grm_baseline_pair_accuracy": grm_metrics.get("baseline_pair_accuracy"),
        "grm_auroc": grm_metrics.get("grm_auroc"),
        "models": {"gmllm": registry.require(registry.GMLLM, "champion").version,
                   "grm": grm_v.version, "one_size": one_src},
        "style_read_from": "prompt text (simulator); the pixels are not judged",
    }
    if grouping_report:
        report["grouping"] = {k: grouping_report[k] for k in ("ndcg5_by_k", "ndcg5_truth_by_k", "ari_product_aware",
                                                                "ari_product_agnostic", "chosen_k_counts") if k in grouping_report}
    return report, per_group


def write(report: dict, per_group: pd.DataFrame, json_path: Path, html_path: Path | None, settings, lake=None) -> None:
    """Write the JSON (and HTML) and log both to MLflow with the headline metrics."""
    import mlflow

    from osmf.lake import Lake
    from osmf.plots import ab_html

    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=1, default=str))
    with mlflow.start_run(run_name=f"evaluate-ab-{report['run_date']}"):
        mlflow.set_tags({"osmf.stage": "evaluate-ab", "osmf.run_date": report["run_date"]})
        mlflow.log_metrics({k: float(v) for k, v in report.items() if isinstance(v, (int, float)) and v == v})
        mlflow.log_artifact(str(json_path), "ab")
        if html_path:
            html_path = Path(html_path)
            gen = (lake or Lake(settings)).read_pandas("generated_creatives", partition=report["run_date"])
            html_path.write_text(ab_html(report, per_group, gen, settings.home))
            mlflow.log_artifact(str(html_path), "ab")


def render_table(report: dict) -> str:
    lines = [f"Simulated A/B on {report['heldout_users']} held-out users ({report['groups']} groups, "
             f"{report['products']} products, {report['run_date']}):",
             f"  {'arm':<18} {'expected CTR':>12}"]
    for a in ARMS:
        lines.append(f"  {a:<18} {report[f'ctr_{a}']:>12.5f}")
    lines.append(f"  lift vs one-size-fits-all {report['lift_vs_one_size']:+.2%}; vs best historical "
                 f"{report['lift_vs_best_historical']:+.2%}; oracle fraction {report['oracle_fraction']:.3f}")
    return "\n".join(lines)

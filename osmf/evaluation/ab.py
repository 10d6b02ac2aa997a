"""Simulated A/B evaluation of a run date (reads the hidden truth: evaluation only).

On the users held out from training (``osmf.data.audience``: their clicks never reached PAAG, group CTR,
pairs or any model), each product's audience (``user_groups``) is shown, per arm:

* ``one_size``: one creative per product from the plain-DPO model (pairs pooled, no group
  conditioning; the ``pooled_dpo`` artifact of the champion G-MLLM's run), best of N by the GRM
  scored for the whole audience, rendered like the generated creatives;
* ``osmf``: each group's generated creative (``generated_creatives``, the image on disk);
* ``best_historical``: the product's historical creative with the best observed CTR;
* ``one_size_oracle``: each product's one truly best style for its whole held-out audience;
* ``group_best_historical``: for each group, the historical creative (from any product's history in
  the lake, re-composed around this product as the retrieval renderer does) that the world truly
  rates best for the group's held-out users: the most a renderer that retrieves history can reach
  (on a world whose perception is soft, no historical background is a pure style, so the pure-style
  oracles overstate what any creative can do);
* ``group_ceiling``: each group's one truly best style (what the grouping allows);
* ``oracle``: every user the truly best style for their segment.

Every creative is judged by its pixels: the simulator's hidden perception of the rendered
background. The oracles score ideal creatives of one style. Figures are user-weighted means;
the lifts, the oracle fraction, the ceiling share and the reach are defined in
``osmf.evaluation.bootstrap``, which gives every figure a 95% interval (a bootstrap over held-out
users: ``<figure>_ci``). ``osmf_best_style_share`` (``one_size_best_style_share``) is the share of
held-out users whose group's creative the world perceives as the group's truly best style.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd


log = logging.getLogger("osmf.evaluate_ab")
# the arms of the simulated A/B, in report order (see the module docstring)
ARMS = ("one_size", "best_historical", "one_size_oracle", "osmf", "group_best_historical", "group_ceiling", "oracle")


def one_size_backgrounds(settings, d, gmllm_version: str, grm_version: str, scoring, assets: dict) -> tuple[pd.DataFrame, str]:
    """Per product: the one-size-fits-all background of the plain-DPO model trained beside the
    G-MLLM version that made the generated creatives, best of N by the same GRM version (and where
    it came from)."""
    from osmf.tracking import registry
    from osmf_models.gmllm import GMLLM
    from osmf_models.gmllm.candidates import best_of_n
    from osmf_models.gmllm.data import product_images
    from osmf_models.group_dpo.train import audience_features

    run_id = registry.version_run_id(registry.GMLLM, gmllm_version)
    pooled = GMLLM.load(registry.download_run_artifact(run_id, "pooled_dpo", settings.tmp_root / f"pooled_v{gmllm_version}"))
    grm = registry.load_uri(f"models:/{registry.GRM}/{grm_version}")
    G_aud = audience_features(d.ex, d.ex["size"].to_numpy(float))
    first = d.ex.drop_duplicates("product_id").index.to_numpy()
    ex = d.ex.loc[first].assign(features=list(G_aud[first].numpy())).reset_index(drop=True)
    m = settings.models
    backgrounds, _, _ = best_of_n(pooled, grm, ex, G_aud[first], product_images(ex, settings.asset_root, pooled.cfg.image_size),
                                  assets, scoring, m.best_of_n, m.temperature)
    return (pd.DataFrame({"product_id": ex.product_id, "title": ex.title, "background": backgrounds}),
            f"{registry.GMLLM} v{gmllm_version} run {run_id}/pooled_dpo")


def _images(settings, d, one: pd.DataFrame, gen: pd.DataFrame, best_hist: dict, scoring, assets: dict) -> dict:
    """The pixels each arm shows: one-size per product (rendered here with ``[models].renderer``),
    the generated creative per group, the best historical creative per product; plus the masks."""
    from PIL import Image

    from osmf.generation.rendering import final_renderer
    from osmf_models.gmllm.data import full_prompt

    renderer = final_renderer(scoring, settings.models.renderer)
    load = lambda uri: np.asarray(Image.open(settings.asset(uri)).convert("RGB"))  # noqa: E731
    uri = dict(zip(d.frames["creatives"].creative_id, d.frames["creatives"].image_uri))
    return {"mask": {p: a[1] for p, a in assets.items()},
            "one_size": {p: renderer.render(*assets[p], full_prompt(t, b), background=b).image
                         for p, t, b in zip(one.product_id, one.title, one.background)},
            "osmf": {(p, g): load(u) for p, g, u in zip(gen.product_id, gen.group_id, gen.image_uri)},
            "best_historical": {p: load(uri[c]) for p, c in best_hist.items()}}


def _best_historical(ctr: pd.DataFrame) -> dict:
    """product_id -> its historical creative with the best observed CTR (all groups' clicks)."""
    overall = ctr.groupby(["product_id", "creative_id"])[["clicks", "impressions"]].sum()
    best = (overall.clicks / overall.impressions).reset_index(name="ctr").sort_values(
        ["product_id", "ctr", "creative_id"], ascending=[True, False, True]).drop_duplicates("product_id")
    return dict(zip(best.product_id, best.creative_id))


def _historical_looks(scoring, sim, assets: dict) -> dict:
    """product_id -> (creative ids, style weights of every historical creative re-composed around
    the product): what retrieval could show for it, as the world perceives it."""
    return {pid: (scoring.creative_ids, np.stack([sim.perceive(scoring.recompose(i, image, mask), mask)
                                                  for i in range(len(scoring.creative_ids))]))
            for pid, (image, mask) in assets.items()}


def _group_rows(sim, pid: str, gid: int, users: list, product_users: list, img: dict, looks: dict):
    """(the group's row, its users' rows): every arm's expected CTR per held-out user of the group."""
    mask = img["mask"][pid]
    best_style, ceiling = sim.best_single_style(pid, users)
    product_style, _ = sim.best_single_style(pid, product_users)
    gen, one = img["osmf"][(pid, gid)], img["one_size"][pid]
    cids, W = looks[pid]
    hist = sim.per_user_ctr_many(pid, users, W)  # users x historical creatives
    best = int(np.argmax(hist.mean(axis=0)))  # ties: the first (lowest creative id)
    per_user = pd.DataFrame({
        "user_id": users, "product_id": pid, "group_id": int(gid),
        "one_size": sim.per_user_ctr(pid, users, one, mask),
        "osmf": sim.per_user_ctr(pid, users, gen, mask),
        "best_historical": sim.per_user_ctr(pid, users, img["best_historical"][pid], mask),
        "one_size_oracle": sim.per_user_ctr(pid, users, style=product_style),
        "group_best_historical": hist[:, best],
        "group_ceiling": sim.per_user_ctr(pid, users, style=best_style),
        "oracle": sim.style_ctr(pid, users).max(axis=1)})
    row = {"product_id": pid, "group_id": int(gid), "users": len(users),
           **{a: float(per_user[a].mean()) for a in ("one_size", "osmf", "best_historical", "one_size_oracle",
                                                      "group_best_historical")},
           "group_ceiling": ceiling, "oracle": sim.oracle_ctr(pid, users),
           "best_style": best_style, "osmf_style": sim.perceived_style(gen, mask),
           "one_size_style": sim.perceived_style(one, mask), "best_historical_creative": cids[best]}
    return row, per_user


def per_group_table(run_date: str, settings, lake) -> tuple[pd.DataFrame, pd.DataFrame, int, dict]:
    """One row per (product, group) with held-out users: every arm's expected CTR and the styles
    the world perceives; the same per held-out user (for the intervals); the number of held-out
    users and the models the arms came from."""
    from osmf.data.assets import product_assets
    from osmf.data.audience import is_heldout
    from osmf.data.training import load_group_data
    from osmf.evaluation.heldout import models_rule
    from osmf.generation.rendering import scoring_renderer
    from osmf.world.simulator import Simulator

    gen = lake.read_pandas("generated_creatives", partition=run_date)
    if gen.empty:
        raise ValueError(f"generated_creatives has no rows for {run_date}; run `osmf generate --run-date {run_date}`")
    versions = {"gmllm": str(gen.gmllm_version.iloc[0]), "grm": str(gen.grm_version.iloc[0])}
    rule = models_rule(settings, run_date, versions)  # refuses models trained under different rules
    sim = Simulator(settings.home)
    ug = lake.read_pandas("user_groups", partition=run_date)
    # users in a fixed order, so the truth's mean over them is the same to the last bit on every run
    ug = ug[ug.user_id.map(lambda u: is_heldout(u, rule["fraction"], rule["salt"]))].sort_values("user_id")
    d = load_group_data(lake, settings.asset_root, run_date, target=settings.models.sft_target)
    scoring = scoring_renderer(d.frames, settings)
    assets = product_assets(d.frames["products"], settings.asset_root)  # read once, for every arm
    one, one_src = one_size_backgrounds(settings, d, versions["gmllm"], versions["grm"], scoring, assets)
    img = _images(settings, d, one, gen, _best_historical(d.frames["group_creative_ctr"]), scoring, assets)
    looks = _historical_looks(scoring, sim, assets)
    product_users = ug.groupby("product_id").user_id.apply(list)
    rows = [_group_rows(sim, pid, gid, list(users), product_users[pid], img, looks)
            for (pid, gid), users in ug.groupby(["product_id", "group_id"]).user_id if (pid, gid) in img["osmf"]]
    if not rows:
        raise ValueError(f"no held-out users in the groups of {run_date}; raise [grouping].eval_holdout_fraction")
    per_user = pd.concat([u for _, u in rows], ignore_index=True)
    return (pd.DataFrame([r for r, _ in rows]), per_user, int(ug.user_id.nunique()),
            {**versions, "one_size": one_src, "heldout_rule": rule})


def evaluate_ab(run_date: str, settings, lake=None, grouping_report: dict | None = None) -> tuple[dict, pd.DataFrame]:
    """(report, per-group table)."""
    from osmf.evaluation import bootstrap
    from osmf.lake import Lake
    from osmf.tracking import registry
    from osmf.tracking import runs as tracking

    lake = lake or Lake(settings)
    tracking.setup(settings)
    per_group, per_user, heldout, models = per_group_table(run_date, settings, lake)
    w = per_group.users.to_numpy()
    ctrs = {a: float(np.average(per_group[a], weights=w)) for a in ARMS}
    figures = {**{f"ctr_{a}": v for a, v in ctrs.items()}, **bootstrap.derived(ctrs)}
    ci = bootstrap.intervals(per_user, ARMS)
    grm_metrics = registry.version_metrics(registry.GRM, models["grm"])
    report = {
        "run_date": run_date, "heldout_users": heldout, "groups": int(len(per_group)),
        "products": int(per_group.product_id.nunique()),
        **figures, **{f"{k}_ci": ci[k] for k in figures},
        "intervals": f"95%, bootstrap over held-out users ({bootstrap.REPLICATES} replicates, seed {bootstrap.SEED})",
        "osmf_best_style_share": float(np.average(per_group.osmf_style == per_group.best_style, weights=w)),
        "one_size_best_style_share": float(np.average(per_group.one_size_style == per_group.best_style, weights=w)),
        "grm_pair_accuracy": grm_metrics.get("grm_pair_accuracy"),
        "grm_baseline_pair_accuracy": grm_metrics.get("baseline_pair_accuracy"),
        **{key: [grm_metrics.get(f"{k}_ci_low"), grm_metrics.get(f"{k}_ci_high")]
           for key, k in (("grm_pair_accuracy_ci", "grm_pair_accuracy"), ("grm_baseline_pair_accuracy_ci", "baseline_pair_accuracy"),
                          ("grm_pair_accuracy_gain_ci", "pair_accuracy_gain"))},
        "grm_heldout_pairs": grm_metrics.get("grm_pairs"),
        "grm_auroc": grm_metrics.get("grm_auroc"),
        "models": models,
        "judged_on": "pixels: the world's hidden perception of each rendered creative's background",
    }
    if grouping_report:
        report["grouping"] = {k: grouping_report[k] for k in ("ndcg5_by_k", "ndcg5_truth_by_k", "ari_product_aware",
                                                                "ari_product_agnostic", "chosen_k_counts") if k in grouping_report}
    return report, per_group


def write(report: dict, per_group: pd.DataFrame, json_path: Path, html_path: Path | None, settings, lake=None) -> None:
    """Write the JSON (and HTML) and log both to MLflow with the headline metrics."""
    import mlflow

    from osmf.lake import Lake
    from osmf.reports.plots import ab_html

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
            html_path.write_text(ab_html(report, per_group, gen, settings.home, ARMS))
            mlflow.log_artifact(str(html_path), "ab")


ARM_NOTES = {"one_size": "plain-DPO prompt per product, rendered", "best_historical": "product's best observed creative",
             "one_size_oracle": "product's truly best single style", "osmf": "each group's generated creative",
             "group_best_historical": "each group's truly best historical creative, re-composed",
             "group_ceiling": "each group's truly best single style", "oracle": "each user's truly best style"}


def _ci(report: dict, key: str, pct: bool = False) -> str:
    lo, hi = report.get(f"{key}_ci", (float("nan"), float("nan")))
    return f"[{lo:+.2%}, {hi:+.2%}]" if pct else f"[{lo:.5f}, {hi:.5f}]"


def render_table(report: dict) -> str:
    lines = [f"Simulated A/B on {report['heldout_users']} held-out users ({report['groups']} groups, "
             f"{report['products']} products, {report['run_date']}), judged on the rendered pixels "
             f"(95% intervals: bootstrap over held-out users):",
             f"  {'arm':<22} {'expected CTR':>12}  {'95% interval':<20}  what it shows"]
    for a in ARMS:
        lines.append(f"  {a:<22} {report[f'ctr_{a}']:>12.5f}  {_ci(report, f'ctr_{a}'):<20}  {ARM_NOTES[a]}")
    lines.append(f"  lift vs one-size {report['lift_vs_one_size']:+.2%} {_ci(report, 'lift_vs_one_size', True)}, "
                 f"vs best historical {report['lift_vs_best_historical']:+.2%}, vs one-size oracle "
                 f"{report['lift_vs_one_size_oracle']:+.2%} {_ci(report, 'lift_vs_one_size_oracle', True)}; "
                 f"oracle fraction {report['oracle_fraction']:.3f}")
    lines.append(f"  ceiling share {report['ceiling_share']:.3f}, osmf reach {report['osmf_reach']:.3f} of the group "
                 f"ceiling, {report['osmf_reach_historical']:.3f} of the group best historical")
    lines.append(f"  groups shown their truly best style: osmf {report['osmf_best_style_share']:.1%}, "
                 f"one-size {report['one_size_best_style_share']:.1%}")
    return "\n".join(lines)

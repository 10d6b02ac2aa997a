"""Simulated A/B evaluation of a run date (reads the hidden truth: evaluation only).

On the users held out from training (``osmf.holdout``: their clicks never reached group CTR, pairs
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

import base64
import io
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger("osmf.evaluate_ab")
ARMS = ("one_size", "osmf", "oracle", "best_historical")


def one_size_prompts(settings, lake, run_date: str) -> tuple[pd.DataFrame, str]:
    """Per product: the one-size-fits-all prompt of the plain-DPO model (and where it came from)."""
    import mlflow
    from mlflow import MlflowClient

    from jobs.train_gmllm import load_group_data
    from osmf.generation import GMLLM_NAME, GRM_NAME, best_of_n, load_registered, make_renderer, product_assets
    from osmf.settings import load_models
    from osmf_models.gmllm import GMLLM
    from osmf_models.gmllm.data import full_prompt, product_images
    from osmf_models.group_dpo.train import audience_features

    champ = MlflowClient().get_model_version_by_alias(GMLLM_NAME, "champion")
    path = mlflow.artifacts.download_artifacts(run_id=champ.run_id, artifact_path="pooled_dpo",
                                               dst_path=str(settings.home / "tmp" / f"pooled_v{champ.version}"))
    pooled = GMLLM.load(path)
    grm, _ = load_registered(GRM_NAME, "champion")
    d = load_group_data(lake, settings, run_date)
    G_aud = audience_features(d.ex, d.ex["size"].to_numpy(float))
    first = d.ex.drop_duplicates("product_id").index.to_numpy()
    ex = d.ex.loc[first].assign(features=list(G_aud[first].numpy())).reset_index(drop=True)
    m = load_models()
    backgrounds, _, _ = best_of_n(pooled, grm, ex, G_aud[first], product_images(ex, settings.home, pooled.cfg.image_size),
                                  product_assets(d.frames["products"], settings.home), make_renderer("procedural"),
                                  m.best_of_n, m.temperature)
    prompts = [full_prompt(t, b) for t, b in zip(ex.title, backgrounds)]
    return pd.DataFrame({"product_id": ex.product_id, "prompt": prompts}), f"{GMLLM_NAME} v{champ.version} run {champ.run_id}/pooled_dpo"


def evaluate_ab(run_date: str, settings, lake=None, grouping_report: dict | None = None) -> tuple[dict, pd.DataFrame]:
    """(report, per-group table)."""
    from mlflow import MlflowClient

    from osmf import tracking
    from osmf.generation import GMLLM_NAME, GRM_NAME
    from osmf.holdout import is_heldout
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
    for (pid, gid), users in ug.groupby(["product_id", "group_id"]).user_id:
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
    grm_v = client.get_model_version_by_alias(GRM_NAME, "champion")
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
        "models": {"gmllm": client.get_model_version_by_alias(GMLLM_NAME, "champion").version,
                   "grm": grm_v.version, "one_size": one_src},
        "style_read_from": "prompt text (simulator); the pixels are not judged",
    }
    if grouping_report:
        report["grouping"] = {k: grouping_report[k] for k in ("ndcg5_by_k", "ndcg5_truth_by_k", "ari_product_aware",
                                                                "ari_product_agnostic", "chosen_k") if k in grouping_report}
    return report, per_group


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode()


def html_report(report: dict, per_group: pd.DataFrame, settings, lake=None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from osmf.lake import Lake

    lake = lake or Lake(settings)
    imgs = []
    pg = per_group.sort_values(["product_id", "group_id"]).reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(max(6, 0.25 * len(pg)), 3.2))
    x = np.arange(len(pg))
    for k, arm in enumerate(ARMS):
        ax.bar(x + (k - 1.5) * 0.2, pg[arm], width=0.2, label=arm)
    ax.set_xticks(x, [f"{p}:{g}" for p, g in zip(pg.product_id, pg.group_id)], rotation=90, fontsize=5)
    ax.set_ylabel("expected CTR (held-out users)")
    ax.legend(fontsize=7, ncols=4)
    ax.set_title("CTR per group for each arm")
    fig.tight_layout()
    imgs.append(("CTR per group for each arm", _png(fig)))
    plt.close(fig)
    grouping = report.get("grouping", {})
    if grouping.get("ndcg5_by_k"):
        fig, ax = plt.subplots(figsize=(4.5, 3))
        ks = sorted(grouping["ndcg5_by_k"], key=int)
        ax.plot([int(k) for k in ks], [grouping["ndcg5_by_k"][k] for k in ks], "o-", label="vs overall ranking")
        if grouping.get("ndcg5_truth_by_k"):
            ax.plot([int(k) for k in ks], [grouping["ndcg5_truth_by_k"][k] for k in ks], "s--", label="vs truth")
        ax.set_xlabel("K")
        ax.set_ylabel("NDCG@5")
        ax.legend(fontsize=7)
        ax.set_title("NDCG@5 vs K")
        fig.tight_layout()
        imgs.append(("NDCG@5 vs K", _png(fig)))
        plt.close(fig)
    gen = lake.read_pandas("generated_creatives", partition=report["run_date"]).sort_values(["product_id", "group_id"])
    gen = gen[gen.product_id.isin(gen.product_id.drop_duplicates().head(8))]
    cols = int(gen.groupby("product_id").size().max()) if len(gen) else 1
    prods = list(dict.fromkeys(gen.product_id))
    fig, axes = plt.subplots(max(1, len(prods)), cols, figsize=(1.8 * cols, 1.9 * max(1, len(prods))), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for r, p in enumerate(prods):
        for c, row in enumerate(gen[gen.product_id == p].itertuples()):
            axes[r, c].imshow(Image.open(settings.home / row.image_uri))
            axes[r, c].set_title(f"{p} g{row.group_id}\n{row.background[:24]}", fontsize=6)
    fig.tight_layout()
    imgs.append(("Generated creatives per group (first products)", _png(fig)))
    plt.close(fig)
    table = "".join(f"<tr><td>{k}</td><td>{report[f'ctr_{k}']:.5f}</td></tr>" for k in ARMS)
    figs = "".join(f"<h2>{t}</h2><img src='data:image/png;base64,{b}'/>" for t, b in imgs)
    return (f"<html><head><meta charset='utf-8'><title>OSMF A/B {report['run_date']}</title></head><body>"
            f"<h1>OSMF simulated A/B, {report['run_date']}</h1>"
            f"<p>{report['heldout_users']} held-out users, {report['groups']} groups of {report['products']} products. "
            f"Lift vs one-size-fits-all <b>{report['lift_vs_one_size']:+.2%}</b>, oracle fraction "
            f"<b>{report['oracle_fraction']:.2f}</b>. Styles are read from prompt text by the simulator.</p>"
            f"<table border=1><tr><th>arm</th><th>expected CTR</th></tr>{table}</table>{figs}"
            f"<h2>Report</h2><pre>{json.dumps(report, indent=1, default=str)}</pre></body></html>")


def write(report: dict, per_group: pd.DataFrame, json_path: Path, html_path: Path | None, settings, lake=None) -> None:
    """Write the JSON (and HTML) and log both to MLflow with the headline metrics."""
    import mlflow

    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=1, default=str))
    with mlflow.start_run(run_name=f"evaluate-ab-{report['run_date']}"):
        mlflow.set_tags({"osmf.stage": "evaluate-ab", "osmf.run_date": report["run_date"]})
        mlflow.log_metrics({k: float(v) for k, v in report.items() if isinstance(v, (int, float)) and v == v})
        mlflow.log_artifact(str(json_path), "ab")
        if html_path:
            html_path = Path(html_path)
            html_path.write_text(html_report(report, per_group, settings, lake))
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

"""Evaluation of grouping (the paper's analysis, on the simulator).

* ``ndcg5_by_k``: for K in {1} + candidates (K forced for every product), NDCG@5 of each group's
  observed creative ranking (by smoothed group CTR) with the product's overall smoothed CTR as
  relevance, averaged over groups and products. It is 1 at K=1 and falls as K grows when groups
  prefer different creatives than the audience as a whole.
* ``ndcg5_truth_by_k``: the same ranking with the TRUE expected CTR of the group's members as
  relevance (the simulator, judging each creative's pixels): how well observed group rankings serve the groups.
* ``ari_product_aware``: adjusted Rand index of the chosen groups (``user_groups``) against the
  hidden segments of each product's category, averaged over products; ``ari_product_aware_by_k``
  the same per forced K.
* ``ari_product_agnostic``: the baseline: ONE grouping of all users from their attributes alone
  (K chosen by the same silhouette rule), shared by all products.

Gains are the CTR values themselves (DCG = sum ctr_i / log2(i + 2)). The truth is read only here.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from osmf.data.smoothing import smoothed_ctr

log = logging.getLogger("osmf.evaluate")


def ndcg_at(order_rel: list[float], k: int = 5) -> float:
    ideal = sorted(order_rel, reverse=True)
    dcg = sum(r / math.log2(i + 2) for i, r in enumerate(order_rel[:k]))
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal[:k]))
    return dcg / idcg if idcg > 0 else float("nan")


def _group_rankings(imp: pd.DataFrame, assign: pd.DataFrame, prior: float) -> pd.DataFrame:
    m = imp.merge(assign, on=["product_id", "user_id"])
    agg = m.groupby(["product_id", "group_id", "creative_id"], as_index=False).agg(
        impressions=("clicked", "size"), clicks=("clicked", "sum"))
    p0 = imp.groupby("product_id")["clicked"].mean().rename("p0")
    agg = agg.join(p0, on="product_id")
    agg["smoothed"] = smoothed_ctr(agg["clicks"], agg["impressions"], agg["p0"], prior)
    return agg


def perceived(lake, sim, home: Path) -> dict:
    """creative_id -> the world's perceived style weights of the creative's pixels."""
    from PIL import Image

    from osmf.data.assets import product_assets

    creatives = lake.read_pandas("creatives")
    products = lake.read_pandas("products")
    masks = {p: mask for p, (_, mask) in product_assets(products, home).items()}
    return {c: sim.perceive(np.asarray(Image.open(Path(home) / u).convert("RGB")), masks[p])
            for c, p, u in zip(creatives.creative_id, creatives.product_id, creatives.image_uri)}


def ranking_figures(imp, assign, looks: dict, sim, prior) -> tuple[float, float]:
    """(mean NDCG@5 vs overall ranking, mean NDCG@5 vs truth) over all groups."""
    ranks = _group_rankings(imp, assign, prior)
    overall = _group_rankings(imp, assign.assign(group_id=0), prior).set_index(["product_id", "creative_id"])["smoothed"]
    # users in a fixed order, so the truth's mean over them is the same to the last bit on every run
    members = assign.sort_values("user_id").groupby(["product_id", "group_id"])["user_id"].apply(list)
    v_overall, v_truth = [], []
    for (pid, gid), grp in ranks.groupby(["product_id", "group_id"]):
        order = grp.sort_values(["smoothed", "creative_id"], ascending=[False, True])["creative_id"].tolist()
        v_overall.append(ndcg_at([overall[(pid, c)] for c in order]))
        users = members[(pid, gid)]
        v_truth.append(ndcg_at([sim.expected_ctr(pid, users, weights=looks[c]) for c in order]))
    return float(np.nanmean(v_overall)), float(np.nanmean(v_truth))


def mean_ari(assign: pd.DataFrame, sim) -> float:
    from sklearn.metrics import adjusted_rand_score

    vals = []
    for pid, grp in assign.groupby("product_id"):
        vals.append(adjusted_rand_score(sim.segments(pid, grp["user_id"].tolist()), grp["group_id"].to_numpy()))
    return float(np.mean(vals))


def evaluate(run_date: str, settings, spark=None, lake=None, grouping=None) -> dict:
    from osmf.data.audience import window_impressions
    from osmf.grouping import choose_k, fit_candidates
    from osmf.lake import Lake
    from osmf.lake.spark import get_spark
    from osmf.world import Simulator
    from osmf_models.paag import PAAG

    lake, spark = lake or Lake(settings), spark or get_spark(settings)
    g = grouping or settings.grouping
    sim = Simulator(settings.home)
    looks = perceived(lake, sim, settings.home)
    imp = window_impressions(spark, lake, run_date, g.window_days).select(
        "product_id", "user_id", "creative_id", "clicked").toPandas()
    emb_df = lake.read_spark(spark, "user_product_embeddings", partition=run_date).select(
        "product_id", "user_id", "embedding").cache()
    audience = emb_df.select("product_id", "user_id").toPandas()
    fits = fit_candidates(spark, emb_df, g)
    ndcg, ndcg_truth, ari_k = {}, {}, {}
    one = audience.assign(group_id=0)
    ndcg[1], ndcg_truth[1] = ranking_figures(imp, one, looks, sim, g.prior_strength)
    for k, (fit, _) in fits.items():
        ndcg[k], ndcg_truth[k] = ranking_figures(imp, fit.assignments, looks, sim, g.prior_strength)
        ari_k[k] = mean_ari(fit.assignments, sim)
    chosen = lake.read_pandas("user_groups", partition=run_date)[["product_id", "user_id", "group_id"]]
    aware_ndcg, aware_truth = ranking_figures(imp, chosen, looks, sim, g.prior_strength)

    # product-agnostic baseline: one grouping of every audience user by attributes alone
    fs = PAAG.load(settings.paag_dir(run_date)).features
    users = lake.read_pandas("users")
    users = users[users["user_id"].isin(audience["user_id"])]
    X = fs.user_matrix(users).astype(np.float64)
    glob_df = spark.createDataFrame(pd.DataFrame({"product_id": "__all__", "user_id": users["user_id"].tolist(),
                                                  "embedding": [list(x) for x in X]}),
                                    "product_id string, user_id string, embedding array<double>")
    gfits = fit_candidates(spark, glob_df, g)
    k_ag = choose_k({k: s for k, (_, s) in gfits.items()}, ["__all__"], g.min_group_size)["__all__"]
    glabels = (gfits[k_ag][0].assignments if k_ag > 1 else glob_df.select("user_id").toPandas().assign(group_id=0))
    agnostic = audience.merge(glabels[["user_id", "group_id"]], on="user_id")
    ag_ndcg, ag_truth = ranking_figures(imp, agnostic, looks, sim, g.prior_strength)
    emb_df.unpersist()
    return {
        "run_date": run_date,
        "k_candidates": list(g.k_candidates),
        "ndcg5_by_k": {str(k): v for k, v in ndcg.items()},
        "ndcg5_truth_by_k": {str(k): v for k, v in ndcg_truth.items()},
        "ari_product_aware_by_k": {str(k): v for k, v in ari_k.items()},
        "ari_product_aware": mean_ari(chosen, sim),
        "ari_product_agnostic": mean_ari(agnostic, sim),
        "ndcg5_product_aware": aware_ndcg,
        "ndcg5_truth_product_aware": aware_truth,
        "ndcg5_product_agnostic": ag_ndcg,
        "ndcg5_truth_product_agnostic": ag_truth,
        "chosen_k_counts": {str(k): int(v) for k, v in chosen.groupby("product_id")["group_id"].nunique().value_counts().sort_index().items()},
        "product_agnostic_k": int(k_ag),
        "products": int(audience["product_id"].nunique()),
    }


def write(report: dict, json_path: Path, plot_path: Path | None = None) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=1))
    if plot_path:
        from osmf.reports.plots import grouping_plot

        grouping_plot(report, plot_path)

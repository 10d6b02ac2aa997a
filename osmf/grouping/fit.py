"""Engine ``auto`` (audiences by size to ``mllib`` or ``grouped``) and the choice of K per product."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from osmf.grouping.engine_grouped import grouped_all_k
from osmf.grouping.engine_mllib import mllib_all_k
from osmf.grouping.frames import empty_fits, merge_fits

log = logging.getLogger("osmf.grouping")


def audience_sizes(emb_df) -> dict[str, int]:
    return {r[0]: int(r[1]) for r in emb_df.groupBy("product_id").count().collect()}


def fit_candidates(spark, emb_df, g, ks=None, sizes: dict[str, int] | None = None) -> dict[int, tuple]:
    """{K: (FitResult, scores DataFrame)} for every candidate K, with the engine ``g.engine``:
    ``mllib``, ``grouped``, or ``auto`` (products with >= ``g.mllib_min_users`` users to MLlib, the
    rest grouped; ``sizes``: the audience sizes, when the caller has them). Scores: product_id,
    silhouette, min_size, k (non-empty groups), gain and gain_1 (PAAG's predicted click gain of the
    K groups and of one group: ``predicted_gain``)."""
    from pyspark.sql import functions as F

    ks = tuple(sorted(set(ks or g.k_candidates)))
    t = time.perf_counter()
    if g.engine == "mllib":
        large, small = [emb_df], []
    elif g.engine == "grouped":
        large, small = [], [emb_df]
    else:
        sizes = audience_sizes(emb_df) if sizes is None else sizes  # the caller's, when it counted them
        big = sorted(p for p, n in sizes.items() if n >= g.mllib_min_users)
        large = [emb_df.where(F.col("product_id").isin(big))] if big else []
        small = [emb_df.where(~F.col("product_id").isin(big)) if big else emb_df] if len(big) < len(sizes) else []
        log.info("auto: %d product(s) with >= %d users to MLlib, %d grouped", len(big), g.mllib_min_users,
                 len(sizes) - len(big))
    parts = [mllib_all_k(spark, df, ks, g.seed, g.max_iter, g.products_per_fit) for df in large]
    parts += [grouped_all_k(spark, df, ks, g.seed, g.max_iter) for df in small]
    out = merge_fits(parts, ks) if parts else empty_fits(spark, ks)
    for k, (fit, sc) in out.items():
        log.info("K=%d (%s): %d MLlib fit(s), %d products, mean silhouette %.3f", k, g.engine, fit.fits,
                 len(sc), sc["silhouette"].mean() if len(sc) else float("nan"))
    log.info("grouping (%s): %d candidate K in %.1fs", g.engine, len(ks), time.perf_counter() - t)
    return out


def predicted_gain(fits: dict) -> pd.DataFrame:
    """product_id, k, gain: PAAG's own prediction of what K groups are worth. The embedding is each
    user's centred click log-odds over the themes, so the users of a group shown the group's best
    theme gain the largest coordinate of the group's summed embedding; ``gain`` is that summed over
    the groups, per audience user (K = 1: the whole audience as one group). No truth is involved:
    only the embeddings and the candidate groups. The engines compute it beside the silhouette, from
    the groups' sums they already have (``osmf.grouping.frames.click_gains``): no Spark job here."""
    scores = [sc.assign(k=k) for k, (_, sc) in fits.items() if len(sc)]
    if not scores:
        return pd.DataFrame({"product_id": pd.Series(dtype=str), "k": pd.Series(dtype=np.int64), "gain": pd.Series(dtype=float)})
    sc = pd.concat(scores, ignore_index=True)
    one = sc.drop_duplicates("product_id").assign(k=1, gain=lambda d: d["gain_1"])
    out = pd.concat([one, sc], ignore_index=True)[["product_id", "k", "gain"]]
    # rounded: sums in another order differ in the last bits, and that must not flip a choice
    return out.assign(k=out["k"].astype(np.int64), gain=out["gain"].astype(float).round(6)).reset_index(drop=True)


def choose_k(scores_by_k: dict[int, pd.DataFrame], products: list[str], min_group_size: int,
             gains: pd.DataFrame | None = None, share: float = 0.95) -> dict[str, int]:
    """K per product among the candidate K whose smallest group has >= min_group_size users (no
    valid K gives 1: the whole audience is one group).

    Without ``gains``: the highest silhouette (ties to the smaller K). With ``gains``
    (``predicted_gain``): the smallest valid K whose gain over one group reaches ``share`` of the
    best valid K's, so K grows while more groups still pay and stops where they add little; a
    product whose groups gain nothing gets 1."""
    valid = {p: [] for p in products}
    sil = {}
    for k in sorted(scores_by_k):
        for r in scores_by_k[k].itertuples():
            if r.min_size >= min_group_size and r.k == k and np.isfinite(r.silhouette) and r.product_id in valid:
                valid[r.product_id].append(k)
                sil[r.product_id, k] = r.silhouette
    if gains is None:
        return {p: max(ks, key=lambda k: (sil[p, k], -k)) if ks else 1 for p, ks in valid.items()}
    g = {(p, int(k)): v for p, k, v in zip(gains.product_id, gains.k, gains.gain)}
    out = {}
    for p, ks in valid.items():
        base = g.get((p, 1), 0.0)
        best = max((g.get((p, k), base) for k in ks), default=base)
        out[p] = 1 if best - base <= 1e-9 else min(k for k in ks if g.get((p, k), base) - base >= share * (best - base))
    return out

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
    silhouette, min_size, k (non-empty groups)."""
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


def choose_k(scores_by_k: dict[int, pd.DataFrame], products: list[str], min_group_size: int) -> dict[str, int]:
    """Highest silhouette among candidate K whose smallest group has >= min_group_size users; ties
    go to the smaller K; no valid K gives 1 (the whole audience is one group)."""
    best = {p: (1, -np.inf) for p in products}
    for k in sorted(scores_by_k):
        for r in scores_by_k[k].itertuples():
            if r.min_size >= min_group_size and r.k == k and np.isfinite(r.silhouette) and r.silhouette > best[r.product_id][1]:
                best[r.product_id] = (k, r.silhouette)
    return {p: v[0] for p, v in best.items()}

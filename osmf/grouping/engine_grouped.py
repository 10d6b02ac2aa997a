"""Engine ``grouped``: every product in ONE Spark job for ALL candidate K (see ``osmf.grouping``)."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from osmf.grouping.frames import FitResult, by_product, click_gains, rows_of_k, split_products, whole_products
from osmf.grouping.kmeans import BLOCK_ROWS, cluster_sums, kmeanspp_seeds, lloyd_many, one_thread, point_silhouettes, product_seed, summarise

log = logging.getLogger("osmf.grouping")


def _wide_schema(ks) -> str:
    """Rows of a grouped job: assignment rows (user_id set; g<K> = the user's group at K, null where
    the product has fewer than K users) and one score row per product (user_id null; ``scores`` =
    silhouette, smallest group, non-empty groups, click gain for each K in order (0 groups: no fit
    at K), then the click gain of one group)."""
    return "product_id string, user_id string, " + ", ".join(f"g{k} int" for k in ks) + ", scores array<double>"


def fit_block(X: np.ndarray, products: list[str], counts: np.ndarray, ks, seed: int, max_iter: int) -> dict:
    """Every candidate K for a block of whole products (rows sorted by product, then user id):
    {K: (labels or -1 where the product has fewer than K users, silhouette, min_size, nonempty, ok,
    click gain)}."""
    P = len(products)
    pidx = np.repeat(np.arange(P), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    out = {}
    for k in ks:
        ok = counts >= k
        labels = np.full(len(X), -1, np.int64)
        sil, mins, nonempty, gain = np.full(P, np.nan), np.zeros(P, np.int64), np.zeros(P, np.int64), np.full(P, np.nan)
        sub = np.flatnonzero(ok)
        if len(sub):
            rows = ok[pidx]
            Xk, pk = X[rows], (np.cumsum(ok) - 1)[pidx[rows]]
            init = np.stack([kmeanspp_seeds(X[starts[p]:starts[p] + counts[p]], k, product_seed(seed, products[p], k))
                             for p in sub])
            lab, _ = lloyd_many(Xk, counts[sub], init, max_iter)
            n, S, Q = cluster_sums(Xk, pk * k + lab, len(sub) * k)
            s = point_silhouettes(Xk, pk, lab, n.reshape(-1, k), S.reshape(-1, k, X.shape[1]), Q.reshape(-1, k))
            sil[sub], mins[sub], nonempty[sub] = summarise(pk, s, n.reshape(-1, k))
            gain[sub] = click_gains(S.reshape(-1, k, X.shape[1]), counts[sub])[0]
            labels[rows] = lab
        out[k] = (labels, sil, mins, nonempty, ok, gain)
    return out


def _block_batches(tbl, ks, seed: int, max_iter: int):
    """Fit a table of whole products for every K -> its assignment batch and its score batch."""
    import pyarrow as pa

    pid, uid, X, starts, counts, products = split_products(tbl)
    n = len(pid)
    res = fit_block(X, products, counts, ks, seed, max_iter)
    g_cols = [pa.array(res[k][0].astype(np.int32), mask=res[k][0] < 0) for k in ks]
    names = ["product_id", "user_id"] + [f"g{k}" for k in ks] + ["scores"]
    yield pa.RecordBatch.from_arrays([pid, uid, *g_cols, pa.nulls(n, pa.list_(pa.float64()))], names=names)
    per_k = [np.stack([res[k][1], res[k][2], np.where(res[k][4], res[k][3], 0), res[k][5]], 1) for k in ks]
    one = click_gains(np.add.reduceat(X, starts, axis=0)[:, None, :], counts)[1]
    sc = np.concatenate(per_k + [one[:, None]], 1)  # P x (4|K| + 1)
    scores = pa.ListArray.from_arrays(pa.array(np.arange(0, sc.size + 1, sc.shape[1], dtype=np.int32)), pa.array(sc.ravel()))
    yield pa.RecordBatch.from_arrays([pid.take(pa.array(starts)), pa.nulls(len(starts), uid.type),
                                      *[pa.nulls(len(starts), pa.int32()) for _ in ks], scores], names=names)


def _collect_wide(sdf, ks, fits: dict[int, int]) -> dict[int, tuple]:
    """{K: (FitResult, scores)} from a DataFrame of ``_wide_schema`` rows: the job runs once, its
    rows persisted on the executors; only the per-product score rows reach the driver."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    t = time.perf_counter()
    wide = sdf.persist(StorageLevel.MEMORY_AND_DISK)
    st = wide.where(F.col("user_id").isNull()).select("product_id", "scores").toArrow()
    products = st.column("product_id").to_pandas()
    sc = st.column("scores").combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(len(products), 4 * len(ks) + 1)
    out = {}
    for i, k in enumerate(ks):
        sil, mins, groups, gain = sc[:, 4 * i], sc[:, 4 * i + 1], sc[:, 4 * i + 2], sc[:, 4 * i + 3]
        fit = groups > 0
        sk = pd.DataFrame({"product_id": products[fit].to_numpy(), "silhouette": sil[fit],
                           "min_size": mins[fit].astype(np.int64), "k": groups[fit].astype(np.int64),
                           "gain": gain[fit], "gain_1": sc[fit, -1]})
        out[k] = (FitResult(rows_of_k(wide, k), fits.get(k, 0), (wide,)), sk)
    log.info("grouped: Spark job %.1fs, %d products scored", time.perf_counter() - t, len(products))
    return out


def grouped_all_k(spark, emb_df, ks, seed: int, max_iter: int, block_rows: int = BLOCK_ROWS) -> dict[int, tuple]:
    """Engine ``grouped``: every product, every K, in one Spark job (see the module docstring);
    ``block_rows``: rows of whole products fitted at once (memory, not results)."""
    ks = tuple(ks)

    def run(batches):
        with one_thread():
            for tbl in whole_products(batches, block_rows):
                yield from _block_batches(tbl, ks, seed, max_iter)

    return _collect_wide(by_product(spark, emb_df).mapInArrow(run, _wide_schema(ks)), ks, {})


def grouped_kmeans(spark, k: int, seed: int, max_iter: int = 20, emb_df=None) -> FitResult:
    """Engine ``grouped`` at one K (for tests and comparisons)."""
    return grouped_all_k(spark, emb_df, (k,), seed, max_iter)[k][0]



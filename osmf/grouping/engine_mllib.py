"""Engine ``mllib``: Spark MLlib K-Means over users, batched so the number of fits does not grow with
the number of products (see ``osmf.grouping`` for why the batching is exact)."""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import pandas as pd

from osmf.grouping.frames import FitResult, arrow_columns, by_product, click_gains, empty_fits, rows_of_k, split_products, whole_products
from osmf.grouping.kmeans import BLOCK_ROWS, cluster_sums, kmeanspp_seeds, nearest, point_silhouettes, product_seed

log = logging.getLogger("osmf.grouping")


def _grid_offsets(products: list[str], spacing: float) -> dict[str, np.ndarray]:
    g = max(1, math.ceil(len(products) ** (1 / 3) - 1e-9))
    while g**3 < len(products):
        g += 1
    return {p: np.array([i // (g * g), (i // g) % g, i % g], np.float64) * spacing for i, p in enumerate(products)}


def _seeds_all_k(spark, emb_df, ks, seed: int) -> pd.DataFrame:
    """Per product: audience size, radius and the k-means++ initial centres of every K <= size (one
    pass; the seeding is sequential per product, so a product's users meet in one task here)."""
    import pyarrow as pa

    ks = tuple(ks)

    def run(batches):
        for tbl in whole_products(batches, BLOCK_ROWS):
            _, _, X, starts, counts, products = split_products(tbl)
            cols: dict = {"product_id": [], "n": [], "radius": [], "k": [], "centers": []}
            for pid, s, c in zip(products, starts, counts):
                Xp = X[s:s + c]
                r = float(np.sqrt(((Xp - Xp.mean(0)) ** 2).sum(1).max()))
                for k in (k for k in ks if c >= k):
                    for key, v in zip(cols, (pid, int(c), r, k, kmeanspp_seeds(Xp, k, product_seed(seed, pid, k)).ravel())):
                        cols[key].append(v)
            yield pa.RecordBatch.from_pydict(cols, schema=pa.schema(
                [("product_id", pa.string()), ("n", pa.int64()), ("radius", pa.float64()), ("k", pa.int32()),
                 ("centers", pa.list_(pa.float64()))]))

    schema = "product_id string, n long, radius double, k int, centers array<double>"
    return by_product(spark, emb_df).mapInArrow(run, schema).toPandas()


def _jvm_vectors(spark, emb_df, offsets: dict[str, np.ndarray]):
    """The chunk's points with their grid offsets appended, as a cached JVM ``RDD[mllib.Vector]``
    built from the DataFrame inside the JVM (no Python serialisation of points)."""
    from pyspark.ml.functions import array_to_vector
    from pyspark.mllib.linalg.distributed import RowMatrix
    from pyspark.mllib.util import MLUtils
    from pyspark.sql import functions as F

    off = spark.createDataFrame(pd.DataFrame({"product_id": list(offsets), "off": [v.tolist() for v in offsets.values()]}),
                                "product_id string, off array<double>")
    vec = (emb_df.join(F.broadcast(off), "product_id")
           .select(array_to_vector(F.concat(F.col("embedding").cast("array<double>"), "off")).alias("v")))
    return RowMatrix(MLUtils.convertVectorColumnsFromML(vec, "v"))._java_matrix_wrapper._java_model.rows().cache()


def _jvm_kmeans(sc, jrows, init: np.ndarray, max_iter: int, seed: int) -> np.ndarray:
    """``mllib.clustering.KMeans`` with an initial model, on a cached JVM RDD; the final centres."""
    from pyspark.mllib.common import _py2java, callJavaFunc
    from pyspark.mllib.linalg import DenseVector

    jk = sc._jvm.org.apache.spark.mllib.clustering
    model = jk.KMeansModel(_py2java(sc, [DenseVector(c) for c in init]))
    km = jk.KMeans().setK(len(init)).setMaxIterations(max_iter).setEpsilon(1e-12).setSeed(seed).setInitialModel(model)
    return np.stack([np.asarray(c.toArray(), np.float64) for c in callJavaFunc(sc, km.run(jrows).clusterCenters)])


def _mllib_fits(spark, emb_df, sd: pd.DataFrame, ks, seed: int, max_iter: int, products_per_fit: int):
    """One MLlib fit per K and chunk of products. Returns per K: {product: (centres with offsets
    (k x d+3), offset, bound)} and the number of fits. A chunk's vectors are built once for all K."""
    sc = spark.sparkContext
    rdds, models, nfits = {}, {}, {}
    try:
        for k in ks:
            sk = sd[sd["k"] == k].sort_values("product_id")
            eligible = sk["product_id"].tolist()
            size = products_per_fit if products_per_fit and products_per_fit > 0 else max(len(eligible), 1)
            models[k], nfits[k] = {}, 0
            for start in range(0, len(eligible), size):
                ch = sk.iloc[start:start + size]
                chunk = ch["product_id"].tolist()
                diameter = 2 * float(ch["radius"].max())
                spacing = 3 * diameter + 1.0
                offsets = _grid_offsets(chunk, spacing)
                key = (tuple(chunk), spacing)
                if key not in rdds:
                    rdds[key] = _jvm_vectors(spark, emb_df.where(emb_df.product_id.isin(chunk)), offsets)
                init = np.concatenate([np.hstack([np.asarray(c).reshape(k, -1), np.tile(offsets[p], (k, 1))])
                                       for p, c in zip(chunk, ch["centers"])])
                centers = _jvm_kmeans(sc, rdds[key], init, max_iter, seed)
                bound = (spacing - diameter) ** 2
                for i, p in enumerate(chunk):
                    models[k][p] = (centers[i * k:(i + 1) * k], offsets[p], bound)
                nfits[k] += 1
    finally:
        for r in rdds.values():
            r.unpersist(False)
    return models, nfits


def _model_arrays(models: dict, products: list[str], k: int):
    """Per-product arrays of one K: centres (P x k x d+3, NaN where none), offsets (P x 3), bounds."""
    dd = next(iter(models.values()))[0].shape[1] if models else 4
    C, off, bound = np.full((len(products), k, dd), np.nan), np.zeros((len(products), 3)), np.full(len(products), np.inf)
    for i, p in enumerate(products):
        if p in models:
            C[i], off[i], bound[i] = models[p]
    return C, off, bound


def _assign_rows(X: np.ndarray, pidx: np.ndarray, arrays) -> np.ndarray:
    """MLlib's final assignment of rows (with their grid offsets) to their own product's centres;
    -1 for a product without a model at this K, or without a model at all (``pidx`` -1: fewer
    users than the smallest K). Checks the construction's guarantee per row: the
    own nearest centre is provably nearer than any other product's, so this is the global nearest."""
    C, off, bound = arrays
    lab = np.full(len(X), -1, np.int64)
    known = np.flatnonzero(pidx >= 0)
    rows = known[~np.isnan(C[pidx[known], 0, 0])]
    if len(rows):
        Xo, p = np.hstack([X[rows], off[pidx[rows]]]), pidx[rows]
        lab[rows] = nearest(Xo, p, C)
        own = ((Xo - C[p, lab[rows]]) ** 2).sum(1)
        if (own >= bound[p]).any():  # cannot happen by construction; fail loudly if it does
            raise RuntimeError("a point is not provably nearest to its own product's centres")
    return lab


def _batch_index(rb, index: pd.Index):
    import pyarrow as pa

    pid, uid, X = arrow_columns(pa.Table.from_batches([rb]))
    return pid, uid, X, index.get_indexer(pid.to_numpy(zero_copy_only=False))


def _stats_pass(emb_df, products: list[str], arrays: dict, ks) -> dict:
    """Per K, each product's cluster counts n (P x k), sums S (P x k x d) and sums of squared norms
    Q (P x k) under the final assignment: partial sums per partition, added on the driver."""
    import pyarrow as pa

    index, P = pd.Index(products), len(products)

    def run(batches):
        acc = {}
        for rb in batches:
            _, _, X, pidx = _batch_index(rb, index)
            for k in ks:
                lab = _assign_rows(X, pidx, arrays[k])
                r = lab >= 0
                parts = cluster_sums(X[r], pidx[r] * k + lab[r], P * k)
                acc[k] = parts if k not in acc else tuple(a + b for a, b in zip(acc[k], parts))
        for k, (n, S, Q) in acc.items():
            nz = np.flatnonzero(n)
            yield pa.RecordBatch.from_pydict({"k": np.full(len(nz), k, np.int32), "cell": nz.astype(np.int64),
                                              "n": n[nz].astype(np.int64), "s": list(S[nz]), "q": Q[nz]})

    t = emb_df.mapInArrow(run, "k int, cell long, n long, s array<double>, q double").toArrow()
    ks_, cell, n, q = (t.column(c).to_numpy() for c in ("k", "cell", "n", "q"))
    s = t.column("s").combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(len(cell), -1)
    out = {}
    for k in ks:
        m, d = ks_ == k, s.shape[1]
        N, SS, QQ = np.zeros(P * k, np.int64), np.zeros((P * k, d)), np.zeros(P * k)
        np.add.at(N, cell[m], n[m])
        np.add.at(SS, cell[m], s[m])
        np.add.at(QQ, cell[m], q[m])
        out[k] = (N.reshape(P, k), SS.reshape(P, k, d), QQ.reshape(P, k))
    return out


def _assign_pass(emb_df, products: list[str], arrays: dict, stats: dict, ks):
    """Assignment rows (g<K>) and, per partition and product, the sum of the users' silhouettes
    (t<K>) and their number (u<K>): the final pass of the MLlib engine."""
    import pyarrow as pa

    index, P = pd.Index(products), len(products)
    names = ["product_id", "user_id"] + [f"g{k}" for k in ks] + [f"{c}{k}" for k in ks for c in "tu"]

    def run(batches):
        tot = {k: (np.zeros(P), np.zeros(P, np.int64)) for k in ks}
        pid_type = None
        for rb in batches:
            pid, uid, X, pidx = _batch_index(rb, index)
            pid_type, gs = pid.type, []
            for k in ks:
                lab = _assign_rows(X, pidx, arrays[k])
                r = lab >= 0
                s = point_silhouettes(X[r], pidx[r], lab[r], *stats[k])
                tot[k][0][:] += np.bincount(pidx[r], weights=s, minlength=P)
                tot[k][1][:] += np.bincount(pidx[r], minlength=P)
                gs.append(pa.array(lab.astype(np.int32), mask=~r))
            empty = [c for _ in ks for c in (pa.nulls(len(X), pa.float64()), pa.nulls(len(X), pa.int64()))]
            yield pa.RecordBatch.from_arrays([pid, uid, *gs, *empty], names=names)
        if pid_type is not None:
            sums = [c for k in ks for c in (pa.array(tot[k][0]), pa.array(tot[k][1]))]
            yield pa.RecordBatch.from_arrays([pa.array(products, pid_type), pa.nulls(P, pid_type),
                                              *[pa.nulls(P, pa.int32()) for _ in ks], *sums], names=names)

    schema = "product_id string, user_id string, " + ", ".join(
        [f"g{k} int" for k in ks] + [f"t{k} double, u{k} long" for k in ks])
    from pyspark import StorageLevel

    return emb_df.select("product_id", "user_id", "embedding").mapInArrow(run, schema).persist(StorageLevel.MEMORY_AND_DISK)


def mllib_all_k(spark, emb_df, ks, seed: int, max_iter: int, products_per_fit: int = 0) -> dict[int, tuple]:
    """Engine ``mllib``: {K: (FitResult, scores)} for every K (see the module docstring)."""
    ks = tuple(ks)
    emb_df = emb_df.select("product_id", "user_id", "embedding")
    t0 = time.perf_counter()
    sd = _seeds_all_k(spark, emb_df, ks, seed)
    if sd.empty:
        return empty_fits(spark, ks)
    t1 = time.perf_counter()
    models, nfits = _mllib_fits(spark, emb_df, sd, ks, seed, max_iter, products_per_fit)
    t2 = time.perf_counter()
    products = sorted(sd["product_id"].unique())
    arrays = {k: _model_arrays(models[k], products, k) for k in ks}
    stats = _stats_pass(emb_df, products, arrays, ks)
    t3 = time.perf_counter()
    from pyspark.sql import functions as F

    wide = _assign_pass(emb_df, products, arrays, stats, ks)  # persisted: the assignment rows stay there
    tot = (wide.where(F.col("user_id").isNull()).drop("user_id", *[f"g{k}" for k in ks]).toPandas()
           .groupby("product_id").sum(numeric_only=True))
    log.info("mllib: seeds %.1fs, %d fits %.1fs, cluster sums %.1fs, assignment and silhouettes %.1fs", t1 - t0,
             sum(nfits.values()), t2 - t1, t3 - t2, time.perf_counter() - t3)
    out = {}
    for k in ks:
        n = stats[k][0]
        has = np.array([p in models[k] for p in products], bool)
        with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 where a product has no model at K
            sil = tot[f"t{k}"].reindex(products).to_numpy() / tot[f"u{k}"].reindex(products).to_numpy()
        nonempty = (n > 0).sum(1)
        sil[nonempty < 2] = np.nan
        mins = np.where(n > 0, n, np.iinfo(np.int64).max).min(1)
        gain, gain_1 = click_gains(stats[k][1], n.sum(1))  # every user of a product with a model at K is assigned
        scores = pd.DataFrame({"product_id": products, "silhouette": sil, "min_size": mins, "k": nonempty,
                               "gain": gain, "gain_1": gain_1})[has]
        out[k] = (FitResult(rows_of_k(wide, k), nfits[k], (wide,)), scores.reset_index(drop=True))
    return out


def batched_kmeans(spark, emb: pd.DataFrame | None, k: int, seed: int, max_iter: int = 20,
                   emb_df=None, products_per_fit: int = 0) -> FitResult:
    """Engine ``mllib`` at one K: every product in one MLlib fit (or ceil(P / products_per_fit)).
    ``emb_df`` is a Spark DataFrame (product_id, user_id, embedding array<double>); products with
    fewer than K users are skipped (they get no assignment at this K)."""
    if emb_df is None:
        emb_df = spark.createDataFrame(emb)
    return mllib_all_k(spark, emb_df, (k,), seed, max_iter, products_per_fit)[k][0]



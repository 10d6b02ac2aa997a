"""Product-aware grouping with Spark MLlib K-Means, batched so the number of Spark jobs does not
grow with the number of products.

The construction: each product's embeddings are shifted by a product-specific offset on a 3-D grid
(extra coordinates) whose spacing ``M`` exceeds three times the largest within-product diameter.
Every product gets its own block of K initial centres (deterministic k-means++ seeds on the
product's points, sorted by user id). One ``pyspark.mllib.clustering.KMeans.train`` over all
products with that ``initialModel`` then runs exactly the per-product Lloyd iterations: a point
is always closer to its own product's centres (distance <= diameter) than to any other product's
(distance >= M - diameter > diameter), so no assignment crosses products, and each block of
centres moves as in a fit on that product alone. With epsilon ~ 0 both the batched and a
per-product fit run exactly ``max_iter`` Lloyd iterations (or stop at an exact fixed point, after
which iterations change nothing), so they end in the same state. Tests check, with scikit-learn, that
each product's groups are a converged K-Means of that product alone.

Cost: one fit per K means MLlib scans all K x P centres for every point (its triangle-inequality
check makes each scan cheap, but it is O(K P) per point per iteration), so one fit's cost grows
with P^2 at a fixed audience size. ``products_per_fit`` caps the products in one fit; the number
of fits is then ceil(P / products_per_fit) x |K| (0 = all products in one fit per K).

(``pyspark.ml.clustering.KMeans`` does not expose an initial model in Python; the RDD-based
``pyspark.mllib`` K-Means of the same library does, and that is what makes the batching exact.)

Engine ``grouped`` (``[grouping].engine``) runs the same algorithm, same seeds and iterations, per
product in numpy inside one ``applyInPandas`` job per K: linear cost, for many products.

Per-product K is chosen from candidates by the silhouette with squared Euclidean distance, the
definition of MLlib's ``ClusteringEvaluator`` (tests check the two agree), among the K whose
smallest group has at least ``min_group_size`` users; if none qualifies the product gets one group.
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

log = logging.getLogger("osmf.grouping")


def kmeanspp_seeds(X: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Deterministic k-means++ initial centres (k x d) from the rows of X."""
    rng = np.random.default_rng(seed)
    n = len(X)
    idx = [int(rng.integers(n))]
    d2 = ((X - X[idx[0]]) ** 2).sum(1)
    for _ in range(1, k):
        total = d2.sum()
        nxt = int(rng.integers(n)) if total <= 0 else int(rng.choice(n, p=d2 / total))
        idx.append(nxt)
        d2 = np.minimum(d2, ((X - X[nxt]) ** 2).sum(1))
    return X[idx].astype(np.float64)


def product_seed(base: int, product_id: str, k: int) -> int:
    return zlib.crc32(f"{base}:{product_id}:{k}".encode())


def silhouette_sqeuclidean(X: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette with squared Euclidean distance, as MLlib's ClusteringEvaluator computes it
    (singleton clusters score 0). NaN when there are fewer than two clusters."""
    ks, inv, counts = np.unique(labels, return_inverse=True, return_counts=True)
    if len(ks) < 2:
        return float("nan")
    S = np.zeros((len(ks), X.shape[1]))
    np.add.at(S, inv, X)
    xx = (X**2).sum(1)
    Q = np.bincount(inv, weights=xx, minlength=len(ks))
    D = (counts[None, :] * xx[:, None] - 2 * X @ S.T + Q[None, :]) / counts[None, :]
    D = np.maximum(D, 0)
    own_n = counts[inv]
    a = np.where(own_n > 1, D[np.arange(len(X)), inv] * own_n / np.maximum(own_n - 1, 1), 0.0)
    D[np.arange(len(X)), inv] = np.inf
    b = D.min(1)
    s = np.where(own_n > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-300), 0.0)
    return float(s.mean())


@dataclass
class FitResult:
    assignments: pd.DataFrame  # product_id, user_id, group_id
    fits: int = 0  # MLlib fits used (1 unless products_per_fit splits the products)


def _grid_offsets(products: list[str], spacing: float) -> dict[str, np.ndarray]:
    g = max(1, math.ceil(len(products) ** (1 / 3) - 1e-9))
    while g**3 < len(products):
        g += 1
    return {p: np.array([i // (g * g), (i // g) % g, i % g], np.float64) * spacing for i, p in enumerate(products)}


def batched_kmeans(spark, emb: pd.DataFrame | None, k: int, seed: int, max_iter: int = 20,
                   emb_df=None, products_per_fit: int = 0) -> FitResult:
    """K-Means with K clusters per product, every product in ONE MLlib fit.

    ``emb_df`` is a Spark DataFrame (product_id, user_id, embedding array<double>); products with
    fewer than K users are skipped (they get no assignment at this K)."""
    if emb_df is None:
        emb_df = spark.createDataFrame(emb)

    def seeds(pdf: pd.DataFrame) -> pd.DataFrame:
        pdf = pdf.sort_values("user_id")
        X = np.stack(pdf["embedding"].to_numpy()).astype(np.float64)
        pid = pdf["product_id"].iloc[0]
        if len(X) < k:
            return pd.DataFrame({"product_id": [], "center_idx": [], "center": [], "radius": []})
        c = kmeanspp_seeds(X, k, product_seed(seed, pid, k))
        r = float(np.sqrt(((X - X.mean(0)) ** 2).sum(1).max()))
        return pd.DataFrame({"product_id": pid, "center_idx": np.arange(k), "center": list(c), "radius": r})

    sd = (emb_df.groupBy("product_id")
          .applyInPandas(seeds, "product_id string, center_idx int, center array<double>, radius double")
          .toPandas().sort_values(["product_id", "center_idx"]))
    all_products = sorted(sd["product_id"].unique())
    if not all_products:
        return FitResult(pd.DataFrame(columns=["product_id", "user_id", "group_id"]))
    size = products_per_fit if products_per_fit and products_per_fit > 0 else len(all_products)
    parts = []
    for start in range(0, len(all_products), size):
        chunk = all_products[start:start + size]
        parts.append(_fit_chunk(spark, emb_df, sd[sd["product_id"].isin(chunk)], chunk, k, seed, max_iter))
    return FitResult(pd.concat(parts, ignore_index=True), len(parts))


def _fit_chunk(spark, emb_df, sd: pd.DataFrame, products: list[str], k: int, seed: int, max_iter: int):
    from pyspark.mllib.clustering import KMeans, KMeansModel
    from pyspark.mllib.linalg import DenseVector

    spacing = 3 * (2 * float(sd["radius"].max())) + 1.0
    offsets = _grid_offsets(products, spacing)
    base = {p: i * k for i, p in enumerate(products)}
    init = [np.concatenate([np.asarray(c, np.float64), offsets[p]]) for p, c in zip(sd["product_id"], sd["center"])]
    sc = spark.sparkContext
    b_off = sc.broadcast(offsets)
    rows = (emb_df.where(emb_df.product_id.isin(products)).select("product_id", "user_id", "embedding").rdd
            .map(lambda r: (r[0], r[1], DenseVector(np.concatenate([np.asarray(r[2], np.float64), b_off.value[r[0]]]))))
            .cache())
    model = KMeans.train(rows.map(lambda t: t[2]), k * len(products), maxIterations=max_iter,
                         initialModel=KMeansModel(init), epsilon=1e-12, seed=seed)
    all_centers = np.stack([np.asarray(c) for c in model.clusterCenters])
    blocks = {p: all_centers[base[p]:base[p] + k] for p in products}
    # Construction guarantee: a point's own-block nearest centre is within the product diameter,
    # every other product's centre is at least (spacing - diameter) away. Checked per point below,
    # so the own-block argmin is exactly MLlib's global nearest-centre assignment.
    diameter = 2 * float(sd["radius"].max())
    bound = (spacing - diameter) ** 2
    b_blocks = sc.broadcast(blocks)

    def assign(part):
        by_product: dict = {}
        for t in part:
            by_product.setdefault(t[0], []).append(t)
        for pid, items in by_product.items():
            C = b_blocks.value[pid]
            X = np.stack([t[2].toArray() for t in items])
            d2 = ((X[:, None, :] - C[None, :, :]) ** 2).sum(-1)
            nearest = d2.argmin(1)
            if (d2.min(1) >= bound).any():  # cannot happen by construction; fail loudly if it does
                raise RuntimeError(f"product {pid}: a point is not provably nearest to its own centres")
            for t, g in zip(items, nearest.tolist()):
                yield (t[0], t[1], int(g))

    assigned = rows.mapPartitions(assign).toDF("product_id string, user_id string, group_id int").toPandas()
    rows.unpersist()
    return assigned


def lloyd(X: np.ndarray, init: np.ndarray, max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """MLlib's K-Means iteration in numpy: nearest centre (lowest index on ties), centre = mean of
    its points, an empty cluster keeps its centre; ``max_iter`` iterations or an exact fixed point."""
    C = init.astype(np.float64).copy()
    labels = np.zeros(len(X), dtype=np.int64)
    for _ in range(max_iter):
        d2 = ((X[:, None, :] - C[None, :, :]) ** 2).sum(-1)
        labels = d2.argmin(1)
        new = C.copy()
        for j in range(len(C)):
            members = X[labels == j]
            if len(members):
                new[j] = members.mean(0)
        if np.array_equal(new, C):
            break
        C = new
    d2 = ((X[:, None, :] - C[None, :, :]) ** 2).sum(-1)
    return d2.argmin(1), C


def grouped_kmeans(spark, k: int, seed: int, max_iter: int = 20, emb_df=None) -> FitResult:
    """The same K-Means (same seeds, same iterations) per product inside ONE Spark job per K
    (``groupBy(product).applyInPandas``): linear in the number of products. Engine ``grouped``."""

    def fit(pdf: pd.DataFrame) -> pd.DataFrame:
        pdf = pdf.sort_values("user_id")
        pid = pdf["product_id"].iloc[0]
        if len(pdf) < k:
            return pd.DataFrame({"product_id": [], "user_id": [], "group_id": []})
        X = np.stack(pdf["embedding"].to_numpy()).astype(np.float64)
        labels, _ = lloyd(X, kmeanspp_seeds(X, k, product_seed(seed, pid, k)), max_iter)
        return pd.DataFrame({"product_id": pid, "user_id": pdf["user_id"].to_numpy(), "group_id": labels.astype(np.int32)})

    a = (emb_df.groupBy("product_id").applyInPandas(fit, "product_id string, user_id string, group_id int").toPandas())
    return FitResult(a, 1)


def choose_k(scores_by_k: dict[int, pd.DataFrame], products: list[str], min_group_size: int) -> dict[str, int]:
    """Highest silhouette among candidate K whose smallest group has >= min_group_size users; ties
    go to the smaller K; no valid K gives 1 (the whole audience is one group)."""
    best = {p: (1, -np.inf) for p in products}
    for k in sorted(scores_by_k):
        for r in scores_by_k[k].itertuples():
            if r.min_size >= min_group_size and r.k == k and np.isfinite(r.silhouette) and r.silhouette > best[r.product_id][1]:
                best[r.product_id] = (k, r.silhouette)
    return {p: v[0] for p, v in best.items()}


def _scores_in_spark(emb_df, assigned_sdf):
    """Per product silhouette and smallest group size, computed in the executors."""

    def score(pdf: pd.DataFrame) -> pd.DataFrame:
        X = np.stack(pdf["embedding"].to_numpy())
        sizes = pdf["group_id"].value_counts()
        return pd.DataFrame({"product_id": [pdf["product_id"].iloc[0]],
                             "silhouette": [silhouette_sqeuclidean(X, pdf["group_id"].to_numpy())],
                             "min_size": [int(sizes.min())], "k": [int(sizes.size)]})

    return (emb_df.join(assigned_sdf, ["product_id", "user_id"]).groupBy("product_id")
            .applyInPandas(score, "product_id string, silhouette double, min_size long, k long").toPandas())


def fit_candidates(spark, emb_df, g, ks=None) -> dict[int, tuple]:
    """{K: (FitResult, scores DataFrame)} for every candidate K: one batched fit each."""
    out = {}
    for k in ks or g.k_candidates:
        t = time.perf_counter()
        if g.engine == "grouped":
            fit = grouped_kmeans(spark, k, g.seed, g.max_iter, emb_df=emb_df)
        else:
            fit = batched_kmeans(spark, None, k, g.seed, g.max_iter, emb_df=emb_df, products_per_fit=g.products_per_fit)
        if fit.assignments.empty:
            out[k] = (fit, pd.DataFrame(columns=["product_id", "silhouette", "min_size", "k"]))
            continue
        sdf = spark.createDataFrame(fit.assignments, "product_id string, user_id string, group_id int")
        out[k] = (fit, _scores_in_spark(emb_df, sdf))
        log.info("K=%d (%s): %d fit(s) for %d products in %.1fs, mean silhouette %.3f", k, g.engine, fit.fits,
                 fit.assignments["product_id"].nunique(), time.perf_counter() - t, out[k][1]["silhouette"].mean())
    return out

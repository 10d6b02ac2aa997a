"""Product-aware grouping: K-Means of each product's audience for every candidate K, then K chosen
per product by the silhouette.

Three engines (``[grouping].engine``), all running the same algorithm: per product and K, k-means++
initial centres from ``kmeanspp_seeds`` on the product's points sorted by user id (seed
``product_seed``), then Lloyd iterations (nearest centre, lowest index on ties; centre = mean of
its points; an empty cluster keeps its centre) for ``max_iter`` iterations or until an exact fixed
point, then each user's nearest final centre. On the same seeds they give the same groups, up to
floating-point near-ties (MLlib sums a cluster's points in partition order, numpy in row order),
which the tests' worlds do not have.

``grouped``: every product in ONE Spark job for ALL candidate K (repartition by product, sort by
user, ``mapInArrow``). An executor streams whole products in blocks of about ``_BLOCK_ROWS`` rows
and runs the Lloyd iterations of every product of a block at once (``lloyd_many``: products of
similar size padded into one array, distances ranked with one batched matmul, near ties recomputed
with the exact per-product expression; no Python loop over points or products per iteration), and
scores each K in the same pass. The numbers are those of a per-product fit bit for bit (tests
compare with a plain per-product loop). Linear in products; a product's audience must fit one
task's memory.

``mllib``: Spark MLlib K-Means, distributed over users, batched so the number of fits does not
grow with the number of products. Each product's embeddings get three extra coordinates, its cell
on a 3-D grid whose spacing exceeds three times the largest product diameter, and its own block of
K initial centres; one ``mllib`` ``KMeans`` run over all products with that initial model then runs
exactly the per-product Lloyd iterations: a point is always closer to its own product's centres
(distance <= diameter) than to any other product's (>= spacing - diameter > diameter), so no
assignment crosses products. With epsilon ~ 0 both the batched and a per-product fit run exactly
``max_iter`` iterations (or stop at an exact fixed point), so they end in the same state. The
vectors are built in the JVM from the DataFrame and cached once for all K (one fit per K). Every
point scans all K x P centres, so one fit costs O(P^2) at a fixed audience size:
``products_per_fit`` caps the products per fit (ceil(P / products_per_fit) fits per K). The final
assignment and the silhouette are two vectorised passes over the users (``mapInArrow``), from
per-cluster sums, without gathering a product on one executor (only the k-means++ seeding, which is
sequential per product, does).

``auto`` (default): one count of each product's audience, then products with at least
``mllib_min_users`` users go to ``mllib`` and the others to ``grouped``; each product gets the
groups and scores that the engine it goes to gives it (which are the other engine's as well).

(``pyspark.ml.clustering.KMeans`` does not expose an initial model in Python; the RDD-based
``mllib`` K-Means of the same library does, and that is what makes the batching exact.)

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

_CHUNK_ELEMENTS = 1 << 22  # rows x centres x dims of one vectorised distance step (~32 MB of float64)
_BLOCK_ROWS = 1 << 16  # rows of whole products the grouped engine fits at once


def _sum_axis0(D: np.ndarray) -> np.ndarray:
    """D.sum(0) for D of shape (d, ...), added in the order numpy uses to sum a contiguous last axis
    of length d (so it equals ``E.sum(-1)`` of the transposed array bit for bit): in sequence under
    8 terms, else in 8 running sums, up to 128 terms (beyond, numpy recurses: not replicated)."""
    d = len(D)
    if d < 8:
        return D.sum(0)  # an outer-axis reduction adds in sequence
    if d > 128:
        raise ValueError("more than 128 terms")
    r = D[:8].copy()
    for i in range(8, d - d % 8, 8):
        r += D[i:i + 8]
    res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    for i in range(d - d % 8, d):
        res += D[i]
    return res


def kmeanspp_seeds(X: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Deterministic k-means++ initial centres (k x d) from the rows of X. Each next centre is drawn
    with probability proportional to the squared distance to the nearest centre so far, exactly as
    ``rng.choice(n, p=d2 / d2.sum())`` draws it (its steps, without its argument checks)."""
    rng = np.random.default_rng(seed)
    n, d = X.shape
    XT = np.ascontiguousarray(X.T, np.float64) if d <= 128 else None

    def sq(i: int) -> np.ndarray:  # ((X - X[i]) ** 2).sum(1), bit for bit
        if XT is None:
            return ((X - X[i]) ** 2).sum(1)
        D = XT - XT[:, i, None]
        D *= D
        return _sum_axis0(D)

    idx = [int(rng.integers(n))]
    d2 = sq(idx[0])
    for _ in range(1, k):
        total = d2.sum()
        if total <= 0:
            nxt = int(rng.integers(n))
        else:
            cdf = (d2 / total).cumsum()
            cdf /= cdf[-1]
            nxt = int(cdf.searchsorted(rng.random(), side="right"))
        idx.append(nxt)
        d2 = np.minimum(d2, sq(nxt))
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


# ---------------------------------------------------------------- vectorised kernels (many products)
# Rows belong to products 0..P-1 (``pidx``); per-product arrays are (P, k, ...). No Python loop runs
# over points or products per iteration.

def _one_thread():
    """BLAS on one thread inside a Spark task (the executor already runs one task per core)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def _row_chunks(n: int, width: int):
    step = max(1, _CHUNK_ELEMENTS // max(width, 1))
    return (slice(i, min(i + step, n)) for i in range(0, n, step))


def nearest(X: np.ndarray, pidx: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Index of each row's nearest centre among its own product's (C: P x k x d); lowest index on
    ties. The squared distance is summed over the last axis exactly as a per-product
    ``((X[:, None] - C[None]) ** 2).sum(-1)`` does, so the result is bit-for-bit the same."""
    out = np.empty(len(X), np.int64)
    for s in _row_chunks(len(X), C.shape[1] * C.shape[2]):
        out[s] = ((X[s, None, :] - C[pidx[s]]) ** 2).sum(-1).argmin(1)
    return out


def cluster_sums(X: np.ndarray, gidx: np.ndarray, m: int, squares: bool = True):
    """Per cluster (global index ``gidx`` < m): count, sum of rows (m x d) and, with ``squares``, sum
    of squared norms. ``bincount`` adds in row order, as ``X[members].sum(0)`` does, so the means
    match a per-product fit bit for bit."""
    n = np.bincount(gidx, minlength=m)
    if X.shape[1] == 1:  # numpy sums a single column pairwise, not in row order: the same, per cluster
        xs, ends = X[np.argsort(gidx, kind="stable"), 0], np.cumsum(n)
        S = np.array([xs[e - c:e].sum() for e, c in zip(ends, n)])[:, None]
    else:
        S = np.stack([np.bincount(gidx, weights=X[:, j], minlength=m) for j in range(X.shape[1])], 1)
    Q = np.bincount(gidx, weights=(X**2).sum(1), minlength=m) if squares else None
    return n, S.reshape(m, X.shape[1]), Q


def _nearest_padded(XT: np.ndarray, C: np.ndarray, xx: np.ndarray | None = None) -> np.ndarray:
    """``nearest`` for padded per-product blocks, rows as columns (XT: A x d x m; C: A x k x d),
    with the same result. Centres are ranked by ||c||^2 - 2 x.c (one batched matmul, then
    elementwise passes over the k centres); a row whose best two are closer than a bound on the
    rounding of both this and the exact expression is recomputed with the exact expression, so
    ties and near-ties get the same lowest-index answer. ``xx``: the rows' squared norms (A x m).
    Returns A x m labels."""
    d, k = XT.shape[1], C.shape[1]
    cc = np.einsum("akd,akd->ak", C, C)[:, :, None]
    G = np.matmul(C, XT)  # A x k x m
    best, second, lab = cc[:, 0] - 2 * G[:, 0], np.full(G.shape[::2], np.inf), np.zeros(G.shape[::2], np.int64)
    for j in range(1, k):
        f = cc[:, j] - 2 * G[:, j]
        better = f < best
        second = np.where(better, best, np.minimum(second, f))
        best = np.where(better, f, best)
        lab[better] = j
    tol = 64 * (d + 3) * np.finfo(np.float64).eps * (((XT**2).sum(1) if xx is None else xx) + cc.max(1))
    a, r = np.nonzero(second - best <= tol)
    if len(a):
        lab[a, r] = ((XT[a, :, r][:, None, :] - C[a]) ** 2).sum(-1).argmin(1)
    return lab


def _size_groups(counts: np.ndarray, slack: float = 1.25) -> list[np.ndarray]:
    """Products in groups of similar audience size (padding to the largest wastes < 25%)."""
    order = np.argsort(-counts, kind="stable")
    groups, start, rows = [], 0, 0
    for i, p in enumerate(order):
        rows += counts[p]
        if counts[order[start]] * (i - start + 1) > slack * rows:
            groups.append(order[start:i])
            start, rows = i, counts[p]
    return groups + [order[start:]]


def _lloyd_padded(Xg: np.ndarray, counts: np.ndarray, C: np.ndarray, max_iter: int):
    """``lloyd_many`` for one size group (rows of the group's products, product-major)."""
    A, k, d = C.shape
    pl = np.repeat(np.arange(A), counts)
    pos = np.arange(len(Xg)) - np.repeat(np.cumsum(counts) - counts, counts)
    Xp = np.zeros((A, d, int(counts.max())))  # rows as columns: the distance passes run over m
    Xp[pl, :, pos] = Xg
    xx = (Xp**2).sum(1)
    act, Xa, pa, posa, Pa, XXa = np.arange(A), Xg, pl, pos, Xp, xx
    for _ in range(max_iter):
        lab = _nearest_padded(Pa, C[act], XXa)[pa, posa]
        n, S, _ = cluster_sums(Xa, pa * k + lab, len(act) * k, squares=False)
        old = C[act]
        new = np.where(n[:, None] > 0, S / np.maximum(n, 1)[:, None], old.reshape(-1, d)).reshape(-1, k, d)
        moved = (new != old).any(axis=(1, 2))
        C[act] = new
        if not moved.all():
            keep = moved[pa]
            act, Xa, posa, Pa, XXa = act[moved], Xa[keep], posa[keep], Pa[moved], XXa[moved]
            pa = (np.cumsum(moved) - 1)[pa[keep]]
            if not len(act):
                break
    return _nearest_padded(Xp, C, xx)[pl, pos], C


def lloyd_many(X: np.ndarray, counts: np.ndarray, init: np.ndarray, max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's K-Means for many products at once: rows of X sorted by product (``counts`` rows
    each), init P x k x d. Each product runs exactly as a fit of its own rows: ``max_iter``
    iterations or until its centres are an exact fixed point (it stops being computed then; more
    iterations would change nothing). Returns the final labels (nearest final centre) and centres.
    Products of similar size are padded into one array and iterated together (batched matmul)."""
    counts = np.asarray(counts, np.int64)
    starts = np.cumsum(counts) - counts
    labels, C = np.empty(len(X), np.int64), init.astype(np.float64).copy()
    for grp in _size_groups(counts):
        rows = np.arange(counts[grp].sum()) + np.repeat(starts[grp] - (np.cumsum(counts[grp]) - counts[grp]), counts[grp])
        labels[rows], C[grp] = _lloyd_padded(X[rows], counts[grp], C[grp], max_iter)
    return labels, C


def point_silhouettes(X: np.ndarray, pidx: np.ndarray, labels: np.ndarray, n: np.ndarray, S: np.ndarray,
                      Q: np.ndarray) -> np.ndarray:
    """Each row's silhouette (squared Euclidean, ClusteringEvaluator's definition) from its product's
    cluster counts n (P x k), sums S (P x k x d) and sums of squared norms Q (P x k). A singleton's
    is 0; NaN where the product has one non-empty cluster."""
    out = np.empty(len(X))
    with np.errstate(divide="ignore", invalid="ignore"):
        for s in _row_chunks(len(X), S.shape[1] * S.shape[2]):
            x, p, lab = X[s], pidx[s], labels[s]
            ng = n[p].astype(np.float64)
            D = (ng * (x**2).sum(1)[:, None] - 2 * np.einsum("nd,nkd->nk", x, S[p]) + Q[p]) / ng
            D = np.where(ng > 0, np.maximum(D, 0), np.inf)
            r = np.arange(len(x))
            own_n = ng[r, lab]
            a = np.where(own_n > 1, D[r, lab] * own_n / np.maximum(own_n - 1, 1), 0.0)
            D[r, lab] = np.inf
            b = D.min(1)
            out[s] = np.where(np.isinf(b), np.nan, np.where(own_n > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-300), 0.0))
    return out


def summarise(pidx: np.ndarray, s: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per product: mean silhouette (NaN with fewer than two non-empty groups), smallest non-empty
    group size, number of non-empty groups."""
    P = n.shape[0]
    counts = np.bincount(pidx, minlength=P)
    with np.errstate(invalid="ignore", divide="ignore"):
        sil = np.bincount(pidx, weights=s, minlength=P) / counts
    nonempty = (n > 0).sum(1)
    sil[nonempty < 2] = np.nan
    return sil, np.where(n > 0, n, np.iinfo(np.int64).max).min(1), nonempty


# ---------------------------------------------------------------- results


@dataclass
class FitResult:
    """One candidate K: ``rows``, a Spark DataFrame (product_id, user_id, group_id) of the users'
    groups, computed once and kept by the executors (``release`` frees it); ``assignments`` collects
    it to the driver, sorted (tests, comparisons, small audiences)."""
    rows: object
    fits: int = 0  # MLlib fits used for this K (0 for products fitted by the grouped engine)
    cached: tuple = ()  # the persisted DataFrames ``rows`` reads from

    @property
    def assignments(self) -> pd.DataFrame:
        a = self.rows.toPandas().astype({"group_id": np.int32})
        return a.sort_values(["product_id", "user_id"], kind="stable").reset_index(drop=True)


def release(fits: dict) -> None:
    """Free what the fits of ``fit_candidates`` keep cached on the executors."""
    for fit, _ in fits.values():
        for df in fit.cached:
            df.unpersist()


_ROWS_DDL = "product_id string, user_id string, group_id int"


def _rows_of_k(wide, k: int):
    """The assignment rows of one K from a persisted wide frame (g<K> set)."""
    from pyspark.sql import functions as F

    return (wide.where(F.col("user_id").isNotNull() & F.col(f"g{k}").isNotNull())
            .select("product_id", "user_id", F.col(f"g{k}").cast("int").alias("group_id")))


_SCORE_COLUMNS = ["product_id", "silhouette", "min_size", "k"]


def _empty(spark, ks) -> dict[int, tuple]:
    return {k: (FitResult(spark.createDataFrame([], _ROWS_DDL)), pd.DataFrame(columns=_SCORE_COLUMNS)) for k in ks}


def _merge(parts: list[dict], ks) -> dict[int, tuple]:
    from functools import reduce

    out = {}
    for k in ks:
        fits = [p[k][0] for p in parts if k in p]
        scores = [p[k][1] for p in parts if k in p and len(p[k][1])]
        rows = reduce(lambda a, b: a.unionByName(b), [f.rows for f in fits])
        out[k] = (FitResult(rows, sum(f.fits for f in fits), tuple(c for f in fits for c in f.cached)),
                  pd.concat(scores, ignore_index=True) if scores else pd.DataFrame(columns=_SCORE_COLUMNS))
    return out


# ---------------------------------------------------------------- engine "grouped": one Spark job, all K


def _wide_schema(ks) -> str:
    """Rows of a grouped job: assignment rows (user_id set; g<K> = the user's group at K, null where
    the product has fewer than K users) and one score row per product (user_id null; ``scores`` =
    silhouette, smallest group, non-empty groups for each K in order; 0 groups: no fit at K)."""
    return "product_id string, user_id string, " + ", ".join(f"g{k} int" for k in ks) + ", scores array<double>"


def fit_block(X: np.ndarray, products: list[str], counts: np.ndarray, ks, seed: int, max_iter: int) -> dict:
    """Every candidate K for a block of whole products (rows sorted by product, then user id):
    {K: (labels or -1 where the product has fewer than K users, silhouette, min_size, nonempty, ok)}."""
    P = len(products)
    pidx = np.repeat(np.arange(P), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    out = {}
    for k in ks:
        ok = counts >= k
        labels = np.full(len(X), -1, np.int64)
        sil, mins, nonempty = np.full(P, np.nan), np.zeros(P, np.int64), np.zeros(P, np.int64)
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
            labels[rows] = lab
        out[k] = (labels, sil, mins, nonempty, ok)
    return out


def _arrow_columns(tbl):
    """(product ids, user ids, X) of an Arrow table of product_id, user_id, embedding."""
    import pyarrow as pa
    import pyarrow.compute as pc

    emb = tbl.column("embedding").combine_chunks()
    lengths = pc.list_value_length(emb).to_numpy(zero_copy_only=False)
    d = int(lengths[0]) if len(lengths) else 0
    if len(lengths) and (lengths != d).any():
        raise ValueError("embeddings of different lengths")
    X = emb.flatten().cast(pa.float64()).to_numpy(zero_copy_only=False).reshape(len(emb), d)
    return tbl.column("product_id").combine_chunks(), tbl.column("user_id").combine_chunks(), X


def _whole_products(batches, block_rows: int):
    """Arrow batches sorted by product -> tables of whole products, about ``block_rows`` rows each
    (a product is never split; one larger than ``block_rows`` comes alone)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    pending, rows = [], 0
    for rb in batches:
        if rb.num_rows:
            pending.append(rb)
            rows += rb.num_rows
        if rows < block_rows:
            continue
        tbl = pa.Table.from_batches(pending)
        pid = tbl.column("product_id")
        cut = rows - pc.sum(pc.equal(pid, pid[rows - 1])).as_py()  # the last product may go on
        if cut > 0:
            yield tbl.slice(0, cut)
            pending, rows = tbl.slice(cut).to_batches(), rows - cut
    if rows:
        yield pa.Table.from_batches(pending)


def _by_product(spark, emb_df):
    """The rows of each product together in one partition, sorted by product, then user id."""
    parts = int(spark.conf.get("spark.sql.shuffle.partitions"))
    return (emb_df.select("product_id", "user_id", "embedding").repartition(parts, "product_id")
            .sortWithinPartitions("product_id", "user_id"))


def _split_products(tbl):
    """(product ids, user ids, X, starts, counts, products) of a table of whole products."""
    import pyarrow as pa
    import pyarrow.compute as pc

    pid, uid, X = _arrow_columns(tbl)
    change = pc.not_equal(pid[1:], pid[:-1]).to_numpy(zero_copy_only=False) if len(pid) > 1 else np.zeros(0, bool)
    starts = np.concatenate([[0], np.flatnonzero(change) + 1]).astype(np.int64)
    counts = np.diff(np.concatenate([starts, [len(pid)]]))
    return pid, uid, X, starts, counts, pid.take(pa.array(starts)).to_pylist()


def _block_batches(tbl, ks, seed: int, max_iter: int):
    """Fit a table of whole products for every K -> its assignment batch and its score batch."""
    import pyarrow as pa

    pid, uid, X, starts, counts, products = _split_products(tbl)
    n = len(pid)
    res = fit_block(X, products, counts, ks, seed, max_iter)
    g_cols = [pa.array(res[k][0].astype(np.int32), mask=res[k][0] < 0) for k in ks]
    names = ["product_id", "user_id"] + [f"g{k}" for k in ks] + ["scores"]
    yield pa.RecordBatch.from_arrays([pid, uid, *g_cols, pa.nulls(n, pa.list_(pa.float64()))], names=names)
    per_k = [np.stack([res[k][1], res[k][2], np.where(res[k][4], res[k][3], 0)], 1) for k in ks]
    sc = np.concatenate(per_k, 1)  # P x 3|K|
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
    sc = st.column("scores").combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(len(products), 3 * len(ks))
    out = {}
    for i, k in enumerate(ks):
        sil, mins, groups = sc[:, 3 * i], sc[:, 3 * i + 1], sc[:, 3 * i + 2]
        fit = groups > 0
        sk = pd.DataFrame({"product_id": products[fit].to_numpy(), "silhouette": sil[fit],
                           "min_size": mins[fit].astype(np.int64), "k": groups[fit].astype(np.int64)})
        out[k] = (FitResult(_rows_of_k(wide, k), fits.get(k, 0), (wide,)), sk)
    log.info("grouped: Spark job %.1fs, %d products scored", time.perf_counter() - t, len(products))
    return out


def _grouped_all_k(spark, emb_df, ks, seed: int, max_iter: int, block_rows: int = _BLOCK_ROWS) -> dict[int, tuple]:
    """Engine ``grouped``: every product, every K, in one Spark job (see the module docstring);
    ``block_rows``: rows of whole products fitted at once (memory, not results)."""
    ks = tuple(ks)

    def run(batches):
        with _one_thread():
            for tbl in _whole_products(batches, block_rows):
                yield from _block_batches(tbl, ks, seed, max_iter)

    return _collect_wide(_by_product(spark, emb_df).mapInArrow(run, _wide_schema(ks)), ks, {})


def grouped_kmeans(spark, k: int, seed: int, max_iter: int = 20, emb_df=None) -> FitResult:
    """Engine ``grouped`` at one K (for tests and comparisons)."""
    return _grouped_all_k(spark, emb_df, (k,), seed, max_iter)[k][0]


# ---------------------------------------------------------------- engine "mllib": MLlib K-Means over users


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
        for tbl in _whole_products(batches, _BLOCK_ROWS):
            _, _, X, starts, counts, products = _split_products(tbl)
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
    return _by_product(spark, emb_df).mapInArrow(run, schema).toPandas()


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

    pid, uid, X = _arrow_columns(pa.Table.from_batches([rb]))
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


def _mllib_all_k(spark, emb_df, ks, seed: int, max_iter: int, products_per_fit: int = 0) -> dict[int, tuple]:
    """Engine ``mllib``: {K: (FitResult, scores)} for every K (see the module docstring)."""
    ks = tuple(ks)
    emb_df = emb_df.select("product_id", "user_id", "embedding")
    t0 = time.perf_counter()
    sd = _seeds_all_k(spark, emb_df, ks, seed)
    if sd.empty:
        return _empty(spark, ks)
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
        scores = pd.DataFrame({"product_id": products, "silhouette": sil, "min_size": mins, "k": nonempty})[has]
        out[k] = (FitResult(_rows_of_k(wide, k), nfits[k], (wide,)), scores.reset_index(drop=True))
    return out


def batched_kmeans(spark, emb: pd.DataFrame | None, k: int, seed: int, max_iter: int = 20,
                   emb_df=None, products_per_fit: int = 0) -> FitResult:
    """Engine ``mllib`` at one K: every product in one MLlib fit (or ceil(P / products_per_fit)).
    ``emb_df`` is a Spark DataFrame (product_id, user_id, embedding array<double>); products with
    fewer than K users are skipped (they get no assignment at this K)."""
    if emb_df is None:
        emb_df = spark.createDataFrame(emb)
    return _mllib_all_k(spark, emb_df, (k,), seed, max_iter, products_per_fit)[k][0]


# ---------------------------------------------------------------- engine "auto" and K selection


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
    parts = [_mllib_all_k(spark, df, ks, g.seed, g.max_iter, g.products_per_fit) for df in large]
    parts += [_grouped_all_k(spark, df, ks, g.seed, g.max_iter) for df in small]
    out = _merge(parts, ks) if parts else _empty(spark, ks)
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

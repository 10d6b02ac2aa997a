"""The K-Means kernels every engine runs (numpy, no Spark): k-means++ seeds per product, batched
Lloyd iterations over many products at once, nearest centres, per-cluster sums and the silhouette with
squared Euclidean distance (the definition of MLlib's ``ClusteringEvaluator``). See ``osmf.grouping``
for the algorithm and the engines that call these."""

from __future__ import annotations

import zlib

import numpy as np



_CHUNK_ELEMENTS = 1 << 22  # rows x centres x dims of one vectorised distance step (~32 MB of float64)
BLOCK_ROWS = 1 << 16  # rows of whole products the grouped engine fits at once


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

def one_thread():
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



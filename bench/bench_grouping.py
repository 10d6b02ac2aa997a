"""Grouping benchmark: for each size P products x N users of synthetic embeddings, the Spark
grouping (``fit_candidates`` + ``choose_k``, engine ``auto`` by default) next to single-process
scikit-learn K-Means on the same embeddings (one fit per product and K, with the same k-means++
seeds, iterations and silhouette rule), in one Spark session. The Spark time starts with the data
cached, the session's Python workers started and one small warm-up grouping done (as in a pipeline
run, where earlier stages warm the JVM and the workers); scikit-learn gets one thread
by default (``--sklearn-threads``): its OpenMP threads crawl on a machine busy with other work.

    make bench-grouping     # 1000x500 (goal: <= 2x scikit-learn), 10x200000 and 10000x200
    .venv/bin/python bench/bench_grouping.py --sizes 100x500,2x60000,1000x200   # a quick run

Prints per size the wall times, their ratio, which engine path fitted the products, the share of
products where both chose the same K and the inertia ratio (Spark / scikit-learn, summed over
products at the chosen K): 1.0 means the same quality of clustering. Then one summary table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

GOAL = ("1000x500", 2.0)  # (size, largest Spark / scikit-learn time ratio) from issue 12


def make_embeddings(products: int, users: int, dim: int, seed: int) -> np.ndarray:
    """P x N x dim: each product's audience drawn around 2-5 centres (user i of every product is
    ``u{i:06d}``, so rows are already in user-id order)."""
    rng = np.random.default_rng(seed)
    X = np.empty((products, users, dim))
    for p in range(products):
        k = rng.integers(2, 6)
        centers = rng.normal(0, 1.5, (k, dim))
        X[p] = centers[rng.integers(0, k, users)] + rng.normal(0, 0.6, (users, dim))
    return X


def to_spark(spark, X: np.ndarray):
    """The embeddings as a cached Spark DataFrame (product_id, user_id, embedding array<double>)."""
    import pyarrow as pa

    P, N, d = X.shape
    pids = pa.array([f"p{p:05d}" for p in range(P)]).take(pa.array(np.repeat(np.arange(P), N)))
    uids = pa.array([f"u{i:06d}" for i in range(N)]).take(pa.array(np.tile(np.arange(N), P)))
    emb = pa.ListArray.from_arrays(pa.array(np.arange(0, P * N * d + 1, d, dtype=np.int32)), pa.array(X.ravel()))
    tbl = pa.table({"product_id": pids, "user_id": uids, "embedding": emb})
    df = spark.createDataFrame(tbl).repartition(int(spark.conf.get("spark.sql.shuffle.partitions"))).cache()
    df.count()
    df.mapInArrow(lambda batches: (b.slice(0, 0) for b in batches), df.schema).count()  # Python workers up
    return df


def sklearn_groups(X: np.ndarray, g, threads: int) -> tuple[float, list, list]:
    """Single-process scikit-learn: seconds, chosen K and inertia at it (None for K=1) per product."""
    from sklearn.cluster import KMeans as SkKMeans
    from threadpoolctl import threadpool_limits

    from osmf.grouping import kmeanspp_seeds, product_seed, silhouette_sqeuclidean

    limit = threadpool_limits(threads) if threads > 0 else None
    t = time.perf_counter()
    chosen, inertia = [], []
    for p in range(len(X)):
        pid, best = f"p{p:05d}", (1, -np.inf, None)
        for k in g.k_candidates:
            km = SkKMeans(k, init=kmeanspp_seeds(X[p], k, product_seed(g.seed, pid, k)), n_init=1,
                          max_iter=g.max_iter, tol=0, algorithm="lloyd").fit(X[p])
            sizes = np.bincount(km.labels_, minlength=k)
            s = silhouette_sqeuclidean(X[p], km.labels_)
            if sizes.min() >= g.min_group_size and s > best[1]:
                best = (k, s, km.inertia_)
        chosen.append(best[0])
        inertia.append(best[2])
    seconds = time.perf_counter() - t
    if limit is not None:
        limit.restore_original_limits()
    return seconds, chosen, inertia


def spark_inertia(X: np.ndarray, fits: dict, chosen: dict) -> np.ndarray:
    """Per product, the inertia of the Spark groups at the chosen K (vectorised over products)."""
    import pandas as pd

    P, N, d = X.shape
    parts = [f.assignments[f.assignments["product_id"].map(chosen) == k] for k, (f, _) in fits.items()]
    a = pd.concat(parts, ignore_index=True)
    labels = np.zeros((P, N), np.int64)  # K = 1: one group
    labels[a["product_id"].str[1:].astype(int).to_numpy(), a["user_id"].str[1:].astype(int).to_numpy()] = a["group_id"]
    m = labels.max() + 1
    gidx = (np.arange(P)[:, None] * m + labels).ravel()
    Xf = X.reshape(-1, d)
    n = np.bincount(gidx, minlength=P * m)
    S = np.stack([np.bincount(gidx, weights=Xf[:, j], minlength=P * m) for j in range(d)], 1)
    Q = np.bincount(gidx, weights=(Xf**2).sum(1), minlength=P * m)
    within = Q - (S**2).sum(1) / np.maximum(n, 1)
    return within.reshape(P, m).sum(1)


def warm(spark, g, dim: int) -> None:
    """One small grouping through every engine path first, so that the timed runs do not pay for
    the JVM compiling its shuffle and Arrow code or the Python workers importing the modules."""
    from dataclasses import replace

    from osmf.grouping import fit_candidates

    emb_df = to_spark(spark, make_embeddings(20, 300, dim, 1))
    t = time.perf_counter()
    for engine in ("grouped", "mllib"):
        fit_candidates(spark, emb_df, replace(g, engine=engine))
    emb_df.unpersist()
    print(f"warm-up (20 products x 300 users, engines grouped and mllib): {time.perf_counter() - t:.1f} s", flush=True)


def run_size(spark, P: int, N: int, args, g) -> dict:
    from osmf.grouping import audience_sizes, choose_k, fit_candidates

    X = make_embeddings(P, N, args.dim, 0)
    emb_df = to_spark(spark, X)
    path = g.engine
    if g.engine == "auto":
        big = sum(n >= g.mllib_min_users for n in audience_sizes(emb_df).values())
        path = "auto: " + ("mllib" if big == P else "grouped" if big == 0 else f"{big} mllib, {P - big} grouped")
    print(f"\n== {P} products x {N} users, {args.dim}-d, K in {g.k_candidates}, engine {path}", flush=True)
    t = time.perf_counter()
    fits = fit_candidates(spark, emb_df, g)
    chosen = choose_k({k: s for k, (_, s) in fits.items()}, [f"p{p:05d}" for p in range(P)], g.min_group_size)
    spark_s = time.perf_counter() - t
    emb_df.unpersist()
    print(f"Spark ({spark.sparkContext.master})  {spark_s:8.1f} s   ({sum(f.fits for f, _ in fits.values())} MLlib fits)", flush=True)
    sk_s, sk_chosen, sk_inertia = sklearn_groups(X, g, args.sklearn_threads)
    threads = f"{args.sklearn_threads} thread(s)" if args.sklearn_threads > 0 else "default threads"
    print(f"scikit-learn, one process  {sk_s:8.1f} s   ({P * len(g.k_candidates)} fits, {threads})", flush=True)
    ours = spark_inertia(X, fits, chosen)
    same = [chosen[f"p{p:05d}"] == sk_chosen[p] for p in range(P)]
    both = [p for p in range(P) if same[p] and sk_inertia[p] is not None]
    ratio = ours[both].sum() / sum(sk_inertia[p] for p in both) if both else float("nan")
    print(f"time ratio {spark_s / sk_s:.2f}, same K {np.mean(same):.1%}, inertia ratio {ratio:.4f}", flush=True)
    return {"size": f"{P}x{N}", "path": path, "spark": spark_s, "sklearn": sk_s, "same_k": np.mean(same), "inertia": ratio}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000x500,10x200000,10000x200", help="PRODUCTSxUSERS,... run in this order")
    ap.add_argument("--dim", type=int, default=6)
    ap.add_argument("--ks", default="2,3,4,5")
    ap.add_argument("--engine", choices=["auto", "mllib", "grouped"], default="auto")
    ap.add_argument("--mllib-min-users", type=int, default=None, help="auto's threshold (default: the setting's)")
    ap.add_argument("--products-per-fit", type=int, default=0)
    ap.add_argument("--no-warmup", dest="warmup", action="store_false", help="time the first grouping cold")
    ap.add_argument("--sklearn-threads", type=int, default=1,
                    help="scikit-learn's OpenMP/BLAS threads (0 = its default: all cores; oversubscribes a busy machine)")
    args = ap.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("OSMF_HOME", os.path.join(os.path.dirname(__file__), "out", "home"))
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("py4j").setLevel(logging.WARNING)

    from osmf.config.settings import GroupingConfig, load_settings
    from osmf.lake.spark import get_spark

    extra = {} if args.mllib_min_users is None else {"mllib_min_users": args.mllib_min_users}
    g = GroupingConfig(k_candidates=tuple(int(k) for k in args.ks.split(",")), min_group_size=30,
                       engine=args.engine, products_per_fit=args.products_per_fit, **extra)
    spark = get_spark(load_settings())
    if args.warmup:
        warm(spark, g, args.dim)
    rows = [run_size(spark, *map(int, size.lower().split("x")), args, g) for size in args.sizes.split(",")]
    print(f"\nengine {g.engine} (mllib_min_users {g.mllib_min_users}), Spark {spark.sparkContext.master}, "
          f"scikit-learn threads {args.sklearn_threads or 'default'}")
    print(f"{'size':>12}  {'path':<22} {'Spark s':>8} {'sklearn s':>10} {'ratio':>6} {'same K':>7} {'inertia':>8}")
    for r in rows:
        print(f"{r['size']:>12}  {r['path']:<22} {r['spark']:8.1f} {r['sklearn']:10.1f} {r['spark'] / r['sklearn']:6.2f} "
              f"{r['same_k']:7.1%} {r['inertia']:8.4f}")
    for r in rows:
        if r["size"] == GOAL[0]:
            ok = r["spark"] / r["sklearn"] <= GOAL[1]
            print(f"goal at {GOAL[0]}: Spark <= {GOAL[1]:.0f}x scikit-learn: {r['spark'] / r['sklearn']:.2f}x, "
                  f"{'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

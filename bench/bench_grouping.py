"""Grouping benchmark: P products x N users of synthetic embeddings (default 1000 x 500), grouped by
the batched MLlib job for every candidate K, next to single-process scikit-learn K-Means on the same
embeddings (one fit per product and K, with the same k-means++ seeds and the same silhouette rule).

    make bench-grouping       # or: .venv/bin/python bench/bench_grouping.py --products 1000 --users 500

Prints both wall times and their ratio, and the inertia ratio (batched MLlib / scikit-learn,
summed over products at the chosen K): 1.0 means the same quality of clustering.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd


def make_embeddings(products: int, users: int, dim: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows_p, rows_u, rows_e = [], [], []
    for p in range(products):
        k = rng.integers(2, 6)
        centers = rng.normal(0, 1.5, (k, dim))
        X = centers[rng.integers(0, k, users)] + rng.normal(0, 0.6, (users, dim))
        rows_p += [f"p{p:05d}"] * users
        rows_u += [f"u{i:06d}" for i in range(users)]
        rows_e += list(X)
    return pd.DataFrame({"product_id": rows_p, "user_id": rows_u, "embedding": [list(e) for e in rows_e]})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--products", type=int, default=1000)
    ap.add_argument("--users", type=int, default=500)
    ap.add_argument("--dim", type=int, default=6)
    ap.add_argument("--ks", default="2,3,4,5")
    ap.add_argument("--engine", choices=["mllib", "grouped"], default="mllib")
    ap.add_argument("--products-per-fit", type=int, default=0)
    args = ap.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("OSMF_HOME", os.path.join(os.path.dirname(__file__), "out", "home"))
    import logging

    from sklearn.cluster import KMeans as SkKMeans

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("py4j").setLevel(logging.WARNING)

    from osmf.grouping import fit_candidates
    from osmf.grouping import choose_k, kmeanspp_seeds, product_seed, silhouette_sqeuclidean
    from osmf.settings import GroupingConfig, load_settings
    from osmf.spark import get_spark

    g = GroupingConfig(k_candidates=tuple(int(k) for k in args.ks.split(",")), min_group_size=30,
                       engine=args.engine, products_per_fit=args.products_per_fit)
    emb = make_embeddings(args.products, args.users, args.dim, 0)
    print(f"{args.products} products x {args.users} users, {args.dim}-d embeddings, K in {g.k_candidates}, "
          f"engine {g.engine}, products_per_fit {g.products_per_fit or 'all'}", flush=True)
    spark = get_spark(load_settings())
    emb_df = spark.createDataFrame(emb, "product_id string, user_id string, embedding array<double>").repartition(4).cache()
    emb_df.count()

    t = time.perf_counter()
    fits = fit_candidates(spark, emb_df, g)
    chosen = choose_k({k: s for k, (_, s) in fits.items()}, sorted(emb["product_id"].unique()), g.min_group_size)
    spark_s = time.perf_counter() - t

    t = time.perf_counter()
    sk_chosen, sk_inertia = {}, {}
    for pid, grp in emb.groupby("product_id", sort=True):
        grp = grp.sort_values("user_id")
        X = np.stack(grp["embedding"].to_numpy())
        best = (1, -np.inf, None)
        for k in g.k_candidates:
            km = SkKMeans(k, init=kmeanspp_seeds(X, k, product_seed(g.seed, pid, k)), n_init=1,
                          max_iter=g.max_iter, tol=0, algorithm="lloyd").fit(X)
            sizes = np.bincount(km.labels_, minlength=k)
            s = silhouette_sqeuclidean(X, km.labels_)
            if sizes.min() >= g.min_group_size and s > best[1]:
                best = (k, s, km.inertia_)
        sk_chosen[pid], sk_inertia[pid] = best[0], best[2]
    sk_s = time.perf_counter() - t

    # inertia of the Spark groups at the chosen K
    inertia = {}
    for pid, grp in emb.groupby("product_id", sort=True):
        k = chosen[pid]
        a = fits[k][0].assignments.query("product_id == @pid").set_index("user_id").loc[grp["user_id"], "group_id"].to_numpy()
        X = np.stack(grp["embedding"].to_numpy())
        inertia[pid] = sum(((X[a == j] - X[a == j].mean(0)) ** 2).sum() for j in np.unique(a))
    same_k = np.mean([chosen[p] == sk_chosen[p] for p in chosen])
    both = [p for p in chosen if chosen[p] == sk_chosen[p] and sk_inertia[p] is not None]
    ratio = sum(inertia[p] for p in both) / sum(sk_inertia[p] for p in both)
    print()
    print(f"batched {g.engine:<8} (Spark local[2]) {spark_s:8.1f} s   ({sum(f.fits for f, _ in fits.values())} fits for {args.products} products)")
    print(f"scikit-learn, one process        {sk_s:8.1f} s   ({args.products * len(g.k_candidates)} fits)")
    print(f"time ratio (Spark / sklearn)     {spark_s / sk_s:8.2f}")
    print(f"same K chosen                    {same_k:8.1%}")
    print(f"inertia ratio (Spark / sklearn)  {ratio:8.4f}   (products where both chose the same K)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

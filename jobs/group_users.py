"""Group each product's audience: Spark MLlib K-Means over the PAAG embeddings of the run date,
K chosen per product from ``[grouping].k_candidates`` by silhouette (squared Euclidean, as MLlib's
ClusteringEvaluator) subject to ``min_group_size``. One batched MLlib fit per candidate K covers
every product (see ``osmf/grouping.py``), so the number of Spark jobs does not grow with the
number of products. Writes ``user_groups`` and ``groups`` for the run date.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from jobs._common import grouping_context, job_parser, run_main
from osmf.grouping import batched_kmeans, choose_k, grouped_kmeans, silhouette_sqeuclidean
from osmf.lake import Lake
from osmf.settings import GroupingConfig, Settings

log = logging.getLogger("osmf.group_users")


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


def fit_candidates(spark, emb_df, g: GroupingConfig, ks=None) -> dict[int, tuple]:
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


AGE_BUCKETS = [(18, 29), (30, 44), (45, 59), (60, 200)]


def _attribute_labels(users: pd.DataFrame) -> pd.DataFrame:
    age = users["age"].apply(lambda a: next(f"age {lo}-{hi}" if hi < 200 else f"age {lo}+" for lo, hi in AGE_BUCKETS if lo <= a <= hi))
    tenure = pd.cut(users["tenure_days"], [-1, 180, 720, 10**9], labels=["new customer", "regular customer", "loyal customer"]).astype(str)
    return pd.DataFrame({"user_id": users["user_id"], "age": age, "gender": "gender " + users["gender"],
                         "city_tier": "tier-" + users["city_tier"].astype(str) + " city",
                         "income_level": "income level " + users["income_level"].astype(str),
                         "activity": users["activity"] + " activity", "device": users["device"] + " user",
                         "tenure": tenure})


def describe(members: pd.DataFrame, audience: pd.DataFrame, top: int = 3) -> str:
    """Dominant attributes of a group: values over-represented against the product's audience."""
    found = []
    for col in [c for c in members.columns if c != "user_id"]:
        g_share = members[col].value_counts(normalize=True)
        a_share = audience[col].value_counts(normalize=True)
        for value, share in g_share.items():
            lift = share / a_share.get(value, np.nan)
            if share >= 0.3 and lift >= 1.15:
                found.append((lift, share, value))
    found.sort(reverse=True)
    parts = [f"{v} ({s:.0%}, x{lift:.1f})" for lift, s, v in found[:top]]
    return "; ".join(parts) if parts else "no dominant attribute (mirrors the product's audience)"


def run(run_date: str, settings: Settings, run_id: str | None = None, spark=None, lake: Lake | None = None,
        grouping: GroupingConfig | None = None) -> dict:
    from osmf_models.paag import PAAG

    t0 = time.perf_counter()
    lake, spark, g, run_id = grouping_context(settings, run_id, spark, lake, grouping)
    emb_df = (lake.read_spark(spark, "user_product_embeddings", partition=run_date)
              .select("product_id", "user_id", "embedding").cache())
    emb = emb_df.toPandas()
    if emb.empty:
        raise ValueError(f"user_product_embeddings has no rows for {run_date}; run "
                         f"`python -m jobs.paag_embeddings --run-date {run_date}` first")
    products = sorted(emb["product_id"].unique())
    fits = fit_candidates(spark, emb_df, g)
    chosen = choose_k({k: s for k, (_, s) in fits.items()}, products, g.min_group_size)
    parts = []
    for pid in products:
        k = chosen[pid]
        if k == 1:
            a = emb.loc[emb["product_id"] == pid, ["product_id", "user_id"]].assign(group_id=0)
        else:
            a = fits[k][0].assignments.query("product_id == @pid")
        parts.append(a.assign(k=k))
    assign = pd.concat(parts, ignore_index=True)
    sil = {(p, k): s for k, (_, sc) in fits.items() for p, s in zip(sc["product_id"], sc["silhouette"])}

    # groups: size, centroid, features (centroid ++ attribute profile), description
    users = lake.read_pandas("users")
    fs = PAAG.load(settings.home / "models" / "paag" / f"run_date={run_date}").features
    profile = pd.DataFrame({"user_id": users["user_id"], "profile": list(fs.user_matrix(users).astype(np.float64))})
    labels = _attribute_labels(users)
    m = assign.merge(emb, on=["product_id", "user_id"]).merge(profile, on="user_id")
    rows = []
    for (pid, gid), grp in m.groupby(["product_id", "group_id"], sort=True):
        centroid = np.stack(grp["embedding"].to_numpy()).mean(0)
        attrs = np.stack(grp["profile"].to_numpy()).mean(0)
        aud_ids = m.loc[m["product_id"] == pid, "user_id"]
        desc = describe(labels[labels.user_id.isin(grp["user_id"])], labels[labels.user_id.isin(aud_ids)])
        k = int(grp["k"].iloc[0])
        rows.append({"product_id": pid, "group_id": int(gid), "k": k, "size": len(grp),
                     "silhouette": float(sil.get((pid, k), np.nan)), "centroid": centroid.tolist(),
                     "features": np.concatenate([centroid, attrs]).tolist(), "description": desc})
    groups = pd.DataFrame(rows)
    date = pd.Timestamp(run_date).date()
    lake.replace_partition("user_groups", assign.drop(columns="k").assign(run_date=date), run_date, run_id=run_id, job="group_users")
    lake.replace_partition("groups", groups.assign(run_date=date), run_date, run_id=run_id, job="group_users")
    emb_df.unpersist()
    ks = pd.Series(chosen).value_counts().sort_index().to_dict()
    summary = {"products": len(products), "users": int(len(assign)), "chosen_k": {int(k): int(v) for k, v in ks.items()},
               "groups": int(len(groups)), "seconds": time.perf_counter() - t0}
    log.info("grouping %s: %s", run_date, summary)
    return summary


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    return run_main(parser, lambda a, s: print(run(a.run_date, s, a.run_id)), argv)


if __name__ == "__main__":
    raise SystemExit(main())

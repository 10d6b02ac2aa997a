"""What a group is, besides its members: size, centroid, the feature vector the models read
(centroid ++ mean attribute profile) and a readable description of its dominant attributes; and
the assignment of users to the chosen K per product."""

from __future__ import annotations

import numpy as np
import pandas as pd

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



def assignment_rows(spark, emb_df, fits: dict, chosen: dict[str, int]):
    """Spark DataFrame product_id, user_id, group_id, k: each product's users under its chosen K
    (K=1: one group, group 0), from the fits' rows (which stay on the executors)."""
    from functools import reduce

    from pyspark.sql import functions as F

    ch = spark.createDataFrame(pd.DataFrame({"product_id": list(chosen), "k": [int(v) for v in chosen.values()]}),
                               "product_id string, k int")
    used = set(chosen.values())
    parts = [fit.rows.withColumn("k", F.lit(k)) for k, (fit, _) in sorted(fits.items()) if k in used]
    if 1 in used:
        parts.append(emb_df.select("product_id", "user_id").withColumn("group_id", F.lit(0)).withColumn("k", F.lit(1)))
    rows = reduce(lambda x, y: x.unionByName(y), parts)
    return rows.join(F.broadcast(ch), ["product_id", "k"]).select("product_id", "user_id", "group_id", "k")


GROUPS_DDL = ("product_id string, group_id int, k int, size long, silhouette double, centroid array<double>, "
              "features array<double>, description string")


def _product_groups(pdf: pd.DataFrame, label_cols: list[str], sil: dict) -> pd.DataFrame:
    """One product's audience (product_id, user_id, group_id, k, embedding, profile, labels) ->
    its GROUPS_DDL rows; rows sorted by user id, so the means do not depend on Spark's order."""
    pdf = pdf.sort_values("user_id", kind="stable")
    audience = pdf[["user_id", *label_cols]]
    rows = []
    for gid, grp in pdf.groupby("group_id", sort=True):
        centroid = np.stack(grp["embedding"].to_numpy()).mean(0)
        attrs = np.stack(grp["profile"].to_numpy()).mean(0)
        k = int(grp["k"].iloc[0])
        pid = grp["product_id"].iloc[0]
        rows.append({"product_id": pid, "group_id": int(gid), "k": k, "size": len(grp),
                     "silhouette": float(sil.get((pid, k), np.nan)), "centroid": centroid.tolist(),
                     "features": np.concatenate([centroid, attrs]).tolist(),
                     "description": describe(audience[audience.user_id.isin(grp["user_id"])], audience)})
    return pd.DataFrame(rows, columns=["product_id", "group_id", "k", "size", "silhouette", "centroid", "features",
                                       "description"])


def group_rows(spark, assign, emb_df, users: pd.DataFrame, user_matrix, fits: dict) -> pd.DataFrame:
    """One row per (product, group): k, size, silhouette of its K, centroid, features (centroid ++
    mean attribute profile, ``user_matrix(users)``) and description, computed per product in Spark
    (``assign``: :func:`assignment_rows`); only these rows reach the driver."""
    from pyspark.sql import functions as F

    sil = {(p, int(k)): float(s) for k, (_, sc) in fits.items() for p, s in zip(sc["product_id"], sc["silhouette"])}
    labels = _attribute_labels(users)
    label_cols = [c for c in labels.columns if c != "user_id"]
    udim = labels.assign(profile=list(user_matrix(users).astype(np.float64)))
    u_sdf = spark.createDataFrame(udim, "user_id string, " + ", ".join(f"`{c}` string" for c in label_cols)
                                  + ", profile array<double>")
    m = assign.join(emb_df.select("product_id", "user_id", "embedding"), ["product_id", "user_id"]).join(
        F.broadcast(u_sdf), "user_id")
    out = m.groupBy("product_id").applyInPandas(lambda pdf: _product_groups(pdf, label_cols, sil), GROUPS_DDL)
    return out.toPandas().sort_values(["product_id", "group_id"]).reset_index(drop=True)

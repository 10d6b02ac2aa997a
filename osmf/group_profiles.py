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



def assignments(emb: pd.DataFrame, fits: dict, chosen: dict[str, int]) -> pd.DataFrame:
    """product_id, user_id, group_id, k: each product's users under its chosen K (K=1: one group),
    by product, each product's rows in the order of their source frame (linear in rows: one pass per K)."""
    chosen_k = pd.Series(chosen, dtype="int64")
    parts = []
    for k in sorted(set(chosen_k)):
        pids = chosen_k.index[chosen_k == k]
        src = emb[["product_id", "user_id"]].assign(group_id=0) if k == 1 else fits[k][0].assignments
        parts.append(src[src["product_id"].isin(pids)].assign(k=k))
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values("product_id", kind="stable").reset_index(drop=True)


def group_rows(assign: pd.DataFrame, emb: pd.DataFrame, users: pd.DataFrame, user_matrix, fits: dict) -> pd.DataFrame:
    """One row per (product, group): k, size, silhouette of its K, centroid, features (centroid ++
    mean attribute profile, ``user_matrix(users)``) and description."""
    sil = {(p, k): s for k, (_, sc) in fits.items() for p, s in zip(sc["product_id"], sc["silhouette"])}
    profile = pd.DataFrame({"user_id": users["user_id"], "profile": list(user_matrix(users).astype(np.float64))})
    labels = _attribute_labels(users)
    m = assign.merge(emb, on=["product_id", "user_id"]).merge(profile, on="user_id")
    rows = []
    for pid, members in m.groupby("product_id", sort=True):  # one pass over the rows per product
        audience = labels[labels.user_id.isin(members["user_id"])]
        for gid, grp in members.groupby("group_id", sort=True):
            centroid = np.stack(grp["embedding"].to_numpy()).mean(0)
            attrs = np.stack(grp["profile"].to_numpy()).mean(0)
            desc = describe(audience[audience.user_id.isin(grp["user_id"])], audience)
            k = int(grp["k"].iloc[0])
            rows.append({"product_id": pid, "group_id": int(gid), "k": k, "size": len(grp),
                         "silhouette": float(sil.get((pid, k), np.nan)), "centroid": centroid.tolist(),
                         "features": np.concatenate([centroid, attrs]).tolist(), "description": desc})
    return pd.DataFrame(rows)

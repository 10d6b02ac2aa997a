"""95% intervals of the simulated A/B figures: a bootstrap over held-out users.

The unit resampled is the held-out user (a user is in the audience of several products, so all of a
user's (product, group) rows go in or out together). Each replicate draws the users with
replacement, recomputes every arm's user-weighted CTR from the same per-user expected CTRs, and
from them every derived figure (lifts, oracle fraction, ceiling share, reach). The interval is the
2.5th and 97.5th percentile of the replicates; the seed is fixed, so a report is reproducible.

Derived figures (``derived``), all from the arms' CTRs:

* ``lift_vs_X`` = osmf / X - 1;
* ``oracle_fraction`` = (osmf - one_size) / (oracle - one_size);
* ``ceiling_share`` = (group_ceiling - one_size_oracle) / (oracle - one_size_oracle): how much of the
  gain a per-user oracle has over the best single style the groups can reach at all;
* ``osmf_reach`` = (osmf - one_size_oracle) / (group_ceiling - one_size_oracle): how much of the
  groups' ceiling the generated creatives reach;
* ``osmf_reach_historical`` = (osmf - one_size_oracle) / (group_best_historical - one_size_oracle):
  the same against what a renderer that retrieves history can reach.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

REPLICATES = 1000
SEED = 0
LIFTS = ("one_size", "best_historical", "one_size_oracle", "group_best_historical")


def _ratio(num, den):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def derived(ctr: dict) -> dict:
    """The derived figures of arm CTRs (floats, or arrays of replicates)."""
    c = {a: np.asarray(v, dtype=np.float64) for a, v in ctr.items()}
    out = {f"lift_vs_{a}": c["osmf"] / c[a] - 1 for a in LIFTS if a in c}
    out["oracle_fraction"] = _ratio(c["osmf"] - c["one_size"], c["oracle"] - c["one_size"])
    out["ceiling_share"] = _ratio(c["group_ceiling"] - c["one_size_oracle"], c["oracle"] - c["one_size_oracle"])
    out["osmf_reach"] = _ratio(c["osmf"] - c["one_size_oracle"], c["group_ceiling"] - c["one_size_oracle"])
    if "group_best_historical" in c:
        out["osmf_reach_historical"] = _ratio(c["osmf"] - c["one_size_oracle"],
                                              c["group_best_historical"] - c["one_size_oracle"])
    return {k: (float(v) if np.ndim(v) == 0 else v) for k, v in out.items()}


def intervals(per_user: pd.DataFrame, arms, replicates: int = REPLICATES, seed: int = SEED) -> dict:
    """``{figure: [lo, hi]}`` for every arm's CTR (``ctr_<arm>``) and every derived figure, from
    ``per_user``: one row per (held-out user, product, group) with ``user_id`` and a column per arm."""
    users, row_user = np.unique(per_user["user_id"].to_numpy(), return_inverse=True)
    R = per_user[list(arms)].to_numpy(np.float64)  # rows x arms
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(len(users), np.full(len(users), 1 / len(users)), size=replicates)  # replicates x users
    W = counts[:, row_user].astype(np.float64)  # replicates x rows
    ctr = (W @ R) / W.sum(axis=1, keepdims=True)  # replicates x arms
    reps = {f"ctr_{a}": ctr[:, i] for i, a in enumerate(arms)}
    reps.update(derived({a: ctr[:, i] for i, a in enumerate(arms)}))
    return {k: [float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))] for k, v in reps.items()}

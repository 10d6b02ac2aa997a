"""Click-through rates of groups: Beta smoothing and preference pairs. One implementation, used by
the ``group_ctr`` job (the ``group_creative_ctr`` and ``group_preference_pairs`` tables) and by the
grouping evaluation.

Smoothing (``osmf.data.smoothing``): the prior is centred on the product's overall CTR ``p0`` with
``m`` pseudo-impressions: smoothed = (clicks + m p0) / (impressions + m); the 95% interval is the
2.5%/97.5% quantiles of the posterior Beta(clicks + m p0, impressions - clicks + m (1 - p0)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from osmf.data.smoothing import beta_posterior


def smooth(ctr_rows: pd.DataFrame, prior_strength: float) -> pd.DataFrame:
    """Add ctr, smoothed_ctr, ctr_lo, ctr_hi. Needs impressions, clicks and p0 (the prior mean)."""
    from scipy.stats import beta

    out = ctr_rows.copy()
    out["ctr"] = out["clicks"] / out["impressions"]
    a, b = beta_posterior(out["clicks"], out["impressions"], out["p0"], prior_strength)
    out["smoothed_ctr"] = a / (a + b)
    out["ctr_lo"] = beta.ppf(0.025, a, b)
    out["ctr_hi"] = beta.ppf(0.975, a, b)
    return out


def preference_pairs(ctr: pd.DataFrame, margin: float, min_impressions: int) -> pd.DataFrame:
    """Within a group, every (chosen, rejected) creative pair whose smoothed CTR difference is at
    least ``margin``, both with at least ``min_impressions`` group impressions."""
    eligible = ctr[ctr["impressions"] >= min_impressions]
    cols = ["product_id", "group_id", "creative_id", "smoothed_ctr"]
    pairs = eligible[cols].merge(eligible[cols], on=["product_id", "group_id"], suffixes=("_c", "_r"))
    pairs = pairs[pairs["smoothed_ctr_c"] - pairs["smoothed_ctr_r"] >= margin]
    return pd.DataFrame({
        "product_id": pairs["product_id"], "group_id": pairs["group_id"],
        "chosen_creative_id": pairs["creative_id_c"], "rejected_creative_id": pairs["creative_id_r"],
        "chosen_smoothed_ctr": pairs["smoothed_ctr_c"], "rejected_smoothed_ctr": pairs["smoothed_ctr_r"],
        "margin": pairs["smoothed_ctr_c"] - pairs["smoothed_ctr_r"],
    }).sort_values(["product_id", "group_id", "chosen_creative_id", "rejected_creative_id"]).reset_index(drop=True)

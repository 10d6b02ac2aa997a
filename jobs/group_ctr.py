"""Group CTR and preference pairs for the run date.

``group_creative_ctr``: impressions and clicks of every (product, group, creative) over the trailing
window, the raw CTR, a Beta-smoothed CTR and its 95% interval. The prior is centred on the
product's overall CTR with ``[grouping].prior_strength`` pseudo-impressions:
smoothed = (clicks + m p0) / (impressions + m); the interval is the 2.5%/97.5% quantiles of the
posterior Beta(clicks + m p0, impressions - clicks + m (1 - p0)).

``group_preference_pairs``: within a group, every (chosen, rejected) creative pair whose smoothed CTR
difference is at least ``[grouping].pair_margin``, both with at least ``min_pair_impressions``.

Both leave out the users held out for evaluation (``[grouping].eval_holdout_fraction``, see
``osmf.holdout``), so no model trained on them has seen those users' clicks.
"""

from __future__ import annotations

import logging
import time

import pandas as pd

from jobs._common import grouping_context, job_parser, run_main
from jobs.paag_embeddings import window_impressions
from osmf.lake import Lake
from osmf.settings import GroupingConfig, Settings

log = logging.getLogger("osmf.group_ctr")


def smooth(ctr_rows: pd.DataFrame, prior_strength: float) -> pd.DataFrame:
    """Add ctr, smoothed_ctr, ctr_lo, ctr_hi. Needs impressions, clicks and p0 (the prior mean)."""
    from scipy.stats import beta

    m = prior_strength
    out = ctr_rows.copy()
    out["ctr"] = out["clicks"] / out["impressions"]
    a = out["clicks"] + m * out["p0"]
    b = out["impressions"] - out["clicks"] + m * (1 - out["p0"])
    out["smoothed_ctr"] = a / (a + b)
    out["ctr_lo"] = beta.ppf(0.025, a, b)
    out["ctr_hi"] = beta.ppf(0.975, a, b)
    return out


def preference_pairs(ctr: pd.DataFrame, margin: float, min_impressions: int) -> pd.DataFrame:
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


def run(run_date: str, settings: Settings, run_id: str | None = None, spark=None, lake: Lake | None = None,
        grouping: GroupingConfig | None = None) -> dict:
    from pyspark.sql import functions as F


    t0 = time.perf_counter()
    lake, spark, g, run_id = grouping_context(settings, run_id, spark, lake, grouping)
    imp = window_impressions(spark, lake, run_date, g.window_days)
    if g.eval_holdout_fraction > 0:
        from osmf.holdout import heldout_users

        held = heldout_users(lake.read_pandas("users")["user_id"], g.eval_holdout_fraction)
        imp = imp.join(spark.createDataFrame([(u,) for u in held], "user_id string"), "user_id", "left_anti")
    ug = lake.read_spark(spark, "user_groups", partition=run_date).select("product_id", "user_id", "group_id")
    agg = (imp.join(ug, ["product_id", "user_id"])
           .groupBy("product_id", "group_id", "creative_id")
           .agg(F.count(F.lit(1)).alias("impressions"), F.sum("clicked").cast("long").alias("clicks")))
    prod = imp.groupBy("product_id").agg((F.sum("clicked") / F.count(F.lit(1))).alias("p0"))
    rows = agg.join(prod, "product_id").toPandas()
    if rows.empty:
        raise ValueError(f"no grouped impressions for {run_date}; run `python -m jobs.group_users --run-date {run_date}`")
    rows["p0"] = rows["p0"].clip(1e-4, 1 - 1e-4)
    ctr = smooth(rows, g.prior_strength).drop(columns="p0").sort_values(["product_id", "group_id", "creative_id"])
    pairs = preference_pairs(ctr, g.pair_margin, g.min_pair_impressions)
    date = pd.Timestamp(run_date).date()
    lake.replace_partition("group_creative_ctr", ctr.assign(run_date=date), run_date, run_id=run_id, job="group_ctr")
    lake.replace_partition("group_preference_pairs", pairs.assign(run_date=date), run_date, run_id=run_id, job="group_ctr")
    summary = {"ctr_rows": int(len(ctr)), "pairs": int(len(pairs)),
               "groups_with_pairs": int(pairs.groupby(["product_id", "group_id"]).ngroups) if len(pairs) else 0,
               "seconds": time.perf_counter() - t0}
    log.info("group CTR %s: %s", run_date, summary)
    return summary


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    return run_main(parser, lambda a, s: print(run(a.run_date, s, a.run_id)), argv)


if __name__ == "__main__":
    raise SystemExit(main())

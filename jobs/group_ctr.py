"""Group CTR and preference pairs for the run date.

``group_creative_ctr``: impressions and clicks of every (product, group, creative) over the trailing
window, the raw CTR, a Beta-smoothed CTR and its 95% interval (``osmf.grouping.ctr``: the prior is centred
on the product's overall CTR with ``[grouping].prior_strength`` pseudo-impressions).

``group_preference_pairs``: within a group, every (chosen, rejected) creative pair whose smoothed CTR
difference is at least ``[grouping].pair_margin``, both with at least ``min_pair_impressions``.

Both leave out the users held out for evaluation (``[grouping].eval_holdout_fraction``, see
``osmf.data.audience``), so no model trained on them has seen those users' clicks.
"""

from __future__ import annotations

import logging
import time

from osmf.runtime.context import JobContext
from osmf.runtime.entrypoint import job_main

log = logging.getLogger("osmf.group_ctr")


def run(ctx: JobContext) -> dict:
    import pandas as pd
    from pyspark.sql import functions as F

    from osmf.data.audience import window_impressions, without_heldout
    from osmf.grouping.ctr import preference_pairs, smooth

    t0 = time.perf_counter()
    lake, spark, g, run_date, run_id = ctx.lake, ctx.spark, ctx.settings.grouping, ctx.run_date, ctx.run_id
    imp = without_heldout(spark, lake, window_impressions(spark, lake, run_date, g.window_days), g.eval_holdout_fraction)
    ug = lake.read_spark(spark, "user_groups", partition=run_date).select("product_id", "user_id", "group_id")
    agg = (imp.join(ug, ["product_id", "user_id"])
           .groupBy("product_id", "group_id", "creative_id")
           .agg(F.count(F.lit(1)).alias("impressions"), F.sum("clicked").cast("long").alias("clicks")))
    prod = imp.groupBy("product_id").agg((F.sum("clicked") / F.count(F.lit(1))).alias("p0"))
    rows = agg.join(prod, "product_id").toPandas()
    if rows.empty:
        raise ValueError(f"no grouped impressions for {run_date}; run `python -m jobs.group_users --run-date {run_date}`")
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
    return job_main(run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())

"""Group each product's audience: K-Means over the PAAG embeddings of the run date, K chosen per
product from ``[grouping].k_candidates`` by ``[grouping].k_rule`` (default ``gain``: the smallest K
that reaches ``k_gain_share`` of the best candidate's predicted click gain; or ``silhouette``)
subject to ``min_group_size``. With the default engine ``auto``, audiences of
at least ``mllib_min_users`` users are fitted with Spark MLlib K-Means (distributed over users, one
batched fit per candidate K), all other products in one grouped Spark job that tries every
candidate K at once (see ``osmf.grouping``); neither grows in Spark jobs with the number of
products. Writes ``user_groups`` and ``groups`` for the run date.
"""

from __future__ import annotations

import logging
import time

from osmf.runtime.context import JobContext
from osmf.runtime.entrypoint import job_main

log = logging.getLogger("osmf.group_users")


def run(ctx: JobContext) -> dict:
    import pandas as pd
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from osmf.grouping import audience_sizes, choose_k, fit_candidates, predicted_gain, release
    from osmf.grouping.profiles import assignment_rows, group_rows
    from osmf_models.paag import PAAG

    t0 = time.perf_counter()
    settings, lake, spark, g = ctx.settings, ctx.lake, ctx.spark, ctx.settings.grouping
    run_date, run_id = ctx.run_date, ctx.run_id
    emb_df = (lake.read_spark(spark, "user_product_embeddings", partition=run_date)
              .select("product_id", "user_id", "embedding").persist(StorageLevel.MEMORY_AND_DISK))
    assign = None
    try:
        sizes = audience_sizes(emb_df)
        products = sorted(sizes)
        if not products:
            raise ValueError(f"user_product_embeddings has no rows for {run_date}; run "
                             f"`python -m jobs.paag_embeddings --run-date {run_date}` first")
        fits = fit_candidates(spark, emb_df, g, sizes=sizes)
        try:
            gains = predicted_gain(fits) if g.k_rule == "gain" else None
            chosen = choose_k({k: s for k, (_, s) in fits.items()}, products, g.min_group_size, gains, g.k_gain_share)
            assign = assignment_rows(spark, emb_df, fits, chosen).persist(StorageLevel.MEMORY_AND_DISK)
            fs = PAAG.load(settings.paag_dir(run_date)).features
            groups = group_rows(spark, assign, emb_df, lake.read_pandas("users"), fs.user_matrix, fits)
            date = pd.Timestamp(run_date).date()
            lake.write_spark(assign.withColumn("run_date", F.lit(run_date).cast("date")), "user_groups",
                             partition=run_date, run_id=run_id, job="group_users")
            lake.replace_partition("groups", groups.assign(run_date=date), run_date, run_id=run_id, job="group_users")
        finally:
            release(fits)
    finally:
        if assign is not None:
            assign.unpersist()
        emb_df.unpersist()
    ks = pd.Series(chosen).value_counts().sort_index().to_dict()
    summary = {"products": len(products), "users": int(groups["size"].sum()), "chosen_k": {int(k): int(v) for k, v in ks.items()},
               "groups": int(len(groups)), "seconds": time.perf_counter() - t0}
    log.info("grouping %s: %s", run_date, summary)
    return summary


def main(argv=None) -> int:
    return job_main(run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())

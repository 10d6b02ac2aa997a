"""The serving table: for every user and every product of a run date, the group and the creative an
ad server shows (``serving_assignments``), and its export to a file.

Users in a product's audience keep their group from ``user_groups`` (``assigned_by = audience``);
every other user is placed by their attributes (``attributes``, see ``osmf.grouping.assign``). The
creative is the group's row of ``generated_creatives``. A product without groups on the run date
(no impression in the window) shows its first historical creative to everyone (``no_groups``).
"""

from __future__ import annotations

from pathlib import Path

CREATIVE_COLUMNS = ["creative_id", "image_uri", "prompt", "gmllm_version", "grm_version"]


def serving_frame(spark, lake, run_date: str, by_attributes):
    """The ``serving_assignments`` rows of ``run_date`` (a Spark DataFrame) from the attribute
    assignment of every (user, product) with groups (``by_attributes``: user_id, product_id, group_id)."""
    from pyspark.sql import functions as F

    ug = (lake.read_spark(spark, "user_groups", partition=run_date)
          .select("user_id", "product_id", F.col("group_id").alias("audience_group")))
    grouped = (by_attributes.join(ug, ["user_id", "product_id"], "left")
               .select("user_id", "product_id", F.coalesce("audience_group", "group_id").alias("group_id"),
                       F.when(F.col("audience_group").isNotNull(), "audience").otherwise("attributes")
                       .alias("assigned_by")))
    gen = lake.read_spark(spark, "generated_creatives", partition=run_date).select("product_id", "group_id",
                                                                                   *CREATIVE_COLUMNS)
    with_creative = grouped.join(gen, ["product_id", "group_id"], "left")
    ungrouped = _ungrouped_products(spark, lake, run_date)
    if ungrouped is not None:
        with_creative = with_creative.unionByName(ungrouped)
    return with_creative.withColumn("run_date", F.lit(run_date).cast("date"))


def _ungrouped_products(spark, lake, run_date: str):
    """Every user x each product without groups on the run date, with its first historical creative."""
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    grouped = lake.read_spark(spark, "groups", partition=run_date).select("product_id").distinct()
    products = lake.read_spark(spark, "products").select("product_id").join(grouped, "product_id", "left_anti")
    if products.limit(1).count() == 0:
        return None
    first = Window.partitionBy("product_id").orderBy("creative_id")
    hist = (lake.read_spark(spark, "creatives").join(products, "product_id")
            .withColumn("_n", F.row_number().over(first)).where("_n = 1")
            .select("product_id", "creative_id", "image_uri", F.col("background_prompt").alias("prompt"),
                    F.lit(None).cast("string").alias("gmllm_version"), F.lit(None).cast("string").alias("grm_version")))
    users = lake.read_spark(spark, "users").select("user_id")
    return (users.crossJoin(hist).withColumn("group_id", F.lit(None).cast("int"))
            .withColumn("assigned_by", F.lit("no_groups")))


def export_serving(lake, run_date: str, out: Path) -> int:
    """Write the run date's serving assignments to ``out`` (``.parquet`` or ``.jsonl``, by its
    suffix; rows sorted by user and product); returns the number of rows."""
    import pyarrow.parquet as pq

    out = Path(out)
    if out.suffix not in (".parquet", ".jsonl"):
        raise ValueError(f"--out {out}: give a .parquet or a .jsonl file")
    if not lake.has_partition("serving_assignments", run_date):
        raise FileNotFoundError(f"serving_assignments has no partition {run_date}; the generate stage writes it "
                                f"(`python -m jobs.serving_assignments --run-date {run_date}`)")
    tbl = lake.read_arrow("serving_assignments", partition=run_date).sort_by([("user_id", "ascending"),
                                                                                ("product_id", "ascending")])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    if out.suffix == ".parquet":
        pq.write_table(tbl, tmp)
    else:
        df = tbl.to_pandas()
        df["run_date"] = df["run_date"].astype(str)  # 2026-03-04, not a timestamp
        df.to_json(tmp, orient="records", lines=True, force_ascii=False)
    tmp.replace(out)
    return tbl.num_rows

"""The lake module: delta-rs writes, the Spark Python Data Source (read, write, time travel,
abort), and cross-engine reads."""

import datetime as dt
import os

import pandas as pd
import pyarrow as pa
import pytest

from osmf.lake import Lake, TableNotFound


def _events(ids, date="2026-01-01", clicked=0):
    d = dt.date.fromisoformat(date)
    ts = dt.datetime(d.year, d.month, d.day, 12, tzinfo=dt.timezone.utc)
    n = len(ids)
    return pa.table({"event_id": ids, "event_ts": [ts] * n, "event_date": [d] * n, "user_id": ["u1"] * n,
                     "product_id": ["p1"] * n, "creative_id": ["c1"] * n, "clicked": [clicked] * n,
                     "source_file": ["f"] * n, "source_line": list(range(n))})


def _files(path):
    return sorted(os.path.relpath(os.path.join(r, f), path) for r, _, fs in os.walk(path) for f in fs
                  if f.endswith(".parquet"))


def test_missing_table_says_which_and_how(scratch_settings):
    with pytest.raises(TableNotFound, match=r"'impressions'.*osmf ingest --run-date"):
        Lake(scratch_settings).read_arrow("impressions")


def test_partition_replace_and_commit_metadata(scratch_settings):
    lake = Lake(scratch_settings)
    lake.replace_partition("impressions", _events(["a", "b"]), "2026-01-01", run_id="r1", job="t")
    lake.replace_partition("impressions", _events(["c"], "2026-01-02"), "2026-01-02", run_id="r2", job="t")
    lake.replace_partition("impressions", _events(["a2"]), "2026-01-01", run_id="r3", job="t")
    rows = lake.read_pandas("impressions").sort_values("event_id")
    assert rows.event_id.tolist() == ["a2", "c"]  # day 1 replaced, day 2 untouched
    with pytest.raises(ValueError, match="partitions"):
        lake.replace_partition("impressions", _events(["x"], "2026-01-02"), "2026-01-01")
    hist = lake.history("impressions")
    assert [h["osmf.run_id"] for h in hist[:3]] == ["r3", "r2", "r1"]
    with pytest.raises(ValueError, match="lacks column"):
        lake.overwrite("impressions", pa.table({"event_id": ["z"]}))


def test_spark_round_trip_time_travel_and_cross_engine_reads(scratch_settings, spark):
    import polars as pl
    from pyspark.sql import functions as F

    lake = Lake(scratch_settings)
    src = pd.DataFrame({"event_id": [f"e{i}" for i in range(50)], "day": ["2026-01-01"] * 30 + ["2026-01-02"] * 20})
    df = (spark.createDataFrame(src)
          .select("event_id", F.timestamp_millis(F.lit(1767268800000)).alias("event_ts"),
                  F.col("day").cast("date").alias("event_date"), F.lit("u1").alias("user_id"),
                  F.lit("p1").alias("product_id"), F.lit("c1").alias("creative_id"),
                  (F.length("event_id") % 2).cast("int").alias("clicked"), F.lit("f").alias("source_file"),
                  F.monotonically_increasing_id().alias("source_line"))
          .repartition(3))
    v0 = lake.write_spark(df, "impressions", mode="append", run_id="spark-1", job="test")
    assert lake.history("impressions")[0]["osmf.run_id"] == "spark-1"
    back = lake.read_spark(spark, "impressions").toPandas()
    assert sorted(back.event_id) == sorted(src.event_id)
    assert back.groupby("event_date").size().to_dict() == {dt.date(2026, 1, 1): 30, dt.date(2026, 1, 2): 20}
    # replace one partition from Spark: exactly one new commit, other partition untouched
    day2 = df.where("event_date = '2026-01-02'").limit(5)
    v1 = lake.write_spark(day2, "impressions", partition="2026-01-02", run_id="spark-2", job="test")
    assert v1 == v0 + 1
    assert lake.read_spark(spark, "impressions").groupBy("event_date").count().count() == 2
    assert lake.read_spark(spark, "impressions", partition="2026-01-02").count() == 5
    # time travel: the old version still reads as it was
    assert lake.read_spark(spark, "impressions", version=v0).count() == 50
    assert lake.read_spark(spark, "impressions").count() == 35
    # delta-rs, polars and Spark see the same rows
    def norm(frame):
        frame = frame[["event_id", "event_date", "clicked", "source_line"]].copy()
        frame["event_date"] = pd.to_datetime(frame["event_date"]).dt.strftime("%Y-%m-%d")
        return frame.sort_values("event_id").reset_index(drop=True)

    via_rs = norm(lake.read_pandas("impressions"))
    via_pl = norm(pl.read_delta(str(lake.path("impressions"))).to_pandas())
    via_spark = norm(lake.read_spark(spark, "impressions").toPandas())
    pd.testing.assert_frame_equal(via_rs, via_pl, check_dtype=False)
    pd.testing.assert_frame_equal(via_rs, via_spark, check_dtype=False)
    assert len(via_rs) == 35


def test_aborted_spark_write_leaves_no_commit_and_no_files(scratch_settings, spark):
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    lake = Lake(scratch_settings)
    lake.replace_partition("impressions", _events(["keep"]), "2026-01-01", run_id="r0")
    version, files = lake.version("impressions"), _files(lake.path("impressions"))

    @F.udf(StringType())
    def explode_on_last(event_id):
        if event_id == "e39":
            raise RuntimeError("boom")
        return event_id

    df = (spark.range(40).repartition(4)
          .select(explode_on_last(F.concat(F.lit("e"), F.col("id").cast("string"))).alias("event_id"),
                  F.timestamp_millis(F.lit(1767268800000)).alias("event_ts"),
                  F.lit("2026-01-01").cast("date").alias("event_date"), F.lit("u").alias("user_id"),
                  F.lit("p").alias("product_id"), F.lit("c").alias("creative_id"),
                  F.lit(0).alias("clicked"), F.lit("f").alias("source_file"), F.col("id").alias("source_line")))
    with pytest.raises(Exception, match="boom"):
        lake.write_spark(df, "impressions", mode="append", run_id="doomed")
    assert lake.version("impressions") == version
    assert _files(lake.path("impressions")) == files  # the tasks that did finish were cleaned up
    assert lake.read_pandas("impressions").event_id.tolist() == ["keep"]
    assert all(h.get("osmf.run_id") != "doomed" for h in lake.history("impressions"))


def _spark_events(spark, n, date="2026-01-01", clicked_type="long"):
    from pyspark.sql import functions as F

    return spark.range(n).select(
        F.concat(F.lit("e"), F.col("id").cast("string")).alias("event_id"),
        F.timestamp_millis(F.lit(1767268800000)).alias("event_ts"), F.lit(date).cast("date").alias("event_date"),
        F.lit("u").alias("user_id"), F.lit("p").alias("product_id"), F.lit("c").alias("creative_id"),
        (F.col("id") % 2).cast(clicked_type).alias("clicked"), F.lit("f").alias("source_file"),
        F.col("id").alias("source_line"))


def test_spark_frames_are_written_by_the_tasks_never_collected(scratch_settings, spark):
    from osmf.lake import conform
    from osmf.lake.tables import spec

    lake = Lake(scratch_settings)
    df = _spark_events(spark, 10)  # clicked is a long: cast to the table's int32 in Spark
    with pytest.raises(TypeError, match="never collected"):
        conform(df, spec("impressions"))
    v = lake.replace_partition("impressions", df, "2026-01-01", run_id="r1", job="t")
    tbl = lake.read_arrow("impressions")
    assert tbl.num_rows == 10 and tbl.schema.field("clicked").type == pa.int32()
    assert lake.history("impressions")[0]["osmf.rows"] == "10"
    lake.write_spark(_spark_events(spark, 15).where("source_line >= 10"), "impressions", mode="append",
                     run_id="r2", job="t")
    assert lake.read_arrow("impressions").num_rows == 15 and lake.version("impressions") == v + 1
    lake.write_spark(_spark_events(spark, 15).limit(0), "impressions", mode="append")
    assert lake.version("impressions") == v + 1  # appending nothing made no commit
    with pytest.raises(ValueError, match="lacks column"):
        lake.write_spark(df.drop("clicked"), "impressions", mode="append")


def test_partition_filters_prune_files(scratch_settings, spark):
    """A filter on the partition column is pushed to the data source: the other partitions' files
    are not read (checked on the reader), and the rows are right (checked through Spark)."""
    from pyspark.sql.datasource import EqualTo, GreaterThanOrEqual, In, LessThan

    from osmf.lake.delta_source import _DeltaRsReader

    lake = Lake(scratch_settings)
    for day in ("2026-01-01", "2026-01-02", "2026-01-03"):
        lake.replace_partition("impressions", _events([f"{day}-a", f"{day}-b"], day), day)
    dt_ = lake.table("impressions")

    def files_after(*filters):
        reader = _DeltaRsReader(dt_, None)
        left = list(reader.pushFilters(list(filters)))
        return sorted({v["event_date"] for _, v in reader.files}), left

    d = dt.date.fromisoformat
    assert files_after(EqualTo(("event_date",), d("2026-01-02"))) == (["2026-01-02"], [])
    assert files_after(GreaterThanOrEqual(("event_date",), d("2026-01-02")),
                       LessThan(("event_date",), d("2026-01-03"))) == (["2026-01-02"], [])
    assert files_after(In(("event_date",), (d("2026-01-01"), d("2026-01-03")))) == (["2026-01-01", "2026-01-03"], [])
    other = EqualTo(("user_id",), "u1")
    assert files_after(other)[1] == [other]  # not a partition column: left to Spark
    got = (lake.read_spark(spark, "impressions")
           .where("event_date BETWEEN DATE'2026-01-02' AND DATE'2026-01-03'").select("event_id").toPandas())
    assert sorted(got.event_id) == ["2026-01-02-a", "2026-01-02-b", "2026-01-03-a", "2026-01-03-b"]
    cols = lake.read_spark(spark, "impressions", partition="2026-01-01", columns=["event_id", "source_line"])
    assert cols.columns == ["event_id", "source_line"] and cols.count() == 2


def test_staged_write_routes_counts_and_commits_later(scratch_settings, spark):
    """One pass writes two tables (rows routed by a column) and counts every row; nothing is in the
    tables until each is committed; discard removes what was not committed."""
    from pyspark.sql import functions as F

    lake = Lake(scratch_settings)
    lake.replace_partition("quarantine", pa.table({
        "event_date": [dt.date(2026, 1, 1)], "source_file": ["old"], "line_number": [1], "raw_line": ["x"],
        "reason": ["empty_line"], "detail": [None]}), "2026-01-01")
    rows = (_spark_events(spark, 20)
            .withColumn("route", F.when(F.col("source_line") < 12, "new").when(F.col("source_line") < 15, "bad")
                        .otherwise("skip"))
            .withColumn("line_number", F.col("source_line")).withColumn("raw_line", F.lit("{"))
            .withColumn("reason", F.when(F.col("route") == "bad", "invalid_json")).withColumn("detail", F.lit(None))
            .repartition(3))
    staged = lake.stage_spark(rows, "route", {"new": "impressions", "bad": "quarantine"},
                              report_by=["route", "reason"], report_max="line_number")
    counts = {}
    for c in staged.counts:
        key = (c["route"], c["reason"])
        n, m = counts.get(key, (0, -1))
        counts[key] = (n + c["rows"], max(m, c["max"]))
    assert counts == {("new", None): (12, 11), ("bad", "invalid_json"): (3, 14), ("skip", None): (5, 19)}
    assert staged.rows("impressions") == 12 and staged.rows("quarantine") == 3
    assert lake.read_arrow("impressions").num_rows == 0  # staged, not committed
    staged.commit("quarantine", partition="2026-01-01", run_id="s1", job="t")
    assert sorted(lake.read_pandas("quarantine").line_number) == [12, 13, 14]  # the partition was replaced
    paths = [lake.path("impressions") / f["path"] for f in staged.files["impressions"]]
    assert all(p.exists() for p in paths)
    staged.discard()
    assert not any(p.exists() for p in paths) and lake.read_arrow("impressions").num_rows == 0


def test_failed_staged_write_leaves_no_files(scratch_settings, spark):
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    lake = Lake(scratch_settings)

    @F.udf(StringType())
    def explode_on_last(event_id):
        if event_id == "e39":
            raise RuntimeError("boom")
        return "new"

    rows = _spark_events(spark, 40).repartition(4).withColumn("route", explode_on_last("event_id"))
    with pytest.raises(Exception, match="boom"):
        lake.stage_spark(rows, "route", {"new": "impressions"})
    assert _files(lake.path("impressions")) == []


@pytest.mark.parametrize("landed", [False, True])
def test_a_failed_commit_keeps_what_landed_and_discards_the_rest(scratch_settings, spark, monkeypatch, landed):
    """A commit that raises leaves its files staged for ``discard`` unless the table now references
    them (the commit landed and only its reply was lost): those are data and stay."""
    from pyspark.sql import functions as F

    import osmf.lake.spark_io as lake_module

    lake = Lake(scratch_settings)
    staged = lake.stage_spark(_spark_events(spark, 10).withColumn("route", F.lit("new")).repartition(2),
                              "route", {"new": "impressions"})
    real = lake_module.commit_files

    def failing(*args, **kwargs):
        if landed:
            real(*args, **kwargs)
        raise OSError("commit failed")

    monkeypatch.setattr(lake_module, "commit_files", failing)
    with pytest.raises(OSError, match="commit failed"):
        staged.commit("impressions")
    staged.discard()
    assert lake.read_arrow("impressions").num_rows == (10 if landed else 0)
    assert len(_files(lake.path("impressions"))) == (len(lake.table("impressions").file_uris()) if landed else 0)


def test_a_routed_write_sweeps_its_unreported_files_only(tmp_path):
    """After a routed write, files of its id that no task reported (an attempt that failed and was
    retried) are deleted; reported files and other writes' files stay."""
    from osmf.lake.delta_source import _sweep

    part = tmp_path / "event_date=2026-01-01"
    part.mkdir()
    names = ["part-w1-00000-0-a.zstd.parquet", "part-w1-00001-0-b.zstd.parquet", "part-w1-00001-1-c.zstd.parquet",
             "part-w2-00000-0-d.zstd.parquet"]
    for n in names:
        (part / n).write_bytes(b"x")
    _sweep(str(tmp_path), "w1", keep={f"event_date=2026-01-01/{n}" for n in names[:1] + names[2:3]})
    assert sorted(p.name for p in part.iterdir()) == [names[0], names[2], names[3]]

"""GX suites: a good partition passes; corrupted data fails the expectations it should."""

import datetime as dt

import pytest

from osmf.quality.suites import dimension_keys, suite_parameters, validate_frame, validate_table
from osmf.lake.tables import TABLES


@pytest.mark.parametrize("table", ["impressions", "quarantine", "ingest_audit", "users", "products", "creatives"])
def test_good_partition_passes(ingested, lake, table):
    date = sorted(ingested)[0] if TABLES[table].partition_by else None
    report = validate_table(lake, table, date)
    assert report.success, report.summary()
    assert report.rows > 0


def test_corrupted_partition_fails_with_reasons(ingested, lake):
    date = sorted(ingested)[0]
    df = lake.read_pandas("impressions", partition=date)
    bad = df.copy()
    bad.loc[0, "clicked"] = 2
    bad.loc[1, "event_id"] = bad.loc[2, "event_id"]
    bad.loc[3, "user_id"] = "u_nobody"
    bad.loc[4, "event_ts"] = bad.loc[4, "event_ts"] + dt.timedelta(days=1)
    dims = dimension_keys(lake, "impressions")
    assert set(dims) == {"users.user_id", "products.product_id", "creatives.creative_id"}
    report = validate_frame("impressions", bad, suite_parameters(lake, "impressions", date), date, dimensions=dims)
    assert not report.success
    failed = {(o.expectation, o.column) for o in report.outcomes if not o.success}
    assert failed == {
        ("expect_column_values_to_be_in_set", "clicked"),
        ("expect_column_values_to_be_unique", "event_id"),
        ("expect_column_values_to_be_in_dimension", "user_id"),
        ("expect_column_values_to_be_between", "event_ts"),
    }
    assert "FAILED" in report.summary() and "u_nobody" in report.summary()
    # the untouched frame passes the same suite with the same parameters
    assert validate_frame("impressions", df, suite_parameters(lake, "impressions", date), date, dimensions=dims).success
    with pytest.raises(ValueError, match=r"users\.user_id"):  # a suite's dimension keys are not optional
        validate_frame("impressions", df, suite_parameters(lake, "impressions", date), date)


def test_spark_validation_agrees_with_pandas(ingested, lake, spark):
    """A big partition is validated as a Spark DataFrame (nothing collected): forced here with a
    threshold of 0, it gives every expectation the outcome the pandas path gives it, and a corrupted
    Spark frame fails the expectations it should."""
    from pyspark.sql import functions as F

    date = sorted(ingested)[0]
    on_pandas = validate_table(lake, "impressions", date, spark_min_rows=10**12)
    on_spark = validate_table(lake, "impressions", date, spark_min_rows=0)
    assert on_spark.success and on_spark.rows == on_pandas.rows == lake.rows("impressions", date)
    assert [(o.expectation, o.column, o.success) for o in on_spark.outcomes] == \
        [(o.expectation, o.column, o.success) for o in on_pandas.outcomes]
    df = lake.read_spark(spark, "impressions", partition=date)
    first = df.orderBy("event_id").first()["event_id"]
    bad = df.withColumn("clicked", F.when(F.col("event_id") == first, F.lit(2)).otherwise(F.col("clicked")))
    bad = bad.withColumn("user_id", F.when(F.col("event_id") == first, F.lit("u_n'obody")).otherwise(F.col("user_id")))
    report = validate_frame("impressions", bad, suite_parameters(lake, "impressions", date), date,
                            dimensions=dimension_keys(lake, "impressions"))
    failed = [(o.expectation, o.column, o.unexpected_count) for o in report.outcomes if not o.success]
    assert sorted(failed) == [("expect_column_values_to_be_in_dimension", "user_id", 1),
                              ("expect_column_values_to_be_in_set", "clicked", 1)]
    assert "u_n'obody" in report.summary()


def test_validate_job_exit_codes(ingested, lake, settings, scratch_settings, monkeypatch, capsys):
    """The job exits 0 on a good partition and 1 (with a readable summary) on a corrupted one."""
    from jobs import validate_table as job
    from osmf.lake import Lake

    date = sorted(ingested)[0]
    monkeypatch.setenv("OSMF_HOME", str(settings.home))
    assert job.main(["--table", "impressions", "--run-date", date]) == 0
    assert (settings.home / "quality/impressions" / f"{date}.json").is_file()
    # a corrupted copy of the lake: dims as they are, one impressions partition with clicked = 7
    other = Lake(scratch_settings)
    for dim in ("users", "products", "creatives"):
        other.overwrite(dim, lake.read_arrow(dim))
    bad = lake.read_pandas("impressions", partition=date)
    bad["clicked"] = 7
    other.replace_partition("impressions", bad, date)
    monkeypatch.setenv("OSMF_HOME", str(scratch_settings.home))
    capsys.readouterr()
    assert job.main(["--table", "impressions", "--run-date", date]) == 1
    out = capsys.readouterr().out
    assert "FAILED: impressions [event_date=" in out and "clicked" in out
    assert job.main(["--table", "quarantine", "--run-date", date]) == 1  # no such table there
    assert "does not exist" in capsys.readouterr().err

"""Every analyst query in sql/ runs on the tiny world, with Spark SQL and with DuckDB, and both
engines give the same answer."""

from pathlib import Path

import pandas as pd
import pytest

from osmf import sqlrun

SQL_FILES = sorted((Path(__file__).resolve().parent.parent / "sql").glob("*.sql"))


@pytest.mark.parametrize("path", SQL_FILES, ids=[p.stem for p in SQL_FILES])
def test_every_sql_file_runs_on_both_engines(path, ingested, regrouped, lake, spark):
    dates = sorted(ingested)
    q = sqlrun.load_query(str(path))
    assert q.description, f"{path.name} needs a description comment"
    params = {k: dates[0] if "start" in k else dates[-1] for k, (default, _) in q.params.items() if default is None}
    via_spark = sqlrun.run_query(q, params, "spark", lake, spark)
    via_duck = sqlrun.run_query(q, params, "duckdb", lake)
    assert len(via_spark) > 0
    norm = lambda df: df.astype(str).sort_values(list(df.columns)).reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(norm(via_spark), norm(via_duck))
    for fmt in ("table", "csv", "json"):
        assert sqlrun.render(via_spark, fmt)


def test_daily_ctr_adds_up_to_impressions(ingested, lake, spark):
    dates = sorted(ingested)
    q = sqlrun.load_query("daily_ctr_by_product_creative")
    df = sqlrun.run_query(q, {"start_date": dates[0], "end_date": dates[-1]}, "duckdb", lake)
    imp = lake.read_pandas("impressions")
    assert df.impressions.sum() == len(imp)
    assert df.clicks.sum() == imp.clicked.sum()


def test_parameter_errors_are_clear(ingested, lake):
    q = sqlrun.load_query("category_daily_volume")
    with pytest.raises(ValueError, match="needs --param end_date"):
        sqlrun.run_query(q, {"start_date": "2026-01-01"}, "duckdb", lake)
    with pytest.raises(ValueError, match="no parameter"):
        sqlrun.run_query(q, {"start_date": "x", "end_date": "y", "k": "1"}, "duckdb", lake)
    with pytest.raises(FileNotFoundError):
        sqlrun.load_query("no_such_query")
    inline = sqlrun.load_query("SELECT COUNT(*) AS n FROM impressions WHERE clicked = :c")
    assert int(sqlrun.run_query(inline, {"c": "1"}, "duckdb", lake).n[0]) == int(lake.read_pandas("impressions").clicked.sum())

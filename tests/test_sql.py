"""Every analyst query in sql/ runs on the tiny world, with Spark SQL and with DuckDB, both engines
give the same answer, that answer matches row counts and totals computed independently from the lake
with pandas, and every output format renders exactly that answer."""

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from osmf.lake import sqlrun

# the serving queries need the generate stage's table: tests/test_handmade_chain.py runs them
SQL_FILES = [p for p in sorted((Path(__file__).resolve().parent.parent / "sql").glob("*.sql"))
             if not p.stem.startswith("serving_")]


# ---- independent expectations: pandas over the lake's Delta tables, no SQL ---------------------------
def _between(col: pd.Series, start: str, end: str) -> pd.Series:
    d = pd.to_datetime(col)
    return (d >= pd.Timestamp(start)) & (d <= pd.Timestamp(end))


def _best_per_group(ctr: pd.DataFrame, n: int) -> pd.DataFrame:
    """Each (product, group)'s top-n creatives by smoothed CTR, ties to the smaller creative id."""
    ranked = ctr.sort_values(["product_id", "group_id", "smoothed_ctr", "creative_id"],
                             ascending=[True, True, False, True])
    return ranked.groupby(["product_id", "group_id"]).head(n)


def _expect_category_daily_volume(lake, p):
    imp = lake.read_pandas("impressions")
    imp = imp[_between(imp.event_date, p["start_date"], p["end_date"])]
    m = imp.merge(lake.read_pandas("products")[["product_id", "category"]], on="product_id")
    per = m.groupby(["event_date", "category"])
    return len(per), {"impressions": len(m), "clicks": int(m.clicked.sum()), "users": int(per.user_id.nunique().sum())}


def _expect_daily_ctr_by_product_creative(lake, p):
    imp = lake.read_pandas("impressions")
    imp = imp[_between(imp.event_date, p["start_date"], p["end_date"])]
    n = imp.groupby(["event_date", "product_id", "creative_id"]).ngroups
    return n, {"impressions": len(imp), "clicks": int(imp.clicked.sum())}


def _expect_group_disagreement(lake, p):
    best = _best_per_group(lake.read_pandas("group_creative_ctr", partition=p["run_date"]), 1)
    per = best.groupby("product_id")
    return per.ngroups, {"n_groups": len(best), "distinct_best_creatives": int(per.creative_id.nunique().sum()),
                         "max_best_ctr": float(per.smoothed_ctr.max().sum()),
                         "spread_best_ctr": float((per.smoothed_ctr.max() - per.smoothed_ctr.min()).sum())}


def _expect_group_sizes_over_days(lake, p):
    g = lake.read_pandas("groups")
    g = g[_between(g.run_date, p["start_date"], p["end_date"])]
    key = ["run_date", "product_id", "group_id"]
    x = lake.read_pandas("group_creative_ctr").groupby(key)[["impressions", "clicks"]].sum().reset_index()
    m = g.merge(x, on=key)
    return len(m), {"size": int(m["size"].sum()), "impressions": int(m.impressions.sum()), "clicks": int(m.clicks.sum())}


def _expect_quarantine_by_reason(lake, p):
    q = lake.read_pandas("quarantine")
    q = q[_between(q.event_date, p["start_date"], p["end_date"])]
    read = lake.read_pandas("ingest_audit").groupby("event_date")["lines_read"].sum()
    q = q[q.event_date.isin(read.index)]
    per = q.groupby(["event_date", "reason"]).size().reset_index(name="lines")
    return len(per), {"lines": len(q), "lines_read_that_day": int(per.event_date.map(read).sum())}


def _expect_top_creatives_per_group(lake, p):
    top = _best_per_group(lake.read_pandas("group_creative_ctr", partition=p["run_date"]), 3)  # top_n's default
    groups = lake.read_pandas("groups", partition=p["run_date"])[["product_id", "group_id", "size"]]
    m = top.merge(groups, on=["product_id", "group_id"])
    return len(m), {"impressions": int(m.impressions.sum()), "clicks": int(m.clicks.sum()),
                    "smoothed_ctr": float(m.smoothed_ctr.sum())}


EXPECTED = {name[len("_expect_"):]: f for name, f in list(globals().items()) if name.startswith("_expect_")}


def _assert_totals(frame: pd.DataFrame, n_rows: int, totals: dict, where: str, abs_tol: float = 1e-9) -> None:
    assert len(frame) == n_rows, f"{where}: {len(frame)} rows, expected {n_rows}"
    for col, want in totals.items():
        got = pd.to_numeric(frame[col]).sum()
        assert got == pytest.approx(want, rel=1e-9, abs=abs_tol), f"{where}: sum({col}) = {got}, expected {want}"


def _assert_renders(df: pd.DataFrame, n_rows: int, totals: dict) -> None:
    """Each format holds exactly df: its columns in order, its rows, and the expected totals. (JSON
    numbers are written with pandas' to_json default of 10 decimal places, hence its tolerance.)"""
    cols = list(df.columns)
    json_atol = 1e-10
    csv = pd.read_csv(io.StringIO(sqlrun.render(df, "csv")))
    assert list(csv.columns) == cols
    _assert_totals(csv, n_rows, totals, "csv")
    records = json.loads(sqlrun.render(df, "json"))
    assert isinstance(records, list) and all(list(r) == cols for r in records)
    _assert_totals(pd.DataFrame(records, columns=cols), n_rows, totals, "json", abs_tol=1e-9 + json_atol * n_rows)
    numeric = [c for c in cols if pd.api.types.is_numeric_dtype(df[c])]
    for c in numeric:  # every number survives the round trip, not only the totals
        np.testing.assert_allclose(csv[c].to_numpy(float), df[c].to_numpy(float), rtol=1e-12, err_msg=c)
        np.testing.assert_allclose(pd.DataFrame(records, columns=cols)[c].to_numpy(float), df[c].to_numpy(float),
                                   rtol=0, atol=json_atol, err_msg=c)
    lines = sqlrun.render(df, "table").splitlines()
    assert lines[0].split() == cols and len(lines) == 1 + n_rows


@pytest.mark.parametrize("path", SQL_FILES, ids=[p.stem for p in SQL_FILES])
def test_every_sql_file_runs_on_both_engines(path, ingested, regrouped, settings, lake, spark):
    dates = sorted(ingested)
    q = sqlrun.load_query(str(path), settings.sql_dir)
    assert q.description, f"{path.name} needs a description comment"
    params = {k: dates[0] if "start" in k else dates[-1] for k, (default, _) in q.params.items() if default is None}
    via_spark = sqlrun.run_query(q, params, lake, "spark", spark)
    via_duck = sqlrun.run_query(q, params, lake, "duckdb")
    assert len(via_spark) > 0
    norm = lambda df: df.astype(str).sort_values(list(df.columns)).reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(norm(via_spark), norm(via_duck))
    assert path.stem in EXPECTED, f"write an independent pandas expectation _expect_{path.stem} for {path.name}"
    n_rows, totals = EXPECTED[path.stem](lake, params)
    _assert_totals(via_spark, n_rows, totals, "spark")
    _assert_renders(via_spark, n_rows, totals)


def test_daily_ctr_adds_up_to_impressions(ingested, settings, lake, spark):
    dates = sorted(ingested)
    q = sqlrun.load_query("daily_ctr_by_product_creative", settings.sql_dir)
    df = sqlrun.run_query(q, {"start_date": dates[0], "end_date": dates[-1]}, lake, "duckdb")
    imp = lake.read_pandas("impressions")
    assert df.impressions.sum() == len(imp)
    assert df.clicks.sum() == imp.clicked.sum()


def test_parameter_errors_are_clear(ingested, settings, lake):
    q = sqlrun.load_query("category_daily_volume", settings.sql_dir)
    with pytest.raises(ValueError, match="needs --param end_date"):
        sqlrun.run_query(q, {"start_date": "2026-01-01"}, lake, "duckdb")
    with pytest.raises(ValueError, match="no parameter"):
        sqlrun.run_query(q, {"start_date": "x", "end_date": "y", "k": "1"}, lake, "duckdb")
    with pytest.raises(FileNotFoundError):
        sqlrun.load_query("no_such_query", settings.sql_dir)
    inline = sqlrun.load_query("SELECT COUNT(*) AS n FROM impressions WHERE clicked = :c", settings.sql_dir)
    assert int(sqlrun.run_query(inline, {"c": "1"}, lake, "duckdb").n[0]) == int(lake.read_pandas("impressions").clicked.sum())

"""The whole chain on a drop no generator made (examples/handmade_drop): landing check, ingest of every
day, regroup, train, generate and the serving table, with tiny models; the simulated A/B test says
it needs a synthetic world."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from test_landing import ROOT, _example, _settings

pytestmark = pytest.mark.slow  # the whole chain: minutes, still run by `make test` and CI


@pytest.fixture(scope="module")
def handmade(tmp_path_factory, spark):
    from conftest import make_ctx

    from osmf.ingest.landing import check_landing
    from osmf.lake import Lake
    from osmf_app.chain import STAGES, run_stage

    home = tmp_path_factory.mktemp("handmade")
    dates = list(_example().DATES)
    _example().make_drop(home / "landing")
    settings = _settings(home)
    assert check_landing(settings).ok
    lake = Lake(settings)
    outs = {}
    for stage in STAGES:
        for d in (dates if stage.dag_id == "osmf_ingest" else dates[-1:]):
            outs[(stage.dag_id, d)] = run_stage(stage, make_ctx(settings, d, f"hm-{stage.dag_id}-{d}", spark, lake),
                                                say=lambda m: None)
    return settings, lake, dates[-1], outs


def test_the_chain_runs_end_to_end_on_a_handmade_drop(handmade):
    settings, lake, last, outs = handmade
    assert all(set(o["validation"].values()) <= {"passed"} for o in outs.values()), outs  # osmf_train has no suite
    groups = lake.read_pandas("groups", partition=last)
    gen = lake.read_pandas("generated_creatives", partition=last)
    assert sorted(groups.product_id.unique()) == ["mug-01", "phones-3", "shoe-07"]
    assert sorted(zip(gen.product_id, gen.group_id)) == sorted(zip(groups.product_id, groups.group_id))
    assert all(settings.asset(u).exists() for u in gen.image_uri)


def test_the_serving_table_covers_every_user_and_product_once(handmade):
    settings, lake, last, outs = handmade
    serving = lake.read_pandas("serving_assignments", partition=last)
    users = lake.read_pandas("users").user_id
    assert len(serving) == len(users) * 3 and not serving.duplicated(["user_id", "product_id"]).any()
    assert set(serving.user_id) == set(users)
    gen = lake.read_pandas("generated_creatives", partition=last).set_index(["product_id", "group_id"])
    joined = serving.join(gen[["creative_id"]], on=["product_id", "group_id"], rsuffix="_gen")
    assert (joined.creative_id == joined.creative_id_gen).all()
    ug = lake.read_pandas("user_groups", partition=last).set_index(["user_id", "product_id"]).group_id
    aud = serving[serving.assigned_by == "audience"].set_index(["user_id", "product_id"]).group_id
    assert len(aud) == len(ug) and (aud.sort_index() == ug.sort_index()).all()
    assert set(serving.assigned_by) <= {"audience", "attributes"}


def test_the_serving_export_and_a_rerun(handmade, spark, tmp_path):
    from conftest import make_ctx

    from jobs import serving_assignments
    from osmf.generation.serving import export_serving
    import pandas as pd

    settings, lake, last, _ = handmade
    before = lake.read_pandas("serving_assignments", partition=last).sort_values(["user_id", "product_id"])
    serving_assignments.run(make_ctx(settings, last, "hm-rerun", spark, lake))
    after = lake.read_pandas("serving_assignments", partition=last).sort_values(["user_id", "product_id"])
    pd.testing.assert_frame_equal(before.reset_index(drop=True), after.reset_index(drop=True))
    n = export_serving(lake, last, tmp_path / "serving.jsonl")
    rows = pd.read_json(tmp_path / "serving.jsonl", lines=True)
    assert n == len(before) == len(rows) and list(rows.columns)[:3] == ["run_date", "user_id", "product_id"]
    assert export_serving(lake, last, tmp_path / "serving.parquet") == n
    with pytest.raises(ValueError, match="give a .parquet or a .jsonl file"):
        export_serving(lake, last, tmp_path / "serving.csv")


def test_the_simulated_ab_needs_a_synthetic_world(handmade):
    settings = handmade[0]
    env = {**os.environ, "OSMF_HOME": str(settings.home), "OSMF_CONFIG": ""}
    out = subprocess.run([sys.executable, "-m", "osmf_app.cli", "evaluate", "ab", "--run-date", handmade[2]],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 1
    assert "needs a synthetic world" in out.stderr and "offline metrics are in MLflow" in out.stderr, out.stderr


def test_the_serving_queries_on_both_engines(handmade, spark):
    import pandas as pd

    from osmf.lake import sqlrun

    settings, lake, last, _ = handmade
    serving = lake.read_pandas("serving_assignments", partition=last)
    user = sorted(serving.user_id)[7]
    mine = sqlrun.load_query("serving_for_user", settings.sql_dir)
    for engine in ("spark", "duckdb"):
        df = sqlrun.run_query(mine, {"run_date": last, "user_id": user}, lake, engine, spark)
        want = serving[serving.user_id == user].sort_values("product_id")
        assert list(df.product_id) == list(want.product_id) and list(df.creative_id) == list(want.creative_id)
        cov = sqlrun.run_query(sqlrun.load_query("serving_coverage", settings.sql_dir), {"run_date": last}, lake,
                               engine, spark)
        expect = serving.groupby(["product_id", "assigned_by"]).size().rename("users").reset_index()
        pd.testing.assert_frame_equal(cov[["product_id", "assigned_by", "users"]].astype({"users": "int64"}),
                                      expect.astype({"users": "int64"}), check_names=False)

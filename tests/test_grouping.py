"""Product-aware grouping on the tiny world: batched MLlib equals per-product fits, deterministic
K selection, one group per audience user, CTR tables adding up, evaluation keys."""

import json

import numpy as np
import pandas as pd
import pytest

from osmf.grouping import per_product_kmeans, silhouette_sqeuclidean


@pytest.fixture(scope="module")
def embeddings(regrouped, lake):
    date, _ = regrouped
    return date, lake.read_pandas("user_product_embeddings", partition=date)


def test_batched_fit_equals_per_product_mllib_fits(embeddings, spark, lake, grouping_cfg):
    from osmf.grouping import batched_kmeans

    date, emb = embeddings
    emb_df = lake.read_spark(spark, "user_product_embeddings", partition=date).select("product_id", "user_id", "embedding")
    for k in grouping_cfg.k_candidates:
        fit = batched_kmeans(spark, None, k, grouping_cfg.seed, grouping_cfg.max_iter, emb_df=emb_df)
        assert fit.assignments["product_id"].nunique() == emb["product_id"].nunique()
        for pid, g in emb.groupby("product_id"):
            X = np.stack(g["embedding"].to_numpy())
            ref = per_product_kmeans(spark, X, g["user_id"].tolist(), pid, k, grouping_cfg.seed, grouping_cfg.max_iter)
            got = fit.assignments.query("product_id == @pid").set_index("user_id").loc[g["user_id"], "group_id"].to_numpy()
            assert np.array_equal(ref, got), (k, pid)


def test_grouped_engine_equals_mllib(embeddings, spark, lake, grouping_cfg):
    from osmf.grouping import batched_kmeans, grouped_kmeans

    date, _ = embeddings
    emb_df = lake.read_spark(spark, "user_product_embeddings", partition=date).select("product_id", "user_id", "embedding")
    for k in grouping_cfg.k_candidates:
        a = batched_kmeans(spark, None, k, grouping_cfg.seed, grouping_cfg.max_iter, emb_df=emb_df).assignments
        b = grouped_kmeans(spark, k, grouping_cfg.seed, grouping_cfg.max_iter, emb_df=emb_df).assignments
        key = ["product_id", "user_id"]
        pd.testing.assert_frame_equal(a.sort_values(key).reset_index(drop=True), b.sort_values(key).reset_index(drop=True),
                                      check_dtype=False)
        # products_per_fit splits the MLlib fit without changing a single group
        c = batched_kmeans(spark, None, k, grouping_cfg.seed, grouping_cfg.max_iter, emb_df=emb_df, products_per_fit=4)
        assert c.fits == 2
        pd.testing.assert_frame_equal(a.sort_values(key).reset_index(drop=True),
                                      c.assignments.sort_values(key).reset_index(drop=True))


def test_silhouette_is_mllib_clustering_evaluator(embeddings, spark):
    from pyspark.ml.evaluation import ClusteringEvaluator
    from pyspark.ml.linalg import Vectors

    _, emb = embeddings
    g = emb[emb["product_id"] == emb["product_id"].iloc[0]]
    X = np.stack(g["embedding"].to_numpy())
    labels = (X[:, 0] > np.median(X[:, 0])).astype(int) + (X[:, 1] > np.median(X[:, 1])).astype(int)
    df = spark.createDataFrame([(Vectors.dense(x), int(l)) for x, l in zip(X, labels)], ["features", "prediction"])
    ref = ClusteringEvaluator(distanceMeasure="squaredEuclidean").evaluate(df)
    assert abs(silhouette_sqeuclidean(X, labels) - ref) < 1e-9


def test_k_selection_is_deterministic(regrouped, settings, spark, lake, grouping_cfg):
    from jobs import group_users

    date, _ = regrouped
    before = {t: lake.read_pandas(t, partition=date) for t in ("user_groups", "groups")}
    group_users.run(date, settings, run_id="again", spark=spark, lake=lake, grouping=grouping_cfg)
    for t, df in before.items():
        key = ["product_id", "user_id"] if t == "user_groups" else ["product_id", "group_id"]
        after = lake.read_pandas(t, partition=date).sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(df.sort_values(key).reset_index(drop=True), after)
    ks = before["groups"].groupby("product_id")["k"].first()
    assert set(ks) <= {1, *grouping_cfg.k_candidates}
    sizes = before["groups"].groupby("product_id")["size"].min()
    assert ((sizes >= grouping_cfg.min_group_size) | (ks == 1)).all()


def test_every_audience_user_in_exactly_one_group(regrouped, spark, lake, grouping_cfg):
    from osmf.audience import window_impressions

    date, out = regrouped
    assert set(out["validation"].values()) == {"passed"}
    ug = lake.read_pandas("user_groups", partition=date)
    assert not ug.duplicated(["product_id", "user_id"]).any()
    audience = window_impressions(spark, lake, date, grouping_cfg.window_days).select("product_id", "user_id").distinct().toPandas()
    assert set(map(tuple, audience.to_numpy())) == set(map(tuple, ug[["product_id", "user_id"]].to_numpy()))
    groups = lake.read_pandas("groups", partition=date)
    sizes = ug.groupby(["product_id", "group_id"]).size()
    assert (groups.set_index(["product_id", "group_id"])["size"] == sizes).all()
    assert groups["description"].str.len().min() > 0


def test_ctr_tables_add_up_to_impressions(regrouped, spark, lake, grouping_cfg):
    from osmf.audience import window_impressions

    date, _ = regrouped
    ctr = lake.read_pandas("group_creative_ctr", partition=date)
    imp = window_impressions(spark, lake, date, grouping_cfg.window_days).toPandas()
    from osmf.audience import is_heldout

    held = imp["user_id"].map(lambda u: is_heldout(u, grouping_cfg.eval_holdout_fraction))
    assert 0 < held.mean() < 2 * grouping_cfg.eval_holdout_fraction  # the evaluation users are left out
    imp = imp[~held]
    assert ctr["impressions"].sum() == len(imp)
    assert ctr["clicks"].sum() == imp["clicked"].sum()
    per_creative = imp.groupby("creative_id").size()
    assert (ctr.groupby("creative_id")["impressions"].sum() == per_creative).all()
    assert ((ctr.ctr_lo <= ctr.smoothed_ctr) & (ctr.smoothed_ctr <= ctr.ctr_hi)).all()
    pairs = lake.read_pandas("group_preference_pairs", partition=date)
    assert (pairs["margin"] >= grouping_cfg.pair_margin - 1e-12).all()
    merged = pairs.merge(ctr, left_on=["product_id", "group_id", "chosen_creative_id"],
                         right_on=["product_id", "group_id", "creative_id"])
    assert len(merged) == len(pairs) and (merged["impressions"] >= grouping_cfg.min_pair_impressions).all()


def test_evaluation_json_has_the_keys(regrouped, settings, spark, lake, grouping_cfg, tmp_path):
    from osmf import evaluate_grouping

    date, _ = regrouped
    report = evaluate_grouping.evaluate(date, settings, spark, lake, grouping_cfg)
    evaluate_grouping.write(report, tmp_path / "g.json", tmp_path / "g.png")
    data = json.loads((tmp_path / "g.json").read_text())
    for key in ("ndcg5_by_k", "ndcg5_truth_by_k", "ari_product_aware", "ari_product_agnostic"):
        assert key in data
    assert set(data["ndcg5_by_k"]) == {"1", *map(str, grouping_cfg.k_candidates)}
    assert data["ndcg5_by_k"]["1"] == pytest.approx(1.0)
    assert all(0 < v <= 1 for v in data["ndcg5_truth_by_k"].values())
    assert -1 <= data["ari_product_aware"] <= 1 and -1 <= data["ari_product_agnostic"] <= 1
    assert (tmp_path / "g.png").stat().st_size > 1000


def test_regroup_rerun_gives_the_same_tables(regrouped, settings, spark, lake, grouping_cfg):
    from osmf.tables import spec
    from osmf_app.chain import REGROUP, run_stage

    GROUP_TABLES = REGROUP.validates

    date, _ = regrouped
    def snap():
        return {t: lake.read_pandas(t, partition=date).sort_values(list(spec(t).key)).reset_index(drop=True)
                for t in GROUP_TABLES}
    before = snap()
    run_stage(REGROUP, date, settings, run_id="rerun", say=lambda m: None, spark=spark, lake=lake, grouping=grouping_cfg)
    after = snap()
    for t in GROUP_TABLES:
        pd.testing.assert_frame_equal(before[t], after[t], obj=t)

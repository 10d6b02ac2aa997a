"""Product-aware grouping on the tiny world: batched MLlib equals per-product fits, deterministic
K selection, one group per audience user, CTR tables adding up, evaluation keys."""

import json

import numpy as np
import pandas as pd
import pytest

from osmf.grouping import silhouette_sqeuclidean


@pytest.fixture(scope="module")
def embeddings(regrouped, lake):
    date, _ = regrouped
    return date, lake.read_pandas("user_product_embeddings", partition=date)


def _assert_converged_per_product_kmeans(emb: pd.DataFrame, assignments: pd.DataFrame, k: int) -> None:
    """The reference check, sharing no code with osmf.grouping (numpy and scikit-learn only).

    A K-Means fit that ran to convergence on ONE product's points leaves an assignment that is a
    fixed point of Lloyd's algorithm on that product alone: with every group's centroid taken as the
    mean of its members, every user is nearest to its own group's centroid, and one more Lloyd step
    (scikit-learn's ``KMeans(init=those centroids, n_init=1, max_iter=1)``) neither moves a centroid
    nor changes a label. This pins down what the batched fit must produce without re-running the
    production seeding (``kmeanspp_seeds``) a seeding bug would share: mixing products (a group
    whose centroid was pulled by another product's points) or stopping early breaks the fixed point.
    It does not say which of the product's local optima the fit found; the grouped-engine test below
    checks the two engines agree on that."""
    from sklearn.cluster import KMeans

    key = ["product_id", "user_id"]
    assert not assignments.duplicated(key).any(), k
    # exactly the products with >= k audience users, every one of their users, no one else
    sizes = emb.groupby("product_id").size()
    expected = emb[emb["product_id"].isin(sizes[sizes >= k].index)]
    assert set(map(tuple, assignments[key].to_numpy())) == set(map(tuple, expected[key].to_numpy())), k
    labels_of = assignments.set_index(key)["group_id"]
    for pid, g in expected.groupby("product_id"):
        X = np.stack(g["embedding"].to_numpy()).astype(np.float64)
        got = labels_of.loc[list(zip(g["product_id"], g["user_id"]))].to_numpy()
        ids = np.unique(got)
        assert len(ids) == k and set(ids) <= set(range(k)), (k, pid, ids)  # K real groups, ids 0..K-1
        centroids = np.stack([X[got == j].mean(0) for j in range(k)])
        d2 = ((X[:, None, :] - centroids[None, :, :]) ** 2).sum(-1)
        own = d2[np.arange(len(X)), got]
        assert (own <= d2.min(1) + 1e-9).all(), (k, pid, int((own > d2.min(1) + 1e-9).sum()))
        step = KMeans(n_clusters=k, init=centroids, n_init=1, max_iter=1, tol=0.0).fit(X)
        assert np.array_equal(step.labels_, got), (k, pid, int((step.labels_ != got).sum()))
        np.testing.assert_allclose(step.cluster_centers_, centroids, atol=1e-9, err_msg=f"k={k} {pid}")


def test_batched_fit_is_a_converged_kmeans_of_each_product_alone(embeddings, spark, lake, grouping_cfg):
    """The one batched MLlib fit gives every product a converged K-Means of its own users only
    (checked independently of the production code by ``_assert_converged_per_product_kmeans``)."""
    from osmf.grouping import batched_kmeans

    date, emb = embeddings
    emb_df = lake.read_spark(spark, "user_product_embeddings", partition=date).select("product_id", "user_id", "embedding")
    assert emb["product_id"].nunique() >= 2  # batching has something to mix
    for k in grouping_cfg.k_candidates:
        fit = batched_kmeans(spark, None, k, grouping_cfg.seed, grouping_cfg.max_iter, emb_df=emb_df)
        assert fit.fits == 1
        _assert_converged_per_product_kmeans(emb, fit.assignments, k)


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

"""Product-aware grouping on the tiny world: batched MLlib equals per-product fits, the vectorised
numpy K-Means equals a per-product fit bit for bit, ``auto`` gives each audience the groups of the
engine it dispatches to, deterministic K selection, one group per audience user, CTR tables adding
up, evaluation keys."""

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


def _reference_seeds(X: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means++ as the grouping drew it before the engines were vectorised (``rng.choice``)."""
    rng = np.random.default_rng(seed)
    idx = [int(rng.integers(len(X)))]
    d2 = ((X - X[idx[0]]) ** 2).sum(1)
    for _ in range(1, k):
        total = d2.sum()
        nxt = int(rng.integers(len(X))) if total <= 0 else int(rng.choice(len(X), p=d2 / total))
        idx.append(nxt)
        d2 = np.minimum(d2, ((X - X[nxt]) ** 2).sum(1))
    return X[idx].astype(np.float64)


def _reference_lloyd(X: np.ndarray, init: np.ndarray, max_iter: int):
    """One product's K-Means as the grouped engine ran it before (a plain per-product loop)."""
    C = init.astype(np.float64).copy()
    for _ in range(max_iter):
        labels = ((X[:, None, :] - C[None, :, :]) ** 2).sum(-1).argmin(1)
        new = C.copy()
        for j in range(len(C)):
            if (labels == j).any():
                new[j] = X[labels == j].mean(0)
        if np.array_equal(new, C):
            break
        C = new
    return ((X[:, None, :] - C[None, :, :]) ** 2).sum(-1).argmin(1), C


@pytest.mark.parametrize("dim", [1, 3, 8, 13])
def test_vectorised_kmeans_is_the_per_product_fit_bit_for_bit(dim):
    """Seeds, Lloyd iterations for many products at once (padded, batched matmul with exact
    rechecks of near ties) and the per-product silhouette: the same numbers as one product at a
    time, on data with exact ties (integer grid), points far from the origin and mixed sizes."""
    from osmf.grouping import kmeanspp_seeds, product_seed
    from osmf.grouping.engine_grouped import fit_block
    from osmf.grouping.kmeans import lloyd_many

    rng = np.random.default_rng(dim)
    counts = np.array([7, 40, 41, 300, 35, 1200, 9])
    Xs = [rng.integers(0, 3, (counts[0], dim)).astype(float), rng.integers(0, 2, (counts[1], dim)).astype(float)]
    Xs += [rng.normal(0, 1, (c, dim)) * 10 ** rng.uniform(-1, 2) + rng.normal(0, 5, dim) for c in counts[2:-1]]
    Xs += [rng.normal(0, 1, (counts[-1], dim)) + 1e4]
    X = np.concatenate(Xs)
    for k in (2, 5):
        init = np.stack([kmeanspp_seeds(x, k, product_seed(7, f"p{i}", k)) for i, x in enumerate(Xs)])
        for i, x in enumerate(Xs):
            assert np.array_equal(init[i], _reference_seeds(x, k, product_seed(7, f"p{i}", k))), (k, i)
        for max_iter in (1, 4, 30):
            labels, C = lloyd_many(X, counts, init, max_iter)
            own = np.repeat(np.arange(len(Xs)), counts)
            for i, x in enumerate(Xs):
                ref_labels, ref_C = _reference_lloyd(x, init[i], max_iter)
                assert np.array_equal(labels[own == i], ref_labels), (k, max_iter, i)
                assert np.array_equal(C[i], ref_C), (k, max_iter, i)
    res = fit_block(X, [f"p{i}" for i in range(len(Xs))], counts, (2, 8), 7, 20)
    for i, x in enumerate(Xs):
        lab, sil, min_size, groups, fitted, _ = (r[own == i] if j == 0 else r[i] for j, r in enumerate(res[8]))
        assert fitted == (len(x) >= 8) and (not fitted or (lab >= 0).all())
        lab, sil, min_size, groups, _, _ = (r[own == i] if j == 0 else r[i] for j, r in enumerate(res[2]))
        assert np.array_equal(lab, _reference_lloyd(x, _reference_seeds(x, 2, product_seed(7, f"p{i}", 2)), 20)[0])
        sizes = np.bincount(lab)
        assert (min_size, groups) == (sizes[sizes > 0].min(), (sizes > 0).sum())
        ref = silhouette_sqeuclidean(x, lab)  # both from cluster sums: as exact as eps x |x|^2 allows
        assert (np.isnan(sil) and np.isnan(ref)) or abs(sil - ref) < 1e-12 * (x**2).sum(1).max(), (i, sil, ref)


def _tiny_audiences(spark):
    """Synthetic embeddings: audiences of 3, 40 and 61 users (small) and 150 and 260 (large)."""
    rng = np.random.default_rng(5)
    rows = []
    for p, n in enumerate([3, 40, 150, 61, 260]):
        centres = rng.normal(0, 2, (3, 4))
        X = centres[rng.integers(0, 3, n)] + rng.normal(0, 0.5, (n, 4))
        rows += [(f"p{p}", f"u{u:04d}", x.tolist()) for u, x in zip(rng.permutation(5000)[:n], X)]
    emb = pd.DataFrame(rows, columns=["product_id", "user_id", "embedding"])
    return emb, spark.createDataFrame(emb, "product_id string, user_id string, embedding array<double>").repartition(3)


def test_auto_fits_large_audiences_with_mllib_and_the_rest_grouped(spark):
    """With ``mllib_min_users`` = 100, ``auto`` gives the large audiences exactly the groups and
    scores of the ``mllib`` engine (one MLlib fit per K for both) and the small ones those of the
    ``grouped`` engine (no MLlib fit); the two engines agree with each other as well, and a
    product with fewer users than K gets no groups at that K."""
    from dataclasses import replace

    from osmf.grouping import fit_candidates
    from osmf.grouping.engine_grouped import grouped_all_k
    from osmf.config.settings import GroupingConfig

    emb, emb_df = _tiny_audiences(spark)
    g = GroupingConfig(k_candidates=(2, 3, 5), min_group_size=5, mllib_min_users=100, max_iter=30)
    assert g.engine == "auto"
    auto, grouped, mllib = (fit_candidates(spark, emb_df, replace(g, engine=e)) for e in ("auto", "grouped", "mllib"))
    large, key = {"p2", "p4"}, ["product_id", "user_id"]

    def part(df, products):
        return df[df["product_id"].isin(products)].sort_values(list(df.columns[:2])).reset_index(drop=True)

    for k in g.k_candidates:
        assert auto[k][0].fits == 1 and grouped[k][0].fits == 0 and mllib[k][0].fits == 1
        small = set(emb["product_id"]) - large
        for products, engine in ((large, mllib), (small, grouped)):
            pd.testing.assert_frame_equal(part(auto[k][0].assignments, products), part(engine[k][0].assignments, products))
            pd.testing.assert_frame_equal(part(auto[k][1], products), part(engine[k][1], products), atol=1e-9)
        pd.testing.assert_frame_equal(part(grouped[k][0].assignments, set(emb["product_id"])),
                                      part(mllib[k][0].assignments, set(emb["product_id"])))
        pd.testing.assert_frame_equal(part(grouped[k][1], set(emb["product_id"])), part(mllib[k][1], set(emb["product_id"])),
                                      atol=1e-9)
        fitted = set(auto[k][0].assignments["product_id"])
        assert fitted == {p for p, n in emb.groupby("product_id").size().items() if n >= k}
        a = auto[k][0].assignments.merge(emb, on=key)
        for pid, grp in a.groupby("product_id"):
            X, lab = np.stack(grp["embedding"].to_numpy()), grp["group_id"].to_numpy()
            score = auto[k][1].set_index("product_id").loc[pid]
            assert abs(score["silhouette"] - silhouette_sqeuclidean(X, lab)) < 1e-9
            assert score["min_size"] == np.bincount(lab)[np.unique(lab)].min() and score["k"] == len(np.unique(lab))
        # fitting in blocks of a few whole products changes nothing
        blocks = grouped_all_k(spark, emb_df, (k,), g.seed, g.max_iter, block_rows=7)[k][0].assignments
        pd.testing.assert_frame_equal(part(blocks, set(emb["product_id"])), part(grouped[k][0].assignments, set(emb["product_id"])))


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


def test_k_selection_is_deterministic(regrouped, grouped_settings, spark, lake, grouping_cfg):
    from conftest import make_ctx
    from jobs import group_users

    date, _ = regrouped
    before = {t: lake.read_pandas(t, partition=date) for t in ("user_groups", "groups")}
    group_users.run(make_ctx(grouped_settings, date, "again", spark, lake))
    for t, df in before.items():
        key = ["product_id", "user_id"] if t == "user_groups" else ["product_id", "group_id"]
        after = lake.read_pandas(t, partition=date).sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(df.sort_values(key).reset_index(drop=True), after)
    ks = before["groups"].groupby("product_id")["k"].first()
    assert set(ks) <= {1, *grouping_cfg.k_candidates}
    sizes = before["groups"].groupby("product_id")["size"].min()
    assert ((sizes >= grouping_cfg.min_group_size) | (ks == 1)).all()


def test_every_audience_user_in_exactly_one_group(regrouped, spark, lake, grouping_cfg):
    from osmf.data.audience import window_impressions

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
    from osmf.data.audience import window_impressions

    date, _ = regrouped
    ctr = lake.read_pandas("group_creative_ctr", partition=date)
    imp = window_impressions(spark, lake, date, grouping_cfg.window_days).toPandas()
    from osmf.data.audience import is_heldout

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
    from osmf.evaluation import grouping as evaluate_grouping

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


def test_regroup_rerun_gives_the_same_tables(regrouped, grouped_settings, spark, lake):
    from conftest import make_ctx
    from osmf.lake.tables import spec
    from osmf_app.chain import REGROUP, run_stage

    GROUP_TABLES = REGROUP.validates

    date, _ = regrouped
    def snap():
        return {t: lake.read_pandas(t, partition=date).sort_values(list(spec(t).key)).reset_index(drop=True)
                for t in GROUP_TABLES}
    before = snap()
    run_stage(REGROUP, make_ctx(grouped_settings, date, "rerun", spark, lake), say=lambda m: None)
    after = snap()
    for t in GROUP_TABLES:
        pd.testing.assert_frame_equal(before[t], after[t], obj=t)


def test_mllib_engine_leaves_out_a_product_smaller_than_every_k(spark):
    """A product with fewer users than the smallest K has no model at all; the ``mllib`` engine's
    passes skip its rows (they used to index the last product's centres) and it gets no groups,
    as in the ``grouped`` engine."""
    from dataclasses import replace

    from osmf.grouping import fit_candidates
    from osmf.config.settings import GroupingConfig

    emb, emb_df = _tiny_audiences(spark)  # p0 has 3 users
    g = GroupingConfig(k_candidates=(5,), min_group_size=5, mllib_min_users=100, max_iter=30)
    mllib, grouped = (fit_candidates(spark, emb_df, replace(g, engine=e))[5] for e in ("mllib", "grouped"))
    assert set(mllib[0].assignments["product_id"]) == {"p1", "p2", "p3", "p4"}
    order = ["product_id", "user_id"]
    pd.testing.assert_frame_equal(mllib[0].assignments.sort_values(order).reset_index(drop=True),
                                  grouped[0].assignments.sort_values(order).reset_index(drop=True))


def test_paag_training_events_are_a_fixed_sample_above_the_cap(ingested, settings, spark, lake, grouping_cfg):
    """Above ``paag_max_events`` PAAG trains on a fixed sample of about that many events (the same
    rows on every call), never on a held-out user's event; at or below it, on every event."""
    from dataclasses import replace

    from jobs.paag_embeddings import training_events
    from osmf.data.audience import is_heldout, window_impressions
    from osmf.grouping.themes import fit_themes

    date = sorted(ingested)[-1]
    imp = window_impressions(spark, lake, date, grouping_cfg.window_days)
    themes = fit_themes(lake.read_pandas("creatives"), lake.read_pandas("products"), settings.asset_root,
                        grouping_cfg.paag_themes, grouping_cfg.seed)
    everything = training_events(spark, lake, imp, themes, replace(grouping_cfg, paag_max_events=0))
    assert training_events(spark, lake, imp, themes, replace(grouping_cfg, paag_max_events=len(everything))).equals(everything)
    cap = len(everything) // 4
    sample = training_events(spark, lake, imp, themes, replace(grouping_cfg, paag_max_events=cap))
    assert 0.7 * cap < len(sample) < 1.3 * cap
    assert sample.equals(training_events(spark, lake, imp, themes, replace(grouping_cfg, paag_max_events=cap)))
    assert not any(is_heldout(u, grouping_cfg.eval_holdout_fraction) for u in sample["user_id"].unique())


def test_predicted_gain_is_each_groups_best_theme_summed(spark):
    """``predicted_gain`` (from the sums both engines keep) equals its definition computed here with
    numpy from the assignments: per product and K, the sum over groups of the largest coordinate of
    the group's summed embedding, per user."""
    from osmf.config.settings import GroupingConfig
    from osmf.grouping import fit_candidates, predicted_gain

    emb, emb_df = _tiny_audiences(spark)
    for engine in ("grouped", "mllib"):  # K = 5: the 3-user audience has no fit there
        fits = fit_candidates(spark, emb_df, GroupingConfig(k_candidates=(2, 3, 5), min_group_size=5, engine=engine))
        got = predicted_gain(fits).set_index(["product_id", "k"])["gain"]
        assert got.index.is_unique
        for pid, grp in emb.groupby("product_id"):
            X = np.stack(grp["embedding"].to_numpy())
            assert abs(got[pid, 1] - X.sum(0).max() / len(X)) < 1e-6, engine
            for k, (fit, _) in fits.items():
                a = fit.assignments
                a = a[a.product_id == pid].set_index("user_id").group_id
                if a.empty:
                    assert (pid, k) not in got.index
                    continue
                lab = a.loc[grp["user_id"]].to_numpy()
                want = sum(X[lab == j].sum(0).max() for j in np.unique(lab)) / len(X)
                assert abs(got[pid, k] - want) < 1e-6, (engine, pid, k)
                assert got[pid, k] >= got[pid, 1] - 1e-6  # splitting never predicts less than one group


def test_gain_rule_takes_the_smallest_k_near_the_best_and_respects_min_group_size():
    from osmf.grouping import choose_k

    def scores(rows):  # product, min_size, nonempty groups
        return pd.DataFrame(rows, columns=["product_id", "min_size", "k"]).assign(silhouette=0.5)

    by_k = {2: scores([("a", 40, 2), ("b", 40, 2), ("c", 40, 2)]),
            3: scores([("a", 40, 3), ("b", 40, 3), ("c", 40, 3)]),
            5: scores([("a", 40, 5), ("b", 10, 5), ("c", 40, 5)])}
    gains = pd.DataFrame([("a", 1, 0.0), ("a", 2, 0.5), ("a", 3, 0.97), ("a", 5, 1.0),   # 3 reaches 95% of 5
                          ("b", 1, 0.0), ("b", 2, 0.2), ("b", 3, 0.3), ("b", 5, 2.0),    # 5 too small: best is 3
                          ("c", 1, 0.4), ("c", 2, 0.4), ("c", 3, 0.4), ("c", 5, 0.4)],   # no gain: one group
                         columns=["product_id", "k", "gain"])
    assert choose_k(by_k, ["a", "b", "c", "d"], 30, gains, 0.95) == {"a": 3, "b": 3, "c": 1, "d": 1}
    assert choose_k(by_k, ["a"], 30, gains, 0.5) == {"a": 2}
    # without gains: the silhouette rule (all equal here: the smallest K wins the tie)
    assert choose_k(by_k, ["a", "b"], 30) == {"a": 2, "b": 2}


def test_creative_themes_name_the_coordinates_of_the_embeddings(regrouped, lake):
    """regroup writes every historical creative's theme once; theme_index runs over exactly the
    embedding's coordinates, in the order of the theme names PAAG was trained on."""
    date, _ = regrouped
    themes = lake.read_pandas("creative_themes", partition=date)
    creatives = lake.read_pandas("creatives")
    assert sorted(themes["creative_id"]) == sorted(creatives["creative_id"])
    dim = len(lake.read_pandas("groups", partition=date)["centroid"].iloc[0])
    assert sorted(themes["theme_index"].unique()) == list(range(dim))
    names = themes.drop_duplicates("theme").sort_values("theme")
    assert list(names["theme_index"]) == list(range(dim))


def test_the_gmllm_target_is_a_creative_of_the_theme_the_groups_centroid_rates_highest(regrouped, lake):
    from osmf.data.training import load_pinned, sft_targets

    date, _ = regrouped
    f = load_pinned(lake, date).frames
    targets = sft_targets(f, "theme").merge(f["groups"], on=["product_id", "group_id"])
    assert len(targets) == len(f["groups"])
    theme_of = dict(zip(f["creative_themes"]["creative_id"], f["creative_themes"]["theme_index"]))
    product_of = dict(zip(f["creatives"]["creative_id"], f["creatives"]["product_id"]))
    own_themes = f["creatives"].assign(t=f["creatives"]["creative_id"].map(theme_of)).groupby("product_id")["t"].apply(set)
    for pid, target, centroid in zip(targets["product_id"], targets["best_creative_id"], targets["centroid"]):
        top = int(np.argmax(centroid))
        assert theme_of[target] == top
        # the product's own creative of that theme where it has one, another product's only where not
        assert (product_of[target] == pid) == (top in own_themes[pid])
    observed = sft_targets(f, "observed").merge(f["group_creative_ctr"], on=["product_id", "group_id"])
    best = observed.groupby(["product_id", "group_id"])["smoothed_ctr"].transform("max")
    chosen = observed[observed["best_creative_id"] == observed["creative_id"]]
    assert (chosen["smoothed_ctr"].to_numpy() == best[chosen.index].to_numpy()).all()
    assert chosen[["product_id", "group_id"]].drop_duplicates().shape[0] == len(sft_targets(f, "observed"))


def test_a_theme_target_from_another_product_is_the_themes_creative_of_the_highest_lift():
    """Where a group's top theme has none of its product's creatives, the target is the theme's
    creative that lifted its own product's CTR most; its background comes without that product's title."""
    from osmf.data.training import sft_targets
    from osmf_models.gmllm.data import group_examples

    ctr = pd.DataFrame({"product_id": ["a", "a", "b", "b", "c"], "group_id": 0,
                        "creative_id": ["a1", "a2", "b1", "b2", "c1"],
                        "clicks": [5, 1, 30, 2, 4], "impressions": [100, 100, 300, 300, 100],
                        "smoothed_ctr": [.05, .01, .1, .007, .04]})
    f = {"group_creative_ctr": ctr,
         "creative_themes": pd.DataFrame({"creative_id": ["a1", "a2", "b1", "b2", "c1"], "theme_index": [0, 1, 2, 1, 2]}),
         "creatives": pd.DataFrame({"creative_id": ["a1", "a2", "b1", "b2", "c1"], "product_id": ["a", "a", "b", "b", "c"],
                                    "background_prompt": ["A on sand", "A in snow", "B on grass", "B in fog", "C on moss"]}),
         "groups": pd.DataFrame({"product_id": ["a", "a"], "group_id": [0, 1], "centroid": [[1.0, 0, 0], [0, -1.0, 0.5]],
                                 "size": 40, "features": [[0.0], [0.0]], "description": ""}),
         "products": pd.DataFrame({"product_id": ["a", "b", "c"], "title": ["A", "B", "C"], "image_uri": "x"})}
    t = sft_targets(f, "theme")
    # b1 lifts b's CTR (30/300 against b's 32/600), c1 is c's only creative (lift 1)
    assert list(t["best_creative_id"]) == ["a1", "b1"]
    ex = group_examples(f["groups"], f["products"], f["creatives"], t)
    assert list(ex["best_background"]) == ["on sand", "on grass"]
    with pytest.raises(ValueError, match="sft_target 'best'"):
        sft_targets(f, "best")
    bad = dict(f, groups=f["groups"].assign(centroid=[[1.0, 0], [0, 1.0]]))
    with pytest.raises(ValueError, match="same `osmf regroup` run"):
        sft_targets(bad, "theme")


def test_creative_lift_is_the_smoothed_ctr_over_the_products_and_follows_prior_strength():
    """A creative's lift: its Beta-smoothed CTR (``osmf.data.smoothing``, prior at the product's CTR)
    over the product's CTR; an unseen look lifts by 1, and the prior's weight is the setting's."""
    from osmf.data.training import creative_lift

    ctr = pd.DataFrame({"product_id": ["p", "p", "p", "p"], "group_id": [0, 1, 0, 1],
                        "creative_id": ["a", "a", "b", "c"], "clicks": [10, 10, 0, 0], "impressions": [50, 50, 100, 0]})
    p0 = (20 + 1) / (200 + 2)
    for m in (0.0, 50.0, 1e9):
        with np.errstate(invalid="ignore"):  # m = 0: the unseen look's 0 / 0
            lift = creative_lift(ctr, m)
        assert abs(lift["a"] - (20 + m * p0) / (100 + m) / p0) < 1e-12
        assert abs(lift["b"] - (0 + m * p0) / (100 + m) / p0) < 1e-12
        assert m == 0 or abs(lift["c"] - 1.0) < 1e-12  # no impressions: the prior alone
    assert lift["b"] > 0 and abs(creative_lift(ctr, 1e9)["a"] - 1) < 1e-6
    # a product with no click on many impressions: its CTR is clipped (osmf.data.smoothing.P0_CLIP)
    # on both sides of the ratio, so an unseen look still lifts by exactly 1
    cold = pd.DataFrame({"product_id": ["q", "q"], "group_id": [0, 0], "creative_id": ["d", "e"],
                         "clicks": [0, 0], "impressions": [50_000, 0]})
    assert abs(creative_lift(cold, 50.0)["e"] - 1.0) < 1e-12 and creative_lift(cold, 50.0)["d"] < 0.01

"""Held-out users contribute no click to any stage: the chain is run on a copy of the tiny world
whose held-out users' clicks are all flipped, and PAAG, the embeddings, the groups, group CTR, the
preference pairs and the GRM come out identical (Group-DPO's inputs are those pairs and that GRM).
Flipping the clicks of users who are NOT held out changes group CTR: the comparison can fail."""

import dataclasses
import os
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import torch

GROUP_TABLES = ("user_product_embeddings", "user_groups", "groups", "group_creative_ctr", "group_preference_pairs")


def _copy_world(src, dst):
    for sub in ("landing", "truth"):
        shutil.copytree(src / sub, dst / sub)


def _flip_clicks(lake, users: set) -> int:
    tbl = lake.read_arrow("impressions")
    df = tbl.to_pandas()
    sel = df.user_id.isin(users)
    df.loc[sel, "clicked"] = 1 - df.loc[sel, "clicked"]
    lake.overwrite("impressions", pa.Table.from_pandas(df, preserve_index=False), run_id="flip", job="test")
    return int(sel.sum())


def _tables(lake, date):
    from osmf.lake.tables import spec

    out = {}
    for t in GROUP_TABLES:
        df = lake.read_pandas(t, partition=date).sort_values(list(spec(t).key)).reset_index(drop=True)
        out[t] = df.map(lambda v: tuple(v) if isinstance(v, (list, np.ndarray)) else v)
    return out


@pytest.fixture(scope="module")
def flipped(regrouped, settings, spark, grouping_cfg, tmp_path_factory):
    """The tiny world again, held-out users' clicks flipped after ingest, then regrouped."""
    from conftest import make_ctx
    from jobs import ingest_events
    from osmf.data.audience import heldout_users
    from osmf.lake import Lake
    from osmf.config.settings import load_settings
    from osmf.world import read_manifest
    from osmf_app.chain import REGROUP, run_stage

    date, _ = regrouped
    home = tmp_path_factory.mktemp("flipped_home")
    _copy_world(settings.home, home)
    s2 = dataclasses.replace(load_settings({**os.environ, "OSMF_HOME": str(home)}), grouping=grouping_cfg)
    lake2 = Lake(s2)
    for d in read_manifest(home)["dates"]:
        ingest_events.run(make_ctx(s2, d, f"flip-{d}", spark, lake2))
    held = set(heldout_users(lake2.read_pandas("users").user_id, grouping_cfg.eval_holdout_fraction))
    assert _flip_clicks(lake2, held) > 0
    run_stage(REGROUP, make_ctx(s2, date, "flipped", spark, lake2), say=lambda m: None)
    return date, s2, lake2, held


def test_no_heldout_click_reaches_paag_groups_ctr_or_pairs(regrouped, flipped, settings, lake):
    from osmf_models.paag import PAAG

    date, s2, lake2, _ = flipped
    a = PAAG.load(settings.paag_dir(date)).state_dict()
    b = PAAG.load(s2.paag_dir(date)).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    original, again = _tables(lake, date), _tables(lake2, date)
    for t in GROUP_TABLES:
        pd.testing.assert_frame_equal(original[t].drop(columns="run_date"), again[t].drop(columns="run_date"), obj=t,
                                      check_exact=True)


def test_no_heldout_click_reaches_the_grm(flipped, settings, lake, tmp_path):
    from conftest import make_ctx
    from jobs import train_grm
    from osmf_models.grm import GRMConfig

    from osmf.data.training import load_pinned

    date, s2, lake2, _ = flipped
    # the GRM's inputs, exactly: the same rows, in the same order, with the same values
    pinned1, pinned2 = load_pinned(lake, date), load_pinned(lake2, date)
    for t, frame in pinned1.frames.items():
        pd.testing.assert_frame_equal(frame, pinned2.frames[t], check_exact=True, obj=t)
    cfg = GRMConfig(group_dim=1, image_size=16, text_dim=16, hidden=16, epochs=40)
    m1 = train_grm.train(make_ctx(dataclasses.replace(settings, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'a.db'}"),
                                  date, lake=lake), cfg)
    m2 = train_grm.train(make_ctx(dataclasses.replace(s2, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'b.db'}"),
                                  date, lake=lake2), GRMConfig(group_dim=1, image_size=16, text_dim=16, hidden=16, epochs=40))
    for k in ("final_loss", "grm_pair_accuracy", "grm_auroc", "train_pairs"):
        assert m1[k] == m2[k], k


def test_flipping_training_users_clicks_does_change_group_ctr(flipped, spark, grouping_cfg):
    """The other side: the comparison above is sensitive to clicks that ARE allowed in."""
    from conftest import make_ctx
    from jobs import group_ctr

    date, s2, lake2, held = flipped
    before = lake2.read_pandas("group_creative_ctr", partition=date)
    users = set(lake2.read_pandas("users").user_id) - held
    _flip_clicks(lake2, set(sorted(users)[: len(users) // 2]))
    group_ctr.run(make_ctx(s2, date, "flip-training", spark, lake2))
    after = lake2.read_pandas("group_creative_ctr", partition=date)
    assert before.clicks.sum() != after.clicks.sum()


def test_the_ab_refuses_models_trained_under_another_heldout_rule():
    from osmf.data.audience import heldout_rule, is_heldout
    from osmf.evaluation.heldout import agreed_rule

    same = {"regroup": heldout_rule(0.2), "grm v1": heldout_rule(0.2), "gmllm v2": heldout_rule(0.2)}
    assert agreed_rule(same) == {"fraction": 0.2, "salt": "holdout"}
    with pytest.raises(ValueError, match=r"different held-out rules.*grm v1: fraction 0.3"):
        agreed_rule({**same, "grm v1": heldout_rule(0.3)})
    with pytest.raises(ValueError, match=r"different held-out rules.*salt 'other'"):
        agreed_rule({**same, "gmllm v2": heldout_rule(0.2, "other")})
    with pytest.raises(ValueError, match="no held-out rule is recorded for gmllm v2"):
        agreed_rule({**same, "gmllm v2": None})
    # the salt is part of the rule: another salt holds out other users
    users = [f"u{i:05d}" for i in range(2000)]
    a = {u for u in users if is_heldout(u, 0.2)}
    b = {u for u in users if is_heldout(u, 0.2, "other")}
    assert 300 < len(a) < 500 and 300 < len(b) < 500 and len(a & b) < 0.5 * len(a)

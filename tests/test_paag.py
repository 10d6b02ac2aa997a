"""PAAG model: shapes, learning, save/load, and the clicks it learns from beating a theme-only
baseline (themes: the visual vocabulary the pipeline finds in the lake, ``osmf.grouping.themes``)."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from osmf_models.paag import PAAG, FeatureSpace, PAAGConfig, paag_loss
from osmf_models.paag.train import train_paag

THEMES = ["t00", "t01", "t02", "t03"]


def _dims(home):
    return pd.read_parquet(home / "landing/dimensions/users.parquet"), pd.read_parquet(home / "landing/dimensions/products.parquet")


def _tiny_model(world_home):
    """The tiny world's dimensions, a feature space fitted on them and a seeded tiny PAAG."""
    users, products = _dims(world_home)
    cfg = PAAGConfig.tiny()
    fs = FeatureSpace.fit(users, products, THEMES, cfg.text_dim)
    torch.manual_seed(0)
    return users, products, fs, PAAG(cfg, fs)


def test_shapes_and_embedding_is_product_aware(world_home):
    users, products, fs, model = _tiny_model(world_home)
    ux = torch.from_numpy(fs.user_matrix(users.head(8)))
    px = torch.from_numpy(fs.product_matrix(products.head(2)))
    assert model.theme_logits(ux, px[[0] * 8]).shape == (8, len(THEMES))
    e0, e1 = model.embed(ux, px[[0] * 8]), model.embed(ux, px[[1] * 8])
    assert e0.shape == (8, len(THEMES))
    assert torch.allclose(e0.sum(1), torch.zeros(8), atol=1e-5)  # centred: preference, not propensity
    assert not torch.allclose(e0, e1)  # the same users embed differently for another product


def test_every_parameter_learns_and_overfit_loss_falls(world_home):
    users, products, fs, model = _tiny_model(world_home)
    ux = torch.from_numpy(fs.user_matrix(users.head(32)))
    px = torch.from_numpy(fs.product_matrix(products.iloc[np.arange(32) % len(products)]))
    s = torch.arange(32) % len(THEMES)
    y = (torch.arange(32) % 3 == 0).float()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(200):
        loss = paag_loss(model(ux, px, s), y)
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.2 * first
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == set(before)


@pytest.fixture(scope="module")
def ten_days_home(tmp_path_factory):
    """The tiny world over 10 days (~30,000 events): 2 days are too few to learn taste from."""
    from osmf.world import WorldConfig, generate_world

    home = tmp_path_factory.mktemp("paag_world")
    generate_world(WorldConfig.from_dict({"world": {**WorldConfig.preset("tiny").to_dict(), "days": 10}}), home)
    return home


@pytest.fixture(scope="module")
def ten_days(ten_days_home):
    """The ten days' users, products, events (with their theme) and the themes."""
    from osmf.grouping.themes import fit_themes

    home = ten_days_home
    users, products = _dims(home)
    creatives = pd.read_parquet(home / "landing/dimensions/creatives.parquet")
    themes = fit_themes(creatives, products, home / "landing", k=8, seed=42)
    rows = [json.loads(line) for f in sorted((home / "landing/events").rglob("*.jsonl"))
            for line in f.read_text().splitlines() if line.startswith("{") and line.endswith("}")]
    ev = pd.DataFrame(rows)
    ev = ev[ev.user_id.isin(users.user_id) & ev.creative_id.isin(creatives.creative_id)
            & ev.product_id.isin(products.product_id) & ev.clicked.isin([0, 1])]
    ev = ev.assign(theme=ev.creative_id.map(themes), clicked=ev.clicked.astype(int))
    return users, products, ev[["user_id", "product_id", "theme", "clicked"]], sorted(themes.unique())


def test_training_beats_the_theme_only_baseline_and_save_load_is_exact(ten_days, tmp_path):
    users, products, ev, themes = ten_days
    model, metrics = train_paag(ev, users, products, themes, PAAGConfig(epochs=10, hidden=16, text_dim=16, batch_size=256))
    assert metrics["train_loss"][-1] < metrics["train_loss"][0]
    # measured on this world: PAAG beats each theme's overall CTR by +0.018..+0.060 AUC over seeds
    # 0-4 (10% of events held out); the margin asked here is well inside that
    assert metrics["holdout_auc"] > metrics["holdout_auc_theme_only"] + 0.01
    model.save(tmp_path / "m")
    back = PAAG.load(tmp_path / "m")
    ux = torch.from_numpy(model.features.user_matrix(users.head(5)))
    px = torch.from_numpy(model.features.product_matrix(products.head(1)))[[0] * 5]
    assert torch.equal(model.embed(ux, px), back.embed(ux, px))


def test_the_theme_count_is_the_first_local_maximum_of_the_silhouette(ten_days_home):
    """Tight clusters of vectors give their own number; on the tiny world's creatives (whose styles
    only the world's truth knows) paag_themes = 0 finds as many themes as the world has styles, each
    theme holding one style's creatives."""
    from osmf.grouping.themes import choose_theme_count, fit_themes

    rng = np.random.default_rng(0)
    for n in (3, 5, 9):
        X = np.repeat(rng.normal(0, 1, (n, 16)), 6, axis=0) + rng.normal(0, 0.02, (6 * n, 16))
        assert choose_theme_count(X, seed=0)[0] == n
    assert choose_theme_count(np.eye(3), seed=0)[0] == 3  # too few creatives to choose: one theme each

    home = ten_days_home
    creatives = pd.read_parquet(home / "landing/dimensions/creatives.parquet")
    themes = fit_themes(creatives, _dims(home)[1], home / "landing", k=0, seed=42)
    styles = pd.read_parquet(home / "truth/creative_styles.parquet").set_index("creative_id").loc[themes.index, "style"]
    assert themes.nunique() == styles.nunique()
    assert (pd.crosstab(themes, styles) > 0).sum(1).max() == 1  # no theme mixes styles


def test_themes_come_from_pixels_and_prompts_not_labels(ten_days):
    """Every theme groups creatives; the lake's creatives table has no style to group by."""
    users, products, ev, themes = ten_days
    assert 2 <= len(themes) <= 8 and ev.theme.notna().all()


@pytest.mark.parametrize("directions", ["product", "shared"])
def test_bottleneck_and_category_taste_learn_and_share_within_a_category(world_home, directions):
    """``bottleneck`` > 0 and ``text_encoder="none"``, with each product's own directions or one
    shared map: every parameter still learns, and two products of one category embed a user the same
    (their taste is the category's), other categories not."""
    users, products = _dims(world_home)
    cfg = PAAGConfig(hidden=16, bottleneck=2, text_encoder="none", directions=directions)
    fs = FeatureSpace.fit(users, products, THEMES, cfg.text_dim, cfg.text_encoder)
    assert fs.n_product == len(fs.categories)
    torch.manual_seed(0)
    model = PAAG(cfg, fs)
    ux = torch.from_numpy(fs.user_matrix(users.head(32)))
    px = torch.from_numpy(fs.product_matrix(products.iloc[np.arange(32) % len(products)]))
    s, y = torch.arange(32) % len(THEMES), (torch.arange(32) % 3 == 0).float()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(50):
        loss = paag_loss(model(ux, px, s), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])} == set(before)
    by_cat = products.groupby("category").product_id.apply(list)
    same = [ps for ps in by_cat if len(ps) > 1][0]
    other = [ps for ps in by_cat if ps[0] not in same][0]
    P = lambda pid: torch.from_numpy(fs.product_matrix(products[products.product_id == pid]))[[0] * 8]  # noqa: E731
    u8 = ux[:8]
    assert torch.equal(model.embed(u8, P(same[0])), model.embed(u8, P(same[1])))
    assert not torch.allclose(model.embed(u8, P(same[0])), model.embed(u8, P(other[0])))


def test_a_checkpoint_from_before_product_directions_loads_as_shared(world_home, tmp_path):
    """A PAAG saved before ``directions`` existed (its config lacks the key) was a shared-map model:
    it loads as one and embeds exactly as before; the per-product map has its own weights."""
    from osmf_models.common import save_checkpoint

    users, products = _dims(world_home)
    cfg = PAAGConfig(hidden=16, bottleneck=2, text_encoder="none", directions="shared")
    fs = FeatureSpace.fit(users, products, THEMES, cfg.text_dim, cfg.text_encoder)
    torch.manual_seed(0)
    model = PAAG(cfg, fs).eval()
    old = {k: v for k, v in cfg.to_dict().items() if k != "directions"}
    save_checkpoint(model, {"config": old, "features": fs.to_dict()}, tmp_path / "old")
    back = PAAG.load(tmp_path / "old")
    ux = torch.from_numpy(fs.user_matrix(users.head(8)))
    px = torch.from_numpy(fs.product_matrix(products.head(1)))[[0] * 8]
    assert back.cfg.directions == "shared" and torch.equal(back.embed(ux, px), model.embed(ux, px))
    assert "directions.weight" in PAAG(PAAGConfig(hidden=16, bottleneck=2, text_encoder="none"), fs).state_dict()
    with pytest.raises(ValueError, match="directions"):
        PAAG(PAAGConfig(hidden=16, directions="diagonal"), fs)


def test_early_stopping_keeps_the_best_epoch_on_held_out_events(ten_days):
    users, products, ev, themes = ten_days
    cfg = PAAGConfig(epochs=60, hidden=16, text_dim=16, batch_size=256, lr=3e-2, patience=2)
    _, m = train_paag(ev, users, products, themes, cfg)
    best = int(np.argmin(m["holdout_loss"]))
    assert m["best_epoch"] == best + 1
    assert len(m["train_loss"]) == len(m["holdout_loss"]) <= best + 1 + cfg.patience < 60  # stopped early

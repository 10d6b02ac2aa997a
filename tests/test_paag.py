"""PAAG model: shapes, learning, save/load."""

import numpy as np
import pandas as pd
import torch

from osmf_models.paag import PAAG, FeatureSpace, PAAGConfig, paag_loss
from osmf_models.paag.train import train_paag


def _dims(world_home):
    users = pd.read_parquet(world_home / "world/users.parquet")
    products = pd.read_parquet(world_home / "world/products.parquet")
    creatives = pd.read_parquet(world_home / "world/creatives.parquet")
    return users, products, sorted(creatives["style"].unique())


def _tiny_model(world_home):
    """The tiny world's dimensions, a feature space fitted on them and a seeded tiny PAAG."""
    users, products, styles = _dims(world_home)
    cfg = PAAGConfig.tiny()
    fs = FeatureSpace.fit(users, products, styles, cfg.text_dim)
    torch.manual_seed(0)
    return users, products, styles, fs, PAAG(cfg, fs)


def test_shapes_and_embedding_is_product_aware(world_home):
    users, products, styles, fs, model = _tiny_model(world_home)
    ux = torch.from_numpy(fs.user_matrix(users.head(8)))
    px = torch.from_numpy(fs.product_matrix(products.head(2)))
    assert model.style_logits(ux, px[[0] * 8]).shape == (8, len(styles))
    e0, e1 = model.embed(ux, px[[0] * 8]), model.embed(ux, px[[1] * 8])
    assert e0.shape == (8, len(styles))
    assert torch.allclose(e0.sum(1), torch.zeros(8), atol=1e-5)  # centred: preference, not propensity
    assert not torch.allclose(e0, e1)  # the same users embed differently for another product


def test_every_parameter_learns_and_overfit_loss_falls(world_home):
    users, products, styles, fs, model = _tiny_model(world_home)
    ux = torch.from_numpy(fs.user_matrix(users.head(32)))
    px = torch.from_numpy(fs.product_matrix(products.iloc[np.arange(32) % len(products)]))
    s = torch.arange(32) % len(styles)
    y = (torch.arange(32) % 3 == 0).float()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(200):
        loss = paag_loss(model(ux, px, s), y)
        first = first if first is not None else float(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.2 * first
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == set(before)


def test_train_beats_style_only_and_save_load_is_exact(world_home, tmp_path):
    import json

    users, products, styles = _dims(world_home)
    creatives = pd.read_parquet(world_home / "world/creatives.parquet")
    rows = [json.loads(line) for f in sorted((world_home / "landing/events").rglob("*.jsonl"))
            for line in f.read_text().splitlines() if line.startswith("{") and line.endswith("}")]
    ev = pd.DataFrame(rows)
    ev = ev[ev.user_id.isin(users.user_id) & ev.creative_id.isin(creatives.creative_id)
            & ev.product_id.isin(products.product_id) & ev.clicked.isin([0, 1])]
    ev = ev.merge(creatives[["creative_id", "style"]], on="creative_id")
    ev["clicked"] = ev["clicked"].astype(int)
    model, metrics = train_paag(ev, users, products, styles, PAAGConfig(epochs=4, hidden=16, text_dim=16, batch_size=256))
    assert metrics["train_loss"][-1] < metrics["train_loss"][0]
    assert 0.5 < metrics["holdout_auc"] <= 1
    model.save(tmp_path / "m")
    back = PAAG.load(tmp_path / "m")
    ux = torch.from_numpy(model.features.user_matrix(users.head(5)))
    px = torch.from_numpy(model.features.product_matrix(products.head(1)))[[0] * 5]
    assert torch.equal(model.embed(ux, px), back.embed(ux, px))

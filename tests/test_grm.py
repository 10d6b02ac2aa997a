"""GRM: shapes, group conditioning, learning, losses, save/load, and the MLflow registry round trip
with aliases and a promotion refused for a worse challenger."""

import subprocess
import sys

import torch
import torch.nn.functional as F

from osmf_models.grm import GRM, GRMConfig, pairwise_loss, pointwise_loss


def _batch(cfg, n=6):
    torch.manual_seed(1)
    return (torch.randn(n, cfg.group_dim), torch.randn(n, 3, cfg.image_size, cfg.image_size), torch.randn(n, cfg.text_dim))


def test_shapes_and_group_conditioning():
    cfg = GRMConfig.tiny(group_dim=8)
    torch.manual_seed(0)
    model = GRM(cfg)
    g, i, t = _batch(cfg)
    out = model(g, i, t)
    assert out.shape == (6,)
    other = model(torch.randn(6, 8), i, t)
    assert not torch.allclose(out, other)  # same creatives, other groups: other scores


def test_creatives_encoded_once_score_as_one_row_each(tmp_path):
    """With ``item``, each creative's image and prompt are encoded once and every row takes its
    creative's encoding: the same scores as the row-by-row inputs, and build_data keeps each
    creative once."""
    import numpy as np
    import pandas as pd
    from PIL import Image

    from osmf_models.common import image_tensor
    from osmf_models.grm.model import prompt_features
    from osmf_models.grm.train import build_data, score

    cfg = GRMConfig.tiny(group_dim=8)
    torch.manual_seed(0)
    model = GRM(cfg).eval()
    g, i, t = _batch(cfg, n=3)
    item = torch.tensor([2, 0, 2, 1, 0])
    gx, off = torch.randn(5, 8), torch.randn(5)
    with torch.no_grad():
        assert torch.allclose(model(gx, i, t, off, item), model(gx, i[item], t[item], off), atol=1e-6)
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(model.parts(gx, i, t, item), model.parts(gx, i[item], t[item])))

    home = tmp_path  # creative ids out of row order: "z" comes first in the rows, last when sorted
    colours = {"z": (255, 0, 0), "a": (0, 0, 255), "m": (0, 255, 0)}
    for c, rgb in colours.items():
        Image.new("RGB", (8, 8), rgb).save(home / f"{c}.png")
    ctr = pd.DataFrame({"product_id": ["p1", "p1", "p2", "p2", "p2", "p1"], "group_id": [0, 1, 0, 1, 1, 0],
                        "creative_id": ["z", "z", "a", "a", "m", "m"], "clicks": [1, 2, 3, 4, 5, 6], "impressions": [10] * 6})
    groups = pd.DataFrame({"product_id": ["p1", "p1", "p2", "p2"], "group_id": [0, 1, 0, 1],
                           "features": [[0.0] * 8, [1.0] * 8, [-1.0] * 8, [0.5] * 8]})
    creatives = pd.DataFrame({"creative_id": ["z", "a", "m"], "background_prompt": ["red wall", "blue sea", "green park"],
                              "image_uri": ["z.png", "a.png", "m.png"]})
    pairs = pd.DataFrame(columns=["product_id", "group_id", "chosen_creative_id", "rejected_creative_id"])
    data = build_data(ctr, groups, creatives, pairs, home, cfg)
    assert data.I.shape[0] == data.T.shape[0] == 3 and len(data.item) == len(data.rows) == 6
    rows_I = torch.from_numpy(image_tensor([home / u for u in data.rows["image_uri"]], cfg.image_size))
    rows_T = torch.from_numpy(prompt_features(data.rows["background_prompt"], cfg.text_dim))
    for r, c in enumerate(data.rows["creative_id"]):  # every row's encoding inputs are its own creative's
        assert torch.equal(data.I[data.item[r]], rows_I[r]) and torch.equal(data.T[data.item[r]], rows_T[r]), c
        assert data.I[data.item[r], colours[c].index(255)].mean() > 0.9  # the channel of the creative's colour
    with torch.no_grad():  # the scores equal a forward pass on the row-by-row inputs
        want = model(data.G, rows_I, rows_T, data.offset).numpy()
    assert np.allclose(score(model, data), want, atol=1e-6)


def test_losses_match_their_formulas():
    logits = torch.tensor([0.3, -1.2, 2.0])
    clicks, imps = torch.tensor([3.0, 0.0, 9.0]), torch.tensor([10.0, 5.0, 12.0])
    p = torch.sigmoid(logits)
    manual = -(clicks * p.log() + (imps - clicks) * (1 - p).log()).sum() / imps.sum()
    assert torch.allclose(pointwise_loss(logits, clicks, imps), manual, atol=1e-6)
    a, b = torch.tensor([1.0, 0.5]), torch.tensor([0.0, 1.5])
    assert torch.allclose(pairwise_loss(a, b), -F.logsigmoid(a - b).mean())


def test_every_parameter_learns_and_overfit_loss_falls(tmp_path):
    cfg = GRMConfig.tiny(group_dim=8)
    torch.manual_seed(0)
    model = GRM(cfg)
    g, i, t = _batch(cfg)
    clicks, imps = torch.tensor([9.0, 1, 8, 0, 7, 2]), torch.full((6,), 10.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(150):
        s = model(g, i, t)
        loss = pointwise_loss(s, clicks, imps) + pairwise_loss(s[[0, 2]], s[[1, 3]])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0]
    assert {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])} == set(before)
    model.save(tmp_path / "grm")
    back = GRM.load(tmp_path / "grm")
    model.eval()
    assert torch.equal(model(g, i, t), back(g, i, t))


def test_registry_round_trip_and_refused_promotion(regrouped, settings, lake, tmp_path):
    """In a registry of its own (independent of test order): version 1 becomes champion, a worse
    version 2 is refused on the same pinned data, and the champion loads in a fresh process."""
    import dataclasses

    import mlflow
    from mlflow import MlflowClient

    from conftest import make_ctx
    from jobs import train_grm
    from osmf.tracking import registry
    from osmf_models.grm import lifecycle
    from osmf.tracking import runs as tracking
    from osmf_models.grm.train import train_grm as fit

    settings = dataclasses.replace(settings, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    date, _ = regrouped
    cfg = GRMConfig(group_dim=1, image_size=16, text_dim=16, hidden=16, epochs=150, holdout_fraction=0.4)
    ctx = make_ctx(settings, date, lake=lake)
    m1 = train_grm.train(ctx, cfg)
    assert m1["version"] == "1"
    client = MlflowClient()
    assert str(client.get_model_version_by_alias(registry.GRM, "challenger").version) == "1"
    first = train_grm.promote(ctx)
    assert first["promoted"] and first["reason"] == "no champion yet"
    assert str(client.get_model_version_by_alias(registry.GRM, "champion").version) == "1"
    run = mlflow.get_run(m1["run_id"])
    assert {"lineage.group_creative_ctr", "lineage.group_preference_pairs", "lineage.groups"} <= set(run.data.tags)
    assert "train_loss" in run.data.metrics and "grm_pair_accuracy" in run.data.metrics
    assert {a.path for a in client.list_artifacts(m1["run_id"], "plots")} == {"plots/loss.png", "plots/calibration.png"}

    # a deliberately worse challenger: the same model scoring every creative alike (every pair a tie:
    # accuracy 0.5, below the champion's)
    d, cfg2, data = train_grm.build(lake, settings, date, cfg)
    model, metrics, _ = fit(data, cfg2)
    assert metrics["grm_pair_accuracy"] > 0.5
    with torch.no_grad():
        model.head[-1].weight.zero_()
        model.head[-1].bias.zero_()
    model.cfg.residual = False  # the score is the head's alone: a constant
    tracking.setup(settings)
    with mlflow.start_run(run_name="worse"):
        mlflow.set_tags({"osmf.run_date": date, **{f"lineage.{k}": v for k, v in d.versions.items()}})
        v2 = registry.register(registry.GRM, model.save(tmp_path / "worse"), lifecycle.input_example(data, settings.asset_root))
    assert v2 == "2"
    decision = train_grm.promote(ctx)
    assert not decision["promoted"]
    assert decision["challenger_pair_accuracy"] < decision["champion_pair_accuracy"]
    assert str(client.get_model_version_by_alias(registry.GRM, "champion").version) == "1"
    assert client.get_model_version(registry.GRM, "2").tags["promotion.decision"].startswith("refused")

    # the champion loads back by alias in a fresh process and scores creatives
    row = data.rows.iloc[0]
    code = (
        "import mlflow, pandas as pd, sys; mlflow.set_tracking_uri(sys.argv[1]);"
        "m = mlflow.pyfunc.load_model('models:/osmf-grm@champion');"
        f"df = pd.DataFrame({{'group_features': [{list(map(float, row.features))}], "
        f"'image_path': [{str(settings.home / row.image_uri)!r}], 'prompt': [{row.background_prompt!r}]}});"
        "p = m.predict(df); assert 0 < float(p[0]) < 1; print('ok', float(p[0]))")
    out = subprocess.run([sys.executable, "-c", code, settings.mlflow_uri], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("ok")


def test_score_is_the_offset_plus_the_group_residual(tmp_path):
    """With a creative's observed group-blind log-odds the blind head is not used; without one (a new
    creative) it is; and only the residual depends on the group."""
    cfg = GRMConfig.tiny(group_dim=8)
    torch.manual_seed(0)
    model = GRM(cfg).eval()
    g, i, t = _batch(cfg)
    offset = torch.linspace(-3, -1, 6)
    blind, resid = model.parts(g, i, t)
    assert torch.allclose(model(g, i, t, offset), offset + resid)
    assert torch.allclose(model(g, i, t), blind + resid)
    blind2, resid2 = model.parts(torch.randn(6, 8), i, t)
    assert torch.equal(blind, blind2) and not torch.allclose(resid, resid2)


def test_the_residual_weight_is_chosen_on_validation_pairs_and_scores_with_it(tmp_path):
    """choose_residual_scale keeps the smallest weight of a residual that ranks unseen groups' pairs
    right and drops one that ranks them wrong; the model scores with the weight it carries."""
    import numpy as np
    import pandas as pd

    from osmf_models.grm.train import GRMData, choose_residual_scale

    class Fixed:  # parts(): no group-blind head needed, a fixed residual per row
        def parts(self, *_):
            return torch.zeros(4), torch.tensor([0.0, 1.0, 0.0, 1.0])

    offset = torch.tensor([0.25, 0.0, 0.25, 0.0])  # the group-blind order is the residual's reversed
    data = GRMData(pd.DataFrame({"clicks": np.zeros(4), "impressions": np.ones(4)}), pd.DataFrame(),
                   *(torch.zeros(4, 1),) * 3, torch.arange(4), offset)
    follows = pd.DataFrame({"chosen_row": [1, 3], "rejected_row": [0, 2]})
    best, acc = choose_residual_scale(Fixed(), data, follows)
    assert best == 0.3 and acc[0.2] == 0.0 and acc[1.0] == 1.0  # 0.3: the first weight past the 0.25 gap
    best, acc = choose_residual_scale(Fixed(), data, follows.rename(columns={"chosen_row": "rejected_row",
                                                                              "rejected_row": "chosen_row"}))
    assert best == 0.0 and acc[0.0] == 1.0 and acc[1.0] == 0.0

    cfg = GRMConfig.tiny(group_dim=8)
    torch.manual_seed(0)
    model = GRM(cfg).eval()
    g, i, t = _batch(cfg)
    _, resid = model.parts(g, i, t)
    off = torch.linspace(-3, -1, 6)
    cfg.residual_scale = 0.3
    assert torch.allclose(model(g, i, t, off), off + 0.3 * resid)
    back = GRM.load(model.save(tmp_path / "grm"))  # the weight travels with the checkpoint
    assert back.cfg.residual_scale == 0.3 and torch.equal(back(g, i, t, off), model(g, i, t, off))


def test_a_grm_from_before_the_residual_score_still_scores_as_it_did(tmp_path):
    """A checkpoint without the group-blind head (a champion registered before the residual score)
    loads and scores with its own head alone, ignoring any offset, as it did then."""
    from osmf_models.common import save_checkpoint

    cfg = GRMConfig.tiny(group_dim=8)
    torch.manual_seed(0)
    model = GRM(cfg).eval()
    old = torch.nn.Module()
    for name, child in model.named_children():
        if name != "blind_head":
            old.add_module(name, child)
    save_checkpoint(old, {"config": {k: v for k, v in cfg.to_dict().items() if k not in ("residual", "residual_penalty")}},
                    tmp_path / "old")
    back = GRM.load(tmp_path / "old")
    g, i, t = _batch(cfg)
    assert back.cfg.residual is False
    assert torch.equal(back(g, i, t, torch.ones(6)), model.parts(g, i, t)[1])


def test_pair_accuracy_intervals_resample_whole_groups():
    import numpy as np
    import pandas as pd

    from osmf_models.grm.train import pair_accuracy_intervals, pair_metrics

    # 4 groups x 3 pairs over rows 0..7; the GRM ranks every pair right, the baseline those of 2 groups
    pairs = pd.DataFrame({"product_id": ["p"] * 12, "group_id": np.repeat([0, 1, 2, 3], 3),
                          "chosen_row": np.tile([0, 2, 4], 4), "rejected_row": np.tile([1, 3, 5], 4)})
    grm = np.array([1.0, 0, 1, 0, 1, 0, 0, 0])
    ci = pair_accuracy_intervals(grm, -grm, pairs)
    assert ci["grm_pair_accuracy_ci"] == [1.0, 1.0] and ci["baseline_pair_accuracy_ci"] == [0.0, 0.0]
    assert ci["pair_accuracy_gain_ci"] == [1.0, 1.0]
    mixed = pairs.assign(chosen_row=np.where(pairs.group_id < 2, pairs.chosen_row, pairs.rejected_row),
                         rejected_row=np.where(pairs.group_id < 2, pairs.rejected_row, pairs.chosen_row))
    ci = pair_accuracy_intervals(grm, grm, mixed)
    lo, hi = ci["grm_pair_accuracy_ci"]
    assert lo < pair_metrics(grm, mixed)["pair_accuracy"] == 0.5 < hi  # groups, not pairs, are resampled:
    assert lo <= 0.25 and hi >= 0.75  # 4 clusters give a wide interval
    assert ci["pair_accuracy_gain_ci"] == [0.0, 0.0]
    assert pair_accuracy_intervals(grm, grm, mixed.iloc[:0]) == {}

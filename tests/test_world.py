import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from osmf.world import Simulator, WorldConfig, WorldConfigError, generate_world
from osmf.world.generate import MALFORMED_KINDS


def _digest(home: Path) -> dict[str, str]:
    """Hashes of everything the generator writes (landing, world, truth), by relative path."""
    return {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
            for sub in ("landing", "truth") for p in sorted((home / sub).rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, world_home):
    cfg = WorldConfig.preset("tiny")
    generate_world(cfg, tmp_path / "a")
    first = _digest(tmp_path / "a")
    assert first == _digest(world_home)  # a world generated elsewhere, earlier, in another dir
    generate_world(cfg, tmp_path / "a")  # regenerating in place replaces, byte for byte
    assert _digest(tmp_path / "a") == first
    other = WorldConfig.from_dict({"world": {**cfg.to_dict(), "seed": cfg.seed + 1}})
    generate_world(other, tmp_path / "b")
    second = _digest(tmp_path / "b")
    assert set(second) == set(first)
    assert second["truth/segments.parquet"] != first["truth/segments.parquet"]
    assert second["landing/events/event_date=2026-01-01/part-0000.jsonl"] != \
        first["landing/events/event_date=2026-01-01/part-0000.jsonl"]


def test_layout_and_rates(world_home):
    cfg = WorldConfig.preset("tiny")
    for rel in ("landing/dimensions/users.parquet", "landing/dimensions/products.parquet",
                "landing/dimensions/creatives.parquet", "landing/contract.json", "landing/dimensions/_SUCCESS",
                "truth/manifest.json", "truth/segments.parquet", "truth/style_ctr.parquet"):
        assert (world_home / rel).is_file(), rel
    stats = json.loads((world_home / "truth/landing_stats.json").read_text())
    kinds = {}
    for f in stats.values():
        for k, v in f["malformed_by_kind"].items():
            kinds[k] = kinds.get(k, 0) + v
    assert set(kinds) == set(MALFORMED_KINDS)
    per_day = cfg.impressions_per_day
    assert sum(f["malformed"] for f in stats.values()) == cfg.days * round(per_day * cfg.malformed_rate)
    assert sum(f["duplicates"] for f in stats.values()) == cfg.days * round(per_day * cfg.duplicate_rate)
    products = pd.read_parquet(world_home / "landing/dimensions/products.parquet")
    assert all((world_home / "landing" / u).is_file() for u in products.image_uri)  # URIs relative to landing/
    assert all((world_home / "landing" / u).is_file() for u in products.mask_uri)
    assert not (world_home / "world").exists()


def test_segments_depend_on_category(world_home):
    seg = pd.read_parquet(world_home / "truth/segments.parquet")
    wide = seg.pivot(index="user_id", columns="category", values="segment")
    a, b = wide.columns[:2]
    assert 0.05 < (wide[a] != wide[b]).mean()  # a user's segment differs by category for many users


def _image(home, uri):
    return np.asarray(Image.open(home / "landing" / uri).convert("RGB"))


def _mask(home, products, pid):
    return np.asarray(Image.open(home / "landing" / products.set_index("product_id").loc[pid, "mask_uri"])) > 127


def test_the_lake_side_creatives_carry_no_style_label(world_home):
    creatives = pd.read_parquet(world_home / "landing/dimensions/creatives.parquet")
    assert "style" not in creatives.columns and "weights" not in creatives.columns
    truth = pd.read_parquet(world_home / "truth/creative_styles.parquet")
    assert set(truth.creative_id) == set(creatives.creative_id)
    # the hidden perception reads each historical creative as the style it was drawn in
    assert (truth["style"] == truth["perceived_style"]).mean() > 0.95


def test_the_simulator_judges_pixels(world_home):
    sim = Simulator(world_home)
    creatives = pd.read_parquet(world_home / "landing/dimensions/creatives.parquet")
    products = pd.read_parquet(world_home / "landing/dimensions/products.parquet")
    styles = pd.read_parquet(world_home / "truth/creative_styles.parquet").set_index("creative_id")
    users = pd.read_parquet(world_home / "landing/dimensions/users.parquet").user_id.tolist()
    pid = creatives.product_id.iloc[0]
    mine = creatives[creatives.product_id == pid]
    mask = _mask(world_home, products, pid)
    a, b = (_image(world_home, u) for u in mine.image_uri[:2])
    # the same product on another background gets another expected CTR, read from the pixels alone
    assert sim.expected_ctr(pid, users, a, mask) != sim.expected_ctr(pid, users, b, mask)
    # a clean historical creative scores (almost) as the ideal creative of its drawn style
    ideal = sim.expected_ctr(pid, users, style=styles.loc[mine.creative_id.iloc[0], "style"])
    assert abs(sim.expected_ctr(pid, users, a, mask) - ideal) < 0.05 * ideal
    # the prompt does not matter: no prompt argument exists, the image alone decides
    grey = np.full_like(a, 128)
    grey[mask] = a[mask]
    assert sim.perceived_style(grey, mask) in sim.styles
    assert sim.oracle_ctr(pid, users) > sim.best_single_style(pid, users)[1]


def test_the_simulator_matches_the_clicks_the_world_generated(world_home):
    sim = Simulator(world_home)
    creatives = pd.read_parquet(world_home / "landing/dimensions/creatives.parquet")
    products = pd.read_parquet(world_home / "landing/dimensions/products.parquet")
    users = pd.read_parquet(world_home / "landing/dimensions/users.parquet").user_id.tolist()
    rows = []
    for f in sorted((world_home / "landing/events").rglob("*.jsonl")):
        for line in f.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    ev = pd.DataFrame(rows)
    ev = ev[ev.user_id.isin(users) & ev.creative_id.isin(creatives.creative_id) &
            ev.product_id.isin(creatives.product_id)]
    uri = dict(zip(creatives.creative_id, creatives.image_uri))
    expected = sum(sim.per_user_ctr(p, g.user_id, _image(world_home, uri[c]), _mask(world_home, products, p)).sum()
                   for (p, c), g in ev.groupby(["product_id", "creative_id"]))
    observed = pd.to_numeric(ev.clicked, errors="coerce").fillna(0).sum()
    assert abs(observed - expected) < 4 * expected**0.5  # within 4 sigma of the Poisson noise


def test_a_world_config_of_the_previous_version_still_loads(tmp_path):
    """Every key of the version before pixel perception, and nothing newer: new keys take their
    documented defaults."""
    path = tmp_path / "old.toml"
    path.write_text("[world]\nseed = 3\nn_users = 50\nn_products = 4\nn_categories = 2\nn_segments = 2\n"
                    "n_styles = 4\ndays = 1\nimpressions_per_day = 200\nmalformed_rate = 0.01\n"
                    "duplicate_rate = 0.01\ncreatives_per_product = 3\nstyle_effect = 1.2\nclick_noise = 0.1\n")
    cfg = WorldConfig.from_toml(path)
    assert cfg.perception_temperature == WorldConfig().perception_temperature


@pytest.mark.parametrize("body, match", [
    ("[world]\nn_userz = 3\n", r"\[world\]\.n_userz"),
    ("[world]\nn_users = 'many'\n", r"\[world\]\.n_users"),
    ("[world]\nmalformed_rate = 0.9\n", r"\[world\]\.malformed_rate"),
    ("[world]\nn_segments = 5\nn_styles = 4\ncreatives_per_product = 2\n", r"n_segments"),
    ("[wrld]\nseed = 1\n", r"no \[world\] table"),
    ("[world]\nstart_date = 'yesterday'\n", r"start_date"),
])
def test_bad_world_config_names_the_key(tmp_path, body, match):
    path = tmp_path / "w.toml"
    path.write_text(body)
    with pytest.raises(WorldConfigError, match=match):
        WorldConfig.from_toml(path)

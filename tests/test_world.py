import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from osmf.world import Simulator, WorldConfig, WorldConfigError, generate_world
from osmf.world.generate import MALFORMED_KINDS
from osmf.world.styles import style_from_prompt


def _digest(home: Path) -> dict[str, str]:
    """Hashes of everything the generator writes (landing, world, truth), by relative path."""
    return {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
            for sub in ("landing", "world", "truth") for p in sorted((home / sub).rglob("*")) if p.is_file()}


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
    for rel in ("world/users.parquet", "world/products.parquet", "world/creatives.parquet",
                "truth/segments.parquet", "truth/style_ctr.parquet"):
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
    products = pd.read_parquet(world_home / "world/products.parquet")
    assert all((world_home / u).is_file() for u in products.image_uri)
    assert all((world_home / u).is_file() for u in products.mask_uri)


def test_segments_depend_on_category(world_home):
    seg = pd.read_parquet(world_home / "truth/segments.parquet")
    wide = seg.pivot(index="user_id", columns="category", values="segment")
    a, b = wide.columns[:2]
    assert 0.05 < (wide[a] != wide[b]).mean()  # a user's segment differs by category for many users


def test_simulator_matches_observed_clicks_and_reads_prompts(world_home):
    sim = Simulator(world_home)
    creatives = pd.read_parquet(world_home / "world/creatives.parquet")
    # every historical prompt is read back as its own style
    assert all(style_from_prompt(p) == s for p, s in zip(creatives.background_prompt, creatives["style"]))
    assert style_from_prompt("a product on a plain background") is None
    users = pd.read_parquet(world_home / "world/users.parquet").user_id.tolist()
    pid = creatives.product_id.iloc[0]
    per_style = {s: sim.expected_ctr(pid, users, style=s) for s in sim.styles}
    assert sim.oracle_ctr(pid, users) > max(per_style.values())
    # prompt and style give the same number
    c = creatives.iloc[0]
    assert sim.expected_ctr(c.product_id, users, prompt=c.background_prompt) == per_style[c["style"]]
    # the simulator agrees with the clicks the world generated (all days, valid lines)
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
    ev = ev.merge(creatives[["creative_id", "style"]], on="creative_id")
    expected = sum(sim.per_user_ctr(p, g.user_id, style=s).sum() for (p, s), g in ev.groupby(["product_id", "style"]))
    observed = pd.to_numeric(ev.clicked, errors="coerce").fillna(0).sum()
    assert abs(observed - expected) < 4 * expected**0.5  # within 4 sigma of the Poisson noise


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

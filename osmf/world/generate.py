"""Seeded generator of a GAIP-style world with a hidden ground truth (DESIGN.md section 5).

Layout under ``$OSMF_HOME`` (DESIGN.md 4b):

* ``landing/events/event_date=D/part-NNNN.jsonl``: impression/click events as they arrive, with
  malformed lines and exact duplicates at the configured rates.
* ``world/``: dimension files (``users``, ``products``, ``creatives``, ``styles`` as Parquet),
  product images and foreground masks, historical creative images, and ``manifest.json``.
* ``truth/``: the hidden truth, for evaluation only: ``segments.parquet`` (user_id, category,
  segment), ``style_ctr.parquet`` (category, segment, style, ctr, logit), ``user_bias.parquet``
  and ``landing_stats.json`` (what the generator put in each landing file).

Same config, same bytes: every random draw comes from one ``SeedSequence`` tree, and paths stored
in the files are relative to ``$OSMF_HOME``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from osmf.world.config import WorldConfig
from osmf.world.styles import STYLES, draw_background

CATEGORIES = ("electronics", "apparel", "beauty", "home", "outdoor", "food", "toys", "books",
              "jewelry", "pets", "auto", "music")
NOUNS = {
    "electronics": ("headphones", "speaker", "smartwatch", "tablet", "camera"),
    "apparel": ("sneakers", "jacket", "hoodie", "scarf", "boots"),
    "beauty": ("perfume", "lipstick", "face cream", "serum", "nail polish"),
    "home": ("table lamp", "armchair", "vase", "cushion", "clock"),
    "outdoor": ("tent", "backpack", "water bottle", "bicycle helmet", "hiking poles"),
    "food": ("coffee beans", "chocolate box", "olive oil", "green tea", "honey jar"),
    "toys": ("teddy bear", "building blocks", "toy car", "puzzle", "kite"),
    "books": ("novel", "cookbook", "notebook", "atlas", "comic"),
    "jewelry": ("necklace", "ring", "bracelet", "earrings", "brooch"),
    "pets": ("dog bed", "cat tower", "pet bowl", "leash", "chew toy"),
    "auto": ("car charger", "dash cam", "seat cover", "tyre inflator", "car vacuum"),
    "music": ("guitar", "keyboard", "ukulele", "drum pad", "microphone"),
}
ADJECTIVES = ("classic", "premium", "compact", "vivid", "smart", "soft", "bold", "light", "pro", "eco")
SHAPES = ("circle", "rect", "triangle", "ellipse", "diamond", "rect", "circle", "ellipse",
          "diamond", "triangle", "rect", "circle")
MODIFIERS = ("professional product photo", "advertising shot, high detail", "e-commerce banner",
             "studio lighting, sharp focus")
EVENT_FIELDS = ("event_id", "event_ts", "user_id", "product_id", "creative_id", "clicked")
MALFORMED_KINDS = ("invalid_json", "missing_field", "wrong_type", "unknown_id",
                   "negative_timestamp", "future_timestamp")
# numeric user features behind the hidden segments (standardised), in this order
SEGMENT_FEATURES = ("age", "income_level", "city_tier", "activity", "tenure_days", "is_female",
                    "is_ios", "is_web")


@dataclass
class WorldSummary:
    home: Path
    dates: list[str]
    n_events: int
    n_lines: int
    n_malformed: int
    n_duplicates: int
    seconds: float


def _png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, compression="zstd")


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def user_segment_features(users: pd.DataFrame) -> np.ndarray:
    """The standardised feature matrix that the hidden segments are a function of."""
    act = users["activity"].map({"low": 0.0, "medium": 1.0, "high": 2.0}).to_numpy()
    cols = [users["age"].to_numpy(float), users["income_level"].to_numpy(float),
            users["city_tier"].to_numpy(float), act, users["tenure_days"].to_numpy(float),
            (users["gender"] == "F").to_numpy(float), (users["device"] == "ios").to_numpy(float),
            (users["device"] == "web").to_numpy(float)]
    x = np.stack(cols, axis=1)
    return (x - x.mean(0)) / (x.std(0) + 1e-9)


def _draw_product(shape: str, color, size: int, rng: np.random.Generator):
    """A product photo on a neutral backdrop, and its foreground mask (255 = product)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    cx, cy = 0.5 + rng.uniform(-0.06, 0.06), 0.55 + rng.uniform(-0.06, 0.06)
    r = rng.uniform(0.22, 0.3)
    if shape == "circle":
        m = (xx - cx) ** 2 + (yy - cy) ** 2 < r**2
    elif shape == "ellipse":
        m = ((xx - cx) / (r * 1.3)) ** 2 + ((yy - cy) / (r * 0.8)) ** 2 < 1
    elif shape == "rect":
        m = (abs(xx - cx) < r) & (abs(yy - cy) < r * 0.75)
    elif shape == "diamond":
        m = abs(xx - cx) + abs(yy - cy) < r * 1.2
    else:  # triangle
        m = (yy > cy - r) & (yy < cy + r) & (abs(xx - cx) < (yy - (cy - r)) * 0.6)
    img = np.full((size, size, 3), 128, np.float32)
    shade = 0.75 + 0.25 * (1 - yy)[..., None]
    img[m] = (np.array(color, np.float32)[None, None, :] * shade)[m]
    img += rng.normal(0, 2, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), (m * 255).astype(np.uint8)


def generate_world(cfg: WorldConfig, home: Path, progress: Callable[[str], None] | None = None) -> WorldSummary:
    """Generate the world described by ``cfg`` under ``home``, replacing any earlier world there
    (landing events, dimension files and truth; the lake is left alone)."""
    import time

    t0 = time.perf_counter()
    say = progress or (lambda msg: None)
    home = Path(home)
    world_dir, truth_dir, landing_dir = home / "world", home / "truth", home / "landing" / "events"
    for d in (world_dir, truth_dir, landing_dir):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    ss = np.random.SeedSequence(cfg.seed)
    r_users, r_seg, r_ctr, r_prod, r_img, r_cre, r_events = (np.random.default_rng(s) for s in ss.spawn(7))

    # ---- users ---------------------------------------------------------------------------------
    n = cfg.n_users
    users = pd.DataFrame({
        "user_id": [f"u{i:07d}" for i in range(n)],
        "age": r_users.integers(18, 71, n).astype(np.int32),
        "gender": r_users.choice(np.array(["F", "M"]), n),
        "city_tier": r_users.integers(1, 5, n).astype(np.int32),
        "income_level": r_users.integers(1, 6, n).astype(np.int32),
        "activity": r_users.choice(np.array(["low", "medium", "high"]), n, p=[0.4, 0.4, 0.2]),
        "device": r_users.choice(np.array(["ios", "android", "web"]), n, p=[0.4, 0.45, 0.15]),
        "tenure_days": r_users.integers(1, 2000, n).astype(np.int32),
    })
    say(f"users: {n}")

    # ---- hidden segments: a different linear score of the user's attributes per category -------
    cats = CATEGORIES[: cfg.n_categories]
    z = user_segment_features(users)
    seg = np.zeros((cfg.n_categories, n), dtype=np.int32)
    for c in range(cfg.n_categories):
        w = r_seg.normal(0, 1, z.shape[1])
        w[r_seg.permutation(z.shape[1])[: z.shape[1] // 2]] *= 0.15  # a few attributes dominate
        score = z @ w
        edges = np.quantile(score, np.linspace(0, 1, cfg.n_segments + 1)[1:-1])
        s = np.searchsorted(edges, score).astype(np.int32)
        noisy = r_seg.random(n) < cfg.segment_noise
        s[noisy] = r_seg.integers(0, cfg.n_segments, noisy.sum())
        seg[c] = s
    user_bias = r_seg.normal(0, cfg.click_noise, n)

    # ---- hidden click model: log-odds per (category, segment, style) --------------------------
    styles = STYLES[: cfg.n_styles]
    logit = np.zeros((cfg.n_categories, cfg.n_segments, cfg.n_styles))
    for c in range(cfg.n_categories):
        base = np.log(cfg.base_ctr / (1 - cfg.base_ctr)) + r_ctr.normal(0, 0.2)
        fav = r_ctr.permutation(cfg.n_styles)[: cfg.n_segments]
        for s in range(cfg.n_segments):
            logit[c, s] = base + r_ctr.normal(0, cfg.style_noise, cfg.n_styles)
            logit[c, s, fav[s]] = base + cfg.style_effect + abs(r_ctr.normal(0, 0.1))

    # ---- products, images, masks ----------------------------------------------------------------
    img_dir = world_dir / "images"
    for sub in ("products", "masks", "creatives"):
        (img_dir / sub).mkdir(parents=True)
    prod_rows = []
    for p in range(cfg.n_products):
        c = p % cfg.n_categories
        cat = cats[c]
        noun = NOUNS[cat][r_prod.integers(len(NOUNS[cat]))]
        title = f"{ADJECTIVES[r_prod.integers(len(ADJECTIVES))]} {noun}".title()
        color = tuple(int(v) for v in r_prod.integers(30, 226, 3))
        pid = f"p{p:05d}"
        img, mask = _draw_product(SHAPES[c], color, cfg.image_size, r_img)
        (img_dir / "products" / f"{pid}.png").write_bytes(_png_bytes(img))
        (img_dir / "masks" / f"{pid}.png").write_bytes(_png_bytes(mask))
        prod_rows.append({
            "product_id": pid, "title": title, "category": cat,
            "price": float(np.round(r_prod.lognormal(3.3, 0.6), 2)),
            "image_uri": f"world/images/products/{pid}.png",
            "mask_uri": f"world/images/masks/{pid}.png",
        })
    products = pd.DataFrame(prod_rows)
    say(f"products: {cfg.n_products} with images and masks")

    # ---- historical creatives: the product on a few styles' backgrounds -------------------------
    cre_rows = []
    prod_imgs = {}
    for p, row in products.iterrows():
        img = np.asarray(Image.open(home / row.image_uri))
        mask = np.asarray(Image.open(home / row.mask_uri)) > 127
        prod_imgs[row.product_id] = (img, mask)
        chosen = np.sort(r_cre.permutation(cfg.n_styles)[: cfg.creatives_per_product])
        for k, st in enumerate(chosen):
            style = styles[st]
            cid = f"c{p:05d}{k:02d}"
            bg = draw_background(style, cfg.image_size, r_cre)
            bg[mask] = img[mask]
            (img_dir / "creatives" / f"{cid}.png").write_bytes(_png_bytes(bg))
            prompt = f"{row.title} on {style.phrase}, {MODIFIERS[r_cre.integers(len(MODIFIERS))]}"
            cre_rows.append({"creative_id": cid, "product_id": row.product_id, "style": style.name,
                             "background_prompt": prompt, "image_uri": f"world/images/creatives/{cid}.png",
                             "source": "historical"})
    creatives = pd.DataFrame(cre_rows)
    say(f"historical creatives: {len(creatives)}")

    # ---- events ---------------------------------------------------------------------------------
    cat_idx = np.array([p % cfg.n_categories for p in range(cfg.n_products)])
    style_idx = {s.name: i for i, s in enumerate(styles)}
    cre_prod = creatives["product_id"].str[1:].astype(int).to_numpy()
    cre_style = creatives["style"].map(style_idx).to_numpy()
    cre_ids = creatives["creative_id"].to_numpy()
    first_cre = np.searchsorted(cre_prod, np.arange(cfg.n_products))
    popularity = r_events.dirichlet(np.full(cfg.n_products, 3.0))
    user_ids = users["user_id"].to_numpy()
    prod_ids = products["product_id"].to_numpy()
    stats = {}
    n_events = n_lines = n_mal = n_dup = 0
    for day_i, date in enumerate(cfg.dates):
        m = cfg.impressions_per_day
        u = r_events.integers(0, n, m)
        p = r_events.choice(cfg.n_products, m, p=popularity)
        ci = first_cre[p] + r_events.integers(0, cfg.creatives_per_product, m)
        c = cat_idx[p]
        prob = _sigmoid(logit[c, seg[c, u], cre_style[ci]] + user_bias[u])
        clicked = (r_events.random(m) < prob).astype(np.int8)
        day_ms = int(dt.datetime.fromisoformat(date).replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
        ts = day_ms + r_events.integers(0, 86_400_000, m)
        ymd = date.replace("-", "")
        records = [
            [f"ev{ymd}{i:08d}", int(ts[i]), user_ids[u[i]], prod_ids[p[i]], cre_ids[ci[i]], int(clicked[i])]
            for i in range(m)
        ]
        # malformed lines replace some events; kinds cycle so every kind appears
        n_bad = int(round(m * cfg.malformed_rate))
        bad_idx = r_events.choice(m, n_bad, replace=False) if n_bad else np.array([], int)
        kinds = [MALFORMED_KINDS[k % len(MALFORMED_KINDS)] for k in range(n_bad)]
        lines = [json.dumps(dict(zip(EVENT_FIELDS, rec)), separators=(",", ":")) for rec in records]
        bad_set = set(bad_idx.tolist())
        for j, (i, kind) in enumerate(zip(bad_idx.tolist(), kinds)):
            rec = dict(zip(EVENT_FIELDS, records[i]))
            variant = j // len(MALFORMED_KINDS)
            if kind == "invalid_json":
                lines[i] = lines[i][: len(lines[i]) // 2]
                continue
            if kind == "missing_field":
                del rec[EVENT_FIELDS[variant % len(EVENT_FIELDS)]]
            elif kind == "wrong_type":
                key = ("clicked", "event_ts", "user_id")[variant % 3]
                rec[key] = {"clicked": "yes", "event_ts": "noon", "user_id": 12345}[key]
            elif kind == "unknown_id":
                key = ("user_id", "product_id", "creative_id")[variant % 3]
                rec[key] = f"{key[0]}_ghost_{variant}"
            elif kind == "negative_timestamp":
                rec["event_ts"] = -rec["event_ts"]
            elif kind == "future_timestamp":
                rec["event_ts"] = rec["event_ts"] + 50 * 365 * 86_400_000
            lines[i] = json.dumps(rec, separators=(",", ":"))
        good = np.array([i for i in range(m) if i not in bad_set], dtype=np.int64)
        n_d = int(round(m * cfg.duplicate_rate))
        dups = r_events.choice(good, n_d, replace=False) if n_d else np.array([], int)
        all_lines = lines + [lines[i] for i in dups.tolist()]
        order = r_events.permutation(len(all_lines))
        chunks = np.array_split(order, cfg.files_per_day)
        day_dir = landing_dir / f"event_date={date}"
        day_dir.mkdir(parents=True)
        is_bad = np.zeros(len(all_lines), bool)
        is_bad[bad_idx] = True
        is_dup = np.zeros(len(all_lines), bool)
        is_dup[m:] = True
        kind_of = dict(zip(bad_idx.tolist(), kinds))
        for f_i, chunk in enumerate(chunks):
            name = f"part-{f_i:04d}.jsonl"
            with open(day_dir / name, "w", encoding="utf-8", newline="\n") as fh:
                fh.write("\n".join(all_lines[k] for k in chunk.tolist()) + ("\n" if len(chunk) else ""))
            kinds_here: dict[str, int] = {}
            for k in chunk.tolist():
                if is_bad[k]:
                    kinds_here[kind_of[k]] = kinds_here.get(kind_of[k], 0) + 1
            stats[f"event_date={date}/{name}"] = {
                "lines": int(len(chunk)), "malformed": int(is_bad[chunk].sum()),
                "duplicates": int(is_dup[chunk].sum()), "malformed_by_kind": dict(sorted(kinds_here.items())),
            }
        n_events += m - n_bad
        n_lines += len(all_lines)
        n_mal += n_bad
        n_dup += n_d
        say(f"events {date}: {len(all_lines)} lines ({n_bad} malformed, {n_d} duplicates)")

    # ---- write dims, truth, manifest --------------------------------------------------------------
    _write_parquet(users, world_dir / "users.parquet")
    _write_parquet(products, world_dir / "products.parquet")
    _write_parquet(creatives, world_dir / "creatives.parquet")
    _write_parquet(pd.DataFrame({"style": [s.name for s in styles], "phrase": [s.phrase for s in styles]}),
                   world_dir / "styles.parquet")
    _write_parquet(pd.DataFrame({
        "user_id": np.repeat(user_ids[None, :], cfg.n_categories, 0).ravel(),
        "category": np.repeat(np.array(cats), n),
        "segment": seg.ravel(),
    }), truth_dir / "segments.parquet")
    cc, ss_, tt = np.meshgrid(np.arange(cfg.n_categories), np.arange(cfg.n_segments), np.arange(cfg.n_styles), indexing="ij")
    _write_parquet(pd.DataFrame({
        "category": np.array(cats)[cc.ravel()], "segment": ss_.ravel().astype(np.int32),
        "style": np.array([s.name for s in styles])[tt.ravel()],
        "ctr": _sigmoid(logit.ravel()), "logit": logit.ravel(),
    }), truth_dir / "style_ctr.parquet")
    _write_parquet(pd.DataFrame({"user_id": user_ids, "click_bias": user_bias}), truth_dir / "user_bias.parquet")
    (truth_dir / "landing_stats.json").write_text(json.dumps(stats, indent=1, sort_keys=True))
    manifest = {"config": cfg.to_dict(), "dates": cfg.dates, "categories": list(cats),
                "styles": [s.name for s in styles], "n_events": n_events, "n_lines": n_lines}
    (world_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return WorldSummary(home, cfg.dates, n_events, n_lines, n_mal, n_dup, time.perf_counter() - t0)


def read_manifest(home: Path) -> dict:
    path = Path(home) / "world" / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(
            f"no world at {Path(home)}: {path} is missing; create one with `osmf world generate --preset small`"
        )
    return json.loads(path.read_text())

"""Seeded generator of a GAIP-style world with a hidden ground truth.

The world is drawn in steps (see ``generate_world``): users; the hidden truth (each user's segment
per category, a per-user click bias, and the click log-odds of every (category, segment, style));
products with images and masks; historical creatives (a product on a few styles' backgrounds);
daily impression/click events drawn from the hidden truth, written as landing lines with some
corrupted or duplicated; and finally the dimension, truth and manifest files.

Layout under ``$OSMF_HOME``:

``landing/``, exactly what any producer of the landing contract (docs/landing.md) writes:

* ``events/event_date=D/part-NNNN.jsonl`` (then ``_SUCCESS``): impression/click events as they
  arrive, with malformed lines and exact duplicates at the configured rates.
* ``dimensions/`` (then ``_SUCCESS``): ``users``, ``products``, ``creatives`` as Parquet (images,
  prompts and products, never a creative's latent style); ``assets/``: product images, foreground
  masks and historical creative images (URIs relative to ``landing/``); ``contract.json``.

and where no pipeline stage looks:

* ``truth/``: the hidden truth, for evaluation only: ``manifest.json`` (the world's config, dates and
  counts), ``segments.parquet`` (user_id, category,
  segment), ``style_ctr.parquet`` (category, segment, style, ctr, logit), ``user_bias.parquet``,
  ``styles.parquet``, ``creative_styles.parquet`` (each historical creative's drawn and perceived
  style) and ``landing_stats.json`` (what the generator put in each landing file).

The click model reads pixels: the click log-odds of an impression are the user's segment's style
log-odds mixed by the hidden perception (``osmf.world.perception``) of the creative's background,
plus the user's bias; the simulator judges generated creatives the same way.

Same config, same bytes: every random draw comes from one ``SeedSequence`` tree, and paths stored
in the files are relative to ``$OSMF_HOME``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from osmf.world.config import WorldConfig
from osmf.world.perception import style_weights
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
    """What ``generate_world`` made: where, which dates, line counts and how long it took."""

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


@dataclass
class _Rngs:
    """One independent random stream per step, all spawned from ``cfg.seed`` (in this order)."""

    users: np.random.Generator
    segments: np.random.Generator
    ctr: np.random.Generator
    products: np.random.Generator
    images: np.random.Generator
    creatives: np.random.Generator
    events: np.random.Generator

    @classmethod
    def from_seed(cls, seed: int) -> "_Rngs":
        return cls(*(np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(7)))


@dataclass
class _HiddenTruth:
    """The ground truth the pipeline must rediscover; written under ``truth/`` only."""

    segments: np.ndarray  # (n_categories, n_users) int32: each user's segment per category
    user_bias: np.ndarray  # (n_users,): each user's click log-odds offset
    logit: np.ndarray  # (n_categories, n_segments, n_styles): click log-odds


@dataclass
class _Catalog:
    """Index arrays that turn drawn positions into ids, categories and styles for the events."""

    user_ids: np.ndarray
    prod_ids: np.ndarray
    cre_ids: np.ndarray
    cat_idx: np.ndarray  # category index of each product
    cre_weights: np.ndarray  # (n_creatives, n_styles): each creative's perceived style mix
    first_cre: np.ndarray  # position of each product's first creative


@dataclass
class _LandingDay:
    """One day's landing lines before shuffling: the first ``n_impressions`` are the day's events
    (those at ``bad_idx`` replaced by malformed lines of ``kinds``), the rest exact duplicates."""

    lines: list[str]
    n_impressions: int
    bad_idx: np.ndarray
    kinds: list[str]

    @property
    def n_malformed(self) -> int:
        return len(self.kinds)

    @property
    def n_duplicates(self) -> int:
        return len(self.lines) - self.n_impressions


@dataclass
class _EventCounts:
    n_events: int = 0
    n_lines: int = 0
    n_malformed: int = 0
    n_duplicates: int = 0

    def add(self, day: _LandingDay) -> None:
        self.n_events += day.n_impressions - day.n_malformed
        self.n_lines += len(day.lines)
        self.n_malformed += day.n_malformed
        self.n_duplicates += day.n_duplicates


def generate_world(cfg: WorldConfig, home: Path, progress: Callable[[str], None] | None = None) -> WorldSummary:
    """Generate the world described by ``cfg`` under ``home``, replacing any earlier world there
    (landing events, dimension files and truth; the lake is left alone)."""
    t0 = time.perf_counter()
    say = progress or (lambda msg: None)
    home = Path(home)
    dims_dir, truth_dir, landing_dir = _fresh_dirs(home)
    rng = _Rngs.from_seed(cfg.seed)

    users = _draw_users(cfg, rng.users)
    say(f"users: {cfg.n_users}")
    truth = _draw_hidden_truth(cfg, users, rng.segments, rng.ctr)
    products = _draw_products(cfg, home, rng.products, rng.images)
    say(f"products: {cfg.n_products} with images and masks")
    creatives = _draw_creatives(cfg, home, products, rng.creatives)
    say(f"historical creatives: {len(creatives)}")
    catalog = _index_catalog(cfg, users, products, creatives)
    counts, stats = _simulate_events(cfg, landing_dir, catalog, truth, rng.events, say)

    _write_dimensions(dims_dir, cfg, users, products, creatives)
    _write_truth(truth_dir, cfg, catalog.user_ids, truth, creatives, stats)
    _write_manifest(truth_dir, cfg, counts)
    _mark_landing_complete(home / "landing", cfg.dates)
    return WorldSummary(home, cfg.dates, counts.n_events, counts.n_lines, counts.n_malformed,
                        counts.n_duplicates, time.perf_counter() - t0)


# ---- setup -------------------------------------------------------------------------------------
def _fresh_dirs(home: Path) -> tuple[Path, Path, Path]:
    """Empty ``landing/`` (dimensions, assets with their image folders, events) and ``truth/``
    under home; ``world/`` (the layout before the landing contract) is removed."""
    landing = home / "landing"
    dims_dir, truth_dir, landing_dir = landing / "dimensions", home / "truth", landing / "events"
    for d in (home / "world", landing, truth_dir):
        if d.exists():
            shutil.rmtree(d)
    for d in (dims_dir, truth_dir, landing_dir):
        d.mkdir(parents=True)
    for sub in ("products", "masks", "creatives"):
        (landing / "assets" / sub).mkdir(parents=True)
    return dims_dir, truth_dir, landing_dir


# ---- users ---------------------------------------------------------------------------------------
def _draw_users(cfg: WorldConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Draw ``cfg.n_users`` users: age, gender, city tier, income, activity, device, tenure."""
    n = cfg.n_users
    return pd.DataFrame({
        "user_id": [f"u{i:07d}" for i in range(n)],
        "age": rng.integers(18, 71, n).astype(np.int32),
        "gender": rng.choice(np.array(["F", "M"]), n),
        "city_tier": rng.integers(1, 5, n).astype(np.int32),
        "income_level": rng.integers(1, 6, n).astype(np.int32),
        "activity": rng.choice(np.array(["low", "medium", "high"]), n, p=[0.4, 0.4, 0.2]),
        "device": rng.choice(np.array(["ios", "android", "web"]), n, p=[0.4, 0.45, 0.15]),
        "tenure_days": rng.integers(1, 2000, n).astype(np.int32),
    })


# ---- hidden truth --------------------------------------------------------------------------------
def _draw_hidden_truth(cfg: WorldConfig, users: pd.DataFrame, r_seg: np.random.Generator,
                       r_ctr: np.random.Generator) -> _HiddenTruth:
    """Draw the hidden truth: segments and click biases of the users, and the click model."""
    segments, user_bias = _draw_segments(cfg, users, r_seg)
    return _HiddenTruth(segments, user_bias, _draw_click_model(cfg, r_ctr))


def _draw_segments(cfg: WorldConfig, users: pd.DataFrame,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw each user's hidden segment per category and a per-user click bias.

    A category's segments are quantile bins of a linear score of the user's standardised attributes
    (a different score per category, dominated by a few attributes); ``cfg.segment_noise`` of the
    users get a random segment instead."""
    n = cfg.n_users
    z = user_segment_features(users)
    seg = np.zeros((cfg.n_categories, n), dtype=np.int32)
    for c in range(cfg.n_categories):
        w = rng.normal(0, 1, z.shape[1])
        w[rng.permutation(z.shape[1])[: z.shape[1] // 2]] *= 0.15  # a few attributes dominate
        score = z @ w
        edges = np.quantile(score, np.linspace(0, 1, cfg.n_segments + 1)[1:-1])
        s = np.searchsorted(edges, score).astype(np.int32)
        noisy = rng.random(n) < cfg.segment_noise
        s[noisy] = rng.integers(0, cfg.n_segments, noisy.sum())
        seg[c] = s
    user_bias = rng.normal(0, cfg.click_noise, n)
    return seg, user_bias


def _draw_click_model(cfg: WorldConfig, rng: np.random.Generator) -> np.ndarray:
    """Draw the hidden click log-odds per (category, segment, style): around the base CTR, each
    segment of a category has its own favourite style, boosted by ``cfg.style_effect``."""
    logit = np.zeros((cfg.n_categories, cfg.n_segments, cfg.n_styles))
    for c in range(cfg.n_categories):
        base = np.log(cfg.base_ctr / (1 - cfg.base_ctr)) + rng.normal(0, 0.2)
        fav = rng.permutation(cfg.n_styles)[: cfg.n_segments]
        for s in range(cfg.n_segments):
            logit[c, s] = base + rng.normal(0, cfg.style_noise, cfg.n_styles)
            logit[c, s, fav[s]] = base + cfg.style_effect + abs(rng.normal(0, 0.1))
    return logit


# ---- products and historical creatives -----------------------------------------------------------
def _draw_products(cfg: WorldConfig, home: Path, r_prod: np.random.Generator,
                   r_img: np.random.Generator) -> pd.DataFrame:
    """Draw ``cfg.n_products`` products (categories assigned round-robin) and write their images
    and foreground masks under ``landing/assets/``."""
    rows = [_draw_one_product(p, cfg, home, r_prod, r_img) for p in range(cfg.n_products)]
    return pd.DataFrame(rows)


def _draw_one_product(p: int, cfg: WorldConfig, home: Path, r_prod: np.random.Generator,
                      r_img: np.random.Generator) -> dict:
    """Draw product ``p``: a title, colour and price (``r_prod``) and its photo and mask (``r_img``)."""
    c = p % cfg.n_categories
    cat = CATEGORIES[c]
    noun = NOUNS[cat][r_prod.integers(len(NOUNS[cat]))]
    title = f"{ADJECTIVES[r_prod.integers(len(ADJECTIVES))]} {noun}".title()
    color = tuple(int(v) for v in r_prod.integers(30, 226, 3))
    pid = f"p{p:05d}"
    img, mask = _draw_product(SHAPES[c], color, cfg.image_size, r_img)
    row = {
        "product_id": pid, "title": title, "category": cat,
        "price": float(np.round(r_prod.lognormal(3.3, 0.6), 2)),
        "image_uri": f"assets/products/{pid}.png",
        "mask_uri": f"assets/masks/{pid}.png",
    }
    (home / "landing" / row["image_uri"]).write_bytes(_png_bytes(img))
    (home / "landing" / row["mask_uri"]).write_bytes(_png_bytes(mask))
    return row


def _draw_creatives(cfg: WorldConfig, home: Path, products: pd.DataFrame,
                    rng: np.random.Generator) -> pd.DataFrame:
    """Draw the historical creatives: each product on ``cfg.creatives_per_product`` styles."""
    rows = []
    for p, row in products.iterrows():
        rows.extend(_draw_product_creatives(p, row, cfg, home, rng))
    return pd.DataFrame(rows)


def _draw_product_creatives(p: int, product, cfg: WorldConfig, home: Path,
                            rng: np.random.Generator) -> list[dict]:
    """Paste product ``p`` (read back from its image and mask) onto distinct styles' backgrounds,
    write each creative image, and draw its background prompt."""
    styles = STYLES[: cfg.n_styles]
    img = np.asarray(Image.open(home / "landing" / product.image_uri))
    mask = np.asarray(Image.open(home / "landing" / product.mask_uri)) > 127
    chosen = np.sort(rng.permutation(cfg.n_styles)[: cfg.creatives_per_product])
    rows = []
    for k, st in enumerate(chosen):
        style = styles[st]
        cid = f"c{p:05d}{k:02d}"
        bg = draw_background(style, cfg.image_size, rng)
        bg[mask] = img[mask]
        uri = f"assets/creatives/{cid}.png"
        (home / "landing" / uri).write_bytes(_png_bytes(bg))
        prompt = f"{product.title} on {style.phrase}, {MODIFIERS[rng.integers(len(MODIFIERS))]}"
        w = style_weights(bg, mask, cfg.n_styles, cfg.perception_temperature)
        rows.append({"creative_id": cid, "product_id": product.product_id, "style": style.name,
                     "background_prompt": prompt, "image_uri": uri, "source": "historical", "weights": w})
    return rows


# ---- events --------------------------------------------------------------------------------------
def _index_catalog(cfg: WorldConfig, users: pd.DataFrame, products: pd.DataFrame,
                   creatives: pd.DataFrame) -> _Catalog:
    """Id and index arrays of users, products and creatives for vectorised event drawing."""
    cre_prod = creatives["product_id"].str[1:].astype(int).to_numpy()
    return _Catalog(
        user_ids=users["user_id"].to_numpy(),
        prod_ids=products["product_id"].to_numpy(),
        cre_ids=creatives["creative_id"].to_numpy(),
        cat_idx=np.array([p % cfg.n_categories for p in range(cfg.n_products)]),
        cre_weights=np.stack(creatives["weights"].to_numpy()),
        first_cre=np.searchsorted(cre_prod, np.arange(cfg.n_products)),
    )


def _simulate_events(cfg: WorldConfig, landing_dir: Path, catalog: _Catalog, truth: _HiddenTruth,
                     rng: np.random.Generator, say: Callable[[str], None]) -> tuple[_EventCounts, dict]:
    """Simulate every day's impressions and clicks and write them as landing files; return the
    totals and, per landing file, what it holds (lines, malformed by kind, duplicates)."""
    popularity = rng.dirichlet(np.full(cfg.n_products, 3.0))
    counts, stats = _EventCounts(), {}
    for date in cfg.dates:
        records = _draw_impressions(cfg, date, catalog, popularity, truth, rng)
        lines, bad_idx, kinds = _corrupt_records(records, cfg.malformed_rate, rng)
        lines = _add_duplicates(lines, bad_idx, cfg.duplicate_rate, rng)
        day = _LandingDay(lines, len(records), bad_idx, kinds)
        stats.update(_write_landing_day(landing_dir, date, day, cfg.files_per_day, rng))
        counts.add(day)
        say(f"events {date}: {len(day.lines)} lines "
            f"({day.n_malformed} malformed, {day.n_duplicates} duplicates)")
    return counts, stats


def _draw_impressions(cfg: WorldConfig, date: str, catalog: _Catalog, popularity: np.ndarray,
                      truth: _HiddenTruth, rng: np.random.Generator) -> list[list]:
    """Draw one day's impressions (user, product by popularity, one of its creatives, time) and
    whether each was clicked, with the hidden truth's probability; one record per impression."""
    m = cfg.impressions_per_day
    u = rng.integers(0, cfg.n_users, m)
    p = rng.choice(cfg.n_products, m, p=popularity)
    ci = catalog.first_cre[p] + rng.integers(0, cfg.creatives_per_product, m)
    c = catalog.cat_idx[p]
    # the click model reads the creative's pixels: the segment's style log-odds mixed by the
    # hidden perception of the creative's background
    logit = (truth.logit[c, truth.segments[c, u]] * catalog.cre_weights[ci]).sum(1)
    prob = _sigmoid(logit + truth.user_bias[u])
    clicked = (rng.random(m) < prob).astype(np.int8)
    day_ms = int(dt.datetime.fromisoformat(date).replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
    ts = day_ms + rng.integers(0, 86_400_000, m)
    ymd = date.replace("-", "")
    return [
        [f"ev{ymd}{i:08d}", int(ts[i]), catalog.user_ids[u[i]], catalog.prod_ids[p[i]],
         catalog.cre_ids[ci[i]], int(clicked[i])]
        for i in range(m)
    ]


def _corrupt_records(records: list[list], malformed_rate: float,
                     rng: np.random.Generator) -> tuple[list[str], np.ndarray, list[str]]:
    """Serialise the records as JSON lines, replacing a ``malformed_rate`` share of them by malformed
    lines; kinds cycle so every kind appears. Returns the lines, the replaced positions and kinds."""
    m = len(records)
    n_bad = int(round(m * malformed_rate))
    bad_idx = rng.choice(m, n_bad, replace=False) if n_bad else np.array([], int)
    kinds = [MALFORMED_KINDS[k % len(MALFORMED_KINDS)] for k in range(n_bad)]
    lines = [json.dumps(dict(zip(EVENT_FIELDS, rec)), separators=(",", ":")) for rec in records]
    for j, (i, kind) in enumerate(zip(bad_idx.tolist(), kinds)):
        lines[i] = _malformed_line(lines[i], records[i], kind, j // len(MALFORMED_KINDS))
    return lines, bad_idx, kinds


def _malformed_line(line: str, record: list, kind: str, variant: int) -> str:
    """The malformed version of one event line; ``variant`` picks which field a kind breaks."""
    if kind == "invalid_json":
        return line[: len(line) // 2]
    rec = dict(zip(EVENT_FIELDS, record))
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
    return json.dumps(rec, separators=(",", ":"))


def _add_duplicates(lines: list[str], bad_idx: np.ndarray, duplicate_rate: float,
                    rng: np.random.Generator) -> list[str]:
    """Append exact duplicates of a ``duplicate_rate`` share of the good (not malformed) lines."""
    m = len(lines)
    bad_set = set(bad_idx.tolist())
    good = np.array([i for i in range(m) if i not in bad_set], dtype=np.int64)
    n_d = int(round(m * duplicate_rate))
    dups = rng.choice(good, n_d, replace=False) if n_d else np.array([], int)
    return lines + [lines[i] for i in dups.tolist()]


def _write_landing_day(landing_dir: Path, date: str, day: _LandingDay, files_per_day: int,
                       rng: np.random.Generator) -> dict:
    """Shuffle the day's lines into ``files_per_day`` landing files; return each file's stats."""
    order = rng.permutation(len(day.lines))
    chunks = np.array_split(order, files_per_day)
    day_dir = landing_dir / f"event_date={date}"
    day_dir.mkdir(parents=True)
    is_bad = np.zeros(len(day.lines), bool)
    is_bad[day.bad_idx] = True
    is_dup = np.zeros(len(day.lines), bool)
    is_dup[day.n_impressions:] = True
    kind_of = dict(zip(day.bad_idx.tolist(), day.kinds))
    stats = {}
    for f_i, chunk in enumerate(chunks):
        name = f"part-{f_i:04d}.jsonl"
        with open(day_dir / name, "w", encoding="utf-8", newline="\n") as fh:
            fh.write("\n".join(day.lines[k] for k in chunk.tolist()) + ("\n" if len(chunk) else ""))
        kinds_here: dict[str, int] = {}
        for k in chunk.tolist():
            if is_bad[k]:
                kinds_here[kind_of[k]] = kinds_here.get(kind_of[k], 0) + 1
        stats[f"event_date={date}/{name}"] = {
            "lines": int(len(chunk)), "malformed": int(is_bad[chunk].sum()),
            "duplicates": int(is_dup[chunk].sum()), "malformed_by_kind": dict(sorted(kinds_here.items())),
        }
    return stats


def _mark_landing_complete(landing: Path, dates) -> None:
    """The contract version, then the completion markers of the dimensions and of every landing
    day, written last, as a landing writer would: a nightly ingest waits for them (see the
    osmf_ingest DAG)."""
    from osmf.config.settings import CONTRACT_VERSION, LANDING_MARKER

    (landing / "contract.json").write_text(json.dumps({"contract_version": CONTRACT_VERSION,
                                                       "producer": "osmf world generate"}, indent=1))
    (landing / "dimensions" / LANDING_MARKER).touch()
    for date in dates:
        (landing / "events" / f"event_date={date}" / LANDING_MARKER).touch()


# ---- output files --------------------------------------------------------------------------------
def _write_dimensions(dims_dir: Path, cfg: WorldConfig, users: pd.DataFrame, products: pd.DataFrame,
                      creatives: pd.DataFrame) -> None:
    """Write the users, products and creatives dimension files: what a real ad platform has (images,
    prompts, products), never the latent style a creative was drawn in (that is truth)."""
    _write_parquet(users, dims_dir / "users.parquet")
    _write_parquet(products, dims_dir / "products.parquet")
    _write_parquet(creatives.drop(columns=["style", "weights"]), dims_dir / "creatives.parquet")


def _write_truth(truth_dir: Path, cfg: WorldConfig, user_ids: np.ndarray, truth: _HiddenTruth,
                 creatives: pd.DataFrame, stats: dict) -> None:
    """Write the hidden truth: segments, style CTRs, user biases, the styles and each historical
    creative's style (drawn and perceived), and the landing files' stats."""
    cats = np.array(CATEGORIES[: cfg.n_categories])
    _write_parquet(pd.DataFrame({
        "user_id": np.repeat(user_ids[None, :], cfg.n_categories, 0).ravel(),
        "category": np.repeat(cats, cfg.n_users),
        "segment": truth.segments.ravel(),
    }), truth_dir / "segments.parquet")
    cc, ss, tt = np.meshgrid(np.arange(cfg.n_categories), np.arange(cfg.n_segments),
                             np.arange(cfg.n_styles), indexing="ij")
    _write_parquet(pd.DataFrame({
        "category": cats[cc.ravel()], "segment": ss.ravel().astype(np.int32),
        "style": np.array([s.name for s in STYLES[: cfg.n_styles]])[tt.ravel()],
        "ctr": _sigmoid(truth.logit.ravel()), "logit": truth.logit.ravel(),
    }), truth_dir / "style_ctr.parquet")
    _write_parquet(pd.DataFrame({"user_id": user_ids, "click_bias": truth.user_bias}),
                   truth_dir / "user_bias.parquet")
    styles = STYLES[: cfg.n_styles]
    _write_parquet(pd.DataFrame({"style": [s.name for s in styles], "phrase": [s.phrase for s in styles]}),
                   truth_dir / "styles.parquet")
    w = np.stack(creatives["weights"].to_numpy())
    _write_parquet(pd.DataFrame({"creative_id": creatives["creative_id"], "style": creatives["style"],
                                 "perceived_style": np.array([s.name for s in styles])[w.argmax(1)],
                                 "perceived_weight": w.max(1)}), truth_dir / "creative_styles.parquet")
    (truth_dir / "landing_stats.json").write_text(json.dumps(stats, indent=1, sort_keys=True))


def _write_manifest(truth_dir: Path, cfg: WorldConfig, counts: _EventCounts) -> None:
    """Write ``truth/manifest.json``: the config, dates, categories, styles and event counts."""
    manifest = {"config": cfg.to_dict(), "dates": cfg.dates,
                "categories": list(CATEGORIES[: cfg.n_categories]),
                "styles": [s.name for s in STYLES[: cfg.n_styles]],
                "n_events": counts.n_events, "n_lines": counts.n_lines}
    (truth_dir / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))


def read_manifest(home: Path) -> dict:
    """The manifest of the world under ``home``; a clear error when there is none."""
    path = Path(home) / "truth" / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(
            f"no world at {Path(home)}: {path} is missing; create one with `osmf world generate --preset small`"
        )
    return json.loads(path.read_text())

"""Visual themes: the pipeline's own vocabulary of creative backgrounds, found in the lake.

A real ad platform has creative images and prompts, not the latent style a creative was made in.
PAAG needs a small vocabulary to express a user's taste over, so the pipeline clusters the
historical creatives (K-Means, seeded) on what the lake holds: a coarse colour histogram of the
background (the pixels outside the product's mask; square-rooted, so distances are Hellinger-like)
and a hashed bag of words of the background prompt. ``[grouping].paag_themes`` sets K; 0 (the
default) chooses it from the creatives: the first local maximum of the silhouette over K = 2, 3, ...
(``choose_theme_count``). Backgrounds made in a handful of looks form that many tight clusters: the
silhouette rises while K merges looks and falls once K splits one; far larger K only re-find single
products' backgrounds. A constant would cap a world or a catalogue with more looks than it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger("osmf.themes")

HIST_BINS = 4  # per channel: 64 colour cells
TEXT_DIM = 64
TEXT_WEIGHT = 0.5


def background_histogram(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Square root of the share of background pixels in each of 4 x 4 x 4 colour cells."""
    px = np.asarray(image)[..., :3][~np.asarray(mask, bool)]
    if len(px) == 0:
        px = np.asarray(image)[..., :3].reshape(-1, 3)
    cells = (px // (256 // HIST_BINS)).astype(np.int64)
    idx = (cells[:, 0] * HIST_BINS + cells[:, 1]) * HIST_BINS + cells[:, 2]
    hist = np.bincount(idx, minlength=HIST_BINS**3).astype(np.float64)
    return np.sqrt(hist / hist.sum())


def creative_vectors(creatives: pd.DataFrame, products: pd.DataFrame, home: Path) -> np.ndarray:
    """One vector per creative row: background colour histogram ++ weighted hashed prompt words."""
    from PIL import Image

    from osmf.data.assets import product_assets
    from osmf_models.gmllm.data import background_of
    from osmf_models.paag.features import hash_text

    prod = products.set_index("product_id")
    masks = {p: mask for p, (_, mask) in product_assets(products, home).items()}
    rows = []
    for pid, uri, prompt in zip(creatives.product_id, creatives.image_uri, creatives.background_prompt):
        img = np.asarray(Image.open(Path(home) / uri).convert("RGB"))
        text = hash_text(background_of(prompt, prod.loc[pid, "title"]), TEXT_DIM)
        rows.append(np.concatenate([background_histogram(img, masks[pid]), TEXT_WEIGHT * text]))
    return np.stack(rows)


MAX_AUTO_THEMES = 24
SILHOUETTE_SAMPLE = 4000
MIN_THEME_SILHOUETTE = 0.75  # of the range's best: a local maximum below it is noise on the rise


def choose_theme_count(X: np.ndarray, seed: int, max_k: int = MAX_AUTO_THEMES) -> tuple[int, dict]:
    """The number of themes for creative vectors X: the smallest K >= 2 whose K-Means silhouette is
    at least that of K + 1 and at least ``MIN_THEME_SILHOUETTE`` of the best over 2..max_k (the best
    K if no such K), and the silhouette per K. Fewer than 4 distinct creatives: one theme each."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    distinct = len(np.unique(X.round(6), axis=0))
    top = min(max_k, distinct - 1)
    if top < 3:
        return max(1, distinct), {}
    n = min(len(X), SILHOUETTE_SAMPLE)  # a fixed sample of a large catalogue (the silhouette is quadratic)
    sil = {k: float(silhouette_score(X, KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(X),
                                     sample_size=n, random_state=seed)) for k in range(2, top + 1)}
    floor = MIN_THEME_SILHOUETTE * max(sil.values())
    for k in range(2, top):
        if sil[k] >= sil[k + 1] and sil[k] >= floor:
            return k, sil
    return max(sil, key=sil.get), sil


def fit_themes(creatives: pd.DataFrame, products: pd.DataFrame, home: Path, k: int, seed: int) -> pd.Series:
    """creative_id -> theme name (``t00``, ``t01``, ...), by K-Means over ``creative_vectors``; ``k``
    themes, or with 0 as many as ``choose_theme_count`` finds."""
    from sklearn.cluster import KMeans

    creatives = creatives.sort_values("creative_id").reset_index(drop=True)
    X = creative_vectors(creatives, products, home)
    if k <= 0:
        k, sil = choose_theme_count(X, seed)
        log.info("themes: %d, the first local maximum of the silhouette (%s)", k,
                 ", ".join(f"{j}: {v:.3f}" for j, v in sil.items()))
    k = max(1, min(k, len(np.unique(X.round(6), axis=0))))
    labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(X)
    return pd.Series([f"t{int(t):02d}" for t in labels], index=creatives["creative_id"], name="theme")

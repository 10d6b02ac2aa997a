"""Visual themes: the pipeline's own vocabulary of creative backgrounds, found in the lake.

A real ad platform has creative images and prompts, not the latent style a creative was made in.
PAAG needs a small vocabulary to express a user's taste over, so the pipeline clusters the
historical creatives (K-Means, seeded) on what the lake holds: a coarse colour histogram of the
background (the pixels outside the product's mask; square-rooted, so distances are Hellinger-like)
and a hashed bag of words of the background prompt. ``[grouping].paag_themes`` sets K.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

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


def fit_themes(creatives: pd.DataFrame, products: pd.DataFrame, home: Path, k: int, seed: int) -> pd.Series:
    """creative_id -> theme name (``t00``, ``t01``, ...), by K-Means over ``creative_vectors``."""
    from sklearn.cluster import KMeans

    creatives = creatives.sort_values("creative_id").reset_index(drop=True)
    X = creative_vectors(creatives, products, home)
    k = max(1, min(k, len(np.unique(X.round(6), axis=0))))
    labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(X)
    return pd.Series([f"t{int(t):02d}" for t in labels], index=creatives["creative_id"], name="theme")

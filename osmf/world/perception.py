"""The world's hidden perception of a creative: its background pixels -> style weights.

Only the world (its click model, the simulated history) and the evaluation use this; the pipeline
never sees it. The background is every pixel outside the product's mask. Its features are the mean
colour of its darker and of its brighter half (by luminance) and the mean luminance change between
horizontal and between vertical neighbours (the pattern). Each style's prototype is the mean
feature vector of a few canonical renderings of the style; an image's weights are a softmax of
minus its squared distances to the prototypes over ``temperature`` (small: nearly one-hot for a
clean style, spread for a background between styles or unlike any).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from osmf.world.styles import STYLES, draw_background

LUMA = np.array([0.299, 0.587, 0.114])
PATTERN_SCALE = 2.0  # weight of the pattern features against the colour features
PROTOTYPE_RENDERS = 8


def background_features(image: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """8 numbers: dark-half RGB, bright-half RGB (0..1), horizontal and vertical pattern energy."""
    img = np.asarray(image, dtype=np.float64)[..., :3] / 255.0
    bg = np.ones(img.shape[:2], bool) if mask is None else ~np.asarray(mask, bool)
    if bg.sum() < 4:
        bg = np.ones(img.shape[:2], bool)
    lum = img @ LUMA
    px, pl = img[bg], lum[bg]
    med = np.median(pl)
    dark = px[pl <= med].mean(0)
    bright = px[pl > med].mean(0) if (pl > med).any() else dark
    both_x = bg[:, 1:] & bg[:, :-1]
    both_y = bg[1:, :] & bg[:-1, :]
    dx = np.abs(np.diff(lum, axis=1))[both_x].mean() if both_x.any() else 0.0
    dy = np.abs(np.diff(lum, axis=0))[both_y].mean() if both_y.any() else 0.0
    return np.concatenate([dark, bright, PATTERN_SCALE * np.array([dx, dy])])


@lru_cache(maxsize=32)
def prototypes(n_styles: int, size: int) -> np.ndarray:
    """(n_styles, 8): each style's mean features over canonical renderings (fixed seeds)."""
    out = []
    for style in STYLES[:n_styles]:
        rng = np.random.default_rng(20260101)
        out.append(np.mean([background_features(draw_background(style, size, rng)) for _ in range(PROTOTYPE_RENDERS)], 0))
    return np.stack(out)


def style_weights(image: np.ndarray, mask: np.ndarray | None, n_styles: int, temperature: float) -> np.ndarray:
    """The perceived mix of styles of an image's background (sums to 1)."""
    f = background_features(image, mask)
    d2 = ((prototypes(n_styles, int(np.asarray(image).shape[0])) - f) ** 2).sum(1)
    z = -(d2 - d2.min()) / temperature
    w = np.exp(z)
    return w / w.sum()

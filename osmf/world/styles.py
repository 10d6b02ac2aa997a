"""Background styles of the synthetic world: a name, the phrase a historical prompt uses, and how
the world draws it (the pipeline never sees this module: it sees the images and prompts)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Style:
    name: str
    phrase: str
    colors: tuple[tuple[int, int, int], tuple[int, int, int]]
    pattern: str  # vgrad | hgrad | stripes | dots | checker | rings


STYLES: tuple[Style, ...] = (
    Style("studio_white", "a clean minimalist white studio backdrop with soft shadows", ((245, 245, 245), (200, 200, 205)), "vgrad"),
    Style("wooden_home", "a cozy warm wooden living room interior", ((150, 100, 60), (90, 55, 30)), "stripes"),
    Style("beach_sunny", "a sunny tropical beach with blue sea and sand", ((90, 170, 230), (235, 210, 150)), "hgrad"),
    Style("neon_city", "a neon-lit cyberpunk city street at night", ((20, 10, 50), (255, 40, 200)), "dots"),
    Style("forest_green", "a lush green forest in morning light", ((30, 110, 40), (140, 200, 90)), "rings"),
    Style("marble_luxury", "an elegant black marble surface with gold accents", ((25, 25, 30), (200, 170, 60)), "checker"),
    Style("pastel_kids", "a playful pastel kids room full of toys", ((250, 190, 210), (170, 220, 250)), "dots"),
    Style("snow_mountain", "a snowy mountain landscape under a clear sky", ((120, 170, 230), (250, 250, 255)), "hgrad"),
    Style("kitchen_bright", "a bright modern kitchen countertop", ((230, 230, 220), (160, 180, 170)), "checker"),
    Style("stadium_field", "an outdoor stadium with green turf", ((40, 150, 60), (240, 240, 240)), "stripes"),
    Style("desert_sunset", "desert dunes at golden sunset", ((250, 150, 60), (200, 90, 40)), "vgrad"),
    Style("space_galaxy", "a deep space galaxy full of stars", ((5, 5, 25), (120, 80, 200)), "rings"),
)


def draw_background(style: Style, size: int, rng: np.random.Generator) -> np.ndarray:
    """A size x size x 3 uint8 background in the style's pattern and colours (deterministic in rng)."""
    c0 = np.array(style.colors[0], dtype=np.float32)
    c1 = np.array(style.colors[1], dtype=np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    phase = float(rng.uniform(0, 1))
    if style.pattern == "vgrad":
        t = yy
    elif style.pattern == "hgrad":
        t = (yy > 0.55 + 0.1 * (phase - 0.5)).astype(np.float32) * 0.8 + 0.2 * yy
    elif style.pattern == "stripes":
        t = ((xx * 6 + phase) % 1.0 > 0.5).astype(np.float32)
    elif style.pattern == "dots":
        t = ((np.sin((xx + phase) * 40) * np.sin(yy * 40)) > 0.6).astype(np.float32)
    elif style.pattern == "checker":
        t = (((xx * 5).astype(int) + (yy * 5).astype(int)) % 2).astype(np.float32)
    else:  # rings
        r = np.sqrt((xx - phase) ** 2 + (yy - 0.5) ** 2)
        t = ((r * 8) % 1.0 > 0.5).astype(np.float32)
    img = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]
    img += rng.normal(0, 4, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)

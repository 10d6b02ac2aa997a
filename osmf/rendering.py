"""Rendering a background prompt around an untouched product: the product images and masks of the
lake, and the renderer chosen by ``[models].renderer``.

* ``procedural`` (the embedded default on CPU): draws the background style named by the prompt.
* ``diffusers``: ``osmf_models.renderer.DiffusionRenderer`` (tiny ControlNet-Inpaint from config, or
  a real checkpoint directory on a GPU).

Both paste the product back exactly (``osmf_models.renderer.paste_product``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from osmf_models.renderer import RenderResult, paste_product


class ProceduralRenderer:
    name = "procedural"

    def __init__(self, seed: int = 0):
        self.seed = seed

    def render(self, product: np.ndarray, product_mask: np.ndarray, prompt: str) -> RenderResult:
        from osmf.world.styles import STYLE_BY_NAME, draw_background, style_from_prompt

        style = style_from_prompt(prompt)
        rng = np.random.default_rng(self.seed)
        size = product.shape[0]
        bg = draw_background(STYLE_BY_NAME[style], size, rng) if style else np.full_like(product, 128)
        return RenderResult(paste_product(bg, product, product_mask), self.name, style)


def make_renderer(kind: str, seed: int = 0):
    if kind == "procedural":
        return ProceduralRenderer(seed=seed)
    if kind == "diffusers":
        from osmf_models.renderer import DiffusionRenderer, RendererConfig

        return DiffusionRenderer(RendererConfig.tiny())
    raise ValueError(f"unknown renderer {kind!r}; choose procedural or diffusers")


def product_assets(products: pd.DataFrame, home: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """product_id -> (image H x W x 3 uint8, foreground mask H x W bool)."""
    from PIL import Image

    return {p: (np.asarray(Image.open(Path(home) / i).convert("RGB")), np.asarray(Image.open(Path(home) / m)) > 127)
            for p, i, m in zip(products.product_id, products.image_uri, products.mask_uri)}

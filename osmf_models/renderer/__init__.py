"""Renderers: paint a background around the untouched product.

* ``DiffusionRenderer``: diffusers ``StableDiffusionControlNetInpaintPipeline`` (ControlNet built
  from a 4-channel UNet; white mask = repaint the background), tiny from config on CPU, or a local
  checkpoint directory on GPU.
* ``ProceduralRenderer``: the synthetic world's renderer; draws the background style named by the
  prompt, so the GRM and the simulator can be exercised end to end on CPU.

Both paste the product back (``paste_product``), so product pixels are exactly the input's; every
result says which renderer made it.
"""

from osmf_models.renderer.config import RendererConfig
from osmf_models.renderer.model import DiffusionRenderer, ProceduralRenderer, RenderResult, paste_product

__all__ = ["RendererConfig", "DiffusionRenderer", "ProceduralRenderer", "RenderResult", "paste_product"]

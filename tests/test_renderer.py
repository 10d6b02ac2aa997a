"""Renderers: the product's pixels come out exactly as they went in; each result names its renderer."""

import numpy as np
import pytest
from PIL import Image

from osmf.rendering import ProceduralRenderer
from osmf_models.renderer import DiffusionRenderer, RendererConfig, paste_product


@pytest.fixture(scope="module")
def product(world_home):
    img = np.asarray(Image.open(world_home / "world/images/products/p00001.png").convert("RGB"))
    mask = np.asarray(Image.open(world_home / "world/images/masks/p00001.png")) > 127
    assert 0 < mask.mean() < 1
    return img, mask


def test_paste_product_is_exact_and_checks_shapes():
    rng = np.random.default_rng(0)
    gen, prod = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    mask = rng.random((8, 8)) > 0.5
    out = paste_product(gen, prod, mask)
    assert np.array_equal(out[mask], prod[mask]) and np.array_equal(out[~mask], gen[~mask])
    with pytest.raises(ValueError, match="shapes differ"):
        paste_product(gen[:4], prod, mask)


def test_procedural_renderer_draws_the_prompt_style(product):
    img, mask = product
    r = ProceduralRenderer()
    beach = r.render(img, mask, "lamp on a sunny tropical beach with blue sea and sand")
    neon = r.render(img, mask, "lamp in a neon-lit cyberpunk city street at night")
    assert (beach.renderer, beach.style, neon.style) == ("procedural", "beach_sunny", "neon_city")
    for out in (beach, neon):
        assert np.array_equal(out.image[mask], img[mask])
    assert not np.array_equal(beach.image[~mask], neon.image[~mask])
    plain = r.render(img, mask, "a product photo")
    assert plain.style is None and np.array_equal(plain.image[mask], img[mask])


def test_tiny_controlnet_inpaint_preserves_the_product(product):
    img, mask = product
    renderer = DiffusionRenderer(RendererConfig.tiny())
    a = renderer.render(img, mask, "lamp on a snowy mountain landscape")
    b = renderer.render(img, mask, "lamp on a snowy mountain landscape")
    assert a.renderer == "diffusers-tiny"
    assert a.image.shape == img.shape and a.image.dtype == np.uint8
    assert np.array_equal(a.image[mask], img[mask])  # exact, pixel for pixel
    assert not np.array_equal(a.image[~mask], img[~mask])  # the background was repainted
    assert np.array_equal(a.image, b.image)  # same seed, same image


@pytest.mark.gpu
def test_tiny_controlnet_inpaint_on_cuda(product):
    img, mask = product
    cfg = RendererConfig.tiny()
    cfg.device = "cuda"
    out = DiffusionRenderer(cfg).render(img, mask, "lamp on a snowy mountain landscape")
    assert np.array_equal(out.image[mask], img[mask])

"""Renderers: the product's pixels come out exactly as they went in; each result names its renderer."""

import numpy as np
import pytest
from PIL import Image

from osmf.generation.rendering import RetrievalRenderer, fill_masked
from osmf_models.renderer import DiffusionRenderer, RendererConfig, paste_product


@pytest.fixture(scope="module")
def product(world_home):
    img = np.asarray(Image.open(world_home / "landing/assets/products/p00001.png").convert("RGB"))
    mask = np.asarray(Image.open(world_home / "landing/assets/masks/p00001.png")) > 127
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


@pytest.fixture(scope="module")
def dims(world_home):
    import pandas as pd

    return {t: pd.read_parquet(world_home / f"landing/dimensions/{t}.parquet") for t in ("creatives", "products")}


def test_fill_masked_takes_the_nearest_background_pixel():
    img = np.zeros((4, 6, 3), np.uint8)
    img[:, :2] = 10
    img[:, 4:] = 200
    mask = np.zeros((4, 6), bool)
    mask[:, 2:4] = True
    out = fill_masked(img, mask)
    assert (out[:, 2] == 10).all() and (out[:, 3] == 200).all() and np.array_equal(out[~mask], img[~mask])


@pytest.mark.parametrize("encoder", ["hash", "minilm"])
def test_retrieval_renderer_paints_the_background_of_the_nearest_historical_prompt(product, dims, world_home, encoder):
    from osmf_models.gmllm.data import background_of

    img, mask = product
    r = RetrievalRenderer(dims["creatives"], dims["products"], world_home / "landing", encoder)
    title = dict(zip(dims["products"].product_id, dims["products"].title))
    # a creative of ANOTHER product: asking for its background text brings back its background
    c = dims["creatives"][dims["creatives"].product_id != "p00001"].iloc[0]
    bg_text = background_of(c.background_prompt, title[c.product_id])
    out = r.render(img, mask, "whatever title " + bg_text, background=bg_text)
    assert (out.renderer, out.source) == ("retrieval", c.creative_id)
    assert np.array_equal(out.image[mask], img[mask])  # the product, exactly
    hist = np.asarray(Image.open(world_home / "landing" / c.image_uri).convert("RGB"))
    other = np.asarray(Image.open(world_home / "landing" / dims["products"].set_index("product_id").loc[c.product_id, "mask_uri"])) > 127
    free = ~mask & ~other  # background pixels neither product covers: the historical ones, untouched
    assert free.any() and np.array_equal(out.image[free], hist[free])
    # another background text, another background
    d = dims["creatives"][dims["creatives"].background_prompt.map(lambda p: bg_text not in p)].iloc[0]
    d_text = background_of(d.background_prompt, title[d.product_id])
    assert not np.array_equal(r.render(img, mask, d_text, background=d_text).image[~mask], out.image[~mask])


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

from __future__ import annotations

import json
import string
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from osmf_models.renderer.config import RendererConfig


@dataclass
class RenderResult:
    image: np.ndarray  # H x W x 3 uint8
    renderer: str  # which renderer made it: "retrieval", "diffusers-tiny", "diffusers:<checkpoint>"
    source: str | None = None  # retrieval only: the historical creative whose background was used


def paste_product(generated: np.ndarray, product: np.ndarray, product_mask: np.ndarray) -> np.ndarray:
    """Pure: the generated image with every product pixel (mask True) replaced by the input's."""
    if generated.shape != product.shape or product_mask.shape != product.shape[:2]:
        raise ValueError(f"shapes differ: generated {generated.shape}, product {product.shape}, mask {product_mask.shape}")
    out = generated.copy()
    out[product_mask] = product[product_mask]
    return out


def _char_tokenizer(directory: Path):
    """A character-level CLIP tokenizer written from scratch (no model hub): every printable
    character, alone and as a word end."""
    from transformers import CLIPTokenizer

    chars = sorted(set(string.ascii_lowercase + string.digits + string.punctuation))
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in chars:
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(directory / "vocab.json"), str(directory / "merges.txt"), pad_token="<|endoftext|>",
                         model_max_length=77)


def build_tiny_pipeline(cfg: RendererConfig):
    """StableDiffusionControlNetInpaintPipeline from tiny random components (CPU, seconds)."""
    import torch
    from diffusers import (AutoencoderKL, ControlNetModel, DDIMScheduler,
                           StableDiffusionControlNetInpaintPipeline, UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(cfg.seed)
    tmp = Path(tempfile.mkdtemp(prefix="osmf-tok-"))
    tokenizer = _char_tokenizer(tmp)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=cfg.text_hidden,
                                        intermediate_size=2 * cfg.text_hidden, num_hidden_layers=1,
                                        num_attention_heads=2, max_position_embeddings=77,
                                        bos_token_id=0, eos_token_id=1, pad_token_id=1))
    c0, c1 = cfg.channels
    unet = UNet2DConditionModel(sample_size=cfg.image_size // 2, in_channels=4, out_channels=4,
                                block_out_channels=(c0, c1), layers_per_block=1, norm_num_groups=8,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                                cross_attention_dim=cfg.text_hidden, attention_head_dim=4)
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16))
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=8, sample_size=cfg.image_size)
    pipe = StableDiffusionControlNetInpaintPipeline(
        vae=vae, text_encoder=text, tokenizer=tokenizer, unet=unet, controlnet=controlnet,
        scheduler=DDIMScheduler(), safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


class DiffusionRenderer:
    def __init__(self, cfg: RendererConfig | None = None):
        self.cfg = cfg or RendererConfig.tiny()
        if self.cfg.checkpoint:
            from diffusers import ControlNetModel, StableDiffusionControlNetInpaintPipeline

            ckpt = Path(self.cfg.checkpoint)
            if not (ckpt / "controlnet").is_dir():
                raise FileNotFoundError(f"renderer checkpoint {ckpt} has no controlnet/ subfolder")
            controlnet = ControlNetModel.from_pretrained(str(ckpt / "controlnet"), local_files_only=True)
            self.pipe = StableDiffusionControlNetInpaintPipeline.from_pretrained(
                str(ckpt), controlnet=controlnet, safety_checker=None, local_files_only=True)
            self.name = f"diffusers:{ckpt.name}"
        else:
            self.pipe = build_tiny_pipeline(self.cfg)
            self.name = "diffusers-tiny"
        self.pipe.to(self.cfg.device)

    def render(self, product: np.ndarray, product_mask: np.ndarray, prompt: str,
               background: str | None = None) -> RenderResult:
        import torch
        from PIL import Image

        size = self.cfg.image_size
        img = Image.fromarray(product).resize((size, size), Image.BILINEAR)
        mask_small = np.asarray(Image.fromarray((product_mask * 255).astype(np.uint8)).resize((size, size), Image.NEAREST)) > 127
        repaint = Image.fromarray(np.where(mask_small, 0, 255).astype(np.uint8))  # white = repaint background
        gen = torch.Generator(device="cpu").manual_seed(self.cfg.seed)
        out = self.pipe(prompt=prompt, image=img, mask_image=repaint, control_image=img, height=size, width=size,
                        num_inference_steps=self.cfg.steps, guidance_scale=self.cfg.guidance_scale,
                        controlnet_conditioning_scale=self.cfg.controlnet_conditioning_scale,
                        generator=gen, output_type="np").images[0]
        generated = (np.clip(out, 0, 1) * 255).round().astype(np.uint8)
        if generated.shape[:2] != product.shape[:2]:
            generated = np.asarray(Image.fromarray(generated).resize(product.shape[1::-1], Image.BILINEAR))
        return RenderResult(paste_product(generated, product, product_mask), self.name)

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class RendererConfig:
    image_size: int = 512
    steps: int = 30
    guidance_scale: float = 7.5
    controlnet_conditioning_scale: float = 1.0
    seed: int = 0
    checkpoint: str = ""  # local dir with a diffusers SD inpaint pipeline and a `controlnet/` subfolder
    device: str = "cpu"
    # tiny components (used when checkpoint is empty)
    channels: tuple = (16, 32)
    text_hidden: int = 16

    @classmethod
    def tiny(cls) -> "RendererConfig":
        return cls(image_size=32, steps=2, guidance_scale=1.0)

    def to_dict(self) -> dict:
        return asdict(self)

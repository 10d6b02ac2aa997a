"""GRM: (group features, creative image, background prompt) -> CTR logit for that group.

Group features come from the ``groups`` table (PAAG centroid ++ attribute profile). The image goes
through a small CNN, the prompt through a hashed bag of words; the group vector gates both
(multiplicative interaction), so the same creative scores differently for different groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from osmf_models.common import image_tensor, load_checkpoint, save_checkpoint
from osmf_models.grm.config import GRMConfig


def prompt_features(prompts, dim: int) -> np.ndarray:
    from osmf_models.paag.features import hash_text

    return np.stack([hash_text(p, dim) for p in prompts]).astype(np.float32)


@torch.no_grad()
def predict_ctr(model: "GRM", group_features, images, prompts) -> np.ndarray:
    """Predicted CTR per row: group feature vectors, images (paths or H x W x 3 uint8 arrays), prompts."""
    cfg = model.cfg
    model.eval()
    logits = model(torch.tensor(np.asarray(list(group_features), dtype=np.float32)),
                   torch.from_numpy(image_tensor(list(images), cfg.image_size)),
                   torch.from_numpy(prompt_features(list(prompts), cfg.text_dim)))
    return torch.sigmoid(logits).numpy()


class GRM(nn.Module):
    def __init__(self, cfg: GRMConfig):
        super().__init__()
        if cfg.group_dim <= 0:
            raise ValueError("GRMConfig.group_dim must be set (the length of the groups' feature vectors)")
        self.cfg = cfg
        h = cfg.hidden
        self.group = nn.Sequential(nn.Linear(cfg.group_dim, h), nn.GELU(), nn.Linear(h, h))
        self.image = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.GELU(),
                                   nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.GELU(),
                                   nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, h))
        self.text = nn.Sequential(nn.Linear(cfg.text_dim, h), nn.GELU(), nn.Linear(h, h))
        self.head = nn.Sequential(nn.Linear(5 * h, h), nn.GELU(), nn.Linear(h, 1))

    def forward(self, group_x: torch.Tensor, image_x: torch.Tensor, text_x: torch.Tensor) -> torch.Tensor:
        g, i, t = self.group(group_x), self.image(image_x), self.text(text_x)
        return self.head(torch.cat([g * i, g * t, g, i, t], dim=-1)).squeeze(-1)

    # -- one save/load path (osmf_models.common) ----------------------------------------------------
    def save(self, path: str | Path) -> Path:
        return save_checkpoint(self, {"config": self.cfg.to_dict()}, path)

    @classmethod
    def load(cls, path: str | Path) -> "GRM":
        meta, state = load_checkpoint(path, "GRM")
        model = cls(GRMConfig.from_dict(meta["config"]))
        model.load_state_dict(state)
        return model.eval()

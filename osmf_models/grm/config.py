from __future__ import annotations

from dataclasses import dataclass

from osmf_models.common import ConfigMixin


@dataclass
class GRMConfig(ConfigMixin):
    """Group reward model. ``tiny()`` trains on CPU in seconds."""

    group_dim: int = 0  # set from the groups table's feature vectors
    image_size: int = 32
    text_dim: int = 64  # hashed bag of words of the background prompt
    hidden: int = 64
    epochs: int = 300  # full-batch epochs (the data is one row per group x creative)
    lr: float = 3e-3
    weight_decay: float = 1e-4
    pair_weight: float = 1.0  # weight of the pairwise loss next to the pointwise one
    residual: bool = True  # False only for checkpoints from before the residual score (scored as they were)
    residual_penalty: float = 0.1  # L2 on the group residual: a group departs from the audience only on evidence
    # the residual's weight at scoring: offset + residual_scale x residual. Training sets it, chosen on
    # validation groups (a share scale_validation_fraction of the training groups, fitted without
    # them): 0 where groups' residuals do not carry to unseen groups (the group-blind ranking), 1
    # where they do. 0 in scale_validation_fraction keeps it as given.
    residual_scale: float = 1.0
    scale_validation_fraction: float = 0.25
    holdout_fraction: float = 0.25  # share of (product, group)s whose pairs are held out
    seed: int = 0

    @classmethod
    def tiny(cls, group_dim: int = 8) -> "GRMConfig":
        return cls(group_dim=group_dim, image_size=16, text_dim=16, hidden=16, epochs=20)


"""GRM: the group reward model (predicts a group's CTR for a creative)."""

from osmf_models.grm.config import GRMConfig
from osmf_models.grm.loss import grm_loss, pairwise_loss, pointwise_loss
from osmf_models.grm.model import GRM

__all__ = ["GRMConfig", "GRM", "grm_loss", "pairwise_loss", "pointwise_loss"]

"""PAAG: the Product-Aware Attribute Generator (product-aware user embeddings)."""

from osmf_models.paag.config import PAAGConfig
from osmf_models.paag.features import FeatureSpace
from osmf_models.paag.loss import paag_loss
from osmf_models.paag.model import PAAG

__all__ = ["PAAGConfig", "FeatureSpace", "PAAG", "paag_loss"]

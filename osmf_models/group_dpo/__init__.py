from osmf_models.group_dpo.config import GroupDPOConfig
from osmf_models.group_dpo.loss import group_dpo_loss

__all__ = ["GroupDPOConfig", "group_dpo_loss"]

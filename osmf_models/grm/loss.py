"""Pure GRM losses."""

import torch
import torch.nn.functional as F


def pointwise_loss(logits: torch.Tensor, clicks: torch.Tensor, impressions: torch.Tensor) -> torch.Tensor:
    """Impression-weighted binomial log-loss: -sum[c log p + (n - c) log(1 - p)] / sum n."""
    logp, log1mp = F.logsigmoid(logits), F.logsigmoid(-logits)
    return -(clicks * logp + (impressions - clicks) * log1mp).sum() / impressions.sum().clamp_min(1)


def pairwise_loss(chosen_logits: torch.Tensor, rejected_logits: torch.Tensor) -> torch.Tensor:
    """Bradley-Terry: -log sigmoid(s_chosen - s_rejected), averaged over pairs."""
    if chosen_logits.numel() == 0:
        return chosen_logits.sum() * 0
    return -F.logsigmoid(chosen_logits - rejected_logits).mean()


def grm_loss(point_logits, clicks, impressions, chosen_logits, rejected_logits, pair_weight: float = 1.0):
    return pointwise_loss(point_logits, clicks, impressions) + pair_weight * pairwise_loss(chosen_logits, rejected_logits)

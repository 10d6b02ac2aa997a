"""Pure losses of the G-MLLM."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def token_logps(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """log p(token_t | tokens_<t) for t >= 1: logits (B, T, V) of the text positions, input_ids (B, T)
    -> (B, T-1)."""
    return torch.gather(F.log_softmax(logits[:, :-1].float(), -1), 2, input_ids[:, 1:, None]).squeeze(2)


def completion_logps(logits: torch.Tensor, input_ids: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """Sum of the completion tokens' log-probs per sequence (what DPO compares): (B,)."""
    return (token_logps(logits, input_ids) * completion_mask[:, 1:]).sum(1)


def lm_loss(logits: torch.Tensor, input_ids: torch.Tensor, completion_mask: torch.Tensor) -> torch.Tensor:
    """Pre-training loss: mean negative log-likelihood of the completion tokens."""
    m = completion_mask[:, 1:].float()
    return -(token_logps(logits, input_ids) * m).sum() / m.sum().clamp_min(1)

import torch
import torch.nn.functional as F


def paag_loss(logits: torch.Tensor, clicked: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of click logits: PAAG is trained on click prediction."""
    return F.binary_cross_entropy_with_logits(logits, clicked.float())

"""The Group-DPO loss (OSMF, arXiv 2602.02033):

    L = - E_g E_{(x, y_w, y_l) ~ D_g} log sigma( beta [ log pi(y_w|x,z_g) - log pi_ref(y_w|x,z_g)
                                                   - log pi(y_l|x,z_g) + log pi_ref(y_l|x,z_g) ] )

averaged over the pairs of a group, then over groups with weights (``equal``: every group counts
the same; ``pairs``: by pair count, which is the pooled mean, i.e. standard DPO; ``sqrt``). With a
single group every weighting is exactly standard DPO (trl's ``sigmoid`` loss)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def dpo_margins(pol_chosen, pol_rejected, ref_chosen, ref_rejected) -> torch.Tensor:
    return (pol_chosen - ref_chosen) - (pol_rejected - ref_rejected)


def group_dpo_loss(pol_chosen: torch.Tensor, pol_rejected: torch.Tensor, ref_chosen: torch.Tensor,
                   ref_rejected: torch.Tensor, group_ids: torch.Tensor, beta: float,
                   weighting: str = "equal") -> tuple[torch.Tensor, dict]:
    """Pure: the loss and per-batch statistics (reward accuracy, margin, groups)."""
    margins = dpo_margins(pol_chosen, pol_rejected, ref_chosen, ref_rejected)
    m = margins.detach()
    per_pair = -F.logsigmoid(beta * margins)
    _, inv = torch.unique(group_ids, return_inverse=True)
    n_groups = int(inv.max()) + 1
    counts = torch.bincount(inv, minlength=n_groups).to(per_pair.dtype)
    means = torch.zeros(n_groups, dtype=per_pair.dtype).index_add(0, inv, per_pair) / counts
    if weighting == "equal":
        w = torch.ones_like(counts)
    elif weighting == "pairs":
        w = counts
    elif weighting == "sqrt":
        w = counts.sqrt()
    else:
        raise ValueError(f"unknown group weighting {weighting!r}")
    loss = (w * means).sum() / w.sum()
    stats = {"reward_accuracy": float((m > 0).float().mean()), "margin": float(beta * m.mean()),
             "groups": n_groups}
    return loss, stats

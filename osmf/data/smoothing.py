"""Beta smoothing of click-through rates: one implementation for every stage that shrinks a CTR
toward a prior (the ``group_ctr`` job's tables, the grouping evaluation, the G-MLLM's targets).

The prior is centred on ``p0`` (clipped to [1e-4, 1 - 1e-4]) with ``m`` pseudo-impressions:
smoothed = (clicks + m p0) / (impressions + m), the mean of the posterior
Beta(clicks + m p0, impressions - clicks + m (1 - p0)).
"""

from __future__ import annotations

import numpy as np

P0_CLIP = (1e-4, 1 - 1e-4)


def beta_posterior(clicks, impressions, p0, prior_strength: float):
    """(a, b) of the posterior Beta for each row; ``p0`` is clipped to ``P0_CLIP``."""
    p0 = np.clip(np.asarray(p0, dtype=float), *P0_CLIP)
    a = np.asarray(clicks, dtype=float) + prior_strength * p0
    b = np.asarray(impressions, dtype=float) - np.asarray(clicks, dtype=float) + prior_strength * (1 - p0)
    return a, b


def smoothed_ctr(clicks, impressions, p0, prior_strength: float) -> np.ndarray:
    """The posterior mean (clicks + m p0) / (impressions + m)."""
    a, b = beta_posterior(clicks, impressions, p0, prior_strength)
    return a / (a + b)

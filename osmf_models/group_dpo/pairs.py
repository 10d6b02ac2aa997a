"""Group-DPO's preference pairs per (product, group): the observed ``group_preference_pairs`` and/or
GRM pairs (every background of the creative catalogue rendered for the product and scored for the
group by the GRM: the best against the worst few), per ``GroupDPOConfig.pair_source``."""

from __future__ import annotations

import numpy as np
import pandas as pd


def candidate_backgrounds(creatives: pd.DataFrame, products: pd.DataFrame) -> list[str]:
    """Every distinct background of the creative catalogue (all products)."""
    from osmf_models.gmllm.data import background_of

    title = dict(zip(products.product_id, products.title))
    return sorted({background_of(p, title.get(pid, "")) for p, pid in zip(creatives.background_prompt, creatives.product_id)})


def build_pairs(ex: pd.DataFrame, frames: dict, cfg, grm, assets, renderer) -> pd.DataFrame:
    """The pairs of every (product, group) of ``ex`` (columns of ``osmf_models.group_dpo.train``'s
    pair frames, with ``source``); ``frames``: the pinned tables (pairs, creatives, products)."""
    from osmf_models.gmllm.candidates import score_backgrounds
    from osmf_models.group_dpo.train import grm_pairs, observed_pairs

    parts = []
    if cfg.pair_source in ("observed", "both"):
        parts.append(observed_pairs(ex, frames["group_preference_pairs"], frames["creatives"]))
    if cfg.pair_source in ("grm", "both"):
        cands = candidate_backgrounds(frames["creatives"], frames["products"])
        scores = score_backgrounds(grm, ex, [cands] * len(ex), assets, renderer)
        parts.append(grm_pairs(cands, np.stack(scores), cfg.grm_pairs_per_group, cfg.grm_margin))
    return pd.concat(parts, ignore_index=True)

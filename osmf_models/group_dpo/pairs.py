"""Group-DPO's preference pairs per (product, group): the observed ``group_preference_pairs`` and/or
GRM pairs (every background of the creative catalogue rendered for the product and scored for the
group by the GRM: the best against the worst few), per ``GroupDPOConfig.pair_source``; or, with
``target``, the group's G-MLLM target (``best_background``) against the candidates the GRM rates worst,
so the alignment sharpens the look the pre-training taught instead of pulling toward another one.
The plain-DPO baseline (the one-size arm) learns from product-level evidence whatever the source:
with ``target`` it keeps the observed and GRM pairs (``baseline_pairs``)."""

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
    pair frames, with ``source``: observed, grm, target); ``frames``: the pinned tables (pairs,
    creatives, products). With ``target`` the frame also holds the observed and GRM pairs, for the
    baseline: ``group_pairs`` and ``baseline_pairs`` split it."""
    from osmf_models.gmllm.candidates import score_backgrounds
    from osmf_models.group_dpo.train import grm_pairs, observed_pairs, target_pairs

    if cfg.pair_source == "target" and "best_background" not in ex:
        raise ValueError("pair_source 'target' needs the groups' G-MLLM targets (best_background): "
                         "build the examples with load_group_data")
    parts = []
    if cfg.pair_source in ("observed", "both", "target"):
        parts.append(observed_pairs(ex, frames["group_preference_pairs"], frames["creatives"]))
    if cfg.pair_source in ("grm", "both", "target"):
        cands = candidate_backgrounds(frames["creatives"], frames["products"])
        scores = np.stack(score_backgrounds(grm, ex, [cands] * len(ex), assets, renderer))
        parts.append(grm_pairs(cands, scores, cfg.grm_pairs_per_group, cfg.grm_margin))
        if cfg.pair_source == "target":
            parts.append(target_pairs(list(ex["best_background"]), cands, scores, cfg.grm_pairs_per_group))
    return pd.concat(parts, ignore_index=True)


def group_pairs(pairs: pd.DataFrame, source: str) -> pd.DataFrame:
    """The pairs Group-DPO trains on under ``pair_source`` ``source``: with ``target`` the target
    pairs only, else all of them."""
    return pairs[pairs["source"] == "target"].reset_index(drop=True) if source == "target" else pairs


def baseline_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """The pairs the plain-DPO baseline trains on: the product-level ones (observed, GRM)."""
    return pairs[pairs["source"] != "target"].reset_index(drop=True)

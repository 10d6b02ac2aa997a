"""Candidate background prompts and their GRM scores, shared by Group-DPO (GRM pairs, the promotion
metric), generation (best-of-N) and the A/B one-size arm.

* ``propose``: up to N distinct backgrounds per (product, group) from a G-MLLM: greedy, then seeded samples.
* ``score_backgrounds``: each candidate rendered around the product and scored by the GRM for the group.
* ``best_of_n``: the best-scored candidate per row.
* ``grm_reward``: mean GRM score of the greedy background per row (the G-MLLM promotion metric; no
  hidden truth involved).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def score_backgrounds(grm, ex: pd.DataFrame, backgrounds: list[list[str]], assets, renderer) -> list[np.ndarray]:
    """For each example row (product, group) and its candidate backgrounds: the GRM's predicted CTR
    of the rendered creative."""
    from osmf_models.gmllm.data import full_prompt
    from osmf_models.grm.model import predict_ctr

    feats, imgs, prompts, owner = [], [], [], []
    for i, (pid, title, f, cands) in enumerate(zip(ex.product_id, ex.title, ex.features, backgrounds)):
        img, mask = assets[pid]
        for b in cands:
            p = full_prompt(title, b)
            feats.append(f)
            imgs.append(renderer.render(img, mask, p, background=b).image)
            prompts.append(p)
            owner.append(i)
    s = predict_ctr(grm, feats, imgs, prompts) if feats else np.zeros(0)
    owner = np.asarray(owner)
    return [s[owner == i] for i in range(len(ex))]


def propose(gm, G, I, titles: list[str], n: int, temperature: float, seed: int) -> list[list[str]]:
    """Up to ``n`` distinct candidate backgrounds per row: the greedy one first, then samples
    (fixed seed: the same candidates on every rerun)."""
    greedy = gm.generate(G, I, titles)
    out = [[g[0]] for g in greedy]
    if n > 1:
        sampled = gm.generate(G, I, titles, n=n - 1, do_sample=True, temperature=temperature, seed=seed)
        for row, extra in zip(out, sampled):
            row.extend(e for e in dict.fromkeys(extra) if e not in row)
    return [[c for c in row if c] or [""] for row in out]


def best_of_n(gm, grm, ex: pd.DataFrame, G, I, assets, renderer, n: int, temperature: float,
              seed: int = 0) -> tuple[list[str], np.ndarray, list[int]]:
    """Per example row: the candidate background the GRM scores best for the row's features, its
    score, and how many distinct candidates there were."""
    cands = propose(gm, G, I, list(ex["title"]), n, temperature, seed)
    scores = score_backgrounds(grm, ex, cands, assets, renderer)
    best = [int(np.argmax(s)) for s in scores]
    return ([c[b] for c, b in zip(cands, best)], np.array([s[b] for s, b in zip(scores, best)]),
            [len(c) for c in cands])


def grm_reward(gm, grm, ex: pd.DataFrame, G, I, assets, renderer) -> float:
    """Mean GRM-predicted CTR of the model's greedy background per (product, group)."""
    cands = [[g[0]] for g in gm.generate(G, I, list(ex["title"]))]
    return float(np.mean([s[0] for s in score_backgrounds(grm, ex, cands, assets, renderer)]))

"""What training and generation share around the models: loading registered models, the product
images and masks, rendering candidate prompts and scoring them with the GRM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

GMLLM_NAME, GRM_NAME = "osmf-gmllm", "osmf-grm"


def load_registered(name: str, alias: str):
    """(the inner torch model, its registry version) of ``models:/name@alias``; a missing alias says
    how to make it."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        version = MlflowClient().get_model_version_by_alias(name, alias).version
    except MlflowException:
        how = {GRM_NAME: "osmf train grm --run-date D && osmf promote grm",
               GMLLM_NAME: "osmf train gmllm --run-date D && osmf train group-dpo --run-date D && osmf promote gmllm"}
        raise ValueError(f"no registered model {name}@{alias}; make it with `{how.get(name, 'osmf train ...')}`") from None
    return mlflow.pyfunc.load_model(f"models:/{name}@{alias}").unwrap_python_model().model, str(version)


def product_assets(products: pd.DataFrame, home: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """product_id -> (image H x W x 3 uint8, foreground mask H x W bool)."""
    from PIL import Image

    return {p: (np.asarray(Image.open(Path(home) / i).convert("RGB")), np.asarray(Image.open(Path(home) / m)) > 127)
            for p, i, m in zip(products.product_id, products.image_uri, products.mask_uri)}


def make_renderer(kind: str, seed: int = 0):
    from osmf_models.renderer import DiffusionRenderer, ProceduralRenderer, RendererConfig

    if kind == "procedural":
        return ProceduralRenderer(seed=seed)
    if kind == "diffusers":
        return DiffusionRenderer(RendererConfig.tiny())
    raise ValueError(f"unknown renderer {kind!r}; choose procedural or diffusers")


def score_backgrounds(grm, ex: pd.DataFrame, backgrounds: list[list[str]], assets, renderer) -> list[np.ndarray]:
    """For each example row (product, group) and its candidate backgrounds: the GRM's predicted CTR
    of the rendered creative. Rendering uses ``renderer`` (procedural on CPU)."""
    from osmf_models.gmllm.data import full_prompt
    from osmf_models.grm.model import predict_ctr

    feats, imgs, prompts, owner = [], [], [], []
    for i, (pid, title, f, cands) in enumerate(zip(ex.product_id, ex.title, ex.features, backgrounds)):
        img, mask = assets[pid]
        for b in cands:
            p = full_prompt(title, b)
            feats.append(f)
            imgs.append(renderer.render(img, mask, p).image)
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
    """Mean GRM-predicted CTR of the model's greedy background per (product, group): the promotion
    metric of the G-MLLM (no hidden truth involved)."""
    cands = [[g[0]] for g in gm.generate(G, I, list(ex["title"]))]
    return float(np.mean([s[0] for s in score_backgrounds(grm, ex, cands, assets, renderer)]))

"""Pre-train the G-MLLM on two tasks per (product, group):

* ``describe``: the group's readable description from its features (+ product image and title);
* ``prompt``: the background prompt of the group's preferred creative.

Mini-batches mix both tasks; the loss is the completion tokens' mean NLL (``lm_loss``)."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
import torch

from osmf_models.common import minibatch_epochs
from osmf_models.gmllm.config import GMLLMConfig
from osmf_models.gmllm.loss import lm_loss
from osmf_models.gmllm.model import GMLLM

log = logging.getLogger("osmf.gmllm")


def task_rows(ex: pd.DataFrame) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """(example index, task, title, completion) for every pre-training sequence."""
    idx = np.r_[np.arange(len(ex)), np.arange(len(ex))]
    tasks = ["describe"] * len(ex) + ["prompt"] * len(ex)
    comps = [*ex["description"], *ex["best_background"]]
    return idx, tasks, [*ex["title"], *ex["title"]], comps


def pretrain(model: GMLLM, ex: pd.DataFrame, G: torch.Tensor, I: torch.Tensor, say=None) -> tuple[dict, dict]:
    """Trains ``model`` in place; returns (metrics, curves)."""
    cfg: GMLLMConfig = model.cfg
    t0 = time.perf_counter()
    idx, tasks, titles, comps = task_rows(ex)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    losses = []
    plan = minibatch_epochs(len(idx), cfg.batch_size, cfg.epochs, cfg.max_steps, rng)
    epochs = len(plan)
    steps = 0
    model.train()
    for epoch, batches in enumerate(plan):
        total, seen = 0.0, 0
        for sel in batches:
            b = model.encode([tasks[i] for i in sel], [titles[i] for i in sel], [comps[i] for i in sel])
            rows = torch.from_numpy(idx[sel])
            logits = model(G[rows], I[rows], b["input_ids"], b["attention_mask"])
            loss = lm_loss(logits, b["input_ids"], b["completion_mask"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(sel)
            seen += len(sel)
        steps += len(batches)
        losses.append(total / seen)
        if say and ((epoch + 1) % max(1, epochs // 5) == 0 or epoch + 1 == epochs):
            say(f"  G-MLLM pre-training epoch {epoch + 1}/{epochs} (step {steps}): loss {losses[-1]:.3f}")
    metrics = {"final_loss": losses[-1] if losses else float("nan"), "examples": int(len(ex)), "steps": steps,
               "seconds": time.perf_counter() - t0}
    metrics.update(prompt_agreement(model, ex, G, I))
    log.info("G-MLLM pre-trained: %s", metrics)
    return metrics, {"loss": losses}


def prompt_agreement(model: GMLLM, ex: pd.DataFrame, G, I) -> dict:
    """Greedy prompts for the training groups: the rate at which they equal the background of the
    group's preferred creative."""
    gen = [g[0] for g in model.generate(G, I, list(ex["title"]))]
    return {"prompt_exact_match": float(np.mean([a == b for a, b in zip(gen, ex["best_background"])]))}

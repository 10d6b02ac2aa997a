"""Group-DPO training: pairs per group, reference log-probs precomputed once with the frozen
pre-trained G-MLLM, LoRA adapters (peft) on the LM and the group projector trained (loss: Group-DPO plus
``sft_weight`` x the chosen completions' NLL, as trl's ``loss_type=["sigmoid", "sft"]``), adapters merged
back at the end so the aligned model saves and loads like any G-MLLM.

The plain-DPO baseline is the same loop with no group conditioning: every pair of a product (from
all its groups, pooled) is conditioned on the product's whole audience (the size-weighted mean of its
groups' features) and the loss is the pooled mean over pairs (standard DPO)."""

from __future__ import annotations

import copy
import logging
import time

import numpy as np
import pandas as pd
import torch

from osmf_models.common import minibatch_epochs
from osmf_models.gmllm.data import background_of
from osmf_models.gmllm.loss import completion_logps, lm_loss
from osmf_models.gmllm.model import GMLLM
from osmf_models.group_dpo.config import GroupDPOConfig
from osmf_models.group_dpo.loss import group_dpo_loss

log = logging.getLogger("osmf.group_dpo")
PAIR_COLUMNS = ["ex_row", "chosen", "rejected", "source"]


def observed_pairs(ex: pd.DataFrame, pairs: pd.DataFrame, creatives: pd.DataFrame) -> pd.DataFrame:
    """``group_preference_pairs`` as (example row, chosen background, rejected background)."""
    row = {k: i for i, k in enumerate(zip(ex.product_id, ex.group_id))}
    title = dict(zip(ex.product_id, ex.title))
    prompt = dict(zip(creatives.creative_id, creatives.background_prompt))
    out = pd.DataFrame({
        "ex_row": [row.get(k, -1) for k in zip(pairs.product_id, pairs.group_id)],
        "chosen": [background_of(prompt[c], title.get(p, "")) for c, p in zip(pairs.chosen_creative_id, pairs.product_id)],
        "rejected": [background_of(prompt[c], title.get(p, "")) for c, p in zip(pairs.rejected_creative_id, pairs.product_id)],
        "source": "observed"})
    return out[out.ex_row >= 0].reset_index(drop=True)


def grm_pairs(candidates: list[str], scores: np.ndarray, per_group: int, margin: float) -> pd.DataFrame:
    """From GRM scores (examples x candidates): per example, the best candidate against each of the
    ``per_group`` worst, where the predicted CTR difference is at least ``margin``."""
    rows = []
    for i, s in enumerate(scores):
        order = np.argsort(-s, kind="stable")
        best = order[0]
        for j in order[::-1][:per_group]:
            if s[best] - s[j] >= margin:
                rows.append((i, candidates[best], candidates[j], "grm"))
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def target_pairs(targets: list[str], candidates: list[str], scores: np.ndarray, per_group: int) -> pd.DataFrame:
    """Per example: its target background (``targets[i]``) against each of the ``per_group`` candidates
    the GRM scores lowest for it (examples x candidates), the target itself excluded."""
    rows = []
    for i, (target, s) in enumerate(zip(targets, scores)):
        worst = [candidates[j] for j in np.argsort(s, kind="stable") if candidates[j] != target][:per_group]
        rows += [(i, target, r, "target") for r in worst]
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def audience_features(ex: pd.DataFrame, sizes: np.ndarray) -> torch.Tensor:
    """Per example row: the size-weighted mean features of its product's groups (no group signal)."""
    F = np.stack(ex["features"].to_numpy()).astype(np.float64)
    out = np.zeros_like(F)
    for _, idx in ex.groupby("product_id").indices.items():
        out[idx] = np.average(F[idx], axis=0, weights=sizes[idx])
    return torch.tensor(out, dtype=torch.float32)


def _batches(model: GMLLM, pairs: pd.DataFrame, titles: list[str], sel: np.ndarray) -> tuple[dict, dict]:
    t = [titles[i] for i in pairs.ex_row.to_numpy()[sel]]
    tasks = ["prompt"] * len(sel)
    return (model.encode(tasks, t, pairs.chosen.to_numpy()[sel].tolist()),
            model.encode(tasks, t, pairs.rejected.to_numpy()[sel].tolist()))


@torch.no_grad()
def reference_logps(ref: GMLLM, pairs: pd.DataFrame, titles, G, I, batch_size: int = 256):
    """log pi_ref of every chosen and rejected completion, computed once."""
    ref.eval()
    rc, rr = [], []
    for s in range(0, len(pairs), batch_size):
        sel = np.arange(s, min(s + batch_size, len(pairs)))
        rows = torch.from_numpy(pairs.ex_row.to_numpy()[sel])
        bc, br = _batches(ref, pairs, titles, sel)
        rc.append(ref.sequence_logps(G[rows], I[rows], bc))
        rr.append(ref.sequence_logps(G[rows], I[rows], br))
    return torch.cat(rc), torch.cat(rr)


def with_lora(ref: GMLLM, cfg: GroupDPOConfig) -> GMLLM:
    """A trainable copy of ``ref``: LoRA on the LM, the group projector trainable if configured."""
    from peft import LoraConfig, LoraModel

    policy = copy.deepcopy(ref)
    for p in policy.parameters():
        p.requires_grad_(False)
    # the tuner itself, not the PeftModel wrapper: same layers, and no call of transformers'
    # deprecated ``is_gradient_checkpointing`` (a FutureWarning on every run)
    policy.lm = LoraModel(policy.lm, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                                                target_modules=list(cfg.target_modules), task_type="CAUSAL_LM"),
                          "default")
    for p in policy.group_proj.parameters():
        p.requires_grad_(cfg.train_projector)
    return policy


def train_group_dpo(ref: GMLLM, ex: pd.DataFrame, pairs: pd.DataFrame, G: torch.Tensor, I: torch.Tensor,
                    cfg: GroupDPOConfig, group_keys: np.ndarray | None = None, say=None) -> tuple[GMLLM, dict, dict]:
    """Align a copy of ``ref`` on ``pairs`` (rows of ``ex``); ``group_keys`` (per example row) says
    which pairs share a group in the loss (default: each example row is its own group)."""
    if pairs.empty:
        raise ValueError("no preference pairs to train on; lower [grouping].pair_margin or use pair_source = 'grm'")
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    titles = list(ex["title"])
    ref_c, ref_r = reference_logps(ref, pairs, titles, G, I)
    keys = np.arange(len(ex)) if group_keys is None else np.asarray(group_keys)
    gid = torch.from_numpy(keys[pairs.ex_row.to_numpy()])
    policy = with_lora(ref, cfg)
    params = [p for p in policy.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    policy.train()
    curves = {"loss": [], "reward_accuracy": []}
    plan = minibatch_epochs(len(pairs), cfg.batch_size, cfg.epochs, cfg.max_steps, rng)
    epochs = len(plan)
    steps = 0
    for epoch, batches in enumerate(plan):
        tot, acc, seen = 0.0, 0.0, 0
        for sel in batches:
            rows = torch.from_numpy(pairs.ex_row.to_numpy()[sel])
            bc, br = _batches(policy, pairs, titles, sel)
            logits_c = policy(G[rows], I[rows], bc["input_ids"], bc["attention_mask"])
            pc = completion_logps(logits_c, bc["input_ids"], bc["completion_mask"])
            pr = policy.sequence_logps(G[rows], I[rows], br)
            loss, stats = group_dpo_loss(pc, pr, ref_c[sel], ref_r[sel], gid[sel], cfg.beta, cfg.group_weighting)
            if cfg.sft_weight:
                loss = loss + cfg.sft_weight * lm_loss(logits_c, bc["input_ids"], bc["completion_mask"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(sel)
            acc += stats["reward_accuracy"] * len(sel)
            seen += len(sel)
        steps += len(batches)
        curves["loss"].append(tot / seen)
        curves["reward_accuracy"].append(acc / seen)
        if say and ((epoch + 1) % max(1, epochs // 5) == 0 or epoch + 1 == epochs):
            say(f"  DPO epoch {epoch + 1}/{epochs} (step {steps}): loss {curves['loss'][-1]:.4f}, "
                f"reward accuracy {curves['reward_accuracy'][-1]:.3f}")
    policy.lm = policy.lm.merge_and_unload()
    for p in policy.parameters():
        p.requires_grad_(True)
    policy.eval()
    metrics = {"pairs": int(len(pairs)), "groups": int(len(np.unique(gid.numpy()))), "steps": steps,
               "final_loss": curves["loss"][-1], "reward_accuracy": curves["reward_accuracy"][-1],
               "seconds": time.perf_counter() - t0}
    log.info("DPO (%s weighting): %s", cfg.group_weighting, metrics)
    return policy, metrics, curves


def train_with_pooled_baseline(base: GMLLM, ex: pd.DataFrame, pairs: pd.DataFrame, G: torch.Tensor, I: torch.Tensor,
                               cfg: GroupDPOConfig, say=print, pooled_pairs: pd.DataFrame | None = None):
    """Group-DPO, and the plain-DPO baseline on ``pooled_pairs`` (default: the same pairs) pooled per
    product with the audience's features (no group conditioning): (policy, pooled, audience
    features, metrics, curves of each)."""
    from dataclasses import replace

    say("  Group-DPO (per-group pairs, group-averaged loss)")
    policy, m_group, c_group = train_group_dpo(base, ex, pairs, G, I, cfg, say=say)
    say("  plain DPO baseline (pairs pooled per product, no group conditioning)")
    G_aud = audience_features(ex, ex["size"].to_numpy(float))
    pooled_pairs = pairs if pooled_pairs is None else pooled_pairs
    pooled, m_pooled, c_pooled = train_group_dpo(base, ex, pooled_pairs, G_aud, I, replace(cfg, group_weighting="pairs"),
                                                 group_keys=np.zeros(len(ex), dtype=np.int64), say=say)
    metrics = {f"group_dpo_{k}": v for k, v in m_group.items()}
    metrics.update({f"pooled_dpo_{k}": v for k, v in m_pooled.items()})
    return policy, pooled, G_aud, metrics, c_group, c_pooled

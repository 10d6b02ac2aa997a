"""Train the GRM on ``group_creative_ctr`` (pointwise, impression-weighted) and
``group_preference_pairs`` (pairwise), holding out whole groups to measure how the model ranks
creatives for groups it never saw.

Reported on the held-out groups' pairs: pair accuracy and AUROC of the GRM, next to the group-blind
baseline, which ranks a product's creatives by their overall CTR for the product (all groups, the
held-out ones included: what a one-size-fits-all ranking would use).
"""

from __future__ import annotations

import logging
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from osmf_models.grm.config import GRMConfig
from osmf_models.grm.loss import grm_loss, pointwise_loss
from osmf_models.common import image_tensor
from osmf_models.grm.model import GRM, prompt_features

log = logging.getLogger("osmf.grm")


@dataclass
class GRMData:
    rows: pd.DataFrame  # one row per (product, group, creative) with clicks, impressions, group features, prompt, image
    pairs: pd.DataFrame  # chosen_row, rejected_row (indices into rows), product_id, group_id
    G: torch.Tensor  # per row
    I: torch.Tensor  # per creative (each once): images
    T: torch.Tensor  # per creative: prompt features
    item: torch.Tensor  # per row: its creative's index into I and T
    offset: torch.Tensor  # per row: log-odds of the creative's CTR for its product, all groups together


def build_data(ctr: pd.DataFrame, groups: pd.DataFrame, creatives: pd.DataFrame, pairs: pd.DataFrame,
               home: Path, cfg: GRMConfig) -> GRMData:
    rows = (ctr.merge(groups[["product_id", "group_id", "features"]], on=["product_id", "group_id"])
            .merge(creatives[["creative_id", "background_prompt", "image_uri"]], on="creative_id")
            .sort_values(["product_id", "group_id", "creative_id"]).reset_index(drop=True))
    idx = {key: i for i, key in enumerate(zip(rows.product_id, rows.group_id, rows.creative_id))}
    p = pairs.assign(
        chosen_row=[idx.get(k, -1) for k in zip(pairs.product_id, pairs.group_id, pairs.chosen_creative_id)],
        rejected_row=[idx.get(k, -1) for k in zip(pairs.product_id, pairs.group_id, pairs.rejected_creative_id)])
    p = p[(p.chosen_row >= 0) & (p.rejected_row >= 0)].reset_index(drop=True)
    G = torch.tensor(np.stack(rows["features"].to_numpy()), dtype=torch.float32)
    first, item = np.unique(rows["creative_id"].to_numpy(), return_index=True, return_inverse=True)[1:]
    once = rows.iloc[first]  # each creative once: its image and prompt are the same for every group
    I = torch.from_numpy(image_tensor([Path(home) / u for u in once["image_uri"]], cfg.image_size))
    T = torch.from_numpy(prompt_features(once["background_prompt"], cfg.text_dim))
    ctr = np.clip(group_blind_scores(rows), 1e-4, 1 - 1e-4)
    return GRMData(rows, p, G, I, T, torch.from_numpy(item.astype(np.int64)),
                   torch.from_numpy(np.log(ctr / (1 - ctr)).astype(np.float32)))


def heldout_groups(rows: pd.DataFrame, fraction: float, seed: int) -> set:
    keys = sorted(set(zip(rows.product_id, rows.group_id)))
    return {k for k in keys if (zlib.crc32(f"{seed}:{k[0]}:{k[1]}".encode()) % 1000) < fraction * 1000}


def _mask(df: pd.DataFrame, held: set) -> np.ndarray:
    return np.array([(p, g) in held for p, g in zip(df.product_id, df.group_id)], dtype=bool)


def _margins(scores: np.ndarray, pairs: pd.DataFrame) -> np.ndarray:
    """Per pair: score of the chosen creative minus that of the rejected one."""
    return scores[pairs.chosen_row.to_numpy()] - scores[pairs.rejected_row.to_numpy()]


def _correct(scores: np.ndarray, pairs: pd.DataFrame) -> np.ndarray:
    """Per pair: 1 ranked right, 0 wrong, 0.5 a tie."""
    d = _margins(scores, pairs)
    return np.where(d == 0, 0.5, d > 0).astype(float)


def pair_metrics(scores: np.ndarray, pairs: pd.DataFrame) -> dict:
    from sklearn.metrics import roc_auc_score

    if len(pairs) == 0:
        return {"pair_accuracy": float("nan"), "auroc": float("nan"), "pairs": 0}
    d = _margins(scores, pairs)
    acc = float(np.mean(_correct(scores, pairs)))
    auroc = float(roc_auc_score(np.r_[np.ones(len(d)), np.zeros(len(d))], np.r_[d, -d]))
    return {"pair_accuracy": acc, "auroc": auroc, "pairs": int(len(pairs))}


def pair_accuracy_intervals(scores: np.ndarray, baseline: np.ndarray, pairs: pd.DataFrame,
                            reps: int = 1000, seed: int = 0) -> dict:
    """95% intervals of the held-out pair accuracy of the GRM, of the group-blind baseline and of
    their difference: a bootstrap over the held-out (product, group)s, since a group's pairs share
    its clicks and move together."""
    if len(pairs) == 0:
        return {}
    a, b = _correct(scores, pairs), _correct(baseline, pairs)
    cluster = pd.factorize(pairs.product_id.astype(str) + "\x1f" + pairs.group_id.astype(str))[0]
    n = cluster.max() + 1
    sa, sb, cnt = (np.bincount(cluster, weights=w, minlength=n) for w in (a, b, np.ones(len(a))))
    draw = np.random.default_rng(seed).integers(0, n, (reps, n))
    acc_a, acc_b = sa[draw].sum(1) / cnt[draw].sum(1), sb[draw].sum(1) / cnt[draw].sum(1)
    q = lambda v: [float(x) for x in np.percentile(v, [2.5, 97.5])]  # noqa: E731
    return {"grm_pair_accuracy_ci": q(acc_a), "baseline_pair_accuracy_ci": q(acc_b),
            "pair_accuracy_gain_ci": q(acc_a - acc_b)}


def group_blind_scores(rows: pd.DataFrame) -> np.ndarray:
    overall = rows.groupby(["product_id", "creative_id"])[["clicks", "impressions"]].sum()
    ctr = overall["clicks"] / overall["impressions"]
    return np.array([ctr[(p, c)] for p, c in zip(rows.product_id, rows.creative_id)])


@torch.no_grad()
def score(model: GRM, data: GRMData) -> np.ndarray:
    """Log-odds per row: the creative's observed group-blind log-odds plus the group's weighted residual."""
    model.eval()
    return model(data.G, data.I, data.T, data.offset, data.item).numpy()


SCALE_GRID = tuple(i / 10 for i in range(11))  # residual_scale candidates, 0 (group-blind) .. 1


def _fit(data: GRMData, cfg: GRMConfig, rows: torch.Tensor, pairs: pd.DataFrame) -> tuple[GRM, list]:
    """Full-batch training on ``rows`` (indices into data.rows) and ``pairs``; the residual enters
    unscaled (the scale is chosen afterwards)."""
    torch.manual_seed(cfg.seed)
    clicks = torch.tensor(data.rows["clicks"].to_numpy(), dtype=torch.float32)
    impressions = torch.tensor(data.rows["impressions"].to_numpy(), dtype=torch.float32)
    ch = torch.tensor(pairs.chosen_row.to_numpy(), dtype=torch.long)
    rj = torch.tensor(pairs.rejected_row.to_numpy(), dtype=torch.long)
    model = GRM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    losses = []
    for epoch in range(cfg.epochs):
        model.train()
        blind, resid = model.parts(data.G, data.I, data.T, data.item)
        s = data.offset + resid if cfg.residual else resid  # residual=False: the absolute score of before (ablation)
        loss = grm_loss(s[rows], clicks[rows], impressions[rows], s[ch], s[rj], cfg.pair_weight)
        if cfg.residual:
            loss = (loss + pointwise_loss(blind[rows], clicks[rows], impressions[rows])
                    + cfg.residual_penalty * resid[rows].pow(2).mean())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return model.eval(), losses


@torch.no_grad()
def choose_residual_scale(model: GRM, data: GRMData, pairs: pd.DataFrame) -> tuple[float, dict]:
    """The residual weight in ``SCALE_GRID`` whose scores rank the most ``pairs`` right (pairs of
    validation groups the model was fitted without; ties to the smaller weight, so a residual that
    does not carry to unseen groups is dropped), and the pair accuracy per weight. Pair accuracy is
    what the GRM is for (best-of-N, the Group-DPO pairs) and what promotion compares."""
    _, resid = model.parts(data.G, data.I, data.T, data.item)
    acc = {a: float(np.mean(_correct((data.offset + a * resid).numpy(), pairs))) for a in SCALE_GRID}
    return min(SCALE_GRID, key=lambda a: (-round(acc[a], 9), a)), acc


def train_grm(data: GRMData, cfg: GRMConfig) -> tuple[GRM, dict, dict]:
    """Returns the model, metrics and curves (loss per epoch). With ``cfg.residual`` and a
    ``scale_validation_fraction``, a first fit without a share of the training groups chooses the
    residual's weight on them (``choose_residual_scale``); the model is then fitted on every
    training group and scores with that weight."""
    t0 = time.perf_counter()
    held = heldout_groups(data.rows, cfg.holdout_fraction, cfg.seed)
    in_train = ~_mask(data.rows, held)
    pair_held = _mask(data.pairs, held)
    train_pairs, test_pairs = data.pairs[~pair_held], data.pairs[pair_held]
    scale_info = {}
    if cfg.residual and cfg.scale_validation_fraction > 0:
        val = heldout_groups(data.rows[in_train], cfg.scale_validation_fraction, cfg.seed + 1)
        in_val = _mask(data.rows, val) & in_train
        pv = _mask(train_pairs, val)
        if in_val.any() and pv.any() and (in_train & ~in_val).any():
            probe, _ = _fit(data, cfg, torch.from_numpy(np.flatnonzero(in_train & ~in_val)), train_pairs[~pv])
            cfg.residual_scale, acc = choose_residual_scale(probe, data, train_pairs[pv])
            scale_info = {"residual_scale": cfg.residual_scale, "scale_validation_groups": len(val),
                          "scale_validation_pairs": int(pv.sum()), "scale_validation_accuracy": acc[cfg.residual_scale],
                          "scale_validation_accuracy_at_0": acc[0.0], "scale_validation_accuracy_at_1": acc[1.0]}
            log.info("GRM: residual weight %.1f, chosen on %d validation groups (%d pairs)", cfg.residual_scale,
                     len(val), int(pv.sum()))
    model, losses = _fit(data, cfg, torch.from_numpy(np.flatnonzero(in_train)), train_pairs)
    scores = score(model, data)
    m = {f"grm_{k}": v for k, v in pair_metrics(scores, test_pairs).items()}
    blind = group_blind_scores(data.rows)
    m.update({f"baseline_{k}": v for k, v in pair_metrics(blind, test_pairs).items()})
    for k, (lo, hi) in pair_accuracy_intervals(scores, blind, test_pairs).items():
        m[f"{k}_low"], m[f"{k}_high"] = lo, hi  # flat scalars: MLflow metrics
    m.update(scale_info)
    m.update(train_pairs=int(len(train_pairs)), heldout_groups=len(held), seconds=time.perf_counter() - t0,
             final_loss=losses[-1] if losses else float("nan"))
    log.info("GRM: held-out pair accuracy %.3f (group-blind %.3f) on %d pairs", m["grm_pair_accuracy"],
             m["baseline_pair_accuracy"], m["grm_pairs"])
    return model, m, {"loss": losses}


def heldout_pair_accuracy(model: GRM, data: GRMData) -> float:
    """Pair accuracy of ``model`` on the pairs of the groups its config holds out."""
    held = heldout_groups(data.rows, model.cfg.holdout_fraction, model.cfg.seed)
    return pair_metrics(score(model, data), data.pairs[_mask(data.pairs, held)])["pair_accuracy"]


def calibration(model: GRM, data: GRMData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(predicted CTR, observed CTR, impressions) per row: the inputs of a reliability diagram."""
    p = 1 / (1 + np.exp(-score(model, data)))
    return p, (data.rows["clicks"] / data.rows["impressions"]).to_numpy(), data.rows["impressions"].to_numpy()

"""Train PAAG on click prediction: one row per impression (user, product, creative theme, clicked)."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
import torch

from osmf_models.paag.config import PAAGConfig
from osmf_models.paag.features import FeatureSpace
from osmf_models.paag.loss import paag_loss
from osmf_models.paag.model import PAAG

log = logging.getLogger("osmf.paag")


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")


def train_paag(events: pd.DataFrame, users: pd.DataFrame, products: pd.DataFrame, themes: list[str],
               cfg: PAAGConfig | None = None) -> tuple[PAAG, dict]:
    """``events``: user_id, product_id, theme, clicked. Returns the model and metrics
    (train loss per epoch, held-out AUC, and the AUC of a product-blind baseline)."""
    cfg = cfg or PAAGConfig()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    t0 = time.perf_counter()
    fs = FeatureSpace.fit(users, products, themes, cfg.text_dim, cfg.text_encoder)
    model = PAAG(cfg, fs)
    u_idx = pd.Index(users["user_id"]).get_indexer(events["user_id"])
    p_idx = pd.Index(products["product_id"]).get_indexer(events["product_id"])
    if (u_idx < 0).any() or (p_idx < 0).any():
        raise ValueError("events reference users or products missing from the dimension tables")
    U = torch.from_numpy(fs.user_matrix(users))
    P = torch.from_numpy(fs.product_matrix(products))
    S = torch.from_numpy(fs.theme_index(events["theme"]))
    Y = torch.from_numpy(events["clicked"].to_numpy(np.float32))
    ui, pi = torch.from_numpy(u_idx), torch.from_numpy(p_idx)
    order = rng.permutation(len(events))
    n_hold = int(len(events) * cfg.holdout_fraction)
    hold, train = torch.from_numpy(order[:n_hold]), torch.from_numpy(order[n_hold:])
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    losses, hold_losses, best = [], [], (float("inf"), 0, None)
    for epoch in range(cfg.epochs):
        model.train()
        perm = train[torch.from_numpy(rng.permutation(len(train)))]
        total = 0.0
        for start in range(0, len(perm), cfg.batch_size):
            b = perm[start:start + cfg.batch_size]
            loss = paag_loss(model(U[ui[b]], P[pi[b]], S[b]), Y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(b)
        losses.append(total / max(len(perm), 1))
        model.eval()
        with torch.no_grad():
            hold_losses.append(float(paag_loss(model(U[ui[hold]], P[pi[hold]], S[hold]), Y[hold])) if n_hold else losses[-1])
        log.info("PAAG epoch %d/%d: loss %.4f, held-out events %.4f", epoch + 1, cfg.epochs, losses[-1], hold_losses[-1])
        if not cfg.patience:
            continue  # no early stopping: the last epoch's weights are kept
        if hold_losses[-1] < best[0] - 1e-5:
            best = (hold_losses[-1], epoch + 1, {k: v.detach().clone() for k, v in model.state_dict().items()})
        elif epoch + 1 - best[1] >= cfg.patience:
            break  # early stopping: the held-out events' loss has not improved for `patience` epochs
    if best[2] is not None:
        model.load_state_dict(best[2])
    model.eval()
    with torch.no_grad():
        s_hold = model(U[ui[hold]], P[pi[hold]], S[hold]).numpy()
    y_hold = Y[hold].numpy()
    # baseline: each theme's overall training CTR (no user, no product)
    tr = events.iloc[train.numpy()]
    theme_ctr = tr.groupby("theme")["clicked"].mean()
    base = events.iloc[hold.numpy()]["theme"].map(theme_ctr).fillna(tr["clicked"].mean()).to_numpy()
    metrics = {"train_loss": losses, "holdout_loss": hold_losses, "best_epoch": best[1] if cfg.patience else len(losses), "holdout_auc": _auc(y_hold, s_hold), "holdout_auc_theme_only": _auc(y_hold, base),
               "n_events": int(len(events)), "seconds": time.perf_counter() - t0}
    return model, metrics

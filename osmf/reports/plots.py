"""Every figure the pipeline makes, and the A/B HTML report: training curves, GRM calibration, image
grids of creatives, the grouping evaluation and the A/B plots. matplotlib (Agg) is imported here
and nowhere else; the models in ``osmf_models`` return numbers and leave drawing to this module."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd



def _label(text: str, n: int) -> str:
    """Printable ASCII only (a tiny model's text may hold bytes no font has a glyph for)."""
    return "".join(c if 32 <= ord(c) < 127 else "?" for c in str(text or ""))[:n]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, dpi: int = 100) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    _plt().close(fig)
    return path


def _png_b64(fig, dpi: int = 90) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=dpi)
    _plt().close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def loss_plot(curves: dict, path: Path, xlabel: str = "epoch", title: str = "training") -> Path:
    """One panel per curve (name -> values), saved as PNG."""
    fig, axes = _plt().subplots(1, len(curves), figsize=(4.5 * len(curves), 3), squeeze=False)
    for ax, (name, values) in zip(axes[0], curves.items()):
        ax.plot(values)
        ax.set_xlabel(xlabel)
        ax.set_title(name)
    fig.suptitle(title)
    return _save(fig, path)


def calibration_plot(predicted: np.ndarray, observed: np.ndarray, weights: np.ndarray, path: Path,
                     title: str = "GRM calibration") -> Path:
    """Reliability diagram: impression-weighted mean predicted vs observed CTR per predicted decile."""
    bins = np.quantile(predicted, np.linspace(0, 1, 11))
    which = np.clip(np.searchsorted(bins, predicted, side="right") - 1, 0, 9)
    xs, ys = [], []
    for b in range(10):
        sel = which == b
        if sel.any():
            xs.append(np.average(predicted[sel], weights=weights[sel]))
            ys.append(np.average(observed[sel], weights=weights[sel]))
    fig, ax = _plt().subplots(figsize=(4, 4))
    lim = max(max(xs + ys), 1e-3) * 1.1
    ax.plot([0, lim], [0, lim], "k:", lw=1)
    ax.plot(xs, ys, "o-")
    ax.set_xlabel("predicted CTR (decile mean)")
    ax.set_ylabel("observed CTR")
    ax.set_title(title)
    return _save(fig, path)


def image_grid(images: list[np.ndarray], labels: list[str], path: Path, cols: int = 8) -> Path:
    rows = max(1, -(-len(images) // cols))
    fig, axes = _plt().subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, label in zip(axes.flat, images, labels):
        ax.imshow(img)
        ax.set_title(_label(label, 60), fontsize=6)
    return _save(fig, path)


def grouping_plot(report: dict, path: Path) -> Path:
    """NDCG@5 vs K (against the overall ranking and the truth) and ARI vs the hidden segments."""
    fig, (a, b) = _plt().subplots(1, 2, figsize=(10, 4))
    ks = [int(k) for k in report["ndcg5_by_k"]]
    a.plot(ks, list(report["ndcg5_by_k"].values()), "o-", label="vs overall ranking")
    a.plot(ks, list(report["ndcg5_truth_by_k"].values()), "s-", label="vs true group CTR")
    a.set_xticks(ks)
    a.set_xlabel("K (groups per product)")
    a.set_ylabel("NDCG@5")
    a.set_title("Group rankings as K grows")
    a.legend()
    kk = [int(k) for k in report["ari_product_aware_by_k"]]
    b.bar([str(k) for k in kk], list(report["ari_product_aware_by_k"].values()), color="tab:blue",
          label="product-aware, K forced")
    b.axhline(report["ari_product_aware"], color="tab:green", ls="--",
              label=f"product-aware, chosen K ({report['ari_product_aware']:.2f})")
    b.axhline(report["ari_product_agnostic"], color="tab:red", ls=":",
              label=f"product-agnostic ({report['ari_product_agnostic']:.2f})")
    b.set_xlabel("K")
    b.set_ylabel("ARI vs hidden segments")
    b.set_title("Recovery of the hidden segments")
    b.legend(fontsize=8)
    return _save(fig, path, dpi=110)


def _ab_arms_figure(per_group: pd.DataFrame, arms: tuple) -> str:
    pg = per_group.sort_values(["product_id", "group_id"]).reset_index(drop=True)
    fig, ax = _plt().subplots(figsize=(max(6, 0.25 * len(pg)), 3.2))
    x = np.arange(len(pg))
    width = 0.8 / len(arms)
    for k, arm in enumerate(arms):
        ax.bar(x + (k - (len(arms) - 1) / 2) * width, pg[arm], width=width, label=arm)
    ax.set_xticks(x, [f"{p}:{g}" for p, g in zip(pg.product_id, pg.group_id)], rotation=90, fontsize=5)
    ax.set_ylabel("expected CTR (held-out users)")
    ax.legend(fontsize=7, ncols=3)
    ax.set_title("CTR per group for each arm")
    return _png_b64(fig)


def _ndcg_figure(grouping: dict) -> str:
    fig, ax = _plt().subplots(figsize=(4.5, 3))
    ks = sorted(grouping["ndcg5_by_k"], key=int)
    ax.plot([int(k) for k in ks], [grouping["ndcg5_by_k"][k] for k in ks], "o-", label="vs overall ranking")
    if grouping.get("ndcg5_truth_by_k"):
        ax.plot([int(k) for k in ks], [grouping["ndcg5_truth_by_k"][k] for k in ks], "s--", label="vs truth")
    ax.set_xlabel("K")
    ax.set_ylabel("NDCG@5")
    ax.legend(fontsize=7)
    ax.set_title("NDCG@5 vs K")
    return _png_b64(fig)


def _creatives_figure(gen: pd.DataFrame, home: Path, max_products: int = 8) -> str:
    from PIL import Image

    gen = gen.sort_values(["product_id", "group_id"])
    gen = gen[gen.product_id.isin(gen.product_id.drop_duplicates().head(max_products))]
    cols = int(gen.groupby("product_id").size().max()) if len(gen) else 1
    prods = list(dict.fromkeys(gen.product_id))
    fig, axes = _plt().subplots(max(1, len(prods)), cols, figsize=(1.8 * cols, 1.9 * max(1, len(prods))),
                                squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for r, p in enumerate(prods):
        for c, row in enumerate(gen[gen.product_id == p].itertuples()):
            axes[r, c].imshow(Image.open(Path(home) / row.image_uri))
            axes[r, c].set_title(f"{p} g{row.group_id}\n{_label(row.background, 24)}", fontsize=6)
    return _png_b64(fig)


def ab_html(report: dict, per_group: pd.DataFrame, generated: pd.DataFrame, home: Path, arms: tuple) -> str:
    """The A/B report as one self-contained HTML page: the headline, the table of ``arms`` (the
    evaluation's list, in its order), three plots (CTR per group per arm, NDCG@5 vs K, the generated
    creatives) and the JSON."""
    imgs = [("CTR per group for each arm", _ab_arms_figure(per_group, arms))]
    grouping = report.get("grouping", {})
    if grouping.get("ndcg5_by_k"):
        imgs.append(("NDCG@5 vs K", _ndcg_figure(grouping)))
    imgs.append(("Generated creatives per group (first products)", _creatives_figure(generated, home)))
    table = "".join(f"<tr><td>{k}</td><td>{report[f'ctr_{k}']:.5f}</td></tr>" for k in arms)
    figs = "".join(f"<h2>{t}</h2><img src='data:image/png;base64,{b}'/>" for t, b in imgs)
    return (f"<html><head><meta charset='utf-8'><title>OSMF A/B {report['run_date']}</title></head><body>"
            f"<h1>OSMF simulated A/B, {report['run_date']}</h1>"
            f"<p>{report['heldout_users']} held-out users, {report['groups']} groups of {report['products']} products. "
            f"Lift vs one-size-fits-all <b>{report['lift_vs_one_size']:+.2%}</b>, oracle fraction "
            f"<b>{report['oracle_fraction']:.2f}</b>. Every creative is judged on its rendered pixels.</p>"
            f"<table border=1><tr><th>arm</th><th>expected CTR</th></tr>{table}</table>{figs}"
            f"<h2>Report</h2><pre>{json.dumps(report, indent=1, default=str)}</pre></body></html>")

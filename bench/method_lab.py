"""Grouping quality on an existing lake, in one process and a minute: PAAG variants x rules for K.

Trains PAAG on the run date's window (held-out users' clicks excluded, as the pipeline does), embeds
each product's audience, fits K-Means for every candidate K and prints, per rule for K, the mean ARI
against the hidden segments and the *group ceiling share* on the held-out users:
(ceiling - one-size oracle) / (oracle - one-size oracle). Two bounds come first: groups that are
the hidden segments (1 by definition), and groups that are the segment a logistic regression on the
attributes predicts, fitted on the truth (what any grouping from attributes can reach, give or
take: a world's noisy segments are not in the attributes). It reads the world's truth, so it is a
benchmark for people (a lab for method changes), never a pipeline stage.

    .venv/bin/python bench/method_lab.py --home .osmf --run-date 2026-01-05
    .venv/bin/python bench/method_lab.py --home .osmf --run-date 2026-01-05 --paag epochs=20 --paag hidden=32
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np
import pandas as pd

KS = (2, 3, 4, 5, 6, 8)


def load(home: str, run_date: str):
    from osmf.config.settings import load_settings
    from osmf.data.audience import is_heldout, window
    from osmf.lake import Lake

    s = load_settings({"OSMF_HOME": home})
    lake = Lake(s)
    start, end = window(run_date, s.grouping.window_days)
    imp = lake.read_pandas("impressions", columns=["event_date", "user_id", "product_id", "creative_id", "clicked"])
    d = pd.to_datetime(imp.event_date)
    imp = imp[(d >= start) & (d <= end)]
    held = imp.user_id.map(lambda u: is_heldout(u, s.grouping.eval_holdout_fraction))
    users = lake.read_pandas("users").sort_values("user_id").reset_index(drop=True)
    products = lake.read_pandas("products").sort_values("product_id").reset_index(drop=True)
    creatives = lake.read_pandas("creatives")
    return s, imp, held.to_numpy(), users, products, creatives


_ATTR_CACHE: dict = {}


def seg_from_attributes(sim, pid, uids, U):
    """Each user's segment as a multinomial logistic regression on the attributes predicts it (one
    fit per category, on every user: a bound, not a method)."""
    from sklearn.linear_model import LogisticRegression

    from osmf_models.paag.features import CATEGORICAL, NUMERIC

    cat = sim.category(pid)
    if cat not in _ATTR_CACHE:
        allu = U.reset_index()
        num = allu[list(NUMERIC)].astype(float).to_numpy()
        num = (num - num.mean(0)) / num.std(0)
        Z = np.concatenate([num] + [np.stack([(allu[c] == v).to_numpy(float) for v in vs], 1)
                                    for c, vs in CATEGORICAL.items()], 1)
        y = sim.segments(pid, list(allu.user_id))
        lr = LogisticRegression(max_iter=2000).fit(Z, y)
        _ATTR_CACHE[cat] = dict(zip(allu.user_id, lr.predict(Z)))
    m = _ATTR_CACHE[cat]
    return np.array([m[u] for u in uids])


def product_rows(model, s, imp, held, users, products) -> list[dict]:
    """Per product: its held-out users' one-size oracle and oracle, and for every K of ``KS`` the
    K-Means groups' held-out ceiling, ARI, silhouette, predicted gain and group sizes."""
    import torch
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, silhouette_score

    from osmf.world.simulator import Simulator

    g = s.grouping
    sim = Simulator(s.home)
    heldset = set(imp.user_id[held])
    U = users.set_index("user_id")
    aud = imp.groupby("product_id").user_id.unique()
    pfeat = dict(zip(products.product_id, model.features.product_matrix(products)))
    rows = []
    for pid, uids in aud.items():
        uids = np.sort(uids)
        ux = torch.from_numpy(model.features.user_matrix(U.loc[uids].reset_index()))
        px = torch.from_numpy(np.repeat(pfeat[pid][None], len(uids), 0))
        X = model.embed(ux, px).double().numpy()
        hmask = np.isin(uids, list(heldset))
        hu = uids[hmask]
        seg = sim.segments(pid, list(uids))
        one = sim.best_single_style(pid, list(hu))[1]
        orc = sim.oracle_ctr(pid, list(hu))
        r = {"pid": pid, "n": len(hu), "one": one, "oracle": orc, "gain1": X.mean(0).max()}
        # bounds (truth): groups = the hidden segments; groups = the segment a logistic regression
        # predicts from the attributes (fitted on the truth: what attributes alone can reach)
        for name, lab in (("true", seg), ("attr", seg_from_attributes(sim, pid, uids, U))):
            hl = lab[hmask]
            r[f"ceil_{name}"] = sum(sim.best_single_style(pid, list(hu[hl == j]))[1] * (hl == j).sum()
                                    for j in np.unique(hl)) / len(hu)
        for k in KS:
            lab = KMeans(n_clusters=k, n_init=3, random_state=g.seed).fit_predict(X)
            sizes = np.bincount(lab, minlength=k)
            r[f"min{k}"], r[f"nonempty{k}"] = int(sizes[sizes > 0].min()), int((sizes > 0).sum())
            hl = lab[hmask]
            r[f"ceil{k}"] = sum(sim.best_single_style(pid, list(hu[hl == j]))[1] * (hl == j).sum()
                                for j in range(k) if (hl == j).any()) / len(hu)
            r[f"ari{k}"] = adjusted_rand_score(seg, lab)
            r[f"sil{k}"] = silhouette_score(X, lab, sample_size=min(2000, len(X)), random_state=0) if len(set(lab)) > 1 else -1
            r[f"gain{k}"] = sum(X[lab == j].sum(0).max() for j in range(k) if (lab == j).any()) / len(X)
            r[f"ok{k}"] = sizes.min() >= g.min_group_size  # the fixed-K rows
        rows.append(r)
    return rows


def main(argv=None) -> int:
    from osmf.grouping import choose_k
    from osmf.grouping.themes import fit_themes
    from osmf_models.paag import PAAGConfig
    from osmf_models.paag.train import train_paag

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", required=True)
    ap.add_argument("--run-date", required=True)
    ap.add_argument("--paag", action="append", default=[], metavar="KEY=VALUE", help="a PAAGConfig field")
    ap.add_argument("--themes", type=int, default=None, help="visual themes, 0 = chosen from the creatives (default: [grouping].paag_themes)")
    args = ap.parse_args(argv)
    s, imp, held, users, products, creatives = load(args.home, args.run_date)
    g = s.grouping
    t0 = time.perf_counter()
    themes = fit_themes(creatives, products, s.asset_root, g.paag_themes if args.themes is None else args.themes, g.seed)
    ev = imp[~held].copy()
    ev["theme"] = ev.creative_id.map(themes)
    ev = ev[["user_id", "product_id", "theme", "clicked"]].sort_values(
        ["product_id", "user_id", "theme", "clicked"], kind="stable").reset_index(drop=True)
    kw = {k: type(getattr(PAAGConfig(), k))(v) for k, v in (a.split("=", 1) for a in args.paag)}
    cfg = PAAGConfig(**{"epochs": g.paag_epochs, "bottleneck": g.paag_bottleneck, "directions": g.paag_directions, "text_encoder": g.paag_product_text,
                        "seed": g.seed, **kw})
    model, metrics = train_paag(ev, users, products, sorted(themes.unique()), cfg)
    print(f"PAAG {kw or 'defaults'}, {themes.nunique()} themes: AUC {metrics['holdout_auc']:.4f} (theme-only {metrics['holdout_auc_theme_only']:.4f}), "
          f"best epoch {metrics['best_epoch']}/{len(metrics['train_loss'])}, {time.perf_counter() - t0:.0f}s", flush=True)

    rows = product_rows(model, s, imp, held, users, products)
    t = pd.DataFrame(rows)
    w = t.n.to_numpy()

    def report(name, chosen):
        ceil = np.array([r[f"ceil{k}"] if k > 1 else r["one"] for r, k in zip(rows, chosen)])
        a = np.array([r[f"ari{k}"] if k > 1 else 0.0 for r, k in zip(rows, chosen)])
        share = (np.average(ceil, weights=w) - np.average(t.one, weights=w)) / (np.average(t.oracle, weights=w) - np.average(t.one, weights=w))
        print(f"  {name:<22} ceiling share {share:6.3f}  ARI {a.mean():.3f}  K {pd.Series(chosen).value_counts().sort_index().to_dict()}")

    for name in ("true", "attr"):
        ceil = t[f"ceil_{name}"].to_numpy()
        share = (np.average(ceil, weights=w) - np.average(t.one, weights=w)) / (np.average(t.oracle, weights=w) - np.average(t.one, weights=w))
        print(f"  bound: {name + ' segments':<15} ceiling share {share:6.3f}")
    for k in KS:
        report(f"fixed K={k}", [k if r[f"ok{k}"] else 1 for r in rows])
    # the pipeline's own rule (osmf.grouping.choose_k) on the lab's fits, silhouette and gain
    scores = {k: pd.DataFrame({"product_id": t.pid, "silhouette": t[f"sil{k}"], "min_size": t[f"min{k}"],
                               "k": t[f"nonempty{k}"]}) for k in KS}
    gains = pd.DataFrame([(r["pid"], k, r["gain1"] if k == 1 else r[f"gain{k}"]) for r in rows for k in (1, *KS)],
                         columns=["product_id", "k", "gain"])
    pids = list(t.pid)

    def rule(**kw):
        chosen = choose_k(**kw)
        return [chosen[p] for p in pids]

    report("silhouette 2..5", rule(scores_by_k={k: scores[k] for k in (2, 3, 4, 5)}, products=pids,
                                   min_group_size=g.min_group_size))
    for tau in (0.8, 0.9, 0.95):
        report(f"gain tau={tau}", rule(scores_by_k=scores, products=pids, min_group_size=g.min_group_size,
                                       gains=gains, share=tau))
    return 0


if __name__ == "__main__":
    sys.exit(main())

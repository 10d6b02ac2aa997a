"""Which rule for K gives the groups the most reachable gain? A diagnostic on an existing lake.

Reads the run date's ``user_product_embeddings`` (PAAG), fits every candidate K once (the
pipeline's own engine), and for each rule that picks K per product prints the *group ceiling share*
it would give: (ceiling - one-size oracle) / (oracle - one-size oracle) on the held-out users, the
ceiling being each group's truly best single style. It reads the world's truth, so it is a
benchmark for people, never a pipeline stage. Rules:

* ``fixed K``: every product K groups (where the smallest group has ``min_group_size`` users);
* ``silhouette``: the pipeline's rule today (``osmf.grouping.choose_k``, K in 2..5);
* ``gain tau``: the smallest K whose predicted click gain over one group (from PAAG's own
  predictions: each group shown its best theme) is at least ``tau`` of the best K's.

    .venv/bin/python bench/k_rules.py --home .osmf --run-date 2026-01-05
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np
import pandas as pd

KS = (2, 3, 4, 5, 6, 8)


def fit_all(home: str, run_date: str):
    """(settings, embeddings per product, {K: (FitResult, scores)}) of the run date."""
    from osmf.config.settings import load_settings
    from osmf.grouping import fit_candidates
    from osmf.lake import Lake
    from osmf.lake.spark import get_spark

    s = load_settings({"OSMF_HOME": home})
    spark, lake = get_spark(s), Lake(s)
    emb_df = (lake.read_spark(spark, "user_product_embeddings", partition=run_date)
              .select("product_id", "user_id", "embedding").cache())
    emb = {p: (d.user_id.to_numpy(), np.stack(d.embedding.to_numpy())) for p, d in emb_df.toPandas().groupby("product_id")}
    return s, emb, fit_candidates(spark, emb_df, dataclasses.replace(s.grouping, k_candidates=KS))


def tables(s, emb: dict, fits: dict):
    """Per (product, K): predicted gain, held-out ceiling (a sum over users), valid; per product: users, oracle sum."""
    from osmf.data.audience import is_heldout
    from osmf.world.simulator import Simulator

    sim, g = Simulator(s.home), s.grouping
    gain, ceil, valid, tot = {}, {}, {}, {}
    for p, (users, X) in emb.items():
        hu = users[np.array([is_heldout(u, g.eval_holdout_fraction) for u in users])]
        gain[p, 1], ceil[p, 1] = X.mean(0).max(), sim.best_single_style(p, hu)[1] * len(hu)
        tot[p] = (len(hu), sim.oracle_ctr(p, hu) * len(hu))
    for k, (fit, scores) in fits.items():
        a, sc = fit.assignments.set_index(["product_id", "user_id"]).group_id, scores.set_index("product_id")
        for p, (users, X) in emb.items():
            lab = a.reindex(pd.MultiIndex.from_arrays([[p] * len(users), users])).to_numpy()
            if np.isnan(lab).any():
                continue
            lab = lab.astype(int)
            gain[p, k] = sum(X[lab == j].sum(0).max() for j in range(k) if (lab == j).any()) / len(X)
            valid[p, k] = bool(sc.loc[p, "min_size"] >= g.min_group_size and sc.loc[p, "k"] == k)
            held = np.isin(users, [u for u in users if is_heldout(u, g.eval_holdout_fraction)])
            hu, hl = users[held], lab[held]
            ceil[p, k] = sum(sim.best_single_style(p, hu[hl == j])[1] * (hl == j).sum() for j in range(k) if (hl == j).any())
    return gain, ceil, valid, tot


def share(chosen: dict, ceil: dict, tot: dict) -> float:
    n = sum(v[0] for v in tot.values())
    oracle, one = sum(v[1] for v in tot.values()) / n, sum(ceil[p, 1] for p in tot) / n
    return (sum(ceil[p, chosen[p]] for p in tot) / n - one) / (oracle - one)


def gain_rule(gain: dict, valid: dict, products, tau: float, kmax: int) -> dict:
    out = {}
    for p in products:
        ks = [k for k in KS if k <= kmax and valid.get((p, k))]
        if not ks:
            out[p] = 1
            continue
        best = max(gain[p, k] for k in ks)
        out[p] = min(k for k in ks if gain[p, k] - gain[p, 1] >= tau * (best - gain[p, 1]))
    return out


def main(argv=None) -> int:
    from osmf.grouping import choose_k

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", required=True)
    ap.add_argument("--run-date", required=True)
    args = ap.parse_args(argv)
    s, emb, fits = fit_all(args.home, args.run_date)
    gain, ceil, valid, tot = tables(s, emb, fits)
    products = sorted(emb)
    rules = {f"fixed K={k}": {p: k if valid.get((p, k)) else 1 for p in products} for k in KS}
    rules["silhouette (today)"] = choose_k({k: fits[k][1] for k in fits if k <= 5}, products, s.grouping.min_group_size)
    for tau in (0.8, 0.9, 0.95):
        for kmax in (5, 8):
            rules[f"gain tau={tau} K<={kmax}"] = gain_rule(gain, valid, products, tau, kmax)
    print(f"{'rule':<24} {'ceiling share':>13}  chosen K")
    for name, chosen in rules.items():
        print(f"{name:<24} {share(chosen, ceil, tot):>13.3f}  {pd.Series(chosen).value_counts().sort_index().to_dict()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

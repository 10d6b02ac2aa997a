"""A markdown table of the simulated A/B per world shape from ab_seeds reports: mean ± std (min)
over the seeds of each figure that issue 18 sets a goal on, and the worst seed's lift. With
``--per-seed``: one row per seed, with the arms, the 95% intervals, ARI and chosen K (the rows of
an ablation table).

    .venv/bin/python bench/shape_table.py bench/out/ab_small bench/out/ab_wide ...   # folders holding seed*/reports/ab_*.json
    .venv/bin/python bench/shape_table.py --per-seed bench/out/ab_small bench/out/ab_wide
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

FIGURES = (("lift_vs_one_size_oracle", "lift vs one-size oracle", True), ("lift_vs_one_size", "lift vs one-size", True),
           ("ceiling_share", "ceiling share", False), ("osmf_reach", "osmf reach", False),
           ("osmf_reach_historical", "reach (historical)", False), ("osmf_best_style_share", "best-style share", True),
           ("grm_pair_accuracy", "GRM pair acc.", False), ("grm_baseline_pair_accuracy", "group-blind", False))


def reports(folder: Path) -> list[dict]:
    from glob import glob

    return [json.loads(Path(p).read_text()) for p in sorted(glob(f"{folder}/**/reports/ab_*.json", recursive=True))]


def cell(vals, pct: bool) -> str:
    v = np.array(vals, float)
    f = (lambda x: f"{x:+.1%}") if pct else (lambda x: f"{x:.3f}")
    return f"{f(v.mean())} ± {f(v.std(ddof=1)) if len(v) > 1 else '-'}"


def chosen_k(reports_: list[dict]) -> dict:
    ks = {}
    for r in reports_:
        for k, n in r.get("grouping", {}).get("chosen_k_counts", {}).items():
            ks[k] = ks.get(k, 0) + n
    return {int(k): n for k, n in sorted(ks.items(), key=lambda kv: int(kv[0]))}


def per_seed(folders: list[Path]) -> None:
    """One row per seed: arms (one-size / one-size oracle / osmf / group best historical / group
    ceiling / oracle), lift vs the one-size oracle [95%], ceiling share, reach (of the ceiling / of
    the group best historical), best-style share, GRM vs group-blind [gain 95%], ARI, chosen K."""
    print("| shape, seed | arms (held-out CTR) | lift vs one-size oracle [95%] | ceiling share | reach: ceiling / historical "
          "| best style | GRM vs group-blind [gain 95%] | ARI | chosen K |")
    print("|---|---|---|---|---|---|---|---|---|")
    for f in folders:
        for p in sorted(f.glob("seed*/reports/ab_*.json"), key=lambda q: (len(q.parts[-3]), q.parts[-3])):
            r = json.loads(p.read_text())
            lo, hi = r["lift_vs_one_size_oracle_ci"]
            nan = float("nan")  # a GRM without held-out pairs reports no accuracy and no interval
            g = [nan if v is None else v for v in (r.get("grm_pair_accuracy_gain_ci") or [None, None])]
            grm, blind = (nan if r.get(k) is None else r[k] for k in ("grm_pair_accuracy", "grm_baseline_pair_accuracy"))
            arms = " / ".join(f"{r[k]:.4f}" for k in ("ctr_one_size", "ctr_one_size_oracle"))
            arms += f" / **{r['ctr_osmf']:.4f}** / " + " / ".join(
                f"{r[k]:.4f}" for k in ("ctr_group_best_historical", "ctr_group_ceiling", "ctr_oracle"))
            print(f"| {f.name} {p.parts[-3][4:]} | {arms} | **{r['lift_vs_one_size_oracle']:+.1%} [{lo:+.1%}, {hi:+.1%}]** "
                  f"| {r['ceiling_share']:.3f} | {r['osmf_reach']:.3f} / {r['osmf_reach_historical']:.3f} "
                  f"| {r['osmf_best_style_share']:.1%} | {grm:.3f} vs {blind:.3f} "
                  f"[{g[0]:+.3f}, {g[1]:+.3f}] | {r.get('grouping', {}).get('ari_product_aware', float('nan')):.3f} "
                  f"| {chosen_k([r])} |")


def main(argv=None) -> int:
    args = list(argv or sys.argv[1:])
    if "--per-seed" in args:
        per_seed([Path(a) for a in args if a != "--per-seed"])
        return 0
    folders = [Path(a) for a in args]
    print("| shape | seeds | " + " | ".join(n for _, n, _ in FIGURES) + " | min lift vs one-size oracle | ARI | chosen K |")
    print("|---|---|" + "---|" * (len(FIGURES) + 3))
    for f in folders:
        rs = reports(f)
        if not rs:
            continue
        ari = [r.get("grouping", {}).get("ari_product_aware", np.nan) for r in rs]
        ks = chosen_k(rs)
        print(f"| {f.name} | {len(rs)} | " + " | ".join(cell([r[k] for r in rs], pct) for k, _, pct in FIGURES)
              + f" | {min(r['lift_vs_one_size_oracle'] for r in rs):+.1%} | {np.nanmean(ari):.3f} | {ks} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

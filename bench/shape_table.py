"""A markdown table of the simulated A/B per world shape from ab_seeds reports: mean ± std (min)
over the seeds of each figure that issue 18 sets a goal on, and the worst seed's lift.

    .venv/bin/python bench/shape_table.py bench/out/ab_small bench/out/ab_wide ...   # folders holding seed*/reports/ab_*.json
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


def main(argv=None) -> int:
    folders = [Path(a) for a in (argv or sys.argv[1:])]
    print("| shape | seeds | " + " | ".join(n for _, n, _ in FIGURES) + " | min lift vs one-size oracle | ARI | chosen K |")
    print("|---|---|" + "---|" * (len(FIGURES) + 3))
    for f in folders:
        rs = reports(f)
        if not rs:
            continue
        ari = [r.get("grouping", {}).get("ari_product_aware", np.nan) for r in rs]
        ks = {}
        for r in rs:
            for k, n in r.get("grouping", {}).get("chosen_k_counts", {}).items():
                ks[k] = ks.get(k, 0) + n
        print(f"| {f.name} | {len(rs)} | " + " | ".join(cell([r[k] for r in rs], pct) for k, _, pct in FIGURES)
              + f" | {min(r['lift_vs_one_size_oracle'] for r in rs):+.1%} | {np.nanmean(ari):.3f} | {dict(sorted(ks.items(), key=lambda kv: int(kv[0])))} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

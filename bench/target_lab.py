"""Where osmf's reach goes (a lab: it READS THE WORLD'S TRUTH, so its figures guide the method and
are never results): per group of a finished run date, the true expected CTR of its held-out users
for osmf's generated creative, for the G-MLLM's target under each ``[models].sft_target`` rule, for
the product's truly best own creative and for the best of all historical looks; and how often the
generated prompt is the target's text and lands (by the retrieval renderer's match) in its theme.

    .venv/bin/python bench/target_lab.py --home .osmf --run-date 2026-01-05
"""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    import numpy as np
    import pandas as pd
    from PIL import Image

    from osmf.config.settings import load_settings
    from osmf.data.assets import product_assets
    from osmf.data.audience import is_heldout
    from osmf.data.training import SFT_TARGETS, load_pinned, sft_targets
    from osmf.generation.rendering import scoring_renderer
    from osmf.lake import Lake
    from osmf.world.simulator import Simulator

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--home", required=True)
    ap.add_argument("--run-date", required=True)
    a = ap.parse_args(argv)
    s = load_settings({"OSMF_HOME": a.home})
    lake, sim, rd = Lake(s), Simulator(s.home), a.run_date
    ug = lake.read_pandas("user_groups", partition=rd)
    ug = ug[ug.user_id.map(lambda u: is_heldout(u, s.grouping.eval_holdout_fraction))].sort_values("user_id")
    f = load_pinned(lake, rd).frames
    targets = {r: sft_targets(f, r).set_index(["product_id", "group_id"])["best_creative_id"] for r in SFT_TARGETS}
    scoring = scoring_renderer(f, s)
    cid = list(scoring.creative_ids)
    theme = f["creative_themes"].set_index("creative_id")["theme_index"]
    own = f["creatives"].groupby("product_id")["creative_id"].apply(list)
    gen = lake.read_pandas("generated_creatives", partition=rd).set_index(["product_id", "group_id"])
    assets = product_assets(f["products"], s.asset_root)
    perceived: dict = {}  # product -> every historical look re-composed around it, as perceived
    rows = []
    for n_done, ((pid, gid), users) in enumerate(ug.groupby(["product_id", "group_id"])["user_id"]):
        if (pid, gid) not in gen.index or (pid, gid) not in targets["theme"].index:
            continue
        im, m = assets[pid]
        users = list(users)
        if pid not in perceived:
            perceived[pid] = np.stack([sim.perceive(scoring.recompose(i, im, m), m) for i in range(len(cid))])
        W = perceived[pid]
        H = sim.per_user_ctr_many(pid, users, W).mean(0)
        g = gen.loc[(pid, gid)]
        tgt = targets["theme"][(pid, gid)]
        row = {"n": len(users), "osmf": sim.per_user_ctr(pid, users, np.asarray(Image.open(s.asset(g["image_uri"])).convert("RGB")), m).mean(),
               "own_truly_best": H[[cid.index(c) for c in own[pid]]].max(), "all_looks_best": H.max(), "all_looks_mean": H.mean(),
               "generated_in_target_theme": float(theme[cid[scoring.index.nearest(str(g["background"]))]] == theme[tgt])}
        row.update({f"target_{r}": H[cid.index(t[(pid, gid)])] for r, t in targets.items() if (pid, gid) in t.index})
        rows.append(row)
        if n_done % 25 == 0:
            print(f"  {n_done} groups", file=sys.stderr, flush=True)
    t = pd.DataFrame(rows)
    print(f"{a.home} {rd}: {len(t)} groups, {int(t.n.sum())} held-out users; true CTR, weighted by users")
    for c in [c for c in t.columns if c != "n"]:
        print(f"  {c:<26} {np.average(t[c].dropna().astype(float), weights=t.n[t[c].notna()]):.5f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

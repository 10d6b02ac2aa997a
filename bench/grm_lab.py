"""The GRM on a lake's run date, absolute score, residual score at full weight, and residual score at
the weight chosen on validation groups (now): held-out
pair accuracy with the group-blind baseline and 95% intervals (bootstrap over held-out groups).
Reads only the lake (no truth).

    .venv/bin/python bench/grm_lab.py --home .osmf --run-date 2026-01-05
"""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    from jobs.train_grm import build
    from osmf.config.settings import load_settings
    from osmf.lake import Lake
    from osmf_models.grm.train import train_grm

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--home", required=True)
    ap.add_argument("--run-date", required=True)
    args = ap.parse_args(argv)
    s = load_settings({"OSMF_HOME": args.home})
    lake = Lake(s)
    for name, residual, val in (("absolute", False, 0.0), ("residual x 1", True, 0.0), ("residual, weight chosen", True, None)):
        _, cfg, data = build(lake, s, args.run_date)
        cfg.residual = residual
        if val is not None:
            cfg.scale_validation_fraction = val
        _, m, _ = train_grm(data, cfg)
        chosen = f" (weight {m['residual_scale']:.1f})" if "residual_scale" in m else ""
        print(f"GRM {name}{chosen}: held-out pair accuracy {m['grm_pair_accuracy']:.3f} "
              f"[{m['grm_pair_accuracy_ci_low']:.3f}, {m['grm_pair_accuracy_ci_high']:.3f}], group-blind "
              f"{m['baseline_pair_accuracy']:.3f}, gain [{m['pair_accuracy_gain_ci_low']:+.3f}, "
              f"{m['pair_accuracy_gain_ci_high']:+.3f}] on {m['grm_pairs']} pairs of {m['heldout_groups']} groups", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

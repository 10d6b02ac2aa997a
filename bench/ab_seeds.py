"""The simulated A/B test over several world seeds: mean and spread of every figure.

Each seed is a fresh world (a preset or a TOML file, with ``--set key=value`` overrides and the
seed replaced) in its own OSMF_HOME, run end to end by the main command (`osmf demo --config`:
the nightly chain through Airflow, then the evaluation). Prints one row per figure (mean, standard
deviation, min, max over the seeds) and writes every report to ``--out``.

    .venv/bin/python bench/ab_seeds.py --preset small --seeds 3
    .venv/bin/python bench/ab_seeds.py --preset small --seeds 3 --set n_products=20 --set n_segments=4
    .venv/bin/python bench/ab_seeds.py --config bench/worlds/hard.toml --seeds 3 --first-seed 1
    # the same worlds through another checkout (e.g. the previous release), for a before/after table:
    .venv/bin/python bench/ab_seeds.py --preset small --seeds 3 --cmd "python -m osmf_app.cli" --pythonpath ../old
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
HEADLINE = ("ctr_one_size", "ctr_best_historical", "ctr_one_size_oracle", "ctr_osmf", "ctr_group_best_historical",
            "ctr_group_ceiling", "ctr_oracle", "lift_vs_one_size", "lift_vs_best_historical", "lift_vs_one_size_oracle",
            "oracle_fraction", "ceiling_share", "osmf_reach", "osmf_reach_historical",
            "osmf_best_style_share", "one_size_best_style_share", "grm_pair_accuracy", "grm_baseline_pair_accuracy")


def _value(text: str):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def world_toml(preset: str | None, config: Path | None, sets: list[str], seed: int) -> str:
    base = config or ROOT / "osmf" / "presets" / f"{preset}.toml"
    world = tomllib.loads(Path(base).read_text())["world"]
    for kv in sets:
        k, _, v = kv.partition("=")
        world[k.strip()] = _value(v.strip())
    world["seed"] = seed
    return "[world]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in world.items())


def run_seed(seed: int, args, out: Path) -> dict:
    home = out / f"seed{seed}"
    if home.exists() and any(home.iterdir()):
        raise SystemExit(f"{home} is not empty: a run must start from a fresh world, lake and registry; "
                         "give another --out or remove it")
    home.mkdir(parents=True)
    cfg = home / "world.toml"
    cfg.write_text(world_toml(args.preset, args.config, args.set, seed))
    env = {**os.environ, "OSMF_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    if args.pythonpath:
        env["PYTHONPATH"] = str(Path(args.pythonpath).resolve())
    cmd = [*shlex.split(args.cmd.replace("python ", f"{sys.executable} ", 1)), "demo", "--config", str(cfg)]
    t0 = time.perf_counter()
    with open(home / "demo.log", "w") as log:
        rc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=args.pythonpath or ROOT).returncode
    if rc != 0:
        raise SystemExit(f"seed {seed} failed (exit {rc}); see {home / 'demo.log'}")
    report = json.loads(next((home / "reports").glob("ab_*.json")).read_text())
    print(f"  seed {seed}: {time.perf_counter() - t0:.0f}s, osmf {report['ctr_osmf']:.5f}, "
          f"one-size {report['ctr_one_size']:.5f}, lift {report['lift_vs_one_size']:+.2%}", flush=True)
    return report


def summary(reports: list[dict]) -> list[tuple]:
    rows = []
    for key in HEADLINE:
        vals = np.array([r[key] for r in reports if isinstance(r.get(key), (int, float))], dtype=float)
        if len(vals):
            rows.append((key, vals.mean(), vals.std(ddof=1) if len(vals) > 1 else 0.0, vals.min(), vals.max(), len(vals)))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", default="small", choices=["tiny", "small", "medium"])
    src.add_argument("--config", type=Path, help="a world TOML instead of a preset")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a [world] key (repeatable)")
    p.add_argument("--seeds", type=int, default=3, help="how many world seeds")
    p.add_argument("--first-seed", type=int, default=101)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "ab_seeds")
    p.add_argument("--cmd", default=str(ROOT / ".venv" / "bin" / "osmf"), help="the osmf command to run")
    p.add_argument("--pythonpath", default=None, help="a checkout to run instead of this one (with --cmd)")
    args = p.parse_args(argv)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    print(f"A/B over world seeds {seeds} ({args.config or args.preset}{' ' + ' '.join(args.set) if args.set else ''})")
    reports = [run_seed(s, args, args.out) for s in seeds]
    print(f"\n{'figure':<28} {'mean':>9} {'std':>9} {'min':>9} {'max':>9}  n")
    for key, mean, std, lo, hi, n in summary(reports):
        print(f"{key:<28} {mean:>9.4f} {std:>9.4f} {lo:>9.4f} {hi:>9.4f}  {n}")
    (args.out / "summary.json").write_text(json.dumps({"seeds": seeds, "reports": reports,
                                                       "summary": {k: {"mean": m, "std": s, "min": lo, "max": hi}
                                                                   for k, m, s, lo, hi, _ in summary(reports)}}, indent=1))
    print(f"\nwrote {args.out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

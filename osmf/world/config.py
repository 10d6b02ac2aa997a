"""The world's TOML schema: one ``[world]`` table, every key documented, typed and range-checked.

A bad file names the key that is wrong. See README "World configuration" for the table of keys.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

PRESETS = ("tiny", "small", "medium")


class WorldConfigError(ValueError):
    pass


@dataclass(frozen=True)
class WorldConfig:
    # every key has a default, so a file may set only what it changes
    seed: int = 7
    n_users: int = 3000
    n_products: int = 40
    n_categories: int = 4
    n_segments: int = 3
    n_styles: int = 6
    days: int = 5
    impressions_per_day: int = 40_000
    malformed_rate: float = 0.01
    duplicate_rate: float = 0.01
    # optional
    start_date: str = "2026-01-01"
    creatives_per_product: int = 4
    files_per_day: int = 3
    image_size: int = 64
    base_ctr: float = 0.04
    style_effect: float = 1.2  # log-odds boost of a segment's favourite style
    style_noise: float = 0.35  # std of the other styles' log-odds effects
    segment_noise: float = 0.05  # share of users whose segment ignores their attributes
    click_noise: float = 0.10  # std of the per-user log-odds click propensity
    perception_temperature: float = 0.02  # softness of the hidden perception (pixels -> style weights)

    _RANGES = {
        "seed": (0, 2**32 - 1),
        "n_users": (10, 10_000_000),
        "n_products": (1, 1_000_000),
        "n_categories": (1, 12),
        "n_segments": (1, 12),
        "n_styles": (2, 12),
        "days": (1, 3650),
        "impressions_per_day": (10, 100_000_000),
        "malformed_rate": (0.0, 0.5),
        "duplicate_rate": (0.0, 0.5),
        "creatives_per_product": (2, 12),
        "files_per_day": (1, 1000),
        "image_size": (16, 1024),
        "base_ctr": (1e-4, 0.5),
        "style_effect": (0.0, 5.0),
        "style_noise": (0.0, 5.0),
        "segment_noise": (0.0, 1.0),
        "click_noise": (0.0, 5.0),
        "perception_temperature": (1e-4, 10.0),
    }

    @property
    def start(self) -> dt.date:
        return dt.date.fromisoformat(self.start_date)

    @property
    def dates(self) -> list[str]:
        return [(self.start + dt.timedelta(days=i)).isoformat() for i in range(self.days)]

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def validate(self) -> "WorldConfig":
        for name, (lo, hi) in self._RANGES.items():
            value = getattr(self, name)
            if not (lo <= value <= hi):
                raise WorldConfigError(f"[world].{name} = {value!r} is out of range [{lo}, {hi}]")
        try:
            self.start
        except ValueError:
            raise WorldConfigError(
                f"[world].start_date = {self.start_date!r} is not an ISO date (YYYY-MM-DD)"
            ) from None
        if self.n_segments > self.n_styles:
            raise WorldConfigError(
                f"[world].n_segments = {self.n_segments} exceeds [world].n_styles = {self.n_styles}: "
                "every segment of a category needs its own favourite style"
            )
        if self.creatives_per_product > self.n_styles:
            raise WorldConfigError(
                f"[world].creatives_per_product = {self.creatives_per_product} exceeds "
                f"[world].n_styles = {self.n_styles}"
            )
        if self.n_categories > self.n_products:
            raise WorldConfigError(
                f"[world].n_categories = {self.n_categories} exceeds [world].n_products = {self.n_products}"
            )
        return self

    # --- construction --------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> "WorldConfig":
        if "world" not in data:
            raise WorldConfigError(f"{source}: no [world] table (keys found: {sorted(data)})")
        unknown = set(data) - {"world"}
        if unknown:
            raise WorldConfigError(f"{source}: unknown top-level table(s) {sorted(unknown)}; only [world]")
        section = data["world"]
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values = {}
        for key, value in section.items():
            if key not in fields:
                raise WorldConfigError(
                    f"{source}: unknown key [world].{key}; known keys: {', '.join(sorted(fields))}"
                )
            ftype = fields[key].type
            ok = {
                "int": isinstance(value, int) and not isinstance(value, bool),
                "float": isinstance(value, (int, float)) and not isinstance(value, bool),
                "str": isinstance(value, str) or isinstance(value, dt.date),
            }[ftype]
            if not ok:
                raise WorldConfigError(
                    f"{source}: [world].{key} = {value!r} has the wrong type; expected {ftype}"
                )
            values[key] = float(value) if ftype == "float" else (str(value) if ftype == "str" else value)
        try:
            return cls(**values).validate()
        except WorldConfigError as exc:
            raise WorldConfigError(f"{source}: {exc}") from None

    @classmethod
    def from_toml(cls, path: str | Path) -> "WorldConfig":
        from osmf.config.settings import read_toml

        return cls.from_dict(read_toml(Path(path), WorldConfigError, "world config"), str(path))

    @classmethod
    def preset(cls, name: str) -> "WorldConfig":
        if name not in PRESETS:
            raise WorldConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        text = resources.files("osmf.presets").joinpath(f"{name}.toml").read_text()
        return cls.from_dict(tomllib.loads(text), f"preset {name}")

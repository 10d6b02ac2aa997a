"""The one loader of pinned training data: a run date's group tables and the dimensions, at
exact Delta versions, as every trainer, the promotion evaluators, generation and the A/B test read
them.

``load_pinned(lake, run_date, versions)`` reads ``groups``, ``group_creative_ctr`` and
``group_preference_pairs`` of the run date plus ``products`` and ``creatives``, each at the given
version (default: the latest); the versions go to MLflow as lineage and come back from a run's
``lineage.<table>`` tags, so promotion compares models on exactly the data the challenger saw.
``group_data`` turns that into one G-MLLM example per (product, group).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from osmf.lake.tables import spec

GROUP_TABLES = ("groups", "group_creative_ctr", "group_preference_pairs")
DIMENSIONS = ("products", "creatives")
PINNED = (*GROUP_TABLES, *DIMENSIONS)


@dataclass
class Pinned:
    run_date: str
    versions: dict  # table -> Delta version read
    frames: dict  # table -> pandas DataFrame

    def lineage(self, tables=PINNED) -> dict:
        """table -> (version, frame), the input of ``osmf.tracking.log_lineage``."""
        return {t: (self.versions[t], self.frames[t]) for t in tables}


def load_pinned(lake, run_date: str, versions: dict | None = None) -> Pinned:
    """The run date's group tables and the dimensions at ``versions`` (missing tables: latest)."""
    versions = {t: (versions or {}).get(t, None) for t in PINNED}
    versions = {t: lake.version(t) if v is None else int(v) for t, v in versions.items()}
    frames = {t: lake.read_pandas(t, version=versions[t], partition=run_date) for t in GROUP_TABLES}
    frames.update({t: lake.read_pandas(t, version=versions[t]) for t in DIMENSIONS})
    # by key: a table's rows come in the order of its files, which the writer's tasks decide;
    # training must see the same rows in the same order on every run
    frames = {t: f.sort_values(list(spec(t).key), kind="stable").reset_index(drop=True) for t, f in frames.items()}
    if frames["groups"].empty or frames["group_creative_ctr"].empty:
        raise ValueError(f"no groups for {run_date}; run `osmf regroup --run-date {run_date}`")
    return Pinned(run_date, versions, frames)


@dataclass
class GroupData:
    """One example per (product, group): ``ex`` (DataFrame), ``G`` (group features, N x D)."""

    pinned: Pinned
    ex: object
    G: object
    home: Path

    @property
    def frames(self) -> dict:
        return self.pinned.frames

    @property
    def versions(self) -> dict:
        return self.pinned.versions

    def images(self, size: int):
        """The examples' product images at a model's image size (N, 3, size, size)."""
        from osmf_models.gmllm.data import product_images

        return product_images(self.ex, self.home, size)


def group_data(pinned: Pinned, home: Path) -> GroupData:
    from osmf_models.gmllm.data import group_examples, group_tensor

    f = pinned.frames
    ex = group_examples(f["groups"], f["products"], f["creatives"], f["group_creative_ctr"])
    return GroupData(pinned, ex, group_tensor(ex), Path(home))


def load_group_data(lake, home: Path, run_date: str, versions: dict | None = None) -> GroupData:
    """``group_data(load_pinned(...))``: the run date's groups as G-MLLM examples."""
    return group_data(load_pinned(lake, run_date, versions), home)

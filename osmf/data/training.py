"""The one loader of pinned training data: a run date's group tables and the dimensions, at
exact Delta versions, as every trainer, the promotion evaluators, generation and the A/B test read
them.

``load_pinned(lake, run_date, versions)`` reads ``groups``, ``group_creative_ctr``,
``group_preference_pairs`` and ``creative_themes`` of the run date plus ``products`` and
``creatives``, each at the given version (default: the latest); the versions go to MLflow as
lineage and come back from a run's ``lineage.<table>`` tags, so promotion compares models on exactly
the data the challenger saw. ``group_data`` turns that into one G-MLLM example per (product, group),
its target chosen by ``sft_targets``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from osmf.lake.tables import spec

GROUP_TABLES = ("groups", "group_creative_ctr", "group_preference_pairs", "creative_themes")
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


SFT_TARGETS = ("theme", "observed")


def creative_lift(ctr, prior_strength: float = 50.0):
    """creative_id -> its CTR over all of its product's groups relative to the product's, Beta-smoothed
    toward 1 (``prior_strength`` pseudo-impressions at the product's CTR: ``[grouping].prior_strength``,
    the smoothing of ``group_creative_ctr``): how much a look lifts whatever it is shown with."""
    import numpy as np
    import pandas as pd

    from osmf.data.smoothing import P0_CLIP, smoothed_ctr

    per = ctr.groupby(["product_id", "creative_id"], as_index=False)[["clicks", "impressions"]].sum()
    prod = per.groupby("product_id")[["clicks", "impressions"]].sum()
    p0 = np.clip(per["product_id"].map((prod["clicks"] + 1) / (prod["impressions"] + 2)).to_numpy(), *P0_CLIP)
    lift = smoothed_ctr(per["clicks"], per["impressions"], p0, prior_strength) / p0
    return pd.Series(lift, index=per["creative_id"].to_numpy())


def sft_targets(frames: dict, rule: str = "theme", prior_strength: float = 50.0):
    """product_id, group_id, best_creative_id: the historical creative whose background is a group's
    G-MLLM target.

    ``observed``: the group's best creative of its own product by smoothed CTR. A product has a few
    creatives and a group a few clicks on each, so this is a noisy pick among few looks.
    ``theme`` (the default): the look the group's PAAG centroid rates highest (its largest
    coordinate, a theme), learnt from every product's clicks; the group's best own creative of that
    theme by smoothed CTR, or, where its product has none, the creative of that theme with the
    highest lift on its own product (``creative_lift``)."""
    if rule not in SFT_TARGETS:
        raise ValueError(f"unknown sft_target {rule!r}; choose one of {', '.join(SFT_TARGETS)}")
    import numpy as np
    import pandas as pd

    ctr = frames["group_creative_ctr"]
    if rule == "observed":
        return (ctr.sort_values(["product_id", "group_id", "smoothed_ctr", "creative_id"], ascending=[True, True, False, True])
                .drop_duplicates(["product_id", "group_id"])[["product_id", "group_id", "creative_id"]]
                .rename(columns={"creative_id": "best_creative_id"}).reset_index(drop=True))
    themes = frames["creative_themes"]
    if themes.empty:
        raise ValueError("creative_themes has no rows for this run date; run `osmf regroup` for it "
                         "(or set [models].sft_target = \"observed\")")
    theme_of = dict(zip(themes["creative_id"], themes["theme_index"].astype(int)))
    n_themes = int(themes["theme_index"].max()) + 1
    lift = creative_lift(ctr, prior_strength)
    cre = frames["creatives"]
    cre = cre[cre["creative_id"].isin(theme_of)]
    own = cre.groupby("product_id")["creative_id"].apply(list).to_dict()
    by_theme: dict[int, str] = {}  # theme -> its creative of the highest lift
    for cid in sorted(cre["creative_id"], key=lambda c: (-float(lift.get(c, 1.0)), c)):
        by_theme.setdefault(theme_of[cid], cid)
    group_ctr = ctr.set_index(["product_id", "group_id", "creative_id"])["smoothed_ctr"].to_dict()
    rows = []
    for pid, gid, centroid in zip(frames["groups"]["product_id"], frames["groups"]["group_id"], frames["groups"]["centroid"]):
        centroid = np.asarray(centroid, dtype=np.float64)
        if len(centroid) != n_themes:
            raise ValueError(f"groups of {pid} have {len(centroid)}-dimensional centroids but creative_themes has "
                             f"{n_themes} themes: both must come from the same `osmf regroup` run")
        top = int(np.argmax(centroid))
        mine = [c for c in own.get(pid, []) if theme_of[c] == top]
        if mine:
            best = min(mine, key=lambda c: (-group_ctr.get((pid, gid, c), -1.0), -float(lift.get(c, 1.0)), c))
        else:
            best = by_theme[top]
        rows.append({"product_id": pid, "group_id": int(gid), "best_creative_id": best})
    return pd.DataFrame(rows, columns=["product_id", "group_id", "best_creative_id"])


def group_data(pinned: Pinned, home: Path, target: str = "theme", prior_strength: float = 50.0) -> GroupData:
    from osmf_models.gmllm.data import group_examples, group_tensor

    f = pinned.frames
    ex = group_examples(f["groups"], f["products"], f["creatives"], sft_targets(f, target, prior_strength))
    return GroupData(pinned, ex, group_tensor(ex), Path(home))


def load_group_data(lake, home: Path, run_date: str, versions: dict | None = None, target: str = "theme") -> GroupData:
    """``group_data(load_pinned(...))``: the run date's groups as G-MLLM examples, their targets by
    ``sft_targets(rule=target)``, the creatives' lift smoothed as ``group_creative_ctr`` is
    (``[grouping].prior_strength`` of the lake's settings)."""
    return group_data(load_pinned(lake, run_date, versions), home, target, lake.settings.grouping.prior_strength)

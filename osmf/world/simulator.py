"""The offline A/B simulator: the expected CTR of a creative *image* for a set of users, from the
hidden truth. Only evaluation code may use this class (it reads ``$OSMF_HOME/truth``).

A creative is judged by its pixels, as the world's click model judged the history: the hidden
perception (``osmf.world.perception``) maps the background (outside the product's mask) to style
weights, and a user's click log-odds are their segment's style log-odds mixed by those weights,
plus their bias. ``style=`` scores an ideal creative of exactly one style (the oracles).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from osmf.world.perception import style_weights


class Simulator:
    def __init__(self, home: Path):
        home = Path(home)
        truth = home / "truth"
        if not (truth / "style_ctr.parquet").exists():
            raise FileNotFoundError(
                f"no world truth under {truth}; create it with `osmf world generate --preset small`"
            )
        sc = pd.read_parquet(truth / "style_ctr.parquet")
        self.categories = sorted(sc["category"].unique())
        self.styles = list(dict.fromkeys(sc["style"]))
        self.n_segments = int(sc["segment"].max()) + 1
        cat_i = {c: i for i, c in enumerate(self.categories)}
        sty_i = {s: i for i, s in enumerate(self.styles)}
        self._logit = np.zeros((len(self.categories), self.n_segments, len(self.styles)))
        self._logit[sc["category"].map(cat_i), sc["segment"], sc["style"].map(sty_i)] = sc["logit"]
        self._cat_i, self._sty_i = cat_i, sty_i
        segs = pd.read_parquet(truth / "segments.parquet")
        bias = pd.read_parquet(truth / "user_bias.parquet")
        self._user_i = {u: i for i, u in enumerate(bias["user_id"])}
        self._bias = bias["click_bias"].to_numpy()
        self._seg = np.zeros((len(self.categories), len(self._bias)), dtype=np.int64)
        self._seg[segs["category"].map(cat_i), segs["user_id"].map(self._user_i)] = segs["segment"]
        prods = pd.read_parquet(home / "landing" / "dimensions" / "products.parquet")  # the world wrote it
        self._prod_cat = dict(zip(prods["product_id"], prods["category"]))
        config = json.loads((truth / "manifest.json").read_text())["config"]
        self.temperature = float(config.get("perception_temperature", 0.02))

    # -- lookups ---------------------------------------------------------------------------------
    def category(self, product_id: str) -> str:
        try:
            return self._prod_cat[product_id]
        except KeyError:
            raise KeyError(f"unknown product_id {product_id!r}") from None

    def segments(self, product_id: str, user_ids) -> np.ndarray:
        c = self._cat_i[self.category(product_id)]
        return self._seg[c, self._users(user_ids)]

    def _users(self, user_ids) -> np.ndarray:
        try:
            return np.array([self._user_i[u] for u in user_ids], dtype=np.int64)
        except KeyError as exc:
            raise KeyError(f"unknown user_id {exc.args[0]!r}") from None

    # -- perception ------------------------------------------------------------------------------
    def perceive(self, image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """The hidden style weights of an image's background (outside ``mask``)."""
        return style_weights(image, mask, len(self.styles), self.temperature)

    def perceived_style(self, image: np.ndarray, mask: np.ndarray | None) -> str:
        return self.styles[int(np.argmax(self.perceive(image, mask)))]

    def _weights(self, image, mask, style, weights=None) -> np.ndarray:
        if weights is not None:
            return np.asarray(weights, dtype=np.float64)
        if style is not None:
            if style not in self._sty_i:
                raise KeyError(f"unknown style {style!r}; known: {self.styles}")
            return np.eye(len(self.styles))[self._sty_i[style]]
        if image is None:
            raise ValueError("give a creative image (and the product's mask), or a style")
        return self.perceive(image, mask)

    # -- expected CTR ----------------------------------------------------------------------------
    def style_ctr(self, product_id: str, user_ids) -> np.ndarray:
        """(users, styles): each user's expected CTR for an ideal creative of each style."""
        c = self._cat_i[self.category(product_id)]
        ui = self._users(user_ids)
        return 1 / (1 + np.exp(-(self._logit[c, self._seg[c, ui]] + self._bias[ui, None])))

    def per_user_ctr(self, product_id: str, user_ids, image: np.ndarray | None = None,
                     mask: np.ndarray | None = None, style: str | None = None,
                     weights: np.ndarray | None = None) -> np.ndarray:
        """Expected CTR for each user shown ``image`` (a creative of ``product_id`` whose product
        covers ``mask``), an ideal creative of ``style``, or one already perceived (``weights``)."""
        w = self._weights(image, mask, style, weights)
        c = self._cat_i[self.category(product_id)]
        ui = self._users(user_ids)
        logits = self._logit[c, self._seg[c, ui]] @ w + self._bias[ui]
        return 1 / (1 + np.exp(-logits))

    def per_user_ctr_many(self, product_id: str, user_ids, weights: np.ndarray) -> np.ndarray:
        """(users, creatives): each user's expected CTR for each of several already perceived
        creatives (``weights``: one row of style weights per creative)."""
        c = self._cat_i[self.category(product_id)]
        ui = self._users(user_ids)
        logits = self._logit[c, self._seg[c, ui]] @ np.asarray(weights, dtype=np.float64).T + self._bias[ui, None]
        return 1 / (1 + np.exp(-logits))

    def expected_ctr(self, product_id: str, user_ids, image: np.ndarray | None = None,
                     mask: np.ndarray | None = None, style: str | None = None,
                     weights: np.ndarray | None = None) -> float:
        """Mean expected CTR of ``user_ids`` shown one creative (an image, or an ideal style)."""
        return float(self.per_user_ctr(product_id, user_ids, image, mask, style, weights).mean())

    def oracle_ctr(self, product_id: str, user_ids) -> float:
        """Every user shown the style that is truly best for their segment."""
        return float(self.style_ctr(product_id, user_ids).max(axis=1).mean())

    def best_single_style(self, product_id: str, user_ids) -> tuple[str, float]:
        """The one style truly best for all of ``user_ids`` together, and their mean CTR under it
        (a group's ceiling, or the one-size oracle for a product's whole audience)."""
        means = self.style_ctr(product_id, user_ids).mean(axis=0)
        k = int(np.argmax(means))
        return self.styles[k], float(means[k])

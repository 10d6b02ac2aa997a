"""The offline A/B simulator: expected CTR of a creative for a set of users, from the hidden truth.

Only evaluation code may use this class: it reads ``$OSMF_HOME/truth``. The style of a creative is
given by name or read from its background prompt text (``style_from_prompt``); on CPU the tiny
diffusion renderer's pixels carry no style, so generated creatives are judged by their prompt.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from osmf.world.styles import style_from_prompt


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
        prods = pd.read_parquet(home / "world" / "products.parquet")
        self._prod_cat = dict(zip(prods["product_id"], prods["category"]))

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

    def resolve_style(self, style: str | None = None, prompt: str | None = None) -> str | None:
        if style is not None:
            if style not in self._sty_i:
                raise KeyError(f"unknown style {style!r}; known: {self.styles}")
            return style
        if prompt is None:
            raise ValueError("give a style or a prompt")
        return style_from_prompt(prompt)

    # -- expected CTR ----------------------------------------------------------------------------
    def per_user_ctr(self, product_id: str, user_ids, style: str | None = None, prompt: str | None = None) -> np.ndarray:
        """Expected CTR for each user. A prompt whose style cannot be read scores the mean over
        all styles (an unrecognisable background earns no preference)."""
        c = self._cat_i[self.category(product_id)]
        ui = self._users(user_ids)
        s = self.resolve_style(style, prompt)
        logits = self._logit[c, self._seg[c, ui]]  # users x styles
        p = 1 / (1 + np.exp(-(logits + self._bias[ui, None])))
        return p.mean(axis=1) if s is None else p[:, self._sty_i[s]]

    def expected_ctr(self, product_id: str, user_ids, style: str | None = None, prompt: str | None = None) -> float:
        """Mean expected CTR of ``user_ids`` shown a creative of ``product_id`` in a style."""
        return float(self.per_user_ctr(product_id, user_ids, style, prompt).mean())

    def oracle_ctr(self, product_id: str, user_ids) -> float:
        """Every user shown the style that is truly best for their segment."""
        c = self._cat_i[self.category(product_id)]
        ui = self._users(user_ids)
        p = 1 / (1 + np.exp(-(self._logit[c, self._seg[c, ui]] + self._bias[ui, None])))
        return float(p.max(axis=1).mean())

    def best_style(self, product_id: str, segment: int) -> str:
        c = self._cat_i[self.category(product_id)]
        return self.styles[int(np.argmax(self._logit[c, segment]))]

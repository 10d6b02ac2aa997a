"""Feature space of PAAG: how user attributes, product text/category and creative themes become
tensors. Fitted on the dimension tables, saved with the model, so scoring uses the same mapping."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from osmf_models.common import minilm_encode

NUMERIC = ("age", "income_level", "city_tier", "tenure_days")
CATEGORICAL = {"gender": ("F", "M", "X"), "activity": ("low", "medium", "high"), "device": ("ios", "android", "web")}


def hash_text(text: str, dim: int) -> np.ndarray:
    """Signed hashed bag of words (crc32: stable across processes and machines)."""
    v = np.zeros(dim, np.float32)
    for w in str(text).lower().split():
        h = zlib.crc32(w.encode())
        v[h % dim] += 1.0 if (h >> 16) & 1 else -1.0
    n = np.linalg.norm(v)
    return v / n if n else v


@dataclass
class FeatureSpace:
    mean: list[float]
    std: list[float]
    categories: list[str]
    themes: list[str]
    text_dim: int
    text_encoder: str = "hash"
    product_text: dict = field(default_factory=dict)  # product_id -> text vector (minilm only)

    @classmethod
    def fit(cls, users: pd.DataFrame, products: pd.DataFrame, themes: list[str], text_dim: int,
            text_encoder: str = "hash") -> "FeatureSpace":
        num = users[list(NUMERIC)].astype(float).to_numpy()
        num[:, 3] = np.log1p(num[:, 3])
        fs = cls(num.mean(0).tolist(), (num.std(0) + 1e-6).tolist(), sorted(products["category"].unique()),
                 sorted(themes), text_dim, text_encoder)
        if text_encoder == "minilm":
            fs.product_text = dict(zip(products["product_id"], minilm_encode(products["title"].tolist()).tolist()))
            fs.text_dim = len(next(iter(fs.product_text.values())))
        elif text_encoder == "none":
            fs.text_dim = 0
        elif text_encoder != "hash":
            raise ValueError(f"PAAG text_encoder {text_encoder!r}: choose 'hash', 'minilm' or 'none'")
        return fs

    @property
    def n_user(self) -> int:
        return len(NUMERIC) + sum(len(v) for v in CATEGORICAL.values())

    @property
    def n_product(self) -> int:
        return len(self.categories) + self.text_dim

    def user_matrix(self, users: pd.DataFrame) -> np.ndarray:
        num = users[list(NUMERIC)].astype(float).to_numpy()
        num[:, 3] = np.log1p(num[:, 3])
        parts = [(num - np.array(self.mean)) / np.array(self.std)]
        for col, values in CATEGORICAL.items():
            parts.append(np.stack([(users[col] == v).to_numpy(float) for v in values], 1))
        return np.concatenate(parts, 1).astype(np.float32)

    def product_matrix(self, products: pd.DataFrame) -> np.ndarray:
        cat = np.stack([(products["category"] == c).to_numpy(float) for c in self.categories], 1)
        if self.text_encoder == "minilm":
            text = np.stack([np.asarray(self.product_text[p], np.float32) for p in products["product_id"]])
        elif self.text_encoder == "none":  # the category alone: products of a category share one taste
            text = np.zeros((len(products), 0), np.float32)
        else:
            text = np.stack([hash_text(t, self.text_dim) for t in products["title"]])
        return np.concatenate([cat, text], 1).astype(np.float32)

    def theme_index(self, themes) -> np.ndarray:
        lookup = {s: i for i, s in enumerate(self.themes)}
        return np.array([lookup[s] for s in themes], np.int64)

    def to_dict(self) -> dict:
        return dict(self.__dict__)

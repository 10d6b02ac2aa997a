"""From lake tables to G-MLLM examples: one row per (product, group) of a run date, with the group
features, the product image and title, the group's description and the background of the group's
target creative (chosen upstream: ``osmf.data.training.sft_targets``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from osmf_models.common import image_tensor


def background_of(prompt: str, title: str) -> str:
    """A creative prompt is "<title> <background>": the part the G-MLLM writes."""
    prompt = str(prompt).strip()
    return prompt[len(title):].strip() if prompt.startswith(title) else prompt


def full_prompt(title: str, background: str) -> str:
    return f"{title} {background}".strip()


def group_examples(groups: pd.DataFrame, products: pd.DataFrame, creatives: pd.DataFrame,
                   targets: pd.DataFrame | None = None) -> pd.DataFrame:
    """product_id, group_id, size, title, features, image_uri, description and, when ``targets``
    (product_id, group_id, best_creative_id: any historical creative, of this product or another) is
    given, best_creative_id and best_background (the target's background prompt without its product's
    title); groups without a target are left out."""
    ex = (groups[["product_id", "group_id", "size", "features", "description"]]
          .merge(products[["product_id", "title", "image_uri"]], on="product_id")
          .sort_values(["product_id", "group_id"]).reset_index(drop=True))
    if targets is not None:
        source = (creatives[["creative_id", "product_id", "background_prompt"]]
                  .merge(products[["product_id", "title"]], on="product_id")
                  .rename(columns={"creative_id": "best_creative_id", "title": "source_title"})
                  .drop(columns="product_id"))
        ex = (ex.merge(targets[["product_id", "group_id", "best_creative_id"]], on=["product_id", "group_id"])
              .merge(source, on="best_creative_id")
              .sort_values(["product_id", "group_id"]).reset_index(drop=True))
        ex["best_background"] = [background_of(p, t) for p, t in zip(ex.background_prompt, ex.source_title)]
        ex = ex.drop(columns=["background_prompt", "source_title"])
    return ex


def group_tensor(ex: pd.DataFrame) -> torch.Tensor:
    """Group features (N, D)."""
    return torch.tensor(np.stack(ex["features"].to_numpy()), dtype=torch.float32)


def product_images(ex: pd.DataFrame, home: Path, image_size: int) -> torch.Tensor:
    """Product images (N, 3, S, S) at the size a model's vision tower reads."""
    return torch.from_numpy(image_tensor([Path(home) / u for u in ex["image_uri"]], image_size))


def corpus(groups: pd.DataFrame, products: pd.DataFrame, creatives: pd.DataFrame) -> list[str]:
    """The text the tokenizer is trained on: titles, group descriptions, creative prompts."""
    return [*products["title"], *groups["description"], *creatives["background_prompt"]]

"""The products' images and foreground masks, as the lake's ``products`` table points to them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def product_assets(products: pd.DataFrame, home: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """product_id -> (image H x W x 3 uint8, foreground mask H x W bool)."""
    from PIL import Image

    return {p: (np.asarray(Image.open(Path(home) / i).convert("RGB")), np.asarray(Image.open(Path(home) / m)) > 127)
            for p, i, m in zip(products.product_id, products.image_uri, products.mask_uri)}

"""The GRM's registry lifecycle, beside the model: its registered name, the pyfunc wrapper logged
from code (``pyfunc.py``), the signature, an input example in the served format, and the promotion
metric (higher is better). ``osmf.tracking.registry`` is the code that talks to MLflow; it reads
this module. CLI: ``osmf train grm`` (``jobs/train_grm.py``), ``osmf promote grm``."""

from __future__ import annotations

from pathlib import Path

NAME = "osmf-grm"
WRAPPER = Path(__file__).with_name("pyfunc.py")  # logged as a model from code
PROMOTION_METRIC = "pair_accuracy"  # held-out pair accuracy on the challenger's pinned data
HOW_TO_MAKE = "osmf train grm --run-date D && osmf promote grm"


def signature():
    """Inputs: group_features (list of double), image_path, prompt; output: predicted_ctr."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, Schema

    inputs = [ColSpec(Array("double"), "group_features"), ColSpec("string", "image_path"), ColSpec("string", "prompt")]
    return ModelSignature(Schema(inputs), Schema([ColSpec("double", "predicted_ctr")]))


def input_example(data, asset_root: Path):
    """The first training row of ``data`` (a ``GRMData``) in the served input format."""
    import pandas as pd

    r = data.rows.iloc[0]
    return pd.DataFrame({"group_features": [list(map(float, r["features"]))],
                         "image_path": [str((Path(asset_root) / r["image_uri"]).resolve())],
                         "prompt": [r["background_prompt"]]})


def promotion_metric(model, data) -> float:
    """Held-out pair accuracy of ``model`` on ``data`` (the pairs of the groups its config holds out)."""
    from osmf_models.grm.train import heldout_pair_accuracy

    return heldout_pair_accuracy(model, data)

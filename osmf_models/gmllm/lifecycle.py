"""The G-MLLM's registry lifecycle, beside the model: its registered name, the pyfunc wrapper
logged from code (``pyfunc.py``), the signature, an input example in the served format, and the
promotion metric (higher is better). ``osmf.tracking.registry`` is the code that talks to MLflow;
it reads this module. Aliases: ``base`` (pre-trained, Group-DPO's reference), ``challenger``,
``champion``. CLI: ``osmf train gmllm`` (``jobs/train_gmllm.py``), ``osmf train group-dpo``
(``jobs/train_group_dpo.py``), ``osmf promote gmllm``."""

from __future__ import annotations

from pathlib import Path

NAME = "osmf-gmllm"
WRAPPER = Path(__file__).with_name("pyfunc.py")  # logged as a model from code
PROMOTION_METRIC = "grm_reward"  # mean GRM-predicted CTR of its greedy background per group, same GRM version
HOW_TO_MAKE = "osmf train gmllm --run-date D && osmf train group-dpo --run-date D && osmf promote gmllm"


def signature():
    """Inputs: title, group_features (list of double), image_path; output: background."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, Schema

    inputs = [ColSpec("string", "title"), ColSpec(Array("double"), "group_features"), ColSpec("string", "image_path")]
    return ModelSignature(Schema(inputs), Schema([ColSpec("string", "background")]))


def input_example(ex, asset_root: Path):
    """The first (product, group) example of ``ex`` in the served input format."""
    import pandas as pd

    r = ex.iloc[0]
    return pd.DataFrame({"title": [r["title"]], "group_features": [list(map(float, r["features"]))],
                         "image_path": [str((Path(asset_root) / r["image_uri"]).resolve())]})


def promotion_metric(gm, grm, ex, G, I, assets, renderer) -> float:
    """The GRM reward: mean GRM-predicted CTR of ``gm``'s greedy background per (product, group),
    rendered by ``renderer`` around each product."""
    from osmf_models.gmllm.candidates import grm_reward

    return grm_reward(gm, grm, ex, G, I, assets, renderer)

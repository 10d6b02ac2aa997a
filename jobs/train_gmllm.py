"""Pre-train the G-MLLM for a run date and register it as the ``base`` of ``osmf-gmllm``.

Reads (and records as lineage) ``groups``, ``group_creative_ctr`` and ``group_preference_pairs``
of the run date, plus ``products`` and ``creatives``. Trains a byte-level BPE tokenizer on the
lake's text, builds the LM from config (or ``lm_path``), pre-trains on two tasks per (product,
group) (describe the group; write the background of its preferred creative), logs params,
metrics, the loss curve, and registers the model with alias ``base``: the reference Group-DPO
starts from.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import pandas as pd

from osmf import registry
from osmf.entrypoint import job_parser, run_main
from osmf.lake import Lake
from osmf.settings import Settings, load_models
from osmf.training_data import load_group_data

log = logging.getLogger("osmf.train_gmllm")


def gmllm_config(group_dim: int, env: dict | None = None):
    from osmf_models.gmllm import GMLLMConfig

    m = load_models(env)
    cfg = GMLLMConfig.tiny(group_dim) if m.size == "tiny" else GMLLMConfig(group_dim=group_dim)
    if m.gmllm_epochs:
        cfg.epochs = m.gmllm_epochs
    if m.gmllm_max_steps >= 0:
        cfg.max_steps = m.gmllm_max_steps
    return cfg


def input_example(d) -> pd.DataFrame:
    """The first example in the registered model's input format."""
    r = d.ex.iloc[0]
    return pd.DataFrame({"title": [r["title"]], "group_features": [list(map(float, r["features"]))],
                         "image_path": [str((d.home / r["image_uri"]).resolve())]})


def build_model(d, cfg):
    from osmf_models.gmllm import GMLLM
    from osmf_models.gmllm.data import corpus
    from osmf_models.gmllm.model import real_tokenizer
    from osmf_models.gmllm.tokenizer import train_tokenizer

    f = d.frames
    tok = real_tokenizer(cfg) if cfg.lm_path else train_tokenizer(corpus(f["groups"], f["products"], f["creatives"]),
                                                                  cfg.vocab_size)
    return GMLLM(cfg, tok)


def run(run_date: str, settings: Settings, lake: Lake | None = None, say=None) -> dict:
    import mlflow

    from osmf import plots, tracking
    from osmf_models.gmllm.train import pretrain

    lake = lake or Lake(settings)
    d = load_group_data(lake, settings.home, run_date)
    cfg = gmllm_config(d.G.shape[1])
    model = build_model(d, cfg)
    tracking.setup(settings)
    with mlflow.start_run(run_name=f"gmllm-pretrain-{run_date}") as run:
        mlflow.set_tags({"osmf.model": registry.GMLLM, "osmf.stage": "pretrained", "osmf.run_date": run_date})
        mlflow.log_params({f"gmllm.{k}": v for k, v in cfg.to_dict().items()})
        tracking.log_lineage(lake, d.pinned.lineage())
        metrics, curves = pretrain(model, d.ex, d.G, d.images(cfg.image_size), say=say)
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        for step, value in enumerate(curves["loss"]):
            mlflow.log_metric("train_loss", value, step=step)
        with tempfile.TemporaryDirectory(dir=settings.home) as tmp:
            tmp = Path(tmp)
            mlflow.log_artifact(str(plots.loss_plot({"completion NLL": curves["loss"]}, tmp / "loss.png",
                                                    title="G-MLLM pre-training")), "plots")
            version = registry.register(registry.GMLLM, model.save(tmp / "gmllm"), input_example(d), alias="base",
                                        tags={"stage": "pretrained", "run_date": run_date,
                                              "prompt_exact_match": metrics["prompt_exact_match"]})
        metrics.update(run_id=run.info.run_id, version=version)
    log.info("G-MLLM %s: registered %s version %s as base", run_date, registry.GMLLM, version)
    return metrics


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    return run_main(parser, lambda a, s: print(json.dumps(run(a.run_date, s), indent=1, default=str)), argv)


if __name__ == "__main__":
    raise SystemExit(main())

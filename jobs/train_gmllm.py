"""Pre-train the G-MLLM for a run date and register it as the ``base`` of ``osmf-gmllm``.

Reads (and records as lineage) ``groups`` and ``group_creative_ctr`` of the run date, plus
``products`` and ``creatives``. Trains a byte-level BPE tokenizer on the world's text, builds the
LM from config (or ``lm_path``), pre-trains on two tasks per (product, group) (describe the group;
write the background of its preferred creative), logs params, metrics, the loss curve, and
registers the model with alias ``base``: the reference Group-DPO starts from.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jobs._common import job_parser, run_main
from osmf.generation import GMLLM_NAME
from osmf.lake import Lake
from osmf.settings import Settings, load_models

log = logging.getLogger("osmf.train_gmllm")
READS = ("groups", "group_creative_ctr", "group_preference_pairs")
DIMS = ("products", "creatives")


@dataclass
class GroupData:
    versions: dict
    frames: dict
    ex: object  # DataFrame: one row per (product, group)
    G: object  # group features (N, D)
    home: Path

    def images(self, size: int):
        """The examples' product images at a model's image size (N, 3, size, size)."""
        from osmf_models.gmllm.data import product_images

        return product_images(self.ex, self.home, size)


def load_group_data(lake: Lake, settings: Settings, run_date: str, versions: dict | None = None) -> GroupData:
    """The run date's groups as G-MLLM examples, at pinned table versions (default: the latest)."""
    from osmf_models.gmllm.data import group_examples, group_tensor

    versions = versions or {t: lake.version(t) for t in (*READS, *DIMS)}
    frames = {t: lake.read_pandas(t, version=versions[t], partition=run_date) for t in READS}
    frames.update({t: lake.read_pandas(t, version=versions[t]) for t in DIMS})
    if frames["groups"].empty or frames["group_creative_ctr"].empty:
        raise ValueError(f"no groups for {run_date}; run `osmf regroup --date {run_date}`")
    ex = group_examples(frames["groups"], frames["products"], frames["creatives"], frames["group_creative_ctr"])
    return GroupData(versions, frames, ex, group_tensor(ex), Path(settings.home))


def gmllm_config(group_dim: int, env: dict | None = None):
    from osmf_models.gmllm import GMLLMConfig

    m = load_models(env)
    cfg = GMLLMConfig.tiny(group_dim) if m.size == "tiny" else GMLLMConfig(group_dim=group_dim)
    if m.gmllm_epochs:
        cfg.epochs = m.gmllm_epochs
    return cfg


def run(run_date: str, settings: Settings, lake: Lake | None = None, say=None) -> dict:
    import mlflow

    from osmf import tracking
    from osmf_models.gmllm import GMLLM
    from osmf_models.gmllm.data import corpus
    from osmf_models.gmllm.model import real_tokenizer
    from osmf_models.gmllm.pyfunc import GMLLMPyfunc
    from osmf_models.gmllm.tokenizer import train_tokenizer
    from osmf_models.gmllm.train import pretrain

    lake = lake or Lake(settings)
    d = load_group_data(lake, settings, run_date)
    cfg = gmllm_config(d.G.shape[1])
    f = d.frames
    tok = real_tokenizer(cfg) if cfg.lm_path else train_tokenizer(corpus(f["groups"], f["products"], f["creatives"]), cfg.vocab_size)
    model = GMLLM(cfg, tok)
    tracking.setup(settings)
    with mlflow.start_run(run_name=f"gmllm-pretrain-{run_date}") as run:
        mlflow.set_tags({"osmf.model": GMLLM_NAME, "osmf.stage": "pretrained", "osmf.run_date": run_date})
        mlflow.log_params({f"gmllm.{k}": v for k, v in cfg.to_dict().items()})
        tracking.log_lineage(lake, {t: (d.versions[t], f[t]) for t in (*READS, *DIMS)})
        metrics, curves = pretrain(model, d.ex, d.G, d.images(cfg.image_size), say=say)
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        for step, value in enumerate(curves["loss"]):
            mlflow.log_metric("train_loss", value, step=step)
        with tempfile.TemporaryDirectory(dir=settings.home) as tmp:
            tmp = Path(tmp)
            mlflow.log_artifact(str(tracking.loss_plot({"completion NLL": curves["loss"]}, tmp / "loss.png",
                                                       title="G-MLLM pre-training")), "plots")
            version = tracking.register(GMLLM_NAME, model.save(tmp / "gmllm"), GMLLMPyfunc(), alias="base",
                                        tags={"stage": "pretrained", "run_date": run_date,
                                              "prompt_style_match": metrics["prompt_style_match"]})
        metrics.update(run_id=run.info.run_id, version=version)
    log.info("G-MLLM %s: registered %s version %s as base", run_date, GMLLM_NAME, version)
    return metrics


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    return run_main(parser, lambda a, s: print(json.dumps(run(a.run_date, s), indent=1, default=str)), argv)


if __name__ == "__main__":
    raise SystemExit(main())

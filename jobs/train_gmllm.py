"""Pre-train the G-MLLM for a run date and register it as the ``base`` of ``osmf-gmllm``.

Reads (and records as lineage) ``groups``, ``group_creative_ctr`` and ``group_preference_pairs``
of the run date, plus ``products`` and ``creatives``. Trains a byte-level BPE tokenizer on the
lake's text, builds the LM from config (or ``lm_path``), pre-trains on two tasks per (product,
group) (describe the group; write the background of its preferred creative), logs params,
metrics, the loss curve, and registers the model with alias ``base``: the reference Group-DPO
starts from.

In the nightly chain the step skips when a ``base`` exists (pre-training is done once), unless the
run's conf says ``{"pretrain": true}``; ``osmf train gmllm`` and ``python -m jobs.train_gmllm``
always train.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from osmf.runtime.context import JobContext
from osmf.runtime.entrypoint import job_main

log = logging.getLogger("osmf.train_gmllm")


def build_model(d, cfg):
    from osmf_models.gmllm import GMLLM
    from osmf_models.gmllm.data import corpus
    from osmf_models.gmllm.model import real_tokenizer
    from osmf_models.gmllm.tokenizer import train_tokenizer

    f = d.frames
    tok = real_tokenizer(cfg) if cfg.lm_path else train_tokenizer(corpus(f["groups"], f["products"], f["creatives"]),
                                                                  cfg.vocab_size)
    return GMLLM(cfg, tok)


def base_exists(ctx: JobContext) -> str | None:
    """Why the chain's pre-training step has nothing to do (a ``base`` exists and the conf does not
    ask to retrain), or None."""
    from osmf.tracking import registry
    from osmf.tracking import runs as tracking

    tracking.setup(ctx.settings)
    base = registry.version_of(registry.GMLLM, "base")
    if base is not None and not ctx.conf.get("pretrain"):
        return f"base version {base.version} exists (set conf pretrain=true to retrain)"
    return None


def run(ctx: JobContext) -> dict:
    import mlflow

    from osmf.data.audience import rule_of
    from osmf.data.training import load_group_data
    from osmf.reports import plots
    from osmf.tracking import registry
    from osmf.tracking import runs as tracking
    from osmf_models.gmllm import GMLLMConfig, lifecycle
    from osmf_models.gmllm.train import pretrain

    settings, lake, run_date = ctx.settings, ctx.lake, ctx.run_date
    d = load_group_data(lake, settings.asset_root, run_date, target=settings.models.sft_target)
    cfg = GMLLMConfig.from_section(settings.models, d.G.shape[1])
    model = build_model(d, cfg)
    tracking.setup(settings)
    with mlflow.start_run(run_name=f"gmllm-pretrain-{run_date}") as run:
        mlflow.set_tags({"osmf.model": registry.GMLLM, "osmf.stage": "pretrained", "osmf.run_date": run_date})
        mlflow.log_params({f"gmllm.{k}": v for k, v in cfg.to_dict().items()})
        tracking.log_lineage(lake, d.pinned.lineage())
        tracking.log_heldout_rule(rule_of(settings, run_date))
        metrics, curves = pretrain(model, d.ex, d.G, d.images(cfg.image_size), say=ctx.say)
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        for step, value in enumerate(curves["loss"]):
            mlflow.log_metric("train_loss", value, step=step)
        with tempfile.TemporaryDirectory(dir=settings.home) as tmp:
            tmp = Path(tmp)
            mlflow.log_artifact(str(plots.loss_plot({"completion NLL": curves["loss"]}, tmp / "loss.png",
                                                    title="G-MLLM pre-training")), "plots")
            version = registry.register(registry.GMLLM, model.save(tmp / "gmllm"),
                                        lifecycle.input_example(d.ex, settings.asset_root), alias="base",
                                        tags={"stage": "pretrained", "run_date": run_date,
                                              "prompt_exact_match": metrics["prompt_exact_match"]})
        metrics.update(run_id=run.info.run_id, version=version)
    log.info("G-MLLM %s: registered %s version %s as base", run_date, registry.GMLLM, version)
    return metrics


def main(argv=None) -> int:
    return job_main(run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())

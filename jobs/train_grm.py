"""Train the group reward model (GRM) for a run date; register it as the ``challenger`` of
``osmf-grm``; ``promote`` makes it ``champion`` when it beats the champion on its pinned data.

Reads (and records as lineage) ``group_creative_ctr``, ``group_preference_pairs`` and ``groups``
of the run date, plus ``creatives``. Logs params, metrics (held-out pair accuracy and AUROC next to
the group-blind baseline), the loss curve and a calibration plot.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from osmf.runtime.context import JobContext
from osmf.runtime.entrypoint import job_main

log = logging.getLogger("osmf.train_grm")
LINEAGE = ("group_creative_ctr", "group_preference_pairs", "groups", "creatives")


def build(lake, settings, run_date: str, cfg=None, versions: dict | None = None):
    """(pinned data, config, GRMData) of a run date."""
    from osmf.data.training import load_pinned
    from osmf_models.grm import GRMConfig
    from osmf_models.grm.train import build_data

    d = load_pinned(lake, run_date, versions)
    f = d.frames
    group_dim = len(f["groups"]["features"].iloc[0])
    cfg = cfg or GRMConfig(group_dim=group_dim)
    cfg.group_dim = group_dim
    data = build_data(f["group_creative_ctr"], f["groups"], f["creatives"], f["group_preference_pairs"],
                      settings.asset_root, cfg)
    return d, cfg, data


def _log_plots(model, data, curves, tmp: Path) -> None:
    import mlflow

    from osmf.reports import plots
    from osmf_models.grm.train import calibration

    mlflow.log_artifact(str(plots.loss_plot({"pointwise + pairwise loss": curves["loss"]}, tmp / "loss.png",
                                            title="GRM training")), "plots")
    mlflow.log_artifact(str(plots.calibration_plot(*calibration(model, data), tmp / "calibration.png")), "plots")


def run(ctx: JobContext) -> dict:
    """The job contract: train and register the challenger with the default config."""
    return train(ctx, None)


def train(ctx: JobContext, cfg=None) -> dict:
    """Train and register the challenger (``cfg``: a ``GRMConfig`` to use instead of the default)."""
    import mlflow

    from osmf.data.audience import rule_of
    from osmf.tracking import registry
    from osmf.tracking import runs as tracking
    from osmf_models.grm import lifecycle
    from osmf_models.grm.train import train_grm

    settings, lake, run_date = ctx.settings, ctx.lake, ctx.run_date
    d, cfg, data = build(lake, settings, run_date, cfg)
    tracking.setup(settings)
    with mlflow.start_run(run_name=f"grm-{run_date}") as run:
        mlflow.set_tags({"osmf.model": registry.GRM, "osmf.run_date": run_date})
        mlflow.log_params({f"grm.{k}": v for k, v in cfg.to_dict().items()})
        tracking.log_lineage(lake, d.lineage(LINEAGE))
        tracking.log_heldout_rule(rule_of(settings, run_date))
        model, metrics, curves = train_grm(data, cfg)
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))})
        for step, value in enumerate(curves["loss"]):
            mlflow.log_metric("train_loss", value, step=step)
        with tempfile.TemporaryDirectory(dir=settings.home) as tmp:
            tmp = Path(tmp)
            _log_plots(model, data, curves, tmp)
            version = registry.register(registry.GRM, model.save(tmp / "grm"),
                                        lifecycle.input_example(data, settings.asset_root),
                                        tags={"run_date": run_date, "grm_pair_accuracy": metrics["grm_pair_accuracy"]})
        metrics.update(run_id=run.info.run_id, version=version)
    log.info("GRM %s: registered %s version %s as challenger", run_date, registry.GRM, version)
    return metrics


def evaluator(ctx: JobContext, run_date: str):
    """Promotion's evaluator: the GRM's promotion metric of a registered version on pinned data."""
    from osmf.tracking import registry
    from osmf_models.grm import lifecycle

    def evaluate(model_uri: str, lineage: dict) -> float:
        inner = registry.load_uri(model_uri)
        _, _, data = build(ctx.lake, ctx.settings, run_date, cfg=inner.cfg, versions=lineage)
        return lifecycle.promotion_metric(inner, data)

    return evaluate


def promote(ctx: JobContext) -> dict:
    """Promote the GRM challenger if it beats the champion on the challenger's pinned data."""
    from osmf.tracking import registry
    from osmf.tracking import runs as tracking

    tracking.setup(ctx.settings)
    run_date = registry.run_tags(registry.GRM, "challenger")["osmf.run_date"]
    return registry.promote(registry.GRM, evaluator(ctx, run_date))


def main(argv=None) -> int:
    return job_main(run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())

"""Train the group reward model for a run date, track it in MLflow, register it as the
``challenger`` of ``osmf-grm``.

Reads (and records as lineage) ``group_creative_ctr``, ``group_preference_pairs`` and ``groups``
of the run date, plus ``creatives``. Logs params, metrics (held-out pair accuracy and AUROC next to
the group-blind baseline), the loss curve and a calibration plot.
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
from osmf.settings import Settings
from osmf.training_data import load_pinned

log = logging.getLogger("osmf.train_grm")
LINEAGE = ("group_creative_ctr", "group_preference_pairs", "groups", "creatives")


def build(lake: Lake, settings: Settings, run_date: str, cfg=None, versions: dict | None = None):
    """(pinned data, config, GRMData) of a run date."""
    from osmf_models.grm import GRMConfig
    from osmf_models.grm.train import build_data

    d = load_pinned(lake, run_date, versions)
    f = d.frames
    group_dim = len(f["groups"]["features"].iloc[0])
    cfg = cfg or GRMConfig(group_dim=group_dim)
    cfg.group_dim = group_dim
    data = build_data(f["group_creative_ctr"], f["groups"], f["creatives"], f["group_preference_pairs"],
                      settings.home, cfg)
    return d, cfg, data


def input_example(data, home: Path) -> pd.DataFrame:
    """The first training row in the registered model's input format."""
    r = data.rows.iloc[0]
    return pd.DataFrame({"group_features": [list(map(float, r["features"]))],
                         "image_path": [str((Path(home) / r["image_uri"]).resolve())], "prompt": [r["background_prompt"]]})


def _log_plots(model, data, curves, tmp: Path) -> None:
    import mlflow

    from osmf import plots
    from osmf_models.grm.train import calibration

    mlflow.log_artifact(str(plots.loss_plot({"pointwise + pairwise loss": curves["loss"]}, tmp / "loss.png",
                                            title="GRM training")), "plots")
    mlflow.log_artifact(str(plots.calibration_plot(*calibration(model, data), tmp / "calibration.png")), "plots")


def run(run_date: str, settings: Settings, cfg=None, lake: Lake | None = None, say=None) -> dict:
    import mlflow

    from osmf import tracking
    from osmf_models.grm.train import train_grm

    lake = lake or Lake(settings)
    d, cfg, data = build(lake, settings, run_date, cfg)
    tracking.setup(settings)
    with mlflow.start_run(run_name=f"grm-{run_date}") as run:
        mlflow.set_tags({"osmf.model": registry.GRM, "osmf.run_date": run_date})
        mlflow.log_params({f"grm.{k}": v for k, v in cfg.to_dict().items()})
        tracking.log_lineage(lake, d.lineage(LINEAGE))
        model, metrics, curves = train_grm(data, cfg)
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))})
        for step, value in enumerate(curves["loss"]):
            mlflow.log_metric("train_loss", value, step=step)
        with tempfile.TemporaryDirectory(dir=settings.home) as tmp:
            tmp = Path(tmp)
            _log_plots(model, data, curves, tmp)
            version = registry.register(registry.GRM, model.save(tmp / "grm"), input_example(data, settings.home),
                                        tags={"run_date": run_date, "grm_pair_accuracy": metrics["grm_pair_accuracy"]})
        metrics.update(run_id=run.info.run_id, version=version)
    log.info("GRM %s: registered %s version %s as challenger", run_date, registry.GRM, version)
    return metrics


def evaluate_uri(settings: Settings, run_date: str, lake: Lake | None = None):
    """An evaluator for promotion: held-out pair accuracy of a registered GRM on pinned data."""

    def evaluate(model_uri: str, lineage: dict) -> float:
        from osmf_models.grm.train import heldout_pair_accuracy

        inner = registry.load_uri(model_uri)
        _, _, data = build(lake or Lake(settings), settings, run_date, cfg=inner.cfg, versions=lineage)
        return heldout_pair_accuracy(inner, data)

    return evaluate


def promote(settings: Settings, lake: Lake | None = None) -> dict:
    """Promote the GRM challenger if it beats the champion on the challenger's pinned data."""
    from osmf import tracking

    tracking.setup(settings)
    run_date = registry.run_tags(registry.GRM, "challenger")["osmf.run_date"]
    return registry.promote(registry.GRM, evaluate_uri(settings, run_date, lake), "pair_accuracy")


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    return run_main(parser, lambda a, s: print(json.dumps(run(a.run_date, s), indent=1, default=str)), argv)


if __name__ == "__main__":
    raise SystemExit(main())

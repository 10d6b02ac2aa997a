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

from jobs._common import job_parser, run_main
from osmf.lake import Lake
from osmf.settings import Settings

log = logging.getLogger("osmf.train_grm")
MODEL_NAME = "osmf-grm"
READS = ("group_creative_ctr", "group_preference_pairs", "groups")


def load_pinned(lake: Lake, run_date: str, versions: dict | None = None) -> dict:
    """The GRM's inputs of a run date, at pinned table versions (default: the latest)."""
    versions = versions or {t: lake.version(t) for t in (*READS, "creatives")}
    frames = {t: lake.read_pandas(t, version=versions[t], partition=run_date) for t in READS}
    frames["creatives"] = lake.read_pandas("creatives", version=versions["creatives"])
    if frames["group_creative_ctr"].empty:
        raise ValueError(f"group_creative_ctr has no rows for {run_date}; run `osmf regroup --date {run_date}`")
    return {"versions": versions, **frames}


def build(lake: Lake, settings: Settings, run_date: str, cfg=None, versions: dict | None = None):
    from osmf_models.grm import GRMConfig
    from osmf_models.grm.train import build_data

    d = load_pinned(lake, run_date, versions)
    group_dim = len(d["groups"]["features"].iloc[0])
    cfg = cfg or GRMConfig(group_dim=group_dim)
    if cfg.group_dim != group_dim:
        cfg.group_dim = group_dim
    data = build_data(d["group_creative_ctr"], d["groups"], d["creatives"], d["group_preference_pairs"], settings.home, cfg)
    return d, cfg, data


def run(run_date: str, settings: Settings, cfg=None, lake: Lake | None = None, say=None) -> dict:
    import mlflow

    from osmf import tracking
    from osmf_models.grm.pyfunc import GRMPyfunc
    from osmf_models.grm.train import calibration_plot, train_grm

    lake = lake or Lake(settings)
    d, cfg, data = build(lake, settings, run_date, cfg)
    tracking.setup(settings)
    with mlflow.start_run(run_name=f"grm-{run_date}") as run:
        mlflow.set_tags({"osmf.model": MODEL_NAME, "osmf.run_date": run_date})
        mlflow.log_params({f"grm.{k}": v for k, v in cfg.to_dict().items()})
        tracking.log_lineage(lake, {t: (d["versions"][t], d[t]) for t in (*READS, "creatives")})
        model, metrics, curves = train_grm(data, cfg)
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))})
        for step, value in enumerate(curves["loss"]):
            mlflow.log_metric("train_loss", value, step=step)
        with tempfile.TemporaryDirectory(dir=settings.home) as tmp:
            tmp = Path(tmp)
            tracking.loss_plot({"pointwise + pairwise loss": curves["loss"]}, tmp / "loss.png", title="GRM training")
            calibration_plot(model, data, tmp / "calibration.png")
            mlflow.log_artifact(str(tmp / "loss.png"), "plots")
            mlflow.log_artifact(str(tmp / "calibration.png"), "plots")
            model_dir = model.save(tmp / "grm")
            version = tracking.register(MODEL_NAME, model_dir, GRMPyfunc(),
                                        tags={"run_date": run_date, "grm_pair_accuracy": metrics["grm_pair_accuracy"]})
        metrics.update(run_id=run.info.run_id, version=version)
    log.info("GRM %s: registered %s version %s as challenger", run_date, MODEL_NAME, version)
    return metrics


def evaluate_uri(settings: Settings, run_date: str, lake: Lake | None = None):
    """An evaluator for promotion: held-out pair accuracy of a registered GRM on pinned data."""

    def evaluate(model_uri: str, lineage: dict) -> float:
        import mlflow
        import numpy as np

        from osmf_models.grm.train import _mask, heldout_groups, pair_metrics

        from osmf_models.grm.train import score

        lk = lake or Lake(settings)
        inner = mlflow.pyfunc.load_model(model_uri).unwrap_python_model().model
        d, cfg, data = build(lk, settings, run_date, cfg=inner.cfg, versions=lineage)
        scores = score(inner, data)
        held = heldout_groups(data.rows, cfg.holdout_fraction, cfg.seed)
        return pair_metrics(np.asarray(scores), data.pairs[_mask(data.pairs, held)])["pair_accuracy"]

    return evaluate


def promote(settings: Settings, lake: Lake | None = None) -> dict:
    """Promote the GRM challenger if it beats the champion on the challenger's pinned data."""
    import mlflow
    from mlflow import MlflowClient

    from osmf import tracking

    tracking.setup(settings)
    ch = MlflowClient().get_model_version_by_alias(MODEL_NAME, "challenger")
    run_date = mlflow.get_run(ch.run_id).data.tags["osmf.run_date"]
    return tracking.promote(MODEL_NAME, evaluate_uri(settings, run_date, lake), "pair_accuracy")


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    return run_main(parser, lambda a, s: print(json.dumps(run(a.run_date, s), indent=1, default=str)), argv)


if __name__ == "__main__":
    raise SystemExit(main())

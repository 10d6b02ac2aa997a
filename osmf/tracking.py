"""MLflow: tracking under $OSMF_HOME, lineage of the Delta versions a run read, the registry with
``challenger``/``champion`` aliases, and promotion on pinned data.

* Tracking and registry: ``settings.mlflow_uri`` (``sqlite:///$OSMF_HOME/mlflow.db``), artifacts
  in ``$OSMF_HOME/mlartifacts`` (experiment ``osmf``).
* Lineage: ``log_lineage`` logs each table read as an MLflow dataset whose source is a
  ``DeltaDatasetSource`` with the exact table version (``mlflow.log_input``), and as run tags
  ``lineage.<table> = <version>`` so promotion can read the same versions back.
* Registry: a new version gets the alias ``challenger``. ``promote`` evaluates challenger and
  champion on the data pinned by the challenger's run and moves ``champion`` only if the challenger
  is strictly better; the decision is written as version tags on both.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

log = logging.getLogger("osmf.tracking")
EXPERIMENT = "osmf"


def setup(settings) -> str:
    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    settings.home.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.mlflow_uri)
    mlflow.set_registry_uri(settings.mlflow_uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        mlflow.create_experiment(EXPERIMENT, artifact_location=Path(settings.mlflow_artifacts).resolve().as_uri())
    mlflow.set_experiment(EXPERIMENT)
    return settings.mlflow_uri


def log_lineage(lake, reads: dict[str, tuple[int, object]], context: str = "training") -> None:
    """``reads``: table -> (version, DataFrame as read). One MLflow dataset per table."""
    import warnings

    import mlflow
    from mlflow.data.delta_dataset_source import DeltaDatasetSource

    warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column.*")
    for table, (version, df) in reads.items():
        src = DeltaDatasetSource(path=str(lake.path(table).resolve()), delta_table_version=int(version))
        nested = [c for c in df.columns if len(df) and not isinstance(df[c].iloc[0], (str, int, float, bool, type(None)))
                  and df[c].dtype == object]
        ds = mlflow.data.from_pandas(df.drop(columns=nested), source=src, name=f"{table}@v{version}")
        mlflow.log_input(ds, context=context)
        mlflow.set_tag(f"lineage.{table}", str(version))


def register(name: str, model_dir: Path, python_model, tags: dict | None = None, alias: str = "challenger") -> str:
    """Log the model directory as a pyfunc model, register a new version, alias it (``challenger``)."""
    import mlflow
    from mlflow import MlflowClient

    info = mlflow.pyfunc.log_model(name="model", python_model=python_model,
                                   artifacts={"model_dir": str(model_dir)}, registered_model_name=name,
                                   pip_requirements=["osmf"])
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.set_registered_model_alias(name, alias, version)
    for k, v in (tags or {}).items():
        client.set_model_version_tag(name, version, k, str(v))
    return version


def loss_plot(curves: dict, path: Path, xlabel: str = "epoch", title: str = "training") -> Path:
    """One panel per curve (name -> values), saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4.5 * len(curves), 3), squeeze=False)
    for ax, (name, values) in zip(axes[0], curves.items()):
        ax.plot(values)
        ax.set_xlabel(xlabel)
        ax.set_title(name)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def promote(name: str, evaluate: Callable[[str, dict], float], metric: str) -> dict:
    """Compare ``models:/name@challenger`` with ``@champion`` on the challenger's pinned data.

    ``evaluate(model_uri, lineage)`` returns the metric (higher is better); ``lineage`` is the
    challenger run's ``lineage.<table>`` tags. Returns the decision."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        ch = client.get_model_version_by_alias(name, "challenger")
    except MlflowException:
        raise ValueError(f"registered model {name!r} has no 'challenger' version; train one first") from None
    run = mlflow.get_run(ch.run_id)
    lineage = {k.removeprefix("lineage."): int(v) for k, v in run.data.tags.items() if k.startswith("lineage.")}
    try:
        champ = client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        champ = None
    ch_score = evaluate(f"models:/{name}@challenger", lineage)
    if champ is None:
        decision = {"promoted": True, "reason": "no champion yet", "challenger": ch.version,
                    metric: ch_score}
    elif champ.version == ch.version:
        decision = {"promoted": False, "reason": "challenger is already champion", "challenger": ch.version}
    else:
        champ_score = evaluate(f"models:/{name}@champion", lineage)
        better = ch_score > champ_score
        decision = {"promoted": better, "challenger": ch.version, "champion": champ.version,
                    f"challenger_{metric}": ch_score, f"champion_{metric}": champ_score,
                    "reason": f"challenger {metric} {ch_score:.4f} {'>' if better else '<='} champion {champ_score:.4f}"}
    decision["pinned_data"] = lineage
    for version in {ch.version, champ.version if champ else ch.version}:
        client.set_model_version_tag(name, version, "promotion.decision",
                                     f"{'promoted' if decision['promoted'] else 'refused'}: {decision['reason']}")
    if decision["promoted"]:
        client.set_registered_model_alias(name, "champion", ch.version)
    log.info("promote %s: %s", name, decision)
    return decision

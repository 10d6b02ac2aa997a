"""MLflow tracking: where runs go, and the lineage of the Delta versions a run read. The registry
(names, aliases, promotion) is ``osmf.tracking.registry``.

* Tracking and registry: ``settings.mlflow_uri`` (``sqlite:///$OSMF_HOME/mlflow.db``), artifacts
  in ``$OSMF_HOME/mlartifacts`` (experiment ``osmf``). With a tracking server (an ``http(s)://``
  URI) the experiment takes the server's artifact location (``mlflow-artifacts:/...``): artifacts
  go through the server, so a model registered on one host loads on another with only the URL.
* Lineage: ``log_lineage`` logs each table read as an MLflow dataset whose source is a
  ``DeltaDatasetSource`` with the exact table version (``mlflow.log_input``), and as run tags
  ``lineage.<table> = <version>`` so promotion can read the same versions back.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("osmf.tracking")
EXPERIMENT = "osmf"


def _mlflow_logs_to_stdout() -> None:
    """MLflow's own INFO lines ("Registered model ...") go to stdout: on stderr, MLflow's default,
    Airflow logged every one of them at level error."""
    import sys

    for handler in logging.getLogger("mlflow").handlers:
        if isinstance(handler, logging.StreamHandler) and type(handler.stream).__name__ == "MlflowLoggingStream":
            handler.setStream(sys.stdout)


def setup(settings) -> str:
    import mlflow

    _mlflow_logs_to_stdout()
    settings.home.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.mlflow_uri)
    mlflow.set_registry_uri(settings.mlflow_uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        mlflow.create_experiment(EXPERIMENT, artifact_location=artifact_location(settings))
    mlflow.set_experiment(EXPERIMENT)
    return settings.mlflow_uri


def artifact_location(settings) -> str | None:
    """Where a new experiment keeps its artifacts: the server's own store (``None``: the server
    decides, proxied) for an HTTP tracking URI, else ``$OSMF_HOME/mlartifacts``."""
    if settings.mlflow_uri.startswith(("http://", "https://")):
        return None
    return Path(settings.mlflow_artifacts).resolve().as_uri()


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



def log_heldout_rule(rule: dict) -> None:
    """Tag the active run with the held-out rule its data was built with (``osmf.data.audience``):
    ``osmf.heldout_fraction`` and ``osmf.heldout_salt``."""
    import mlflow

    mlflow.set_tags({"osmf.heldout_fraction": rule["fraction"], "osmf.heldout_salt": rule["salt"]})

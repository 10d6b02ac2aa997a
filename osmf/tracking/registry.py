"""The model registry (MLflow): the model names, loading by alias, registering, promoting.

* Names: ``osmf-grm`` (the group reward model) and ``osmf-gmllm`` (the G-MLLM).
* Aliases: ``base`` (the pre-trained G-MLLM, Group-DPO's reference), ``challenger`` (every newly
  registered version) and ``champion`` (what generation uses).
* A version is logged as an MLflow pyfunc *from code* (the wrapper file in ``osmf_models/<model>/
  pyfunc.py``) with the model directory as its artifact, so ``models:/<name>@<alias>`` loads in any
  process that has the ``osmf`` package.
* ``promote`` evaluates challenger and champion on the data pinned by the challenger's run (its
  ``lineage.<table>`` tags) and moves ``champion`` only if the challenger is strictly better; the
  decision is written as a version tag on both.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from osmf_models.gmllm import lifecycle as gmllm_lifecycle
from osmf_models.grm import lifecycle as grm_lifecycle

log = logging.getLogger("osmf.registry")

# each model's lifecycle (wrapper, signature, input example, promotion metric) lives beside the model
LIFECYCLES = {m.NAME: m for m in (grm_lifecycle, gmllm_lifecycle)}
GRM = grm_lifecycle.NAME
GMLLM = gmllm_lifecycle.NAME


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


def version_of(name: str, alias: str):
    """The ``ModelVersion`` behind ``name@alias``, or None when the alias is not set."""
    from mlflow.exceptions import MlflowException

    try:
        return _client().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def require(name: str, alias: str):
    """The ``ModelVersion`` behind ``name@alias``; a missing alias raises ``ValueError`` saying how to
    make it."""
    mv = version_of(name, alias)
    if mv is None:
        how = LIFECYCLES[name].HOW_TO_MAKE if name in LIFECYCLES else "osmf train ..."
        raise ValueError(f"no registered model {name}@{alias}; make it with `{how}`")
    return mv


def load_uri(model_uri: str):
    """The inner torch model of a registered pyfunc (``models:/name@alias`` or ``models:/name/3``)."""
    import mlflow

    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().model


def load(name: str, alias: str):
    """(the inner torch model, its registry version) of ``models:/name@alias``."""
    version = str(require(name, alias).version)
    return load_uri(f"models:/{name}/{version}"), version


def run_tags(name: str, alias: str) -> dict:
    """The tags of the training run that made ``name@alias``."""
    import mlflow

    return dict(mlflow.get_run(require(name, alias).run_id).data.tags)


def version_run_id(name: str, version: str) -> str:
    """The id of the training run that made ``name`` version ``version``."""
    return _client().get_model_version(name, str(version)).run_id


def version_metrics(name: str, version: str) -> dict:
    """The metrics of the training run that made ``name`` version ``version``."""
    import mlflow

    return dict(mlflow.get_run(version_run_id(name, version)).data.metrics)


def version_run_tags(name: str, version: str) -> dict:
    """The tags of the training run that made ``name`` version ``version``."""
    import mlflow

    return dict(mlflow.get_run(version_run_id(name, version)).data.tags)


def download_run_artifact(run_id: str, path: str, dst: Path) -> str:
    """A run's artifact (e.g. the plain-DPO baseline logged beside a G-MLLM version) to ``dst``."""
    import mlflow

    return mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(dst))


def register(name: str, model_dir: Path, input_example, tags: dict | None = None, alias: str = "challenger") -> str:
    """Log ``model_dir`` as a pyfunc model (from code) with its signature and ``input_example`` (a
    one-row DataFrame of the signature's columns: MLflow runs the model on it once, so a model that
    cannot serve is never registered), register a new version of ``name``, set ``alias`` and
    ``tags`` on it; returns the version."""
    import mlflow

    lifecycle = LIFECYCLES[name]
    info = mlflow.pyfunc.log_model(name="model", python_model=str(lifecycle.WRAPPER),
                                   artifacts={"model_dir": str(model_dir)}, registered_model_name=name,
                                   signature=lifecycle.signature(), input_example=input_example,
                                   pip_requirements=["osmf"])
    version = str(info.registered_model_version)
    client = _client()
    client.set_registered_model_alias(name, alias, version)
    for k, v in (tags or {}).items():
        client.set_model_version_tag(name, version, k, str(v))
    return version


def promote(name: str, evaluate: Callable[[str, dict], float]) -> dict:
    """Compare ``models:/name@challenger`` with ``@champion`` on the challenger's pinned data.

    ``evaluate(model_uri, lineage)`` returns the model's promotion metric (its lifecycle's
    ``PROMOTION_METRIC``, higher is better); ``lineage`` is the challenger run's ``lineage.<table>``
    tags. Returns the decision."""
    import mlflow

    metric = LIFECYCLES[name].PROMOTION_METRIC
    client = _client()
    ch = version_of(name, "challenger")
    if ch is None:
        raise ValueError(f"registered model {name!r} has no 'challenger' version; train one first")
    lineage = {k.removeprefix("lineage."): int(v) for k, v in mlflow.get_run(ch.run_id).data.tags.items()
               if k.startswith("lineage.")}
    champ = version_of(name, "champion")
    ch_score = evaluate(f"models:/{name}/{ch.version}", lineage)
    if champ is None:
        decision = {"promoted": True, "reason": "no champion yet", "challenger": ch.version, metric: ch_score}
    elif champ.version == ch.version:
        decision = {"promoted": False, "reason": "challenger is already champion", "challenger": ch.version}
    else:
        champ_score = evaluate(f"models:/{name}/{champ.version}", lineage)
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

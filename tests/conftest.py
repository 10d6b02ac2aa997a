"""Shared fixtures: one tiny world and ONE Spark session for the whole test run."""

from __future__ import annotations

import os
import sys

for _k, _v in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
               "PYSPARK_DRIVER_PYTHON": sys.executable, "GX_ANALYTICS_ENABLED": "false"}.items():
    os.environ.setdefault(_k, _v)

import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

# One Airflow home for the whole run (metadata in SQLite), set before anything imports airflow.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="osmf-airflow-"))
for _k, _v in {"AIRFLOW_HOME": str(_AIRFLOW_HOME),
               "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}",
               "AIRFLOW__CORE__DAGS_FOLDER": str(Path(__file__).resolve().parent.parent / "dags"),
               "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
               "OSMF_MODELS_SIZE": "tiny"}.items():
    os.environ[_k] = _v

import contextlib  # noqa: E402

import pytest  # noqa: E402


@contextlib.contextmanager
def env_vars(values: dict):
    """Environment variables set for the duration of a block, then restored (or removed)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="session")
def world_home(tmp_path_factory):
    """A tiny world (landing + dimensions + truth) under its own OSMF_HOME."""
    from osmf.world import WorldConfig, generate_world

    home = tmp_path_factory.mktemp("osmf_home")
    generate_world(WorldConfig.preset("tiny"), home)
    return home


def make_ctx(settings, run_date: str, run_id: str | None = None, spark=None, lake=None, **conf):
    """A job context over ``settings`` (sharing the test run's Spark session and lake when given)."""
    from osmf.runtime.context import JobContext

    return JobContext(settings, run_date, run_id or "", conf, lambda m: None, lake, spark)


@pytest.fixture(scope="session")
def settings(world_home):
    from osmf.config.settings import load_settings

    os.environ["OSMF_HOME"] = str(world_home)
    return load_settings({**os.environ, "OSMF_HOME": str(world_home)})


@pytest.fixture(scope="session")
def spark(settings):
    from osmf.lake.spark import get_spark, stop_spark

    s = get_spark(settings)
    yield s
    stop_spark()


@pytest.fixture(scope="session")
def lake(settings):
    from osmf.lake import Lake

    return Lake(settings)


@pytest.fixture(scope="session")
def ingested(settings, spark, lake):
    """Both days of the tiny world ingested once; returns {date: IngestResult}."""
    from jobs import ingest_events
    from osmf.world import read_manifest

    dates = read_manifest(settings.home)["dates"]
    return {d: ingest_events.ingest_day(make_ctx(settings, d, f"test-{d}", spark, lake)) for d in dates}


@pytest.fixture()
def scratch_settings(tmp_path):
    """Settings over an empty, private OSMF_HOME (for tests that write their own tables)."""
    from osmf.config.settings import load_settings

    return load_settings({**os.environ, "OSMF_HOME": str(tmp_path)})


@pytest.fixture(scope="session")
def grouping_cfg():
    from osmf.config.settings import GroupingConfig

    return GroupingConfig(k_candidates=(2, 3), min_group_size=10, paag_epochs=2, max_iter=50)


@pytest.fixture(scope="session")
def grouped_settings(settings, grouping_cfg):
    """The test run's settings with the small ``[grouping]`` of ``grouping_cfg``."""
    import dataclasses

    return dataclasses.replace(settings, grouping=grouping_cfg)


@pytest.fixture(scope="session")
def regrouped(ingested, grouped_settings, spark, lake):
    """The tiny world's last date regrouped once (PAAG -> groups -> CTR -> validation)."""
    from osmf_app.chain import REGROUP, run_stage

    date = sorted(ingested)[-1]
    out = run_stage(REGROUP, make_ctx(grouped_settings, date, f"regroup-{date}", spark, lake), say=lambda m: None)
    return date, out


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` need CUDA; on a CPU machine they are skipped with the reason."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (marked gpu)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)

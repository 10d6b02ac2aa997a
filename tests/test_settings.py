from pathlib import Path

import pytest

from osmf.config.settings import SettingsError, load_settings


def test_defaults_follow_the_local_state_layout():
    s = load_settings({})
    assert s.home == Path(".osmf")
    assert s.lake_root == Path(".osmf/lake")
    assert s.landing_root == Path(".osmf/landing")
    assert s.truth_root == Path(".osmf/truth")
    assert s.airflow_home == Path(".osmf/airflow")
    assert s.mlflow_uri == f"sqlite:///{Path('.osmf/mlflow.db').resolve()}"
    assert s.lake_backend == "delta-rs"


def test_env_overrides_toml_overrides_defaults(tmp_path):
    cfg = tmp_path / "osmf.toml"
    cfg.write_text('[osmf]\nspark_master = "local[1]"\nspark_shuffle_partitions = 3\n')
    s = load_settings({"OSMF_HOME": str(tmp_path)})
    assert (s.spark_master, s.spark_shuffle_partitions) == ("local[1]", 3)
    s = load_settings({"OSMF_HOME": str(tmp_path), "OSMF_SPARK_SHUFFLE_PARTITIONS": "7"})
    assert s.spark_shuffle_partitions == 7


def test_bad_settings_name_the_key(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[osmf]\nspark_mastr = "local[1]"\n')
    with pytest.raises(SettingsError, match="spark_mastr"):
        load_settings({"OSMF_CONFIG": str(cfg)})
    with pytest.raises(SettingsError, match="OSMF_SPARK_SHUFFLE_PARTITIONS"):
        load_settings({"OSMF_SPARK_SHUFFLE_PARTITIONS": "many"})
    with pytest.raises(SettingsError, match="lake_backend"):
        load_settings({"OSMF_LAKE_BACKEND": "parquet"})
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings({"OSMF_CONFIG": str(tmp_path / "missing.toml")})


def _models(env):
    return load_settings(env).models


def _grouping(env):
    return load_settings(env).grouping


def test_grouping_and_models_tables_name_a_bad_key_or_value(tmp_path):
    cfg = tmp_path / "osmf.toml"
    cfg.write_text('[models]\nbest_of_n = 6\nrenderer = "diffusers"\n[grouping]\nk_candidates = [3, 2]\n')
    m = _models({"OSMF_CONFIG": str(cfg), "OSMF_MODELS_DPO_BETA": "0.2"})
    assert (m.best_of_n, m.renderer, m.dpo_beta) == (6, "diffusers", 0.2)
    assert _grouping({"OSMF_CONFIG": str(cfg)}).k_candidates == (2, 3)
    with pytest.raises(SettingsError, match="'renderer'.*choose one of retrieval, diffusers"):
        _models({"OSMF_MODELS_RENDERER": "dalle"})
    with pytest.raises(SettingsError, match="unknown setting 'beta'"):
        cfg.write_text("[models]\nbeta = 1\n")
        _models({"OSMF_CONFIG": str(cfg)})
    with pytest.raises(SettingsError, match="'best_of_n'.*invalid value"):
        _models({"OSMF_MODELS_BEST_OF_N": "many"})


def test_grouping_engine_is_auto_by_default_with_a_threshold(tmp_path):
    from osmf.config.settings import GroupingConfig

    g = _grouping({})
    assert (g.engine, g.mllib_min_users) == ("auto", GroupingConfig.mllib_min_users) and g.mllib_min_users > 0
    cfg = tmp_path / "osmf.toml"
    cfg.write_text('[grouping]\nengine = "grouped"\nmllib_min_users = 1000\n')
    assert (_grouping({"OSMF_CONFIG": str(cfg)}).engine, _grouping({"OSMF_CONFIG": str(cfg)}).mllib_min_users) == ("grouped", 1000)
    env = {"OSMF_GROUPING_ENGINE": "mllib", "OSMF_GROUPING_MLLIB_MIN_USERS": "20000"}
    assert (_grouping(env).engine, _grouping(env).mllib_min_users) == ("mllib", 20000)
    with pytest.raises(SettingsError, match="'engine'.*choose one of auto, mllib, grouped"):
        _grouping({"OSMF_GROUPING_ENGINE": "sklearn"})
    with pytest.raises(SettingsError, match="'mllib_min_users'.*invalid value"):
        _grouping({"OSMF_GROUPING_MLLIB_MIN_USERS": "many"})


def test_spark_work_is_named_after_the_job_and_date_and_logs_to_stdout(spark, settings):
    from osmf.runtime.context import JobContext

    ctx = JobContext(settings, "2026-01-02", "r", {}, lambda m: None, None, spark, job="osmf_regroup.group_users")
    assert ctx.spark is spark
    assert spark.sparkContext.getLocalProperty("spark.job.description") == "osmf_regroup.group_users 2026-01-02"
    opts = spark.sparkContext.getConf().get("spark.driver.extraJavaOptions")
    config = settings.spark_tmp.resolve() / "log4j2.properties"
    assert f"-Dlog4j.configurationFile=file:{config}" in opts
    assert "appender.console.target = SYSTEM_OUT" in config.read_text()

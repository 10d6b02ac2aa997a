"""The main command end to end on the tiny preset, through Airflow (README command 1 runs it on
`small`): the DAG chain with dag.test, the A/B report, the models in the registry, and a rerun of
the whole chain that changes no table content."""

import contextlib
import io
import json
import subprocess
import sys

import numpy as np
import pytest

ENV = {"OSMF_GROUPING_K_CANDIDATES": "2,3", "OSMF_GROUPING_MIN_GROUP_SIZE": "10", "OSMF_GROUPING_PAAG_EPOCHS": "2",
       "OSMF_GROUPING_EVAL_HOLDOUT_FRACTION": "0.3"}


pytestmark = pytest.mark.slow  # whole-chain tests: minutes, still run by `make test` and CI


def demo_env(home):
    """The tests' world settings and ``OSMF_HOME`` for the duration of a block (restored after)."""
    from conftest import env_vars

    return env_vars({**ENV, "OSMF_HOME": str(home)})


def _run_demo(home):
    """run_demo on the tiny world in its own OSMF_HOME; returns (settings, stdout)."""
    from osmf.config.settings import load_settings
    from osmf.world import WorldConfig
    from osmf_app.demo import run_demo

    with demo_env(home):
        settings = load_settings()
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert run_demo(settings, WorldConfig.preset("tiny")) == 0
    return settings, buf.getvalue()


@pytest.fixture(scope="module")
def demo(tmp_path_factory, spark):
    return _run_demo(tmp_path_factory.mktemp("demo_home"))


def _figures(obj, prefix=""):
    """Every number of a report, by its path (``grouping.ndcg5_by_k.2``)."""
    if isinstance(obj, dict):
        return {k: v for key, val in obj.items() for k, v in _figures(val, f"{prefix}{key}.").items()}
    if isinstance(obj, (int, float)) and not isinstance(obj, bool):
        return {prefix.rstrip("."): obj}
    return {}


def test_same_seeds_on_a_fresh_home_give_the_same_ab_figures(demo, tmp_path_factory):
    """The tiny chain again, on a fresh OSMF_HOME: every figure of the A/B report is identical (so
    no refactor can silently change a result)."""
    first, _ = demo
    second, _ = _run_demo(tmp_path_factory.mktemp("demo_home_again"))
    a = json.loads((first.home / "reports" / "ab_2026-01-02.json").read_text())
    b = json.loads((second.home / "reports" / "ab_2026-01-02.json").read_text())
    fa, fb = _figures(a), _figures(b)
    assert len(fa) > 15 and "ctr_osmf" in fa and "grouping.ari_product_aware" in fa
    assert json.dumps(fa, sort_keys=True) == json.dumps(fb, sort_keys=True)  # exact, NaN included


def test_chain_runs_through_airflow_and_ends_with_the_ab_table(demo):
    settings, out = demo
    for dag_id in ("osmf_ingest", "osmf_regroup", "osmf_train", "osmf_generate"):
        assert f"airflow: {dag_id}" in out
    assert "Simulated A/B on" in out and "oracle fraction" in out
    report = json.loads((settings.home / "reports" / "ab_2026-01-02.json").read_text())
    for key in ("ctr_one_size", "ctr_osmf", "ctr_oracle", "ctr_best_historical", "ctr_one_size_oracle",
                "ctr_group_ceiling", "lift_vs_one_size", "lift_vs_one_size_oracle", "oracle_fraction",
                "osmf_best_style_share", "one_size_best_style_share", "grm_pair_accuracy", "grouping"):
        assert key in report, key
    assert report["judged_on"].startswith("pixels")
    assert report["heldout_users"] > 0 and report["groups"] > 0
    # the derived figures are what their definitions make of the arms' CTRs
    assert report["lift_vs_one_size"] == pytest.approx(report["ctr_osmf"] / report["ctr_one_size"] - 1, abs=1e-12)
    gap = report["ctr_oracle"] - report["ctr_one_size"]
    assert report["oracle_fraction"] == pytest.approx((report["ctr_osmf"] - report["ctr_one_size"]) / gap, abs=1e-12)
    assert report["grouping"]["chosen_k_counts"]  # the grouping report's keys reach the A/B report
    assert report["ceiling_share"] == pytest.approx(
        (report["ctr_group_ceiling"] - report["ctr_one_size_oracle"]) / (report["ctr_oracle"] - report["ctr_one_size_oracle"]),
        abs=1e-12)
    assert report["osmf_reach"] == pytest.approx(
        (report["ctr_osmf"] - report["ctr_one_size_oracle"]) / (report["ctr_group_ceiling"] - report["ctr_one_size_oracle"]),
        abs=1e-12)
    # the oracles bound each other by construction; every arm and figure has a 95% interval around it
    assert report["ctr_oracle"] >= report["ctr_group_ceiling"] >= report["ctr_one_size_oracle"]
    for a in ("one_size", "best_historical", "one_size_oracle", "osmf", "group_best_historical", "group_ceiling", "oracle"):
        lo, hi = report[f"ctr_{a}_ci"]
        assert lo <= report[f"ctr_{a}"] <= hi and hi - lo < 0.05, a
    # the lifts' intervals hold them (osmf may show a group the one-size creative: then that lift and
    # its interval are exactly 0); against the one-size oracle the arms differ and the interval is wide
    for lift in ("lift_vs_one_size", "lift_vs_one_size_oracle"):
        lo, hi = report[f"{lift}_ci"]
        assert lo <= report[lift] <= hi, lift
    lo, hi = report["lift_vs_one_size_oracle_ci"]
    assert lo < hi and "bootstrap over held-out users" in report["intervals"]
    assert report["models"]["heldout_rule"] == {"fraction": settings.grouping.eval_holdout_fraction, "salt": "holdout"}
    assert settings.grouping.eval_holdout_fraction == 0.3  # ENV's, recorded by every model and used by the A/B
    assert f"oracle fraction {report['oracle_fraction']:.3f}" in out  # the printed table is this report
    html = (settings.home / "reports" / "ab_2026-01-02.html").read_text()
    assert html.count("data:image/png;base64,") >= 3


def test_the_ab_refuses_a_model_trained_under_another_heldout_rule(demo):
    import mlflow

    from osmf.evaluation.ab import evaluate_ab
    from osmf.tracking import registry
    from osmf.tracking import runs as tracking

    settings, _ = demo
    tracking.setup(settings)
    grm = registry.version_of(registry.GRM, "champion")
    client = mlflow.MlflowClient()
    recorded = client.get_run(grm.run_id).data.tags["osmf.heldout_fraction"]
    assert float(recorded) == settings.grouping.eval_holdout_fraction
    client.set_tag(grm.run_id, "osmf.heldout_fraction", "0.25")  # as if it had been trained with another fraction
    try:
        with pytest.raises(ValueError, match=rf"different held-out rules.*{registry.GRM} v{grm.version}: fraction 0.25"):
            evaluate_ab("2026-01-02", settings)
    finally:
        client.set_tag(grm.run_id, "osmf.heldout_fraction", recorded)


def test_generated_creatives_keep_the_product_and_record_the_models(demo):
    from PIL import Image

    from osmf.lake import Lake

    settings, _ = demo
    lake = Lake(settings)
    gen = lake.read_pandas("generated_creatives", partition="2026-01-02")
    groups = lake.read_pandas("groups", partition="2026-01-02")
    assert len(gen) == len(groups) and set(gen.renderer) == {"retrieval"}
    assert gen.gmllm_version.notna().all() and gen.grm_version.notna().all()
    products = lake.read_pandas("products").set_index("product_id")
    for row in gen.head(4).itertuples():
        img = np.asarray(Image.open(settings.home / row.image_uri).convert("RGB"))
        prod = np.asarray(Image.open(settings.home / products.loc[row.product_id, "image_uri"]).convert("RGB"))
        mask = np.asarray(Image.open(settings.home / products.loc[row.product_id, "mask_uri"])) > 127
        assert np.array_equal(img[mask], prod[mask])  # product pixels exactly the input's


def test_gmllm_registry_loads_in_a_fresh_process_and_refuses_a_challenger_that_is_not_better(demo):
    import mlflow
    from mlflow import MlflowClient

    from jobs import train_group_dpo
    import pandas as pd

    from osmf.tracking import registry
    from osmf.tracking import runs as tracking
    from osmf.tracking.registry import GMLLM as GMLLM_NAME

    settings, _ = demo
    tracking.setup(settings)
    client = MlflowClient()
    champ = client.get_model_version_by_alias(GMLLM_NAME, "champion")
    assert client.get_model_version_by_alias(GMLLM_NAME, "base").version != champ.version
    code = ("import mlflow, pandas as pd, numpy as np, sys; mlflow.set_tracking_uri(sys.argv[1]); "
            "m = mlflow.pyfunc.load_model('models:/osmf-gmllm@champion'); "
            "print('PROMPT', m.predict(pd.DataFrame({'title': ['x'], 'group_features': [list(np.zeros(int(sys.argv[3])))], "
            "'image_path': [sys.argv[2]]}))[0])")
    inner = mlflow.pyfunc.load_model(f"models:/{GMLLM_NAME}@champion").unwrap_python_model().model
    from osmf.lake import Lake

    img = settings.home / Lake(settings).read_pandas("products").image_uri.iloc[0]
    res = subprocess.run([sys.executable, "-c", code, settings.mlflow_uri, str(img), str(inner.cfg.group_dim)],
                         capture_output=True, text=True)
    assert "PROMPT" in res.stdout, res.stderr[-2000:]
    # the same weights again as challenger: not strictly better, so promotion is refused
    with mlflow.start_run(run_id=champ.run_id):
        example = pd.DataFrame({"title": ["x"], "group_features": [[0.0] * inner.cfg.group_dim], "image_path": [str(img)]})
        version = registry.register(GMLLM_NAME, inner.save(settings.home / "tmp" / "same"), example)
    from conftest import make_ctx

    decision = train_group_dpo.promote(make_ctx(settings, "2026-01-01"))
    assert decision["promoted"] is False and str(decision["challenger"]) == version
    assert client.get_model_version_by_alias(GMLLM_NAME, "champion").version == champ.version
    assert client.get_model_version(GMLLM_NAME, version).tags["promotion.decision"].startswith("refused")


def test_rerunning_the_whole_chain_changes_no_table(demo):
    from osmf.lake import Lake
    from osmf_app.airflow_local import run_chain
    from osmf.lake.tables import TABLES
    from osmf.world import read_manifest

    settings, _ = demo
    lake = Lake(settings)

    def snapshot():
        out = {}
        for name, spec in TABLES.items():
            df = lake.read_pandas(name)
            df = df.map(lambda v: tuple(v) if isinstance(v, (list, np.ndarray)) else v)
            out[name] = df.sort_values(list(spec.key) + ([spec.partition_by] if spec.partition_by else [])).reset_index(drop=True)
        return out

    before = snapshot()
    with demo_env(settings.home):  # the same world settings as the first run
        run_chain(settings, read_manifest(settings.home)["dates"], say=lambda m: None)
    after = snapshot()
    for name in TABLES:
        a, b = before[name], after[name]
        assert list(a.columns) == list(b.columns) and len(a) == len(b), name
        for col in a.columns:  # exact, except floats: Spark's summation order may move the last bits
            x, y = a[col].tolist(), b[col].tolist()
            if any(isinstance(v, float) or (isinstance(v, tuple) and v and isinstance(v[0], float)) for v in x):
                assert np.allclose(np.array(x, dtype=float), np.array(y, dtype=float), rtol=1e-9, atol=1e-12, equal_nan=True), (name, col)
            else:
                assert x == y, (name, col)

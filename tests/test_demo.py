"""The main command end to end on the tiny preset (README command 1 runs it on `small`)."""

import json


def test_demo_runs_end_to_end(tmp_path, monkeypatch, spark, capsys):
    from osmf.demo import run_demo
    from osmf.lake import Lake
    from osmf.settings import load_settings
    from osmf.world import WorldConfig

    env = {"OSMF_HOME": str(tmp_path), "OSMF_GROUPING_K_CANDIDATES": "2,3", "OSMF_GROUPING_MIN_GROUP_SIZE": "10",
           "OSMF_GROUPING_PAAG_EPOCHS": "2"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    settings = load_settings()
    assert run_demo(settings, WorldConfig.preset("tiny")) == 0
    out = capsys.readouterr().out
    assert out.count("table ") == 1  # the lake summary is printed once
    assert "quality gates: all passed" in out and "GRM v1:" in out and "promoted" in out
    report = json.loads((tmp_path / "reports" / "grouping_2026-01-02.json").read_text())
    assert {"ndcg5_by_k", "ari_product_aware", "ari_product_agnostic"} <= set(report)
    lake = Lake(settings)
    assert lake.read_arrow("impressions").num_rows > 0 and lake.read_arrow("groups").num_rows > 0

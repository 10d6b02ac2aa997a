"""DAG integrity: one DagBag, parsed in a fresh interpreter so we can see what parsing imports."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PARSE = r"""
import json, sys
from airflow.sdk import Connection, Variable
def _forbidden(*a, **k):
    raise RuntimeError("Variable/Connection lookup while parsing")
Variable.get = _forbidden
Connection.get = _forbidden
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
out = {"errors": {k: str(v) for k, v in bag.import_errors.items()},
       "heavy": sorted(m for m in ("torch", "pyspark", "transformers", "diffusers", "mlflow", "great_expectations",
                                   "deltalake", "pandas") if m in sys.modules),
       "dags": {}}
for dag_id, dag in bag.dags.items():
    out["dags"][dag_id] = {
        "tags": sorted(dag.tags), "doc": bool(dag.doc_md), "schedule": type(dag.timetable).__name__,
        "max_active_runs": dag.max_active_runs,
        "tasks": {t.task_id: {"retries": t.retries, "timeout": t.execution_timeout.total_seconds() if t.execution_timeout else None,
                              "queue": t.queue, "outlets": [getattr(o, "name", str(o)) for o in t.outlets],
                              "type": type(t).__name__, "upstream": sorted(t.upstream_task_ids),
                              "max_active_tis_per_dag": t.max_active_tis_per_dag}
                  for t in dag.tasks}}
print("JSON" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def parsed():
    res = subprocess.run([sys.executable, "-c", PARSE, str(ROOT / "dags")], capture_output=True, text=True, cwd=ROOT,
                         env={**__import__("os").environ, "OSMF_MODELS_TRAIN_QUEUE": "gpu"})
    line = [x for x in res.stdout.splitlines() if x.startswith("JSON")]
    assert line, res.stderr[-3000:]
    return json.loads(line[-1][4:])


def test_no_import_errors_and_no_heavy_imports_while_parsing(parsed):
    assert parsed["errors"] == {}
    assert parsed["heavy"] == []  # torch, pyspark, mlflow... are imported by tasks, never by parsing


def test_the_four_dags_with_tags_docs_retries_and_timeouts(parsed):
    assert set(parsed["dags"]) == {"osmf_ingest", "osmf_regroup", "osmf_train", "osmf_generate"}
    for dag_id, d in parsed["dags"].items():
        assert "osmf" in d["tags"] and len(d["tags"]) >= 2 and d["doc"], dag_id
        for task_id, t in d["tasks"].items():
            if task_id in GATES:  # waiting or skipping is their answer: no retries
                assert t["retries"] == 0 and t["timeout"], (dag_id, task_id)
                continue
            assert t["retries"] >= 1 and t["timeout"] and t["timeout"] <= 4 * 3600, (dag_id, task_id)


GATES = ("wait_for_landing", "check_inputs")


def test_scheduled_runs_wait_or_skip_and_never_block_triggered_runs(parsed):
    """The nightly ingest run waits for the landing marker with a deferrable sensor (timeout from
    settings) and its runs may overlap; every other stage checks its input first; each step runs
    one at a time per DAG."""
    d = parsed["dags"]
    ingest = d["osmf_ingest"]
    assert ingest["schedule"] == "CronDataIntervalTimetable"  # the run for day D has logical date D
    assert ingest["tasks"]["wait_for_landing"]["type"] == "LandingSensor"
    assert ingest["tasks"]["wait_for_landing"]["timeout"] == 12 * 3600 + 300
    assert ingest["tasks"]["ingest"]["upstream"] == ["wait_for_landing"]
    assert ingest["max_active_runs"] == 8
    for dag_id in ("osmf_regroup", "osmf_train", "osmf_generate"):
        tasks = d[dag_id]["tasks"]
        first = [t for t, v in tasks.items() if not v["upstream"]]
        assert first == ["check_inputs"], dag_id
        assert d[dag_id]["max_active_runs"] == 1
    for dag_id, v in d.items():
        steps = [t for t in v["tasks"] if t not in (*GATES, "publish")]
        assert steps and all(v["tasks"][t]["max_active_tis_per_dag"] == 1 for t in steps), dag_id


def test_assets_chain_the_dags_and_training_goes_to_the_configured_queue(parsed):
    d = parsed["dags"]
    outlets = {dag_id: {o for t in v["tasks"].values() for o in t["outlets"]} for dag_id, v in d.items()}
    assert outlets == {"osmf_ingest": {"impressions"}, "osmf_regroup": {"groups"}, "osmf_train": {"models"},
                       "osmf_generate": {"generated_creatives"}}
    assert d["osmf_regroup"]["schedule"] == d["osmf_generate"]["schedule"] == "AssetOrTimeSchedule"
    assert d["osmf_train"]["schedule"] == "AssetTriggeredTimetable"
    assert {t for t, v in d["osmf_train"]["tasks"].items() if v["queue"] == "gpu"} == {
        "train_grm", "pretrain_gmllm", "group_dpo"}
    assert d["osmf_generate"]["tasks"]["generate"]["queue"] == "gpu"
    assert d["osmf_ingest"]["tasks"]["ingest"]["queue"] != "gpu"


def test_each_dag_is_its_chain_stage(parsed):
    """The DAGs are built from the one chain definition: a gate, one task per step, then publish."""
    from osmf_app.chain import STAGES

    for stage in STAGES:
        tasks = parsed["dags"][stage.dag_id]["tasks"]
        gate = "wait_for_landing" if stage.dag_id == "osmf_ingest" else "check_inputs"
        assert set(tasks) == {gate, *(s.name for s in stage.steps), "publish"}, stage.dag_id
        assert tasks["publish"]["outlets"] == [stage.asset]


def test_the_queue_comes_from_the_settings_file(tmp_path):
    """``[models].train_queue`` in the settings file reaches the DAGs (not only the environment)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "osmf.toml").write_text('[models]\ntrain_queue = "gpu-a100"\n')
    env = {k: v for k, v in __import__("os").environ.items() if k != "OSMF_MODELS_TRAIN_QUEUE"}
    res = subprocess.run([sys.executable, "-c", PARSE, str(ROOT / "dags")], capture_output=True, text=True, cwd=ROOT,
                         env={**env, "OSMF_HOME": str(home)})
    line = [x for x in res.stdout.splitlines() if x.startswith("JSON")]
    assert line, res.stderr[-3000:]
    tasks = json.loads(line[-1][4:])["dags"]["osmf_generate"]["tasks"]
    assert tasks["generate"]["queue"] == "gpu-a100"

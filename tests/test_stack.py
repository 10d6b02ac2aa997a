"""The real stack, end to end: `osmf stack up` starts PostgreSQL, an MLflow server, a Spark standalone
master and worker and Airflow's api-server, scheduler, dag-processor and triggerer as local processes
(on free ports, in a private OSMF_HOME); the tiny world's dates are triggered through the Airflow
REST API; the asset chain regroups, trains and generates by itself; a backfill of the ingest through
`airflow backfill create` leaves the tables as they were; `osmf stack down` leaves no process.

Bounded in time (each wait has a timeout). Marked ``stack``; run in CI by `make test`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from airflow_api import AirflowAPI

pytestmark = [pytest.mark.stack, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
DAGS = ("osmf_ingest", "osmf_regroup", "osmf_train", "osmf_generate")
# loads both champions in a process that knows only the tracking server's URL
PROBE = """
import mlflow, sys
mlflow.set_tracking_uri(sys.argv[1])
c = mlflow.MlflowClient()
print(c.get_experiment_by_name("osmf").artifact_location)
for name in ("osmf-grm", "osmf-gmllm"):
    v = c.get_model_version_by_alias(name, "champion")
    m = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    print(name, v.version, type(m).__name__)
"""
CHAIN_TIMEOUT = 2400  # seconds for the whole tiny chain through the real scheduler (generous: a busy 2-core machine)


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _osmf(home: Path, *args, timeout=600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OSMF_"))}
    env.update({"OSMF_HOME": str(home), "PYTHONUNBUFFERED": "1"})
    return subprocess.run([str(Path(sys.executable).parent / "osmf"), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=home)


@pytest.fixture(scope="module")
def stack_home():
    """A tiny world of ONE day (the tiny preset's two days of impressions on one date: each landed
    date sets off the whole asset chain, so one date is one chain) and a settings file in a fresh
    home that the `postgres` user can reach (as root, Postgres runs as that user); every service on
    a free port."""
    import dataclasses

    from osmf.world import WorldConfig, generate_world

    home = Path(tempfile.mkdtemp(prefix="osmf-stack-"))
    home.chmod(0o755)
    tiny = WorldConfig.preset("tiny")
    generate_world(dataclasses.replace(tiny, days=1, impressions_per_day=tiny.days * tiny.impressions_per_day), home)
    ports = _free_ports(9)
    keys = ("postgres_port", "mlflow_port", "airflow_port", "airflow_log_port", "triggerer_log_port",
            "spark_master_port", "spark_master_ui_port", "spark_worker_ui_port")
    (home / "osmf.toml").write_text(
        '[models]\nsize = "tiny"\n\n[grouping]\nk_candidates = [2, 3]\nmin_group_size = 10\npaag_epochs = 2\n'
        "max_iter = 50\n\n[stack]\n" + "".join(f"{k} = {p}\n" for k, p in zip(keys, ports)))
    yield home
    _osmf(home, "stack", "down")  # whatever happened, stop what was started
    import shutil

    shutil.rmtree(home, ignore_errors=True)


def _stack(home: Path):
    from osmf_app.stack import stack_for
    from osmf.config.settings import load_settings

    return stack_for(load_settings({"OSMF_HOME": str(home)}))


def _tables(home: Path) -> dict:
    """The ingest tables whole, and the group assignments, as sorted records (no timestamps in them)."""
    from osmf.lake import Lake
    from osmf.config.settings import load_settings

    lake = Lake(load_settings({"OSMF_HOME": str(home)}))
    out = {}
    for name in ("impressions", "quarantine", "ingest_audit", "user_groups"):
        df = lake.read_pandas(name)
        out[name] = df.sort_values(list(df.columns)).reset_index(drop=True)
    groups = lake.read_pandas("groups", columns=["run_date", "product_id", "group_id", "k", "size"])
    out["groups"] = groups.sort_values(list(groups.columns)).reset_index(drop=True)
    return out


def _failed(api: AirflowAPI, dag_ids, since: str = "") -> str | None:
    for dag_id in dag_ids:
        for r in api.dag_runs(dag_id):
            if r["state"] == "failed" and r["run_type"] != "scheduled" and (r["start_date"] or "") >= since:
                tis = {t["task_id"]: t["state"] for t in api.task_instances(dag_id, r["dag_run_id"])}
                return f"{dag_id} {r['dag_run_id']} failed: {tis}"
    return None


def test_the_real_stack_end_to_end(stack_home):
    home = stack_home
    t0 = time.perf_counter()
    up = _osmf(home, "stack", "up")
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    again = _osmf(home, "stack", "up")  # idempotent: nothing new starts
    assert again.returncode == 0 and again.stdout.count("already running") == 8, again.stdout[-2000:]
    stack = _stack(home)
    pids_before = {name: stack.process(name).pid for name in stack.services()}
    t_up = time.perf_counter() - t0

    # every service listens on 127.0.0.1 only
    import psutil

    ours = {p.pid for name in pids_before for p in [stack.process(name), *stack.process(name).children(recursive=True)]}
    listening = [c for c in psutil.net_connections("tcp") if c.status == psutil.CONN_LISTEN and c.pid in ours]
    assert listening and all(c.laddr.ip in ("127.0.0.1", "::ffff:127.0.0.1") for c in listening), listening

    secrets = json.loads((home / "stack" / "secrets.json").read_text())
    assert oct((home / "stack" / "secrets.json").stat().st_mode & 0o777) == "0o600"
    api = AirflowAPI(stack.urls()["airflow"], "admin", secrets["airflow_admin_password"])
    api.wait("the DAGs to be parsed", lambda: len(api.call("GET", "dags", dag_id_pattern="osmf%")["dags"]) == 4, 180)
    for dag_id in DAGS:
        api.set_paused(dag_id, False)  # unpausing creates tonight's scheduled runs: they must wait or skip
    from osmf.world import read_manifest

    dates = read_manifest(home)["dates"]
    for day in dates:
        api.trigger("osmf_ingest", day)

    # the asset chain: ingest -> regroup -> train -> generate for the last date, by itself
    def generated_last():
        return any(e["extra"].get("run_date") == dates[-1] for e in api.asset_events("osmf_generate"))

    t1 = time.perf_counter()
    api.wait("osmf_generate for the last date", generated_last, CHAIN_TIMEOUT, fail=lambda: _failed(api, DAGS))
    t_chain = time.perf_counter() - t1

    # tonight's scheduled runs: the ingest waits (deferred) for its landing; regroup and generate skipped
    runs = {d: api.dag_runs(d) for d in DAGS}
    sched = [r for r in runs["osmf_ingest"] if r["run_type"] == "scheduled"]
    assert sched and sched[0]["state"] == "running"
    assert {t["task_id"]: t["state"] for t in api.task_instances("osmf_ingest", sched[0]["dag_run_id"])
            }["wait_for_landing"] == "deferred"
    for dag_id in ("osmf_regroup", "osmf_generate"):
        for r in (r for r in runs[dag_id] if r["run_type"] == "scheduled"):
            states = {t["task_id"]: t["state"] for t in api.task_instances(dag_id, r["dag_run_id"])}
            assert r["state"] == "success" and states["check_inputs"] == "skipped", (dag_id, states)
    assert all(r["state"] == "success" for r in runs["osmf_ingest"] if r["run_type"] == "manual")

    # the tables, and the registry over HTTP from a process that has only the server's URL
    tables = _tables(home)
    assert set(tables["impressions"]["event_date"].astype(str)) == set(dates)
    from osmf.lake import Lake
    from osmf.config.settings import load_settings

    lake = Lake(load_settings({"OSMF_HOME": str(home)}))
    assert lake.has_partition("generated_creatives", dates[-1]) and lake.has_partition("groups", dates[-1])
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, stack.urls()["mlflow"]],
        capture_output=True, text=True, timeout=300, cwd=tempfile.gettempdir(),
        env={**{k: v for k, v in os.environ.items() if not k.startswith(("OSMF_", "MLFLOW_", "AIRFLOW"))},
             "HF_HUB_OFFLINE": "1"})
    assert probe.returncode == 0, probe.stderr[-3000:]
    lines = probe.stdout.strip().splitlines()
    assert lines[0].startswith("mlflow-artifacts:"), lines  # artifacts go through the server
    assert [ln.split()[0] for ln in lines[1:]] == ["osmf-grm", "osmf-gmllm"], lines
    assert any((home / "stack" / "mlartifacts").rglob("MLmodel")) and not (home / "mlartifacts").exists()

    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    # a backfill of the ingest through the CLI, against the running scheduler: the same tables. The
    # stages downstream are paused (a regroup rerun leaving its tables as they were is checked
    # in-process by tests/test_grouping.py), so the backfill's runs are all that runs.
    for dag_id in ("osmf_regroup", "osmf_train", "osmf_generate"):
        api.set_paused(dag_id, True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")} | stack.client_env()
    bf = subprocess.run([str(Path(sys.executable).parent / "airflow"), "backfill", "create", "--dag-id", "osmf_ingest",
                         "--from-date", dates[0], "--to-date", dates[-1], "--reprocess-behavior", "completed"],
                        env=env, capture_output=True, text=True, timeout=300)
    assert bf.returncode == 0, bf.stdout[-2000:] + bf.stderr[-2000:]

    def backfill_done():
        backfills = api.call("GET", "backfills", dag_id="osmf_ingest")["backfills"]
        return bool(backfills) and all(b["completed_at"] for b in backfills)

    api.wait("the backfill", backfill_done, 1800, fail=lambda: _failed(api, ("osmf_ingest",), since))
    backfill_runs = [r for r in api.dag_runs("osmf_ingest") if r["run_type"] == "backfill"]
    assert len(backfill_runs) == len(dates) and all(r["state"] == "success" for r in backfill_runs)
    after = _tables(home)
    for name, df in tables.items():
        assert after[name].equals(df), f"{name} changed after the backfill"

    # down: every process the stack started, and everything they started, is gone
    procs = [p for name in pids_before for p in [stack.process(name), *stack.process(name).children(recursive=True)]]
    down = _osmf(home, "stack", "down")
    assert down.returncode == 0, down.stderr[-2000:]
    left = [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, [(p.pid, p.cmdline()[:4]) for p in left]
    assert not any(str(home / "stack") in " ".join(p.info["cmdline"] or []) for p in
                   psutil.process_iter(["cmdline"]))
    status = _osmf(home, "stack", "status")
    assert status.returncode == 3 and status.stdout.count("stopped") == 8, status.stdout
    print(f"\nstack up {t_up:.0f}s; tiny chain through the real scheduler {t_chain:.0f}s; "
          f"whole test {time.perf_counter() - t0:.0f}s")

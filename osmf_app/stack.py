"""``osmf stack up|status|down``: the production stack as local processes, without Docker.

PostgreSQL (Debian's server; databases ``airflow`` and ``mlflow``), an MLflow tracking server (backend
on Postgres, artifacts proxied: ``mlflow-artifacts:/``), a Spark standalone master and worker, and
Airflow's api-server, scheduler, dag-processor and triggerer (LocalExecutor over Postgres). Every
service listens on ``[stack].host`` (127.0.0.1) at the ports of ``[stack]``; docker-compose.yml runs
the same services with the same settings (``tests/test_compose.py`` checks that they agree).

Everything lives under ``$OSMF_HOME/stack/``: ``secrets.json`` (generated once, mode 600),
``env.sh`` (what a shell needs to use the stack: ``source`` it, then ``airflow ...``),
``pids/<service>.pid``, ``logs/<service>.log``, ``postgres/`` (the data directory),
``mlartifacts/`` (the MLflow server's artifact store) and ``airflow/`` (``AIRFLOW_HOME``).

``up`` is idempotent: a service whose recorded process is alive is left alone. ``down`` stops only
the processes this command started (each pid file records the process's start time, so a reused
pid is never signalled), with everything they started, in an order that lets running tasks finish
or fail cleanly: scheduler, triggerer, dag-processor, api-server, then Spark, MLflow, Postgres.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from osmf_app.stack_env import StackEnv
from osmf_app.stack_postgres import ADMIN, BIN, PostgresBootstrap, StackError, postgres_bindir

UP_ORDER = ("postgres", "mlflow", "spark-master", "spark-worker", "airflow-apiserver", "airflow-scheduler",
            "airflow-dag-processor", "airflow-triggerer")
DOWN_ORDER = ("airflow-scheduler", "airflow-triggerer", "airflow-dag-processor", "airflow-apiserver",
              "spark-worker", "spark-master", "mlflow", "postgres")


@dataclass
class Service:
    name: str
    argv: list[str]
    address: str
    ready: Callable[[], bool]
    env: dict = field(default_factory=dict)
    user: str | None = None  # run as this system user (Postgres, when we are root)
    stop_signal: int = signal.SIGTERM


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _http_json(url: str):
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return json.loads(r.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


class Stack(StackEnv, PostgresBootstrap):
    def __init__(self, settings, cfg):
        self.settings, self.cfg = settings, cfg
        self.home = Path(settings.home).resolve()
        self.dir = settings.stack_root.resolve()
        self.pg_user = "postgres" if os.geteuid() == 0 else None  # Postgres refuses to run as root

    # -- the services --------------------------------------------------------------------------------
    def services(self) -> dict[str, Service]:
        c, u = self.cfg, self.urls()
        spark_class = str(BIN / "spark-class")
        airflow = str(BIN / "airflow")
        health = f"{u['airflow']}/api/v2/monitor/health"

        def airflow_part(part: str) -> Callable[[], bool]:
            return lambda: ((_http_json(health) or {}).get(part) or {}).get("status") == "healthy"

        def worker_alive() -> bool:
            master = _http_json(f"{u['spark_ui']}/json/") or {}
            return any(w.get("state") == "ALIVE" for w in master.get("workers", []))

        try:
            pg_bin = postgres_bindir(c.postgres_bin)
        except StackError:  # reported by `up` (initdb); status and down work without it
            pg_bin = Path("/nonexistent")
        return {s.name: s for s in [
            Service("postgres", [str(pg_bin / "postgres"), "-D", str(self.dir / "postgres"), "-h", c.host,
                                 "-p", str(c.postgres_port), "-k", ""],
                    u["postgres"], self._postgres_ready, user=self.pg_user, stop_signal=signal.SIGINT),
            Service("mlflow", [str(BIN / "mlflow"), "server", "--host", c.host, "--port", str(c.mlflow_port),
                               "--workers", "1", "--serve-artifacts",
                               "--artifacts-destination", str(self.dir / "mlartifacts")],
                    u["mlflow"], lambda: _http_ok(f"{u['mlflow']}/health"),
                    # no job runners (the server's optional job execution, unused here: ~7 idle processes)
                    env={"MLFLOW_BACKEND_STORE_URI": self.db_url("mlflow"), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}),
            Service("spark-master", [spark_class, "org.apache.spark.deploy.master.Master", "--host", c.host,
                                     "--port", str(c.spark_master_port), "--webui-port", str(c.spark_master_ui_port)],
                    u["spark"], lambda: _http_ok(f"{u['spark_ui']}/json/")),
            Service("spark-worker", [spark_class, "org.apache.spark.deploy.worker.Worker", u["spark"], "--host", c.host,
                                     "--webui-port", str(c.spark_worker_ui_port), "--cores", str(c.spark_worker_cores),
                                     "--memory", c.spark_worker_memory, "--work-dir", str(self.dir / "spark-work")],
                    f"http://{c.host}:{c.spark_worker_ui_port}", worker_alive),
            Service("airflow-apiserver", [airflow, "api-server", "--host", c.host, "--port", str(c.airflow_port),
                                          "--workers", "1"], u["airflow"], lambda: _http_ok(health)),
            # no log servers: tasks and triggers write under AIRFLOW_HOME/logs, which the api-server reads
            Service("airflow-scheduler", [airflow, "scheduler", "--skip-serve-logs"], "-", airflow_part("scheduler")),
            Service("airflow-dag-processor", [airflow, "dag-processor"], "-", airflow_part("dag_processor")),
            Service("airflow-triggerer", [airflow, "triggerer", "--skip-serve-logs"], "-", airflow_part("triggerer")),
        ]}

    # -- processes -----------------------------------------------------------------------------------
    def _pidfile(self, name: str) -> Path:
        return self.dir / "pids" / f"{name}.pid"

    def process(self, name: str):
        """The live process this stack started for ``name`` (pid and start time both match), or None."""
        import psutil

        path = self._pidfile(name)
        if not path.exists():
            return None
        try:
            pid, started = path.read_text().split()
            proc = psutil.Process(int(pid))
            if abs(proc.create_time() - float(started)) < 1.0 and proc.status() != psutil.STATUS_ZOMBIE:
                return proc
        except (ValueError, psutil.Error):
            pass
        return None

    def _start(self, svc: Service, say) -> None:
        import psutil

        log = open(self.dir / "logs" / f"{svc.name}.log", "ab")
        proc = subprocess.Popen(svc.argv, env={**self._process_env(), **svc.env}, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, user=svc.user, cwd=self.dir)
        log.close()
        self._pidfile(svc.name).write_text(f"{proc.pid} {psutil.Process(proc.pid).create_time()}\n")
        deadline = time.monotonic() + self.cfg.start_timeout_seconds
        while not svc.ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.dir / "logs" / f"{svc.name}.log").read_text(errors="replace").splitlines()[-25:]
                what = f"exited with {proc.returncode}" if proc.returncode is not None else "did not answer in time"
                raise StackError(f"{svc.name} {what} ({svc.address}); the end of its log "
                                 f"{self.dir / 'logs' / (svc.name + '.log')}:\n" + "\n".join(tail))
            time.sleep(1)

    def _check_port_free(self, svc: Service) -> None:
        ports = {"postgres": "postgres_port", "mlflow": "mlflow_port", "spark-master": "spark_master_port",
                 "spark-worker": "spark_worker_ui_port", "airflow-apiserver": "airflow_port"}
        key = ports.get(svc.name)
        if key and _port_open(self.cfg.host, getattr(self.cfg, key)):
            raise StackError(f"{svc.name}: {self.cfg.host}:{getattr(self.cfg, key)} is taken by another program; "
                             f"stop it or choose another port ([stack].{key}, env OSMF_STACK_{key.upper()})")

    def up(self, say=print) -> dict:
        """Start every service that is not running, in order, each waited for until it answers."""
        for d in ("pids", "logs", "mlartifacts", "spark-work", "airflow"):
            (self.dir / d).mkdir(parents=True, exist_ok=True)
        self.secrets()
        self.write_env_file()
        services = self.services()
        for name in UP_ORDER:  # before anything starts: every port we need is ours to take
            if self.process(name) is None:
                self._check_port_free(services[name])
        t0 = time.perf_counter()
        for name in UP_ORDER:
            svc = services[name]
            if name == "postgres":
                self._init_postgres(say)
            if name == "airflow-apiserver":
                self._migrate_airflow(say)
            running = self.process(name)
            if running is not None:
                say(f"{name}: already running (pid {running.pid})")
            else:
                say(f"[{time.perf_counter() - t0:5.1f}s] {name}: starting ({svc.address})")
                self._start(svc, say)
            if name == "postgres":
                self._create_databases(say)
        say(f"[{time.perf_counter() - t0:5.1f}s] stack up: Airflow {self.urls()['airflow']} (user {ADMIN}, password in "
            f"{self.dir / 'secrets.json'}), MLflow {self.urls()['mlflow']}, Spark {self.urls()['spark']}; "
            f"`source {self.dir / 'env.sh'}` to use it from a shell")
        return self.status()

    def status(self) -> dict:
        out = {}
        for name, svc in self.services().items():
            proc = self.process(name)
            out[name] = {"pid": proc.pid if proc else None,
                         "state": ("ready" if svc.ready() else "starting") if proc else "stopped",
                         "address": svc.address, "log": str(self.dir / "logs" / f"{name}.log")}
        return out

    def down(self, say=print, grace_seconds: float = 30.0) -> list[int]:
        """Stop the services this stack started, with every process they started; returns the pids."""
        import psutil

        stopped: list[int] = []
        services = self.services()
        for name in DOWN_ORDER:
            proc = self.process(name)
            if proc is None:  # never started, already stopped, or the pid now belongs to someone else
                self._pidfile(name).unlink(missing_ok=True)
                continue
            tree = [proc, *proc.children(recursive=True)]
            say(f"{name}: stopping pid {proc.pid} ({len(tree) - 1} child processes)")
            proc.send_signal(services[name].stop_signal)
            _, alive = psutil.wait_procs([proc], timeout=grace_seconds)
            rest = [p for p in tree if p.is_running()] + alive
            for p in rest:
                try:
                    p.terminate()
                except psutil.Error:
                    pass
            _, alive = psutil.wait_procs(rest, timeout=10)
            for p in alive:
                try:
                    p.kill()
                except psutil.Error:
                    pass
            psutil.wait_procs(alive, timeout=10)
            stopped += [p.pid for p in tree]
            self._pidfile(name).unlink(missing_ok=True)
        return stopped


def stack_for(settings=None) -> Stack:
    from osmf.config.settings import load_settings

    settings = settings or load_settings()
    return Stack(settings, settings.stack)

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
import secrets as _secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from osmf_app.airflow_local import DAGS_DIR

BIN = Path(sys.executable).parent
PG_USER = "osmf"  # the database role every service connects as
ADMIN = "admin"  # the Airflow user (simple auth manager)
UP_ORDER = ("postgres", "mlflow", "spark-master", "spark-worker", "airflow-apiserver", "airflow-scheduler",
            "airflow-dag-processor", "airflow-triggerer")
DOWN_ORDER = ("airflow-scheduler", "airflow-triggerer", "airflow-dag-processor", "airflow-apiserver",
              "spark-worker", "spark-master", "mlflow", "postgres")


class StackError(RuntimeError):
    """The stack cannot start or stop; the message says which service and what to do."""


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


def postgres_bindir(configured: str = "") -> Path:
    """Where Debian's PostgreSQL server lives (the newest of /usr/lib/postgresql/*/bin), or
    ``[stack].postgres_bin``."""
    candidates = [Path(configured)] if configured else sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True)
    for d in candidates:
        if (d / "postgres").exists() and (d / "initdb").exists():
            return d
    raise StackError("the PostgreSQL server is not installed (no /usr/lib/postgresql/*/bin/postgres): "
                     "`make setup` installs Debian's postgresql when run as root, or `apt-get install postgresql`, "
                     "or set [stack].postgres_bin")


class Stack:
    def __init__(self, settings, cfg):
        self.settings, self.cfg = settings, cfg
        self.home = Path(settings.home).resolve()
        self.dir = settings.stack_root.resolve()
        self.pg_user = "postgres" if os.geteuid() == 0 else None  # Postgres refuses to run as root

    # -- files ---------------------------------------------------------------------------------------
    def secrets(self) -> dict:
        """Passwords and keys, generated once into ``secrets.json`` (mode 600)."""
        path = self.dir / "secrets.json"
        if path.exists():
            return json.loads(path.read_text())
        from cryptography.fernet import Fernet

        self.dir.mkdir(parents=True, exist_ok=True)
        values = {"postgres_password": _secrets.token_urlsafe(18), "airflow_admin_password": _secrets.token_urlsafe(12),
                  "airflow_jwt_secret": _secrets.token_urlsafe(32), "airflow_api_secret_key": _secrets.token_urlsafe(32),
                  "airflow_fernet_key": Fernet.generate_key().decode()}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(values, fh, indent=1)
        return values

    def urls(self) -> dict[str, str]:
        c = self.cfg
        return {"airflow": f"http://{c.host}:{c.airflow_port}", "mlflow": f"http://{c.host}:{c.mlflow_port}",
                "spark": f"spark://{c.host}:{c.spark_master_port}",
                "spark_ui": f"http://{c.host}:{c.spark_master_ui_port}",
                "postgres": f"postgresql://{PG_USER}@{c.host}:{c.postgres_port}"}

    def db_url(self, db: str) -> str:
        pw = self.secrets()["postgres_password"]
        return f"postgresql+psycopg2://{PG_USER}:{pw}@{self.cfg.host}:{self.cfg.postgres_port}/{db}"

    def client_env(self) -> dict[str, str]:
        """What every Airflow process, task and client of the stack needs (``env.sh``). The same
        keys are set in docker-compose.yml (with container host names)."""
        s, c, u = self.secrets(), self.cfg, self.urls()
        airflow_home = self.dir / "airflow"
        return {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__FERNET_KEY": s["airflow_fernet_key"],
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{u['airflow']}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.dir / "airflow-passwords.json"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_url("airflow"),
            "AIRFLOW__API__HOST": c.host,
            "AIRFLOW__API__PORT": str(c.airflow_port),
            "AIRFLOW__API__SECRET_KEY": s["airflow_api_secret_key"],
            "AIRFLOW__API_AUTH__JWT_SECRET": s["airflow_jwt_secret"],
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(airflow_home / "logs"),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(c.airflow_log_port),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(c.triggerer_log_port),
            "OSMF_HOME": str(self.home),
            "OSMF_SPARK_MASTER": u["spark"],
            "OSMF_SPARK_DRIVER_HOST": c.host,
            "OSMF_SPARK_DRIVER_BIND_ADDRESS": c.host,
            "OSMF_SPARK_CORES_MAX": "1",  # two tasks (ingest of one date, regroup of another) share the worker
            "OSMF_MLFLOW_TRACKING_URI": u["mlflow"],
        }

    def _process_env(self) -> dict[str, str]:
        from osmf.config.settings import offline_env

        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(offline_env())
        env.update(self.client_env())
        env.update({"SPARK_LOCAL_IP": self.cfg.host, "SPARK_LOG_DIR": str(self.dir / "logs"),
                    "SPARK_NO_DAEMONIZE": "1", "GX_ANALYTICS_ENABLED": "false", "PYTHONUNBUFFERED": "1",
                    "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})
        return env

    def write_env_file(self) -> Path:
        path = self.dir / "env.sh"
        lines = ["# the stack's environment: `source` this file, then use `airflow`, `osmf` or `mlflow`"]
        lines += [f"export {k}='{v}'" for k, v in self.client_env().items()]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        return path

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
                    env={"MLFLOW_BACKEND_STORE_URI": self.db_url("mlflow")}),
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

    # -- Postgres ----------------------------------------------------------------------------------
    def _pg_connect(self, db: str = "postgres"):
        import psycopg2

        return psycopg2.connect(host=self.cfg.host, port=self.cfg.postgres_port, user=PG_USER, dbname=db,
                                password=self.secrets()["postgres_password"], connect_timeout=3)

    def _postgres_ready(self) -> bool:
        try:
            self._pg_connect().close()
            return True
        except Exception:
            return False

    def _init_postgres(self, say) -> None:
        data = self.dir / "postgres"
        if (data / "PG_VERSION").exists():
            return
        say(f"postgres: initdb {data}")
        data.mkdir(parents=True, exist_ok=True)
        pwfile = self.dir / "pgpass.tmp"
        pwfile.write_text(self.secrets()["postgres_password"] + "\n")
        os.chmod(pwfile, 0o600)
        if self.pg_user:
            import shutil

            for p in (data, pwfile):
                shutil.chown(p, self.pg_user, self.pg_user)
            if subprocess.run(["test", "-w", str(data)], user=self.pg_user).returncode != 0:
                raise StackError(f"the '{self.pg_user}' user cannot reach {data}: as root, Postgres runs as "
                                 f"'{self.pg_user}', so OSMF_HOME ({self.home}) must not be under a private (0700) folder")
        os.chmod(data, 0o700)
        try:
            res = subprocess.run([str(postgres_bindir(self.cfg.postgres_bin) / "initdb"), "-D", str(data), "-U", PG_USER,
                                  f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8", "--locale=C"],
                                 user=self.pg_user, capture_output=True, text=True)
        finally:
            pwfile.unlink(missing_ok=True)
        if res.returncode != 0:
            raise StackError(f"initdb failed:\n{res.stderr[-2000:]}")

    def _create_databases(self, say) -> None:
        conn = self._pg_connect()
        conn.autocommit = True
        with conn.cursor() as cur:
            for db in ("airflow", "mlflow"):
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
                if cur.fetchone() is None:
                    say(f"postgres: create database {db}")
                    cur.execute(f'CREATE DATABASE "{db}"')
        conn.close()

    def _migrate_airflow(self, say) -> None:
        stamp = self.dir / "airflow" / ".migrated"
        if stamp.exists():
            return
        say("airflow: db migrate (first start)")
        (self.dir / "airflow").mkdir(parents=True, exist_ok=True)
        pw = self.dir / "airflow-passwords.json"
        if not pw.exists():
            fd = os.open(pw, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump({ADMIN: self.secrets()["airflow_admin_password"]}, fh)
        with open(self.dir / "logs" / "airflow-migrate.log", "w") as log:
            res = subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=self._process_env(), stdout=log,
                                 stderr=subprocess.STDOUT)
        if res.returncode != 0:
            raise StackError(f"airflow db migrate failed: see {self.dir / 'logs' / 'airflow-migrate.log'}")
        stamp.touch()

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

"""The stack's files and environment, for ``osmf_app.stack.Stack``: ``secrets.json`` (generated
once, mode 600), the services' URLs, what every Airflow process and client needs (``env.sh``, the
same keys docker-compose.yml sets) and each process's environment."""

from __future__ import annotations

import json
import os
import secrets as _secrets
from pathlib import Path

from osmf_app.airflow_local import DAGS_DIR
from osmf_app.stack_postgres import ADMIN, BIN, PG_USER


class StackEnv:
    """Files and environment of a ``Stack`` (which provides ``cfg``, ``dir``, ``home`` and ``settings``)."""

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
        lines.append(f'export PATH="{BIN}:$PATH"')  # the venv's airflow, osmf and mlflow
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        return path

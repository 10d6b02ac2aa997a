"""The stack's PostgreSQL (Debian's server) and first-start setup, for ``osmf_app.stack.Stack``:
``initdb`` of ``$OSMF_HOME/stack/postgres``, the ``airflow`` and ``mlflow`` databases, and
``airflow db migrate`` on first start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
PG_USER = "osmf"  # the database role every service connects as
ADMIN = "admin"  # the Airflow user (simple auth manager)


class StackError(RuntimeError):
    """The stack cannot start or stop; the message says which service and what to do."""


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


class PostgresBootstrap:
    """Postgres and first-start steps of a ``Stack`` (which provides ``cfg``, ``dir``, ``home``,
    ``pg_user``, ``secrets()`` and ``_process_env()``)."""

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

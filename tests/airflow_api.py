"""A small client of Airflow 3's REST API (``/api/v2``), authenticated with a JWT from ``/auth/token``,
for the end-to-end test of the real stack."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request


class AirflowAPI:
    def __init__(self, base_url: str, username: str, password: str):
        self.base = base_url.rstrip("/")
        body = json.dumps({"username": username, "password": password}).encode()
        req = urllib.request.Request(f"{self.base}/auth/token", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            self.token = json.loads(r.read())["access_token"]

    def call(self, method: str, path: str, body: dict | None = None, **params):
        url = f"{self.base}/api/v2/{path.lstrip('/')}"
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None, method=method,
                                     headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {url}: {exc.code} {exc.read()[:500]!r}") from None

    def dag_runs(self, dag_id: str) -> list[dict]:
        return self.call("GET", f"dags/{dag_id}/dagRuns", limit=100, order_by="run_after")["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.call("GET", f"dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id)}/taskInstances")["task_instances"]

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.call("PATCH", f"dags/{dag_id}", {"is_paused": paused})

    def trigger(self, dag_id: str, logical_date: str, conf: dict | None = None) -> dict:
        return self.call("POST", f"dags/{dag_id}/dagRuns",
                         {"logical_date": f"{logical_date}T00:00:00Z", "conf": conf or {}})

    def asset_events(self, source_dag_id: str) -> list[dict]:
        return self.call("GET", "assets/events", source_dag_id=source_dag_id, limit=100)["asset_events"]

    def wait(self, what: str, done, timeout: float, every: float = 5.0, fail=None):
        """Poll ``done()`` until it returns something truthy; ``fail()`` may return a reason to stop."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = done()
            if out:
                return out
            reason = fail() if fail else None
            if reason:
                raise AssertionError(f"while waiting for {what}: {reason}")
            time.sleep(every)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")

"""docker-compose.yml cannot run here (no Docker engine): check its structure, that every port is
bound to 127.0.0.1, that credentials come from the env file, and that every file it references exists."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SERVICES = {"postgres", "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
            "airflow-triggerer", "spark-master", "spark-worker", "mlflow"}


def _compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_ports_and_volumes():
    c = _compose()
    assert SERVICES <= set(c["services"])
    for name, svc in c["services"].items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    for name in ("airflow-scheduler", "spark-worker", "mlflow"):
        assert "osmf_home:/osmf" in c["services"][name]["volumes"], name  # one shared lake and artifact store
    assert set(c["volumes"]) >= {"pgdata", "osmf_home"}
    airflow_env = c["services"]["airflow-scheduler"]["environment"]
    assert "postgres:5432/airflow" in airflow_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert airflow_env["OSMF_SPARK_MASTER"] == "spark://spark-master:7077"
    assert "postgres:5432/mlflow" in c["services"]["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"]


def test_credentials_come_from_an_uncommitted_env_file():
    text = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"PASSWORD: +[^$\s]", text)  # no literal password
    needed = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    example = {line.split("=")[0] for line in (ROOT / ".env.example").read_text().splitlines()
               if "=" in line and not line.startswith("#")}
    assert needed <= example, needed - example
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def test_referenced_files_exist_and_the_image_gets_the_delta_jars():
    c = _compose()
    for name, svc in c["services"].items():
        if "build" in svc:
            assert (ROOT / svc["build"]["context"] / svc["build"]["dockerfile"]).exists()
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("./"):
                assert (ROOT / src).exists(), (name, src)
    docker = (ROOT / "Dockerfile").read_text()
    for line in docker.splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), src
    # every package the project installs is copied into the image (the CLI and the DAGs import them)
    import tomllib

    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = {src for line in docker.splitlines() if line.startswith("COPY ") for src in line.split()[1:-1]}
    assert {p.rstrip("*") for p in packages} <= copied, packages
    assert "delta-spark_" in docker and "delta-storage" in docker and "torch==2.13.0" in docker
    assert "torchvision" not in docker


def _stack(tmp_path):
    from osmf.config.settings import StackConfig, load_settings
    from osmf_app.stack import Stack

    return Stack(load_settings({"OSMF_HOME": str(tmp_path)}), StackConfig())


def _flags(argv) -> set[str]:
    return {a for a in argv if a.startswith("--")}


def test_compose_and_the_stack_command_use_the_same_settings(tmp_path):
    """docker-compose.yml and `osmf stack up` (osmf_app/stack.py) run the same services with the same
    environment keys, the same fixed values, the same ports and the same command-line flags; only
    host names (containers vs 127.0.0.1) and bind addresses differ."""
    from urllib.parse import urlparse

    from osmf.config.settings import StackConfig

    c, stack, cfg = _compose(), _stack(tmp_path), StackConfig()
    env = stack.client_env()
    compose_env = c["services"]["airflow-scheduler"]["environment"]
    ours = {k for k in env if k.startswith(("AIRFLOW", "OSMF_"))}
    theirs = {k for k in compose_env if k.startswith(("AIRFLOW", "OSMF_"))} - {"OSMF_LAKE_BACKEND", "OSMF_MODELS_TRAIN_QUEUE"}
    assert ours == theirs, (ours ^ theirs)
    for key in ("AIRFLOW__CORE__EXECUTOR", "AIRFLOW__CORE__LOAD_EXAMPLES", "AIRFLOW__CORE__PARALLELISM",
                "AIRFLOW__API__PORT", "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT", "OSMF_SPARK_CORES_MAX"):
        assert str(compose_env[key]) == env[key], key
    for key in ("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "OSMF_SPARK_MASTER", "OSMF_MLFLOW_TRACKING_URI",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        a, b = urlparse(env[key]), urlparse(compose_env[key].replace("${POSTGRES_USER:?set in .env}", "u")
                                            .replace("${POSTGRES_PASSWORD:?set in .env}", "p"))
        assert (a.scheme, a.port, a.path) == (b.scheme, b.port, b.path), key
    # the same services, the same flags, the same published ports
    services = stack.services()
    assert set(services) | {"airflow-init"} == set(c["services"])
    for name, svc in services.items():
        cmd = c["services"][name].get("command") or []
        if name == "postgres":  # the official image starts the server itself
            continue
        assert _flags(svc.argv) <= _flags(cmd), (name, _flags(svc.argv) - _flags(cmd))
        assert svc.argv[1:3] == cmd[1:3] or svc.argv[1] == cmd[1], name
    published = {name: {int(p.split(":")[1]) for p in s.get("ports", [])} for name, s in c["services"].items()}
    assert published["postgres"] == {cfg.postgres_port} and published["mlflow"] == {cfg.mlflow_port}
    assert published["airflow-apiserver"] == {cfg.airflow_port}
    assert published["spark-master"] == {cfg.spark_master_ui_port}
    assert published["spark-worker"] == {cfg.spark_worker_ui_port}
    worker = c["services"]["spark-worker"]["command"]
    assert worker[worker.index("--cores") + 1] == str(cfg.spark_worker_cores)
    assert worker[worker.index("--memory") + 1] == cfg.spark_worker_memory
    # the Postgres drivers Airflow needs come with the project (and so with the image)
    import tomllib

    deps = " ".join(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    assert "psycopg2" in deps and "asyncpg" in deps

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
    assert "postgres:5432/mlflow" in c["services"]["mlflow"]["command"]


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

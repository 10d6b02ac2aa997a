"""The osmf console script: --help everywhere, and clear errors."""

import subprocess
import sys
from pathlib import Path

import pytest

from osmf_app.cli import build_parser, main

SUBCOMMANDS = [["world"], ["world", "generate"], ["world", "show"], ["ingest"], ["validate"], ["sql"],
               ["lake"], ["lake", "list"], ["lake", "history"], ["lake", "optimize"], ["lake", "vacuum"],
               ["demo"], ["settings"], ["regroup"], ["evaluate"], ["evaluate", "grouping"], ["train"], ["promote"], ["stack"]]


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=lambda w: " ".join(w))
def test_every_subcommand_has_help(words, capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*words, "--help"])
    assert exc.value.code == 0
    assert "usage: osmf" in capsys.readouterr().out


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "osmf_app.cli", "--help"], capture_output=True, text=True, check=True)
    assert "world" in out.stdout and "ingest" in out.stdout and "sql" in out.stdout


def test_bad_date_and_bad_world_config(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OSMF_HOME", str(tmp_path))
    with pytest.raises(SystemExit):
        main(["ingest", "--run-date", "2026-13-01"])
    assert "not a date" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["ingest", "--date", "2026-13-01"])  # the deprecated name checks the date too
    assert "not a date" in capsys.readouterr().err
    cfg = tmp_path / "w.toml"
    cfg.write_text("[world]\nimpressions_per_dai = 5\n")
    assert main(["world", "generate", "--config", str(cfg)]) == 1
    assert "[world].impressions_per_dai" in capsys.readouterr().err


def test_world_generate_and_lake_list(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OSMF_HOME", str(tmp_path))
    assert main(["world", "generate", "--preset", "tiny"]) == 0
    assert (tmp_path / "landing/events/event_date=2026-01-01/part-0000.jsonl").is_file()
    assert main(["lake", "list"]) == 0
    assert "not created yet" in capsys.readouterr().out


def test_stack_status_and_down_when_nothing_runs(tmp_path, monkeypatch, capsys):
    """Nothing started: status says every service is stopped (exit 3), down stops nothing."""
    monkeypatch.setenv("OSMF_HOME", str(tmp_path))
    assert main(["stack", "status"]) == 3
    out = capsys.readouterr().out
    assert out.count("stopped") == 8 and "airflow-scheduler" in out and "postgres" in out
    assert main(["stack", "down"]) == 0
    assert "0 process(es) stopped" in capsys.readouterr().out


def test_stack_up_refuses_a_taken_port_naming_the_setting(tmp_path, monkeypatch, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        monkeypatch.setenv("OSMF_HOME", str(tmp_path))
        for key in ("POSTGRES", "AIRFLOW", "SPARK_MASTER", "SPARK_MASTER_UI", "SPARK_WORKER_UI"):
            with socket.socket() as free:  # free now; only mlflow's is taken
                free.bind(("127.0.0.1", 0))
                monkeypatch.setenv(f"OSMF_STACK_{key}_PORT", str(free.getsockname()[1]))
        monkeypatch.setenv("OSMF_STACK_MLFLOW_PORT", str(taken.getsockname()[1]))
        assert main(["stack", "up"]) == 1
    err = capsys.readouterr().err
    assert "mlflow_port" in err and "OSMF_STACK_MLFLOW_PORT" in err
    assert not (tmp_path / "stack" / "postgres").exists()  # nothing started, nothing initialised


def test_stack_env_prints_the_exports(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OSMF_HOME", str(tmp_path))
    monkeypatch.setenv("OSMF_STACK_AIRFLOW_PORT", "18080")
    assert main(["stack", "env"]) == 0
    out = capsys.readouterr().out
    assert "export AIRFLOW__CORE__EXECUTION_API_SERVER_URL='http://127.0.0.1:18080/execution/'" in out
    assert "export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN='postgresql+psycopg2://osmf:" in out
    assert oct((tmp_path / "stack" / "env.sh").stat().st_mode & 0o777) == "0o600"
    # sourcing it puts the venv's airflow, osmf and mlflow on PATH (the next command in the docs)
    path_line = [x for x in out.splitlines() if x.startswith("export PATH=")]
    assert path_line and str(Path(sys.executable).parent) in path_line[0] and path_line[0].endswith(':$PATH"')


def test_the_old_date_flag_still_works_with_a_deprecation_warning(capsys):
    from osmf_app.cli import _resolve_run_date

    parser = build_parser()
    args = parser.parse_args(["regroup", "--date", "2026-01-02"])
    _resolve_run_date(parser, args)
    assert args.run_date == "2026-01-02"
    assert "--date is deprecated" in capsys.readouterr().err
    for argv in (["regroup"], ["train", "grm"], ["generate"], ["ingest"]):
        with pytest.raises(SystemExit):
            _resolve_run_date(parser, parser.parse_args(argv))
        assert "--run-date" in capsys.readouterr().err
    args = parser.parse_args(["validate", "--table", "users"])  # a dimension needs no date
    _resolve_run_date(parser, args)
    assert args.run_date is None

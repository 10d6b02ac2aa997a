"""The osmf console script: --help everywhere, and clear errors."""

import subprocess
import sys

import pytest

from osmf_app.cli import build_parser, main

SUBCOMMANDS = [["world"], ["world", "generate"], ["world", "show"], ["ingest"], ["validate"], ["sql"],
               ["lake"], ["lake", "list"], ["lake", "history"], ["lake", "optimize"], ["lake", "vacuum"],
               ["demo"], ["settings"], ["regroup"], ["evaluate"], ["evaluate", "grouping"], ["train"], ["promote"]]


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
        main(["ingest", "--date", "2026-13-01"])
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

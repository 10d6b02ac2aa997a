"""The landing contract: a drop no generator made passes `osmf landing check`; every kind of bad drop
gets an error naming its file, row or line and column; the ingest task refuses a bad drop before
writing anything. (The whole chain on the hand-made drop: tests/test_handmade_chain.py.)"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _example():
    spec = importlib.util.spec_from_file_location("make_drop", ROOT / "examples/handmade_drop/make_drop.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _settings(home: Path):
    from osmf.config.settings import load_settings

    return load_settings({**os.environ, "OSMF_HOME": str(home), "OSMF_CONFIG": ""})


@pytest.fixture()
def drop(tmp_path):
    _example().make_drop(tmp_path / "landing")
    return tmp_path


def _errors(home: Path, dates=None) -> list[str]:
    from osmf.ingest.landing import check_landing

    return [str(p) for p in check_landing(_settings(home), dates).errors]


def test_the_handmade_drop_is_clean(drop):
    from osmf.ingest.landing import check_landing

    report = check_landing(_settings(drop))
    assert report.ok and not report.problems, report.text()
    assert report.checked == ["the dimensions and their assets"] + [f"the events of {d}" for d in _example().DATES]


def _rewrite(home: Path, name: str, fn) -> None:
    path = home / "landing/dimensions" / f"{name}.parquet"
    fn(pd.read_parquet(path)).to_parquet(path, index=False)


def _event_lines(home: Path, date: str, fn) -> None:
    path = home / f"landing/events/event_date={date}/part-0000.jsonl"
    path.write_text("".join(fn(json.loads(x)) + "\n" for x in path.read_text().splitlines()))


def _bad_image(home: Path) -> None:
    (home / "landing/assets/creatives/shoe-07-forest.png").write_bytes(b"not a png at all")


def _small_mask(home: Path) -> None:
    from PIL import Image

    Image.new("L", (16, 16), 255).save(home / "landing/assets/masks/mug-01.png")


BAD_DROPS = {
    "missing column": (lambda h: _rewrite(h, "users", lambda d: d.drop(columns="age")),
                       ["dimensions/users.parquet column age: missing column (expected integer, required)"]),
    "wrong type": (lambda h: _rewrite(h, "products", lambda d: d.assign(price=d.price.astype(str))),
                   ["dimensions/products.parquet column price: has type string; expected number"]),
    "null in a required column": (lambda h: _rewrite(h, "users", lambda d: d.assign(gender=[None] + list(d.gender[1:]))),
                                  ["dimensions/users.parquet row 1, column gender: is null"]),
    "duplicate key": (lambda h: _rewrite(h, "users", lambda d: pd.concat([d, d.iloc[[5]]])),
                      ["dimensions/users.parquet row 401, column user_id: duplicate key 'user-0005' (first at row 6)"]),
    "unknown product in events": (
        lambda h: _rewrite(h, "products", lambda d: d[d.product_id != "phones-3"]),
        ["column product_id: product_id 'phones-3' is referenced by",
         "dimensions/creatives.parquet row 9, column product_id: 'phones-3' is not a product_id"]),
    "image that does not decode": (_bad_image, ["dimensions/creatives.parquet row 7, column image_uri: "
                                                "assets/creatives/shoe-07-forest.png does not decode as an image"]),
    "mask of the wrong size": (_small_mask, ["dimensions/products.parquet row 1, column mask_uri: the mask is 16x16, "
                                             "the image 32x32"]),
    "missing image": (lambda h: (h / "landing/assets/products/shoe-07.png").unlink(),
                      ["dimensions/products.parquet row 2, column image_uri: assets/products/shoe-07.png does not exist"]),
    "missing day marker": (lambda h: (h / "landing/events/event_date=2026-03-02/_SUCCESS").unlink(),
                           ["events/event_date=2026-03-02/_SUCCESS: 2026-03-02 is not marked complete"]),
    "missing dimensions marker": (lambda h: (h / "landing/dimensions/_SUCCESS").unlink(),
                                  ["dimensions/_SUCCESS: the dimensions are not marked complete"]),
    "events in another format": (
        lambda h: _event_lines(h, "2026-03-01", lambda e: json.dumps({**e, "clicked": bool(e["clicked"])})),
        ["events/event_date=2026-03-01: 1500 of 3000 lines (50.0%) are malformed"]),
    "newer contract": (lambda h: (h / "landing/contract.json").write_text('{"contract_version": 2}'),
                       ["contract.json column contract_version: the drop follows contract 2; this osmf reads contract 1"]),
    "no contract": (lambda h: (h / "landing/contract.json").unlink(), ["contract.json column contract_version: "]),
}


@pytest.mark.parametrize("case", sorted(BAD_DROPS))
def test_a_bad_drop_gets_errors_naming_file_row_and_column(drop, case):
    spoil, expected = BAD_DROPS[case]
    spoil(drop)
    errors = _errors(drop)
    for text in expected:
        assert any(text in e for e in errors), (text, errors)


def test_a_drop_in_the_layout_before_the_contract_is_refused_saying_what_changed(drop):
    (drop / "world").mkdir()
    for name in ("users", "products", "creatives"):
        (drop / "landing/dimensions" / f"{name}.parquet").rename(drop / "world" / f"{name}.parquet")
    (drop / "landing/contract.json").unlink()
    [error] = _errors(drop)
    assert "contract-0 drop" in error and "moved the dimension files from world/ to landing/dimensions/" in error


def test_rare_bad_lines_are_warnings_that_ingest_quarantines(drop):
    from osmf.ingest.landing import check_landing

    path = drop / "landing/events/event_date=2026-03-01/part-0000.jsonl"
    lines = path.read_text().splitlines()
    lines[9] = lines[9].replace('"user_id": "user-', '"user_id": "ghost-')
    lines[10] = lines[10][:20]
    path.write_text("\n".join(lines) + "\n")
    report = check_landing(_settings(drop), ["2026-03-01"])
    assert report.ok, report.text()
    warnings = [str(p) for p in report.problems]
    assert any("line 10: 1 line(s) of 2026-03-01 with reason unknown_id" in w for w in warnings), warnings
    assert any("line 11: 1 line(s) of 2026-03-01 with reason invalid_json" in w for w in warnings), warnings


def test_the_cli_exits_1_and_prints_the_problems(drop):
    _small_mask(drop)
    env = {**os.environ, "OSMF_HOME": str(drop), "OSMF_CONFIG": ""}
    out = subprocess.run([sys.executable, "-m", "osmf_app.cli", "landing", "check", "--date", "2026-03-01"],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "1 errors" in out.stdout and "mask_uri: the mask is 16x16" in out.stdout
    (drop / "landing/assets/masks/mug-01.png").unlink()
    _example().draw_product(0, (1, 2, 3))[1].save(drop / "landing/assets/masks/mug-01.png")
    ok = subprocess.run([sys.executable, "-m", "osmf_app.cli", "landing", "check"], capture_output=True, text=True,
                        env=env, cwd=ROOT)
    assert ok.returncode == 0 and "0 errors" in ok.stdout, ok.stdout + ok.stderr


def test_the_ingest_task_refuses_a_bad_drop_and_writes_nothing(drop, spark):
    from conftest import make_ctx

    from jobs import ingest_events
    from osmf.ingest.landing import LandingRefused
    from osmf.lake import Lake

    _rewrite(drop, "products", lambda d: d[d.product_id != "phones-3"])
    settings = _settings(drop)
    with pytest.raises(LandingRefused, match="product_id 'phones-3' is referenced by") as err:
        ingest_events.run(make_ctx(settings, "2026-03-01", "bad", spark, Lake(settings)))
    assert "nothing was ingested" in str(err.value)
    assert not (drop / "lake").exists() or not any((drop / "lake").iterdir())

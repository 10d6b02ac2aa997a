"""Schedules that behave on day one: the landing writer leaves a completion marker, the nightly
ingest waits for it (deferring to the triggerer), the other stages skip with a reason when their
input is missing, and nothing commits before the checks pass."""

from datetime import datetime, timezone

import pytest

from conftest import env_vars


def _context(day: str) -> dict:
    return {"dag_run": None, "logical_date": datetime.fromisoformat(day).replace(tzinfo=timezone.utc)}


def test_the_world_marks_every_landing_day_complete(settings):
    from osmf.world import read_manifest

    for day in read_manifest(settings.home)["dates"]:
        marker = settings.landing_marker(day)
        assert marker.exists() and marker.name == "_SUCCESS"
        # written last: no landing file of the day is newer than its marker
        assert all(f.stat().st_mtime <= marker.stat().st_mtime for f in marker.parent.glob("*.jsonl"))


def test_the_landing_sensor_passes_on_a_complete_day_and_defers_otherwise(settings):
    from airflow.sdk.exceptions import TaskDeferred

    from osmf.world import read_manifest
    from osmf_app.airflow_sensors import LandingSensor

    sensor = LandingSensor(task_id="wait_for_landing", poke_interval=7, timeout=600)
    day = read_manifest(settings.home)["dates"][0]
    with env_vars({"OSMF_HOME": str(settings.home)}):
        assert sensor.execute(_context(day)) == str(settings.landing_marker(day))
        with pytest.raises(TaskDeferred) as deferred:
            sensor.execute(_context("2031-05-05"))
    trigger = deferred.value.trigger
    assert trigger.filepath == str(settings.landing_marker("2031-05-05")) and trigger.poke_interval == 7
    assert deferred.value.timeout.total_seconds() == 600
    with pytest.raises(Exception, match="did not appear"):
        sensor.execute_complete(_context("2031-05-05"), event=None)


def test_ingest_without_landing_files_commits_nothing(scratch_settings, spark):
    from conftest import make_ctx
    from jobs import ingest_events

    from osmf.ingest.landing import LandingRefused

    with pytest.raises(LandingRefused, match="landing/contract.json is missing") as err:
        ingest_events.run(make_ctx(scratch_settings, "2031-05-05", spark=spark))
    assert "nothing was ingested" in str(err.value)
    assert not (scratch_settings.lake_root).exists() or not any(scratch_settings.lake_root.iterdir())


def test_stages_say_why_they_cannot_run_yet(scratch_settings):
    from conftest import make_ctx
    from osmf_app.chain import GENERATE, REGROUP, TRAIN, already_built, missing_inputs

    ctx = make_ctx(scratch_settings, "2031-05-05")
    assert "no impressions for 2031-05-05" in missing_inputs(REGROUP, ctx)
    assert "no groups for 2031-05-05" in missing_inputs(TRAIN, ctx)
    assert "no groups for 2031-05-05" in missing_inputs(GENERATE, ctx)
    assert already_built(REGROUP, ctx) is None


def test_a_built_date_needs_nothing_and_a_nightly_run_of_it_skips(regrouped, settings):
    from conftest import make_ctx
    from osmf_app.chain import REGROUP, TRAIN, already_built, missing_inputs

    day, _ = regrouped
    ctx = make_ctx(settings, day)
    assert missing_inputs(REGROUP, ctx) is None
    assert missing_inputs(TRAIN, ctx) is None
    assert "groups for " + day + " is already built" in already_built(REGROUP, ctx)


def test_check_inputs_skips_a_run_with_its_reason(scratch_settings):
    from airflow.sdk.exceptions import AirflowSkipException

    from osmf_app.airflow_tasks import check_inputs
    from osmf_app.chain import REGROUP

    with env_vars({"OSMF_HOME": str(scratch_settings.home)}):
        with pytest.raises(AirflowSkipException, match="skipped osmf_regroup for 2031-05-05: no impressions"):
            check_inputs(REGROUP, _context("2031-05-05"))

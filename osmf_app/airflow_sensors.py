"""The landing sensor of ``osmf_ingest``: waits for the run date's ``_SUCCESS`` marker (left by the
landing writer once every file of the day is complete) without holding a worker slot: if the marker
is not there yet the task defers to the triggerer (the standard provider's ``FileTrigger``), and
fails after ``[airflow].landing_timeout_minutes``."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import BaseSensorOperator


class LandingSensor(BaseSensorOperator):
    """Succeeds as soon as ``$OSMF_HOME/landing/events/event_date=<run date>/_SUCCESS`` exists."""

    def poke(self, context) -> bool:
        from osmf_app.airflow_tasks import landing_marker

        path = landing_marker(context)
        self.log.info("landing marker %s: %s", path, "found" if path.exists() else "not yet")
        return path.exists()

    def execute(self, context):
        from airflow.providers.standard.triggers.file import FileTrigger

        from osmf_app.airflow_tasks import landing_marker

        path = landing_marker(context)
        if path.exists():
            self.log.info("landing marker %s: found", path)
            return str(path)
        from datetime import datetime, timezone

        deadline = datetime.now(timezone.utc) + timedelta(seconds=self.timeout)
        state = ("the day's folder exists: its files are still being written" if path.parent.exists()
                 else "nothing has landed for this date yet (no folder)")
        self.log.warning("landing marker %s: not yet, %s. Waiting until %s UTC ([airflow].landing_timeout_minutes "
                         "= %d), then this run fails. A producer writes the day's files, then _SUCCESS "
                         "(docs/landing.md); `osmf landing check --date D` says what is wrong with a drop.",
                         path, state, deadline.strftime("%Y-%m-%d %H:%M"), self.timeout // 60)
        self.defer(trigger=FileTrigger(filepath=str(path), poke_interval=self.poke_interval),
                   method_name="execute_complete", timeout=timedelta(seconds=self.timeout))

    def execute_complete(self, context, event=None):
        from airflow.sdk.exceptions import AirflowException

        if not event:
            raise AirflowException(f"the landing marker did not appear: {event!r}")
        self.log.info("landing complete: %s", event)
        return str(event)

"""Run ids and run dates: every commit records which run wrote it."""

from __future__ import annotations

import datetime as dt

from osmf.config.settings import Settings


def parse_run_date(value: str) -> str:
    try:
        return dt.date.fromisoformat(value).isoformat()
    except (TypeError, ValueError):
        raise ValueError(f"--run-date {value!r} is not a date in YYYY-MM-DD form") from None


def resolve_run_id(settings: Settings, explicit: str | None = None) -> str:
    """Explicit id (an Airflow task passes its dag run's) > settings (``OSMF_RUN_ID``) > a manual
    timestamped id."""
    if explicit:
        return explicit
    if settings.run_id:
        return settings.run_id
    return "manual__" + dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")

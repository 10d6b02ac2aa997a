"""What every command-line entry point shares (the ``osmf`` CLI, each ``python -m jobs.<name>`` and
the Airflow tasks): the ``--run-date`` argument, logging, settings, and one readable error line.

* A bad setting exits 2 with a message naming the key and where it came from.
* A known error (a missing table or file, a bad value) becomes one ``error: ...`` line and exit 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from osmf.runinfo import parse_run_date
from osmf.settings import SettingsError, apply_offline_env, load_settings

log = logging.getLogger("osmf")
QUIET_LOGGERS = ("py4j", "great_expectations", "alembic", "mlflow")


def setup_logging(level: str = "INFO") -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                            datefmt="%H:%M:%S", stream=sys.stderr)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def date_arg(value: str) -> str:
    """argparse type of every date argument: YYYY-MM-DD, else a usage error naming the value."""
    try:
        return parse_run_date(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def job_parser(description: str) -> argparse.ArgumentParser:
    """The parser every job starts from: ``--run-date`` (required) and ``--run-id``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--run-date", required=True, type=date_arg, help="the date to process, YYYY-MM-DD")
    p.add_argument("--run-id", default=None, help="run id recorded in commit metadata (default: derived)")
    return p


def run_guarded(fn: Callable, extra_errors: tuple = ()) -> int:
    """Load settings (exit 2 naming the bad key), set up logging, run ``fn(settings)``; known errors
    (missing table or file, bad value) become one readable line and exit 1."""
    try:
        settings = task_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from osmf.lake import TableNotFound

    try:
        return int(fn(settings) or 0)
    except (TableNotFound, FileNotFoundError, ValueError, KeyError, *extra_errors) as exc:
        print(f"error: {exc.args[0] if isinstance(exc, KeyError) and exc.args else exc}", file=sys.stderr)
        return 1


def run_main(parser: argparse.ArgumentParser, fn: Callable, argv=None) -> int:
    """Parse, then run ``fn(args, settings)`` under :func:`run_guarded`."""
    args = parser.parse_args(argv)
    return run_guarded(lambda settings: fn(args, settings))


def task_settings():
    """Settings for code running inside an Airflow task: offline variables, settings, logging."""
    apply_offline_env()
    s = load_settings()
    setup_logging(s.log_level)
    return s


def job_context(settings, run_id=None, spark=None, lake=None, grouping=None) -> tuple:
    """What every Spark job starts from: (lake, Spark session, ``[grouping]`` config, run id), each
    taken from the caller when given, else built from settings."""
    from osmf.lake import Lake
    from osmf.runinfo import resolve_run_id
    from osmf.settings import load_grouping
    from osmf.spark import get_spark

    return (lake or Lake(settings), spark or get_spark(settings), grouping or load_grouping(),
            resolve_run_id(settings, run_id))

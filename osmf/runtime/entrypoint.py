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

from osmf.config.runinfo import parse_run_date
from osmf.config.settings import SettingsError, apply_offline_env, load_settings

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


def job_main(run: Callable, doc: str, argv=None, add_args: Callable | None = None,
             show: Callable | None = None) -> int:
    """``python -m jobs.<name> --run-date D``: parse, build the job's context, run ``run(ctx)`` under
    :func:`run_guarded`, print the summary (``show(summary)`` when given, else JSON). ``add_args``
    adds a job's own arguments; they reach the job as ``ctx.conf``."""
    import json

    from osmf.runtime.context import JobContext

    parser = job_parser(doc.strip().splitlines()[0])
    if add_args:
        add_args(parser)
    args = parser.parse_args(argv)
    conf = {k: v for k, v in vars(args).items() if k not in ("run_date", "run_id")}

    def go(settings):
        out = run(JobContext(settings, args.run_date, args.run_id, conf, say=lambda m: print(m, flush=True),
                             job=run.__module__))
        print(show(out) if show else json.dumps(out, indent=1, default=str))
        return 1 if isinstance(out, dict) and out.get("success") is False else 0

    return run_guarded(go)


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


def task_settings():
    """Settings for code running inside an Airflow task: offline variables, settings, logging."""
    apply_offline_env()
    s = load_settings()
    setup_logging(s.log_level)
    return s

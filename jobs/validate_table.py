"""Validate one partition of a lake table with its Great Expectations suite; exit 1 on failure.

    python -m jobs.validate_table --table impressions --run-date 2026-01-01

The report is printed and written to ``$OSMF_HOME/quality/<table>/<run_date>.json``.
"""

from __future__ import annotations

import json

from osmf.entrypoint import job_parser, run_main
from osmf.lake import Lake
from osmf.tables import TABLES


def run(table: str, run_date: str, settings):
    from osmf.quality import validate_table

    report = validate_table(Lake(settings), table, run_date)
    out = settings.home / "quality" / table / f"{run_date}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report.to_dict(), indent=1, default=str))
    return report


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    parser.add_argument("--table", required=True, choices=sorted(TABLES), help="the table to validate")

    def go(args, settings):
        report = run(args.table, args.run_date, settings)
        print(report.summary())
        return 0 if report.success else 1

    return run_main(parser, go, argv)


if __name__ == "__main__":
    raise SystemExit(main())

"""Validate one partition of a lake table with its Great Expectations suite; exit 1 on failure.

    python -m jobs.validate_table --table impressions --run-date 2026-01-01

The report is printed and written to ``$OSMF_HOME/quality/<table>/<run_date>.json`` (``whole.json``
for a dimension, which is validated whole). The table comes as ``ctx.conf["table"]``.
"""

from __future__ import annotations

import json

from osmf.runtime.context import JobContext
from osmf.runtime.entrypoint import job_main


def validate(ctx: JobContext, table: str):
    """The ``ValidationReport`` of ``table`` (its run-date partition, or the whole dimension), also
    written to ``settings.quality_report``."""
    from osmf.lake.tables import spec
    from osmf.quality.suites import validate_table

    day = ctx.run_date if spec(table).partition_by else None
    report = validate_table(ctx.lake, table, day)
    out = ctx.settings.quality_report(table, day)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report.to_dict(), indent=1, default=str))
    return report


def run(ctx: JobContext) -> dict:
    report = validate(ctx, ctx.conf["table"])
    return {"table": report.table, "partition": report.partition, "rows": report.rows, "success": report.success,
            "summary": report.summary()}


def _table_arg(parser) -> None:
    from osmf.lake.tables import TABLES

    parser.add_argument("--table", required=True, choices=sorted(TABLES), help="the table to validate")


def main(argv=None) -> int:
    return job_main(run, __doc__, argv, add_args=_table_arg, show=lambda out: out["summary"])


if __name__ == "__main__":
    raise SystemExit(main())

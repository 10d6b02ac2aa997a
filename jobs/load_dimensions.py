"""Load the dimension tables (users, products, creatives) from the landing's dimension files.

Upsert by key; an unchanged dimension gets no new commit (see ``osmf.ingest.dimensions``). The
ingest job runs the same load before it reads a day's events.
"""

from __future__ import annotations

from osmf.runtime.context import JobContext
from osmf.runtime.entrypoint import job_main


def run(ctx: JobContext) -> dict:
    from osmf.ingest.dimensions import load_dimensions

    return load_dimensions(ctx.lake, ctx.settings, ctx.run_id)


def main(argv=None) -> int:
    return job_main(run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())

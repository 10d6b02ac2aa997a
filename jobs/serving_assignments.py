"""The serving table of a run date: every user x every product with its group and creative
(``serving_assignments``), from ``user_groups`` (audience users), the nearest group by attributes
(everyone else) and ``generated_creatives``. The partition is replaced on rerun (same rows).
"""

from __future__ import annotations

import logging
import time

from osmf.runtime.context import JobContext
from osmf.runtime.entrypoint import job_main

log = logging.getLogger("osmf.serving")


def run(ctx: JobContext) -> dict:
    from osmf.generation.serving import serving_frame
    from osmf.grouping.assign import assign_by_attributes

    t0 = time.perf_counter()
    lake, spark, run_date = ctx.lake, ctx.spark, ctx.run_date
    rows = serving_frame(spark, lake, run_date, assign_by_attributes(spark, lake, ctx.settings, run_date))
    lake.write_spark(rows, "serving_assignments", partition=run_date, run_id=ctx.run_id, job="serving_assignments")
    counts = (lake.read_arrow("serving_assignments", partition=run_date, columns=["assigned_by"])
              .column("assigned_by").value_counts().to_pylist())
    summary = {"rows": sum(c["counts"] for c in counts),
               **{f"assigned_by_{c['values']}": c["counts"] for c in counts}, "seconds": time.perf_counter() - t0}
    log.info("serving_assignments %s: %s", run_date, summary)
    return summary


def main(argv=None) -> int:
    return job_main(run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())

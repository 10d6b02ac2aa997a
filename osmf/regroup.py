"""``osmf regroup --date D``: PAAG -> grouping -> group CTR and pairs -> validation, one Spark session."""

from __future__ import annotations

import time

GROUP_TABLES = ("user_product_embeddings", "user_groups", "groups", "group_creative_ctr", "group_preference_pairs")


def regroup(run_date: str, settings, run_id: str | None = None, spark=None, lake=None, grouping=None,
            say=print) -> dict:
    from jobs import group_ctr, group_users, paag_embeddings, validate_table
    from osmf.lake import Lake
    from osmf.runinfo import resolve_run_id
    from osmf.spark import get_spark

    t0 = time.perf_counter()
    lake, spark = lake or Lake(settings), spark or get_spark(settings)
    run_id = resolve_run_id(settings, run_id)
    out = {}
    steps = [("PAAG embeddings", paag_embeddings.run), ("grouping", group_users.run), ("group CTR and pairs", group_ctr.run)]
    for i, (name, fn) in enumerate(steps, start=1):
        say(f"[{time.perf_counter() - t0:6.1f}s] regroup {run_date} [{i}/4] {name}")
        out[name] = fn(run_date, settings, run_id=run_id, spark=spark, lake=lake, grouping=grouping)
    say(f"[{time.perf_counter() - t0:6.1f}s] regroup {run_date} [4/4] validation")
    failed = []
    for table in GROUP_TABLES:
        report = validate_table.run(table, run_date, settings)
        if not report.success:
            failed.append(report.summary())
    out["validation"] = "passed" if not failed else failed
    if failed:
        raise RuntimeError("quality gate failed:\n" + "\n".join(failed))
    say(f"[{time.perf_counter() - t0:6.1f}s] regroup {run_date} done")
    return out

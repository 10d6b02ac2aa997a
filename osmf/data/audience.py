"""The audience a run date works on: the impressions of the trailing window, and the users held out
for the simulated A/B evaluation.

Held-out users are chosen by a stable hash of the user id (crc32, the same in every process).
Their clicks never enter ``group_creative_ctr``, ``group_preference_pairs`` or any model trained
on them; they are still grouped (PAAG embeddings come from attributes).
"""

from __future__ import annotations

import datetime as dt
import zlib


def window(run_date: str, days: int) -> tuple[str, str]:
    """(first, last) date of the ``days``-day window ending on ``run_date``, inclusive."""
    end = dt.date.fromisoformat(run_date)
    return (end - dt.timedelta(days=days - 1)).isoformat(), end.isoformat()


def window_impressions(spark, lake, run_date: str, days: int):
    """``impressions`` of the trailing window as a Spark DataFrame."""
    start, end = window(run_date, days)
    return lake.read_spark(spark, "impressions").where(f"event_date BETWEEN DATE'{start}' AND DATE'{end}'")


def is_heldout(user_id: str, fraction: float) -> bool:
    return (zlib.crc32(f"holdout:{user_id}".encode()) % 10_000) < fraction * 10_000


def heldout_users(user_ids, fraction: float) -> list[str]:
    return sorted(u for u in set(user_ids) if is_heldout(u, fraction))


def without_heldout(spark, lake, impressions, fraction: float):
    """``impressions`` minus the rows of held-out users (unchanged when ``fraction`` is 0)."""
    if fraction <= 0:
        return impressions
    held = heldout_users(lake.read_pandas("users")["user_id"], fraction)
    return impressions.join(spark.createDataFrame([(u,) for u in held], "user_id string"), "user_id", "left_anti")

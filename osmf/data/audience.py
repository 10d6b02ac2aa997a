"""The audience a run date works on: the impressions of the trailing window, and the users held out
for the simulated A/B evaluation.

Held-out users are chosen by a stable hash of the salted user id (crc32, the same in every
process): the *held-out rule* is the fraction and the salt. Their clicks never enter
``group_creative_ctr``, ``group_preference_pairs`` or any model trained on them; they are still
grouped (PAAG embeddings come from attributes). Every model records the rule its data was built
with, and the evaluation refuses models trained under different rules.
"""

from __future__ import annotations

import datetime as dt
import json
import zlib

HOLDOUT_SALT = "holdout"


def window(run_date: str, days: int) -> tuple[str, str]:
    """(first, last) date of the ``days``-day window ending on ``run_date``, inclusive."""
    end = dt.date.fromisoformat(run_date)
    return (end - dt.timedelta(days=days - 1)).isoformat(), end.isoformat()


def window_impressions(spark, lake, run_date: str, days: int):
    """``impressions`` of the trailing window as a Spark DataFrame."""
    start, end = window(run_date, days)
    return lake.read_spark(spark, "impressions").where(f"event_date BETWEEN DATE'{start}' AND DATE'{end}'")


def heldout_rule(fraction: float, salt: str = HOLDOUT_SALT) -> dict:
    """The held-out rule as models record it."""
    return {"fraction": float(fraction), "salt": salt}


def recorded_rule(settings, run_date: str) -> dict | None:
    """The rule the run date's regroup built its tables with (recorded beside its PAAG model), or None."""
    path = settings.paag_dir(run_date) / "metrics.json"
    if not path.exists():
        return None
    m = json.loads(path.read_text())
    if "heldout_rule" in m:
        return m["heldout_rule"]
    # a regroup from before the rule had a salt recorded its fraction alone (with today's salt)
    return heldout_rule(m["eval_holdout_fraction"]) if "eval_holdout_fraction" in m else None


def rule_of(settings, run_date: str) -> dict:
    """The rule of the run date's data: the one its regroup recorded, else the configured one."""
    return recorded_rule(settings, run_date) or heldout_rule(settings.grouping.eval_holdout_fraction)


def is_heldout(user_id: str, fraction: float, salt: str = HOLDOUT_SALT) -> bool:
    return (zlib.crc32(f"{salt}:{user_id}".encode()) % 10_000) < fraction * 10_000


def heldout_users(user_ids, fraction: float) -> list[str]:
    return sorted(u for u in set(user_ids) if is_heldout(u, fraction))


def without_heldout(spark, lake, impressions, fraction: float):
    """``impressions`` minus the rows of held-out users (unchanged when ``fraction`` is 0)."""
    if fraction <= 0:
        return impressions
    held = heldout_users(lake.read_pandas("users")["user_id"], fraction)
    return impressions.join(spark.createDataFrame([(u,) for u in held], "user_id string"), "user_id", "left_anti")

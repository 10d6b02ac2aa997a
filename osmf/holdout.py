"""Users held out for the simulated A/B evaluation: a stable hash of the user id (crc32, the same
in every process). Their clicks never enter ``group_creative_ctr``, ``group_preference_pairs`` or
any model trained on them; they are still grouped (PAAG embeddings come from attributes)."""

from __future__ import annotations

import zlib


def is_heldout(user_id: str, fraction: float) -> bool:
    return (zlib.crc32(f"holdout:{user_id}".encode()) % 10_000) < fraction * 10_000


def heldout_users(user_ids, fraction: float) -> list[str]:
    return sorted(u for u in set(user_ids) if is_heldout(u, fraction))

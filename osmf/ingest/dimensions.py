"""The dimension tables (users, products, creatives) from the dimension files of the landing.

Upsert by key; a dimension whose content is unchanged gets no new commit, so reruns leave the
table history alone.
"""

from __future__ import annotations

import logging

DIMENSIONS = ("users", "products", "creatives")
log = logging.getLogger("osmf.load_dimensions")


def _sorted(tbl, key):
    return tbl.sort_by([(k, "ascending") for k in key])


def load_dimensions(lake, settings, run_id: str) -> dict[str, str]:
    """Upsert each dimension from ``settings.world_root/<name>.parquet``; returns what happened to each."""
    import pyarrow.parquet as pq

    from osmf.lake import conform
    from osmf.lake.tables import spec

    out = {}
    for name in DIMENSIONS:
        src = settings.world_root / f"{name}.parquet"
        if not src.exists():
            raise FileNotFoundError(
                f"dimension file {src} is missing; create the world with `osmf world generate --preset small`"
            )
        s = spec(name)
        new = _sorted(conform(pq.read_table(src), s), s.key)
        if lake.exists(name) and _sorted(lake.read_arrow(name), s.key).equals(new):
            out[name] = "unchanged"
        else:
            m = lake.upsert(name, new, run_id=run_id, job="load_dimensions")
            out[name] = f"inserted {m.get('num_target_rows_inserted', 0)}, updated {m.get('num_target_rows_updated', 0)}"
        log.info("%s: %s (%d rows)", name, out[name], new.num_rows)
    return out

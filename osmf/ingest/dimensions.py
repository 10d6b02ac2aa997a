"""The dimension tables (users, products, creatives) from the landing's dimension files.

Upsert by key; a dimension whose content is unchanged gets no new commit, so reruns leave the
table history alone. Image and mask URIs, relative to ``landing/`` in the drop, are stored relative
to the asset root (``landing/assets/...``); a creative without ``source`` is ``historical``.
"""

from __future__ import annotations

import logging

DIMENSIONS = ("users", "products", "creatives")
URI_COLUMNS = {"products": ("image_uri", "mask_uri"), "creatives": ("image_uri",)}
log = logging.getLogger("osmf.load_dimensions")


def _sorted(tbl, key):
    return tbl.sort_by([(k, "ascending") for k in key])


def _as_lake(name: str, tbl, settings):
    """A landing dimension file as its lake table's rows (URIs re-rooted, defaults filled)."""
    import pyarrow as pa

    for col in URI_COLUMNS.get(name, ()):
        uris = [settings.lake_uri(u) for u in tbl.column(col).to_pylist()]
        tbl = tbl.set_column(tbl.schema.get_field_index(col), col, pa.array(uris, pa.string()))
    if name == "creatives" and "source" not in tbl.column_names:
        tbl = tbl.append_column("source", pa.array(["historical"] * tbl.num_rows, pa.string()))
    return tbl


def load_dimensions(lake, settings, run_id: str, dims: dict | None = None) -> dict[str, str]:
    """Upsert each dimension from ``landing/dimensions/<name>.parquet``; returns what happened to
    each. ``dims``: the files as a clean landing check read them (``LandingReport.dimensions``);
    without them the dimensions are checked here first, and nothing is written when they have
    errors (``osmf.ingest.landing.LandingRefused``)."""
    from osmf.ingest.landing import require_clean
    from osmf.lake import conform
    from osmf.lake.tables import spec

    if dims is None:
        dims = require_clean(settings, dates=[]).dimensions
    out = {}
    for name in DIMENSIONS:
        s = spec(name)
        new = _sorted(conform(_as_lake(name, dims[name], settings), s), s.key)
        if lake.exists(name) and _sorted(lake.read_arrow(name), s.key).equals(new):
            out[name] = "unchanged"
        else:
            m = lake.upsert(name, new, run_id=run_id, job="load_dimensions")
            out[name] = f"inserted {m.get('num_target_rows_inserted', 0)}, updated {m.get('num_target_rows_updated', 0)}"
        log.info("%s: %s (%d rows)", name, out[name], new.num_rows)
    return out

"""Load the dimension tables (users, products, creatives) from the world's dimension files.

Upsert by key (MERGE); a dimension whose content is unchanged gets no new commit, so reruns leave
the table history alone.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow.parquet as pq

from osmf.entrypoint import job_parser, run_main
from osmf.lake import Lake, conform
from osmf.runinfo import resolve_run_id
from osmf.settings import Settings
from osmf.tables import spec

DIMENSIONS = ("users", "products", "creatives")
log = logging.getLogger("osmf.load_dimensions")


def _sorted(tbl, key):
    return tbl.sort_by([(k, "ascending") for k in key])


def run(settings: Settings, run_id: str | None = None, lake: Lake | None = None) -> dict[str, str]:
    lake = lake or Lake(settings)
    run_id = resolve_run_id(settings, run_id)
    out = {}
    for name in DIMENSIONS:
        src = Path(settings.world_root) / f"{name}.parquet"
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


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    return run_main(parser, lambda a, s: run(s, a.run_id) and 0, argv)


if __name__ == "__main__":
    raise SystemExit(main())

"""The lake module: the only code that touches Delta tables.

Two backends behind one interface, chosen by the ``lake_backend`` setting:

* ``delta-rs`` (default, tested in CI): delta-rs writes and commits. Spark reads and writes through
  the PySpark 4 Python Data Source ``osmf_delta`` (``osmf.lake.delta_source``, beside this module):
  reads prune files by partition (``partition=``, or a ``where`` on the partition column, pushed
  down), writes are made by the tasks with one commit on the driver. A Spark DataFrame is never
  collected to the driver: ``conform`` refuses one, and ``replace_partition`` and ``overwrite``
  hand it to the writer. ``stage_spark`` writes several tables in one pass (by
  ``mapInArrow`` tasks that return only their files and counts) and leaves the commits to the
  caller. The dimensions' upsert (a MERGE), partition replace, delete, optimize and vacuum of Arrow
  or pandas data run in delta-rs. The Spark reads and writes are in ``osmf.lake.spark_io``.
* ``delta-spark``: native ``format("delta")`` for a Spark that has the Delta jars on its classpath
  (the docker-compose image, a cluster). It cannot run on the offline dev machine (no Maven), so it
  is kept small and is not exercised by the test suite.

Every commit carries ``osmf.run_id`` and ``osmf.job`` in its commit info, so ``history()`` shows
which run wrote which version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from osmf.lake.delta_source import commit_properties, partition_string
from osmf.config.settings import Settings
from osmf.lake.spark_io import SparkIO
from osmf.lake.tables import TABLES, TableSpec, spec


class TableNotFound(FileNotFoundError):
    pass


def is_spark(data: Any) -> bool:
    """Whether ``data`` is a Spark DataFrame (classic or Connect), without importing pyspark."""
    return any(c.__name__ == "DataFrame" and c.__module__.startswith("pyspark.") for c in type(data).__mro__)


def conform(data: Any, table_spec: TableSpec) -> pa.Table:
    """Arrow table with exactly the table's columns, in order, cast to its types (safe casts).
    A Spark DataFrame is refused: it is never collected to the driver (see ``Lake.write_spark``)."""
    if is_spark(data):
        raise TypeError(f"table {table_spec.name!r}: conform() takes Arrow or pandas data; a Spark DataFrame "
                        "is written by its tasks through Lake.write_spark (never collected to the driver)")
    if not isinstance(data, pa.Table):
        data = pa.Table.from_pandas(data, preserve_index=False)
    missing = [f.name for f in table_spec.schema if f.name not in data.column_names]
    if missing:
        raise ValueError(
            f"data for table {table_spec.name!r} lacks column(s) {missing}; it has {data.column_names}"
        )
    cols = []
    for f in table_spec.schema:
        col = data.column(f.name)
        try:
            cols.append(col.cast(f.type) if col.type != f.type else col)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise ValueError(f"table {table_spec.name!r}: column {f.name!r} cannot be cast "
                             f"from {col.type} to {f.type}: {exc}") from None
    return pa.Table.from_arrays(cols, schema=table_spec.schema)


class Lake(SparkIO):
    """All Delta I/O of the project, over the tables of ``settings.lake_root``."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.root = Path(self.settings.lake_root)
        self.backend = self.settings.lake_backend

    # -- metadata ----------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        spec(name)
        return self.root / name

    def exists(self, name: str) -> bool:
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(str(self.path(name)))

    def table(self, name: str, version: int | None = None):
        from deltalake import DeltaTable

        if not self.exists(name):
            raise TableNotFound(
                f"table {name!r} does not exist at {self.path(name)}; create it with `{TABLES[name].made_by}`"
            )
        return DeltaTable(str(self.path(name)), version=version)

    def partition_files(self, name: str, value: Any) -> frozenset[str]:
        """The files of the partition ``value`` in the table's latest version (metadata only; empty
        when the table does not exist)."""
        if not self.exists(name):
            return frozenset()
        col = spec(name).partition_by
        if col is None:
            raise ValueError(f"table {name!r} is not partitioned")
        return frozenset(self.table(name).file_uris(file_pruning_predicate=[(col, "=", partition_string(value))]))

    def rows(self, name: str, partition: Any = None) -> int:
        """Rows of the table (or of one partition) by the Delta log's record counts (metadata only)."""
        adds = pa.table(self.table(name).get_add_actions(flatten=True))
        if partition is not None and adds.num_rows:
            col = f"partition.{spec(name).partition_by}"
            keep = [str(v) == partition_string(partition) for v in adds.column(col).to_pylist()]
            adds = adds.filter(pa.array(keep, pa.bool_()))
        return int(sum(v or 0 for v in adds.column("num_records").to_pylist())) if adds.num_rows else 0

    def has_partition(self, name: str, value: Any) -> bool:
        """Whether the table exists and holds rows in the partition ``value`` (metadata only)."""
        return bool(self.partition_files(name, value))

    def version(self, name: str) -> int:
        return self.table(name).version()

    def history(self, name: str, limit: int | None = None) -> list[dict]:
        return self.table(name).history(limit)

    def ensure(self, name: str) -> None:
        """Create the table, empty, with its contract schema if it does not exist yet."""
        from deltalake import DeltaTable

        if not self.exists(name):
            s = spec(name)
            self.path(name).parent.mkdir(parents=True, exist_ok=True)
            DeltaTable.create(str(self.path(name)), s.schema, mode="ignore",
                              partition_by=[s.partition_by] if s.partition_by else None,
                              name=name, description=s.description)

    # -- reads (delta-rs; any backend's tables) ------------------------------------------------------
    def read_arrow(self, name: str, version: int | None = None, partition: Any = None,
                   columns: list[str] | None = None) -> pa.Table:
        dt = self.table(name, version)
        parts = None
        if partition is not None:
            col = spec(name).partition_by
            if col is None:
                raise ValueError(f"table {name!r} is not partitioned")
            ftype = spec(name).schema.field(col).type
            value = partition_string(partition)
            if pa.types.is_date32(ftype):
                import datetime as _dt

                value = _dt.date.fromisoformat(value)
            parts = [(col, "=", value)]
        return dt.to_pyarrow_table(filters=parts, columns=columns)

    def read_pandas(self, name: str, **kw):
        return self.read_arrow(name, **kw).to_pandas()

    # -- writes (delta-rs) ---------------------------------------------------------------------------
    def replace_partition(self, name: str, data: Any, value: Any, run_id: str | None = None,
                          job: str | None = None) -> int:
        """Replace exactly one partition (``partition_by = value``) with ``data``; other
        partitions are untouched. Rerunning with the same data gives the same table content."""
        from deltalake import write_deltalake

        s = spec(name)
        if s.partition_by is None:
            raise ValueError(f"table {name!r} is not partitioned; use overwrite()")
        if is_spark(data):
            return self.write_spark(data, name, partition=value, run_id=run_id, job=job)
        tbl = conform(data, s)
        value = partition_string(value)
        if tbl.num_rows:
            import pyarrow.compute as pc

            other = pc.unique(tbl.column(s.partition_by).cast(pa.string())).to_pylist()
            if other != [value]:
                raise ValueError(f"replace_partition({name}, {value}) got rows for partitions {other}")
        self.ensure(name)
        write_deltalake(str(self.path(name)), tbl, mode="overwrite",
                        predicate=f"{s.partition_by} = '{value}'",
                        commit_properties=commit_properties(run_id, job, {"partition": value}))
        return self.version(name)

    def overwrite(self, name: str, data: Any, run_id: str | None = None, job: str | None = None) -> int:
        from deltalake import write_deltalake

        s = spec(name)
        if is_spark(data):
            return self.write_spark(data, name, mode="overwrite", run_id=run_id, job=job)
        self.ensure(name)
        write_deltalake(str(self.path(name)), conform(data, s), mode="overwrite",
                        commit_properties=commit_properties(run_id, job))
        return self.version(name)

    def upsert(self, name: str, data: Any, run_id: str | None = None, job: str | None = None) -> dict:
        """MERGE: update every matched row, insert the rest (for dimension tables)."""
        s = spec(name)
        tbl = conform(data, s)
        self.ensure(name)
        pred = " AND ".join(f"t.{k} = s.{k}" for k in s.key)
        return (self.table(name)
                .merge(tbl, pred, source_alias="s", target_alias="t",
                       commit_properties=commit_properties(run_id, job, {"operation": "upsert"}))
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute())

    def optimize(self, name: str) -> dict:
        return self.table(name).optimize.compact()

    def vacuum(self, name: str, retention_hours: int = 168, dry_run: bool = True) -> list[str]:
        return self.table(name).vacuum(retention_hours=retention_hours, dry_run=dry_run,
                                       enforce_retention_duration=retention_hours >= 168)


def summary(lake: Lake) -> str:
    """Every table of the contract with its version, rows, files and partitions (or how to make it)."""
    rows = [f"{'table':<24} {'version':>7} {'rows':>10} {'files':>6} {'partitions':>10}  description",
            "-" * 100]
    for name, s in TABLES.items():
        if not lake.exists(name):
            rows.append(f"{name:<24} {'-':>7} {'-':>10} {'-':>6} {'-':>10}  (not created yet: {s.made_by})")
            continue
        dt = lake.table(name)
        adds = pa.table(dt.get_add_actions(flatten=True))
        n_rows = sum(adds.column("num_records").to_pylist()) if adds.num_rows else 0
        parts = len(set(adds.column(f"partition.{s.partition_by}").to_pylist())) if s.partition_by and adds.num_rows else "-"
        rows.append(f"{name:<24} {dt.version():>7} {n_rows:>10} {adds.num_rows:>6} {parts:>10}  {s.description[:60]}")
    return "\n".join(rows)

"""The lake module: the only code that touches Delta tables.

Two backends behind one interface (DESIGN.md section 3), chosen by the ``lake_backend`` setting:

* ``delta-rs`` (default, tested in CI): delta-rs writes and commits. Spark reads and writes through
  the PySpark 4 Python Data Source ``osmf_delta`` defined below: the reader yields Arrow record
  batches, one Spark partition per Delta file, with time travel (``versionAsOf``); the writer
  writes Parquet files in the tasks and makes ONE atomic Delta commit on the driver
  (``create_write_transaction``); ``abort()`` deletes the files the tasks wrote. MERGE, partition
  replace, delete, optimize and vacuum run in delta-rs.
* ``delta-spark``: native ``format("delta")`` for a Spark that has the Delta jars on its classpath
  (the docker-compose image, a cluster). It cannot run on the offline dev machine (no Maven), so it
  is kept small and is not exercised by the test suite.

Every commit carries ``osmf.run_id`` and ``osmf.job`` in its commit info, so ``history()`` shows
which run wrote which version.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from osmf.settings import Settings, load_settings
from osmf.tables import TABLES, TableSpec, spec

try:  # the data source classes need pyspark; the rest of the module does not
    from pyspark.sql.datasource import (DataSource, DataSourceArrowWriter, DataSourceReader,
                                        InputPartition, WriterCommitMessage)
except ImportError:  # pragma: no cover - pyspark is a hard dependency of the project
    DataSource = DataSourceReader = DataSourceArrowWriter = object  # type: ignore
    InputPartition = WriterCommitMessage = object  # type: ignore


class TableNotFound(FileNotFoundError):
    pass


def _partition_string(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _commit_properties(run_id: str | None, job: str | None, extra: dict | None = None):
    from deltalake import CommitProperties

    meta = {"osmf.run_id": run_id or "unknown", "osmf.job": job or "unknown"}
    meta.update({f"osmf.{k}": str(v) for k, v in (extra or {}).items()})
    return CommitProperties(custom_metadata=meta)


def conform(data: Any, table_spec: TableSpec) -> pa.Table:
    """Arrow table with exactly the table's columns, in order, cast to its types (safe casts)."""
    if hasattr(data, "toArrow"):  # a Spark DataFrame
        data = data.toArrow()
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


class Lake:
    """All Delta I/O of the project. ``Lake()`` uses the process settings."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or load_settings()
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
            value = _partition_string(partition)
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
        tbl = conform(data, s)
        value = _partition_string(value)
        if tbl.num_rows:
            import pyarrow.compute as pc

            other = pc.unique(tbl.column(s.partition_by).cast(pa.string())).to_pylist()
            if other != [value]:
                raise ValueError(f"replace_partition({name}, {value}) got rows for partitions {other}")
        self.ensure(name)
        write_deltalake(str(self.path(name)), tbl, mode="overwrite",
                        predicate=f"{s.partition_by} = '{value}'",
                        commit_properties=_commit_properties(run_id, job, {"partition": value}))
        return self.version(name)

    def overwrite(self, name: str, data: Any, run_id: str | None = None, job: str | None = None) -> int:
        from deltalake import write_deltalake

        s = spec(name)
        self.ensure(name)
        write_deltalake(str(self.path(name)), conform(data, s), mode="overwrite",
                        commit_properties=_commit_properties(run_id, job))
        return self.version(name)

    def merge_insert(self, name: str, data: Any, run_id: str | None = None, job: str | None = None,
                     partition: Any = None) -> dict:
        """MERGE: insert the rows whose key is not in the table yet; existing keys are left as they
        are. ``data`` must be unique on the key. With ``partition`` the match is restricted to that
        partition (keys are then unique per partition). Returns delta-rs merge metrics."""
        s = spec(name)
        tbl = conform(data, s)
        self.ensure(name)
        pred = " AND ".join(f"t.{k} = s.{k}" for k in s.key)
        if partition is not None:
            pred += f" AND t.{s.partition_by} = '{_partition_string(partition)}'"
        return (self.table(name)
                .merge(tbl, pred, source_alias="s", target_alias="t",
                       commit_properties=_commit_properties(run_id, job, {"operation": "merge_insert"}))
                .when_not_matched_insert_all()
                .execute())

    def upsert(self, name: str, data: Any, run_id: str | None = None, job: str | None = None) -> dict:
        """MERGE: update every matched row, insert the rest (for dimension tables)."""
        s = spec(name)
        tbl = conform(data, s)
        self.ensure(name)
        pred = " AND ".join(f"t.{k} = s.{k}" for k in s.key)
        return (self.table(name)
                .merge(tbl, pred, source_alias="s", target_alias="t",
                       commit_properties=_commit_properties(run_id, job, {"operation": "upsert"}))
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute())

    def optimize(self, name: str) -> dict:
        return self.table(name).optimize.compact()

    def vacuum(self, name: str, retention_hours: int = 168, dry_run: bool = True) -> list[str]:
        return self.table(name).vacuum(retention_hours=retention_hours, dry_run=dry_run,
                                       enforce_retention_duration=retention_hours >= 168)

    # -- Spark ---------------------------------------------------------------------------------------
    def read_spark(self, spark, name: str, version: int | None = None, partition: Any = None):
        """A Spark DataFrame over the table (optionally one version, optionally one partition)."""
        s = spec(name)
        if not self.exists(name):
            self.table(name)  # raises TableNotFound with the hint
        if self.backend == "delta-spark":
            reader = spark.read.format("delta")
            if version is not None:
                reader = reader.option("versionAsOf", version)
            df = reader.load(str(self.path(name)))
            if partition is not None:
                df = df.where(f"{s.partition_by} = '{_partition_string(partition)}'")
            return df
        reader = spark.read.format(DeltaRsDataSource.name()).option("path", str(self.path(name)))
        if version is not None:
            reader = reader.option("versionAsOf", str(version))
        if partition is not None:
            reader = reader.option("partition", f"{s.partition_by}={_partition_string(partition)}")
        return reader.load()

    def write_spark(self, df, name: str, partition: Any = None, mode: str = "overwrite",
                    run_id: str | None = None, job: str | None = None) -> int:
        """Write a Spark DataFrame in one atomic commit. With ``partition`` only that partition is
        replaced; else ``mode`` is ``overwrite`` or ``append``."""
        s = spec(name)
        df = df.select(*[f.name for f in s.schema])
        if self.backend == "delta-spark":
            meta = json.dumps({"osmf.run_id": run_id, "osmf.job": job})
            w = df.write.format("delta").option("userMetadata", meta)
            if s.partition_by:
                w = w.partitionBy(s.partition_by)
            if partition is not None:
                w = w.mode("overwrite").option("replaceWhere", f"{s.partition_by} = '{_partition_string(partition)}'")
            else:
                w = w.mode(mode)
            w.save(str(self.path(name)))
            return self.version(name)
        self.ensure(name)
        w = (df.write.format(DeltaRsDataSource.name()).option("path", str(self.path(name)))
             .option("runId", run_id or "unknown").option("job", job or "unknown"))
        if s.partition_by:
            w = w.option("partitionBy", s.partition_by)
        if partition is not None:
            w = w.mode("overwrite").option("replacePartition", f"{s.partition_by}={_partition_string(partition)}")
        else:
            w = w.mode(mode)
        w.save()
        return self.version(name)

    def register_views(self, spark, names: list[str] | None = None) -> list[str]:
        """Register every existing table (or ``names``) as a Spark temp view of the same name."""
        done = []
        for name in names or sorted(TABLES):
            if self.exists(name):
                self.read_spark(spark, name).createOrReplaceTempView(name)
                done.append(name)
        return done


# ====================================================================================================
# The PySpark 4 Python Data Source over delta-rs: format("osmf_delta")
# ====================================================================================================

@dataclass
class _FilePartition(InputPartition):
    path: str | None
    partition_values: dict = field(default_factory=dict)


@dataclass
class _Written(WriterCommitMessage):
    files: list[dict]


def _arrow_schema(dt) -> pa.Schema:
    return pa.schema(dt.schema().to_arrow())


class DeltaRsDataSource(DataSource):
    """Options: ``path`` (table directory); reading: ``versionAsOf``, ``partition`` ("col=value");
    writing: ``partitionBy``, ``replacePartition`` ("col=value"), ``runId``, ``job``."""

    @classmethod
    def name(cls) -> str:
        return "osmf_delta"

    def _table(self):
        from deltalake import DeltaTable

        version = self.options.get("versionAsOf")
        return DeltaTable(self.options["path"], version=int(version) if version is not None else None)

    def schema(self):
        from pyspark.sql.pandas.types import from_arrow_schema

        return from_arrow_schema(_arrow_schema(self._table()), prefer_timestamp_ntz=False)

    def reader(self, schema):
        return _DeltaRsReader(self._table(), self.options.get("partition"))

    def writer(self, schema, overwrite: bool):
        return _DeltaRsArrowWriter(dict(self.options), schema, overwrite)


class _DeltaRsReader(DataSourceReader):
    def __init__(self, dt, partition_filter: str | None):
        self.schema = _arrow_schema(dt)
        self.partition_columns = list(dt.metadata().partition_columns)
        self.root = dt.table_uri.removeprefix("file://")
        adds = pa.table(dt.get_add_actions(flatten=True)).to_pylist()
        want = None
        if partition_filter:
            k, _, v = partition_filter.partition("=")
            want = (k, v)
        self.files = []
        for a in adds:
            pvals = {k.removeprefix("partition."): (None if v is None else _partition_string(v))
                     for k, v in a.items() if k.startswith("partition.")}
            if want and pvals.get(want[0]) != want[1]:
                continue
            self.files.append((os.path.join(self.root, urllib.parse.unquote(a["path"])), pvals))

    def partitions(self):
        if not self.files:
            return [_FilePartition(None, {})]
        return [_FilePartition(p, v) for p, v in self.files]

    def read(self, partition: _FilePartition) -> Iterator[pa.RecordBatch]:
        if partition.path is None:
            return
        data = pq.read_table(partition.path)
        n = data.num_rows
        cols = []
        for f in self.schema:
            if f.name in self.partition_columns:
                raw = partition.partition_values.get(f.name)
                cols.append(pa.array([raw] * n, pa.string()).cast(f.type))
            elif f.name in data.column_names:
                cols.append(data.column(f.name).cast(f.type))
            else:  # column added to the schema after this file was written
                cols.append(pa.nulls(n, f.type))
        yield from pa.Table.from_arrays(cols, schema=self.schema).to_batches(max_chunksize=65536)


class _DeltaRsArrowWriter(DataSourceArrowWriter):
    def __init__(self, options: dict, schema, overwrite: bool):
        from pyspark.sql.pandas.types import to_arrow_schema

        lower = {k.lower(): v for k, v in options.items()}
        self.path = lower["path"]
        self.partition_by = lower.get("partitionby") or None
        self.replace = lower.get("replacepartition")
        self.overwrite = overwrite
        self.run_id, self.job = lower.get("runid"), lower.get("job")
        self.arrow_schema = to_arrow_schema(schema, timezone="UTC")
        # every file of this write carries the write id, so abort() can sweep files of tasks whose
        # commit message never reached the driver (killed, or finished after the job failed)
        self.write_id = uuid.uuid4().hex[:16]

    def write(self, iterator: Iterator[pa.RecordBatch]) -> _Written:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        task = f"{ctx.partitionId():05d}-{ctx.attemptNumber()}" if ctx else "00000-0"
        data_schema = pa.schema([f for f in self.arrow_schema if f.name != self.partition_by])
        writers: dict[str, tuple[pq.ParquetWriter, str, list]] = {}
        written: list[dict] = []
        try:
            for batch in iterator:
                tbl = pa.Table.from_batches([batch]).cast(self.arrow_schema)
                if self.partition_by:
                    import pyarrow.compute as pc

                    keys = tbl.column(self.partition_by).cast(pa.string())
                    groups = [(v, tbl.filter(pc.equal(keys, v))) for v in pc.unique(keys).to_pylist()]
                else:
                    groups = [(None, tbl)]
                for value, part in groups:
                    if value not in writers:
                        sub = f"{self.partition_by}={value}/" if self.partition_by else ""
                        rel = f"{sub}part-{self.write_id}-{task}-{uuid.uuid4().hex[:8]}.zstd.parquet"
                        full = os.path.join(self.path, rel)
                        os.makedirs(os.path.dirname(full), exist_ok=True)
                        writers[value] = (pq.ParquetWriter(full, data_schema, compression="zstd"), rel, [0])
                        written.append({"path": rel, "full": full, "value": value})
                    w, _, count = writers[value]
                    w.write_table(part.select(data_schema.names))
                    count[0] += part.num_rows
            files = []
            for value, (w, rel, count) in writers.items():
                w.close()
                full = os.path.join(self.path, rel)
                files.append({"path": rel, "size": os.path.getsize(full), "rows": count[0],
                              "partition_values": {self.partition_by: value} if self.partition_by else {}})
            return _Written(files)
        except BaseException:
            for w, _, _ in writers.values():
                try:
                    w.close()
                except Exception:
                    pass
            for f in written:
                if os.path.exists(f["full"]):
                    os.remove(f["full"])
            raise

    def commit(self, messages: list[_Written]) -> None:
        from deltalake import DeltaTable, Schema
        from deltalake.transaction import AddAction, create_table_with_add_actions

        now = int(time.time() * 1000)
        actions = [AddAction(f["path"], f["size"], f["partition_values"], now, True,
                             json.dumps({"numRecords": f["rows"]}))
                   for m in messages if m is not None for f in m.files]
        props = _commit_properties(self.run_id, self.job,
                                   {"operation": "spark_write", "partition": self.replace or ""})
        pby = [self.partition_by] if self.partition_by else None
        if not DeltaTable.is_deltatable(self.path):
            create_table_with_add_actions(self.path, Schema.from_arrow(self.arrow_schema), actions,
                                          mode="append", partition_by=pby, commit_properties=props)
            return
        dt = DeltaTable(self.path)
        filters = None
        if self.replace:
            k, _, v = self.replace.partition("=")
            filters = [(k, "=", v)]
        dt.create_write_transaction(actions, "overwrite" if self.overwrite else "append", dt.schema(),
                                    partition_by=pby, partition_filters=filters, commit_properties=props)

    def abort(self, messages: list[_Written]) -> None:
        for m in messages:
            for f in (m.files if m is not None else []):
                full = os.path.join(self.path, f["path"])
                if os.path.exists(full):
                    os.remove(full)
        self._sweep()
        time.sleep(1.0)  # a task cancelled by the failure may still be closing its file
        self._sweep()

    def _sweep(self) -> None:
        marker = f"part-{self.write_id}-"
        for root, _, files in os.walk(self.path):
            if "_delta_log" in root:
                continue
            for name in files:
                if name.startswith(marker):
                    os.remove(os.path.join(root, name))

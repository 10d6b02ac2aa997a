"""The Spark side of the ``delta-rs`` lake backend: a PySpark 4 Python Data Source ``osmf_delta``.

* Reader: yields Arrow record batches, one Spark partition per Delta file, with time travel
  (``versionAsOf``) and a partition filter (``partition`` = "col=value").
* Writer: writes Parquet files in the tasks and makes ONE atomic Delta commit on the driver
  (``create_write_transaction``); ``abort()`` deletes the files the tasks wrote.

``osmf.spark.get_spark`` registers it; only ``osmf.lake`` uses it (``Lake.read_spark`` / ``write_spark``).
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

try:  # the data source classes need pyspark; the rest of the package does not
    from pyspark.sql.datasource import (DataSource, DataSourceArrowWriter, DataSourceReader,
                                        InputPartition, WriterCommitMessage)
except ImportError:  # pragma: no cover - pyspark is a hard dependency of the project
    DataSource = DataSourceReader = DataSourceArrowWriter = object  # type: ignore
    InputPartition = WriterCommitMessage = object  # type: ignore

SOURCE_NAME = "osmf_delta"


def partition_string(value) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def commit_properties(run_id: str | None, job: str | None, extra: dict | None = None):
    from deltalake import CommitProperties

    meta = {"osmf.run_id": run_id or "unknown", "osmf.job": job or "unknown"}
    meta.update({f"osmf.{k}": str(v) for k, v in (extra or {}).items()})
    return CommitProperties(custom_metadata=meta)


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
        return SOURCE_NAME

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
            pvals = {k.removeprefix("partition."): (None if v is None else partition_string(v))
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
        props = commit_properties(self.run_id, self.job,
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

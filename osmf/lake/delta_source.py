"""The Spark side of the ``delta-rs`` lake backend: a PySpark 4 Python Data Source ``osmf_delta``.

* Reader: yields Arrow record batches, one Spark partition per Delta file, with time travel
  (``versionAsOf``), a partition filter (``partition`` = "col=value"), a column list (``columns``),
  and filters on partition columns pushed down (``pushFilters``: files of other partitions are not
  read; needs ``spark.sql.python.filterPushdown.enabled``, set by ``osmf.lake.spark``).
* Writer: writes Parquet files in the tasks and makes ONE atomic Delta commit on the driver
  (``create_write_transaction``; an append of no rows makes none); ``abort()`` deletes the files
  the tasks wrote. Only file names, sizes and row counts reach the driver.

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
    """Options: ``path`` (table directory); reading: ``versionAsOf``, ``partition`` ("col=value"),
    ``columns`` ("a,b": read only these); writing: ``partitionBy``, ``replacePartition``
    ("col=value"), ``runId``, ``job``."""

    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def _table(self):
        from deltalake import DeltaTable

        version = self.options.get("versionAsOf")
        return DeltaTable(self.options["path"], version=int(version) if version is not None else None)

    def _columns(self) -> list[str] | None:
        cols = self.options.get("columns")
        return [c.strip() for c in cols.split(",") if c.strip()] if cols else None

    def schema(self):
        from pyspark.sql.pandas.types import from_arrow_schema

        schema = _arrow_schema(self._table())
        if self._columns():
            schema = pa.schema([schema.field(c) for c in self._columns()])
        return from_arrow_schema(schema, prefer_timestamp_ntz=False)

    def reader(self, schema):
        return _DeltaRsReader(self._table(), self.options.get("partition"), self._columns())

    def writer(self, schema, overwrite: bool):
        return _DeltaRsArrowWriter(dict(self.options), schema, overwrite)


_COMPARE = {"EqualTo": lambda a, b: a == b, "EqualNullSafe": lambda a, b: a == b,
            "GreaterThan": lambda a, b: a > b, "GreaterThanOrEqual": lambda a, b: a >= b,
            "LessThan": lambda a, b: a < b, "LessThanOrEqual": lambda a, b: a <= b,
            "In": lambda a, b: a in b}


def _partition_value(raw: str | None, ftype: pa.DataType):
    """A partition value as stored in the log (a string) -> the Python value Spark filters compare."""
    if raw is None:
        return None
    return pa.array([raw], pa.string()).cast(ftype)[0].as_py()


class _DeltaRsReader(DataSourceReader):
    """One Spark partition per Delta file of the version (or of one partition). Filters on partition
    columns are pushed down (``pushFilters``): files whose partition value fails them are not read."""

    def __init__(self, dt, partition_filter: str | None, columns: list[str] | None = None):
        full = _arrow_schema(dt)
        self.schema = pa.schema([full.field(c) for c in columns]) if columns else full
        self.partition_columns = list(dt.metadata().partition_columns)
        self.partition_types = {c: full.field(c).type for c in self.partition_columns}
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

    def pushFilters(self, filters):
        """Prune files by the filters on a partition column (fully applied: Spark need not check
        them again); return the others."""
        for f in filters:
            name = type(f).__name__
            col = f.attribute[0] if len(getattr(f, "attribute", ())) == 1 else None
            if col not in self.partition_types or name not in _COMPARE:
                yield f
                continue
            try:
                self.files = [(p, v) for p, v in self.files if self._keep(v.get(col), col, name, f.value)]
            except (TypeError, ValueError, pa.ArrowInvalid):  # a value we cannot compare: Spark filters
                yield f

    def _keep(self, raw: str | None, col: str, name: str, value) -> bool:
        have = _partition_value(raw, self.partition_types[col])
        if have is None:
            return name == "EqualNullSafe" and value is None
        if name == "In":
            return have in [x for x in value if x is not None]
        return value is not None and _COMPARE[name](have, value)

    def partitions(self):
        if not self.files:
            return [_FilePartition(None, {})]
        return [_FilePartition(p, v) for p, v in self.files]

    def read(self, partition: _FilePartition) -> Iterator[pa.RecordBatch]:
        if partition.path is None:
            return
        pf = pq.ParquetFile(partition.path)
        present = set(pf.schema_arrow.names)
        stored = [f.name for f in self.schema if f.name in present and f.name not in self.partition_columns]
        for data in pf.iter_batches(batch_size=65536, columns=stored):
            n = data.num_rows
            cols = []
            for f in self.schema:
                if f.name in self.partition_columns:
                    raw = partition.partition_values.get(f.name)
                    cols.append(pa.array([raw] * n, pa.string()).cast(f.type))
                elif f.name in present:
                    cols.append(data.column(f.name).cast(f.type))
                else:  # column added to the schema after this file was written
                    cols.append(pa.nulls(n, f.type))
            yield pa.RecordBatch.from_arrays(cols, schema=self.schema)


ROW_GROUP_ROWS = 1 << 19  # rows buffered by a task before it writes a Parquet row group


class _TaskFiles:
    """The Parquet files of one write task: one per partition value, written in row groups of up to
    ROW_GROUP_ROWS rows (Spark hands the task small Arrow batches; a row group per batch would make
    files slow to read), with at most that many rows buffered in all."""

    def __init__(self, root: str, partition_by: str | None, schema: pa.Schema, prefix: str):
        self.root, self.partition_by, self.schema, self.prefix = root, partition_by, schema, prefix
        self.files: dict = {}
        self.pending_rows = 0

    def add(self, value, table: pa.Table) -> None:
        if value not in self.files:
            sub = f"{self.partition_by}={value}/" if self.partition_by else ""
            rel = f"{sub}{self.prefix}-{uuid.uuid4().hex[:8]}.zstd.parquet"
            full = os.path.join(self.root, rel)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            self.files[value] = {"rel": rel, "full": full, "rows": 0, "pending": [],
                                 "writer": pq.ParquetWriter(full, self.schema, compression="zstd")}
        self.files[value]["pending"].append(table.select(self.schema.names))
        self.pending_rows += table.num_rows
        if self.pending_rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        for f in self.files.values():
            if f["pending"]:
                part = pa.concat_tables(f["pending"])
                f["writer"].write_table(part, row_group_size=ROW_GROUP_ROWS)
                f["rows"] += part.num_rows
                f["pending"] = []
        self.pending_rows = 0

    def close(self) -> list[dict]:
        """Write what is buffered, close the files; their add-action fields."""
        self._flush()
        out = []
        for value, f in self.files.items():
            f["writer"].close()
            out.append({"path": f["rel"], "size": os.path.getsize(f["full"]), "rows": f["rows"],
                        "partition_values": {self.partition_by: value} if self.partition_by else {}})
        return out

    def discard(self) -> None:
        for f in self.files.values():
            try:
                f["writer"].close()
            except Exception:
                pass
            if os.path.exists(f["full"]):
                os.remove(f["full"])


def _add_rows(files: _TaskFiles, tbl: pa.Table, partition_by: str | None) -> None:
    """Hand a task's rows to its files, split by the partition column's value."""
    if not partition_by:
        files.add(None, tbl)
        return
    import pyarrow.compute as pc

    keys = tbl.column(partition_by).cast(pa.string())
    values = pc.unique(keys).to_pylist()
    if len(values) == 1:
        files.add(values[0], tbl)
        return
    for v in values:
        files.add(v, tbl.filter(pc.equal(keys, v)))


def commit_files(path: str, arrow_schema: pa.Schema, files: list[dict], overwrite: bool,
                 partition_by: str | None, replace: str | None, props) -> bool:
    """ONE Delta commit adding Parquet files already written under the table (``files``: path
    relative to the table, size, rows, partition_values); with ``overwrite`` the table (or, with
    ``replace`` = "col=value", that partition) is replaced. Appending nothing makes no commit
    (returns False): the version stays, so reruns leave the history alone."""
    from deltalake import DeltaTable, Schema
    from deltalake.transaction import AddAction, create_table_with_add_actions

    now = int(time.time() * 1000)
    actions = [AddAction(f["path"], f["size"], f["partition_values"], now, True,
                         json.dumps({"numRecords": f["rows"]})) for f in files]
    exists = DeltaTable.is_deltatable(path)
    if not actions and not overwrite and exists:
        return False
    pby = [partition_by] if partition_by else None
    if not exists:
        create_table_with_add_actions(path, Schema.from_arrow(arrow_schema), actions,
                                      mode="append", partition_by=pby, commit_properties=props)
        return True
    dt = DeltaTable(path)
    filters = None
    if replace:
        k, _, v = replace.partition("=")
        filters = [(k, "=", v)]
    dt.create_write_transaction(actions, "overwrite" if overwrite else "append", dt.schema(),
                                partition_by=pby, partition_filters=filters, commit_properties=props)
    return True


def remove_files(path: str, files: list[dict]) -> None:
    for f in files:
        full = os.path.join(path, f["path"])
        if os.path.exists(full):
            os.remove(full)


def _sweep(path: str, write_id: str, keep: set[str] = frozenset()) -> None:
    """Delete the files of one write (their names carry its id) under a table directory, but those
    in ``keep`` (paths relative to the table)."""
    marker = f"part-{write_id}-"
    for root, _, files in os.walk(path):
        if "_delta_log" in root:
            continue
        for name in files:
            full = os.path.join(root, name)
            if name.startswith(marker) and os.path.relpath(full, path) not in keep:
                os.remove(full)


def _sweep_failed(paths: list[str], write_id: str) -> None:
    """After a failed write: its files under each table directory, swept twice (a task cancelled by
    the failure may still be closing its file)."""
    for attempt in range(2):
        if attempt:
            time.sleep(1.0)
        for path in paths:
            _sweep(path, write_id)


def _task_name() -> str:
    from pyspark import TaskContext

    ctx = TaskContext.get()
    return f"{ctx.partitionId():05d}-{ctx.attemptNumber()}" if ctx else "00000-0"


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
        data_schema = pa.schema([f for f in self.arrow_schema if f.name != self.partition_by])
        files = _TaskFiles(self.path, self.partition_by, data_schema, f"part-{self.write_id}-{_task_name()}")
        try:
            for batch in iterator:
                _add_rows(files, pa.Table.from_batches([batch]).cast(self.arrow_schema), self.partition_by)
            return _Written(files.close())
        except BaseException:
            files.discard()
            raise

    def commit(self, messages: list[_Written]) -> None:
        files = [f for m in messages if m is not None for f in m.files]
        props = commit_properties(self.run_id, self.job, {"operation": "spark_write", "partition": self.replace or "",
                                                          "rows": sum(f["rows"] for f in files)})
        commit_files(self.path, self.arrow_schema, files, self.overwrite, self.partition_by, self.replace, props)

    def abort(self, messages: list[_Written]) -> None:
        remove_files(self.path, [f for m in messages if m is not None for f in m.files])
        _sweep_failed([self.path], self.write_id)


# --- the routed write: several tables in one pass, committed later by the driver -------------------

@dataclass
class _Routed:
    files: dict  # route value -> the files of this task (as _Written.files)
    counts: list  # [by values..., rows, max] per group of the report columns


def schema_to_option(schema: pa.Schema) -> str:
    import base64

    return base64.b64encode(schema.serialize().to_pybytes()).decode()


def schema_from_option(text: str) -> pa.Schema:
    import base64

    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


REPORT_DDL = "report string"  # one row per write task: its files and counts as JSON


def run_routed(df, options: dict) -> dict:
    """Run a routed write (:class:`RoutedWrite`) over ``df``'s tasks with ``mapInArrow``: each task
    writes its files and returns one small JSON row (its files and counts), the only thing that
    reaches the driver. (Not a Python Data Source write: that costs about 3 s of driver-side Python
    processes per write, a seventh of a 5M-event ingest.) Returns {"files": {route: [...]},
    "counts": [...]}. A failed job leaves no file of this write; files of task attempts that failed
    and were retried are swept too."""
    from functools import partial

    writer = RoutedWrite(options)
    try:
        rows = df.mapInArrow(partial(_routed_task, writer=writer), REPORT_DDL).collect()
    except BaseException:
        _sweep_failed([r["path"] for r in writer.routes.values()], writer.write_id)
        raise
    reports = [json.loads(r.report) for r in rows]
    out = {"files": {v: [f for r in reports for f in r["files"].get(v, [])] for v in writer.routes},
           "counts": [c for r in reports for c in r["counts"]]}
    writer.sweep(keep=[f["path"] for fs in out["files"].values() for f in fs])
    return out


def _routed_task(batches, writer: "RoutedWrite"):
    res = writer.write(batches)
    yield pa.RecordBatch.from_pydict({"report": [json.dumps({"files": res.files, "counts": res.counts}, default=str)]})


class RoutedWrite:
    """Options: ``routeColumn``; ``routes`` (JSON: route value -> {path, partitionBy, schema}: the
    table a row with that value goes to); ``reportBy`` ("a,b"), ``reportMax``; ``transform``
    ("module:function") and ``transformArgs`` (JSON keyword arguments).
    Each task first passes its Arrow batches through the transform, if any (a function of the
    batch iterator and the keyword arguments, yielding batches), then writes the rows of every
    route into that table's directory (cast to its schema; rows of other values are only counted)
    and counts all its rows by the report columns (with the max of ``reportMax``). Nothing is
    committed: the caller commits (``Lake.stage_spark``)."""

    def __init__(self, options: dict):
        lower = {k.lower(): v for k, v in options.items()}
        self.transform = lower.get("transform") or None
        self.transform_args = json.loads(lower.get("transformargs") or "{}")
        self.route_column = lower["routecolumn"]
        self.routes = json.loads(lower["routes"])
        self.report_by = [c for c in lower.get("reportby", "").split(",") if c]
        self.report_max = lower.get("reportmax") or None
        self.write_id = uuid.uuid4().hex[:16]

    def sweep(self, keep: list[str]) -> None:
        """Delete this write's files under every route's table but those in ``keep`` (relative paths)."""
        for r in self.routes.values():
            _sweep(r["path"], self.write_id, keep=set(keep))

    def write(self, iterator: Iterator[pa.RecordBatch]) -> _Routed:
        import pyarrow.compute as pc

        task = f"part-{self.write_id}-{_task_name()}"
        files = {}
        for value, r in self.routes.items():
            schema = schema_from_option(r["schema"])
            data = pa.schema([f for f in schema if f.name != r.get("partitionBy")])
            files[value] = (_TaskFiles(r["path"], r.get("partitionBy"), data, task), schema)
        counts: dict = {}
        if self.transform:
            import importlib

            module, _, func = self.transform.partition(":")
            iterator = getattr(importlib.import_module(module), func)(iterator, **self.transform_args)
        try:
            for batch in iterator:
                tbl = pa.Table.from_batches([batch])
                self._count(tbl, counts)
                route = tbl.column(self.route_column)
                for value, (out, schema) in files.items():
                    mask = pc.equal(route, value)
                    if pc.any(mask).as_py():
                        part = tbl.select(schema.names).filter(mask).cast(schema)
                        _add_rows(out, part, self.routes[value].get("partitionBy"))
            return _Routed({v: out.close() for v, (out, _) in files.items()},
                           [[*k, n, m] for k, (n, m) in counts.items()])
        except BaseException:
            for out, _ in files.values():
                out.discard()
            raise

    def _count(self, tbl: pa.Table, counts: dict) -> None:
        col = self.report_max or self.route_column
        agg = tbl.group_by(self.report_by, use_threads=False).aggregate([([], "count_all"), (col, "max")])
        for row in agg.to_pylist():
            key = tuple(row[c] for c in self.report_by)
            n, m = counts.get(key, (0, None))
            top = row[f"{col}_max"]
            counts[key] = (n + row["count_all"], top if m is None or (top is not None and top > m) else m)

"""The Spark side of the lake (a mixin of ``osmf.lake.store.Lake``): reading a table as a Spark
DataFrame, writing one in a single commit by its tasks, writing several tables in one pass
(``stage_spark``, whose files wait in a ``StagedWrite`` for the caller's commits), and registering
tables as views. Nothing is collected to the driver."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from osmf.lake.delta_source import (SOURCE_NAME, commit_files, commit_properties, partition_string, remove_files,
                                    schema_to_option)
from osmf.lake.tables import TABLES, TableSpec, spec



def conform_spark(df, table_spec: TableSpec):
    """The Spark DataFrame with exactly the table's columns, in order, cast to its types (lazily, in
    the tasks); a missing column is an error that names it."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    missing = [f.name for f in table_spec.schema if f.name not in df.columns]
    if missing:
        raise ValueError(f"data for table {table_spec.name!r} lacks column(s) {missing}; it has {df.columns}")
    types = from_arrow_schema(table_spec.schema, prefer_timestamp_ntz=False)
    return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in types.fields])


class SparkIO:
    """Spark reads and writes of a ``Lake`` (which provides ``backend``, ``path``, ``exists``,
    ``ensure``, ``table`` and ``version``)."""

    def read_spark(self, spark, name: str, version: int | None = None, partition: Any = None,
                   columns: list[str] | None = None):
        """A Spark DataFrame over the table (optionally one version, one partition, some columns).
        Only the partition's files are read; a filter on the partition column (``where``) prunes
        files the same way (pushed down to the data source)."""
        s = spec(name)
        if not self.exists(name):
            self.table(name)  # raises TableNotFound with the hint
        if self.backend == "delta-spark":
            reader = spark.read.format("delta")
            if version is not None:
                reader = reader.option("versionAsOf", version)
            df = reader.load(str(self.path(name)))
            if partition is not None:
                df = df.where(f"{s.partition_by} = '{partition_string(partition)}'")
            return df.select(*columns) if columns else df
        reader = spark.read.format(SOURCE_NAME).option("path", str(self.path(name)))
        if version is not None:
            reader = reader.option("versionAsOf", str(version))
        if partition is not None:
            reader = reader.option("partition", f"{s.partition_by}={partition_string(partition)}")
        if columns:
            unknown = [c for c in columns if c not in s.schema.names]
            if unknown:
                raise ValueError(f"table {name!r} has no column(s) {unknown}")
            reader = reader.option("columns", ",".join(columns))
        return reader.load()

    def write_spark(self, df, name: str, partition: Any = None, mode: str = "overwrite",
                    run_id: str | None = None, job: str | None = None) -> int:
        """Write a Spark DataFrame in one atomic commit, by its tasks (nothing is collected to the
        driver). Its columns are selected and cast to the table's (in Spark, like ``conform``). With
        ``partition`` only that partition is replaced; else ``mode`` is ``overwrite`` or ``append``
        (an append of no rows makes no commit)."""
        s = spec(name)
        df = conform_spark(df, s)
        if self.backend == "delta-spark":
            meta = json.dumps({"osmf.run_id": run_id, "osmf.job": job})
            w = df.write.format("delta").option("userMetadata", meta)
            if s.partition_by:
                w = w.partitionBy(s.partition_by)
            if partition is not None:
                w = w.mode("overwrite").option("replaceWhere", f"{s.partition_by} = '{partition_string(partition)}'")
            else:
                w = w.mode(mode)
            w.save(str(self.path(name)))
            return self.version(name)
        self.ensure(name)
        w = (df.write.format(SOURCE_NAME).option("path", str(self.path(name)))
             .option("runId", run_id or "unknown").option("job", job or "unknown"))
        if s.partition_by:
            w = w.option("partitionBy", s.partition_by)
        if partition is not None:
            w = w.mode("overwrite").option("replacePartition", f"{s.partition_by}={partition_string(partition)}")
        else:
            w = w.mode(mode)
        w.save()
        return self.version(name)

    def stage_spark(self, df, route_column: str, routes: dict[str, str], report_by: list[str] = (),
                    report_max: str | None = None, transform: str | None = None,
                    transform_args: dict | None = None) -> "StagedWrite":
        """Write a Spark DataFrame to several tables in ONE pass, by its tasks: a row whose
        ``route_column`` is a key of ``routes`` goes to that table (the table's columns, cast to its
        types); every row is counted by ``report_by`` (with the max of ``report_max``). Nothing is
        committed yet: the returned StagedWrite has the counts, and commits (or discards) each table.
        Only file names and counts reach the driver. delta-rs backend only.

        ``transform`` ("module:function") turns each task's Arrow batches into the rows to route
        (``function(batches, **transform_args)``, a generator): the last step of a job runs inside
        the writer's tasks, without a round trip through the JVM; the columns are then checked in
        the tasks."""
        if self.backend != "delta-rs":
            raise NotImplementedError("stage_spark needs the delta-rs backend")
        route_opts = {}
        for value, name in routes.items():
            s = spec(name)
            missing = [f.name for f in s.schema if f.name not in df.columns]
            if missing and not transform:
                raise ValueError(f"rows routed to table {name!r} lack column(s) {missing}; they have {df.columns}")
            self.ensure(name)
            route_opts[value] = {"path": str(self.path(name)), "partitionBy": s.partition_by,
                                 "schema": schema_to_option(s.schema)}
        from osmf.lake.delta_source import run_routed

        data = run_routed(df, {"routeColumn": route_column, "routes": json.dumps(route_opts),
                               "reportBy": ",".join(report_by), "reportMax": report_max or "",
                               "transform": transform or "", "transformArgs": json.dumps(transform_args or {})})
        counts = [dict(zip([*report_by, "rows", "max"], c)) for c in data["counts"]]
        return StagedWrite(self, {routes[v]: files for v, files in data["files"].items()}, counts)

    def register_views(self, spark, names: list[str] | None = None) -> list[str]:
        """Register every existing table (or ``names``) as a Spark temp view of the same name."""
        done = []
        for name in names or sorted(TABLES):
            if self.exists(name):
                self.read_spark(spark, name).createOrReplaceTempView(name)
                done.append(name)
        return done


@dataclass
class StagedWrite:
    """Files written by the tasks of ``Lake.stage_spark`` and not committed yet: ``files`` per table,
    ``counts`` per group of the report columns (``rows``, ``max``)."""
    lake: Any  # the Lake that staged them
    files: dict[str, list[dict]]
    counts: list[dict]

    def rows(self, name: str) -> int:
        return sum(f["rows"] for f in self.files.get(name, []))

    def commit(self, name: str, partition: Any = None, run_id: str | None = None, job: str | None = None) -> int:
        """ONE Delta commit of the table's staged files: with ``partition`` they replace that partition
        (even when there are none), else they are appended (none: no commit). Returns the version."""
        s = spec(name)
        replace = f"{s.partition_by}={partition_string(partition)}" if partition is not None else None
        files = self.files.get(name, [])
        props = commit_properties(run_id, job, {"operation": "spark_write", "partition": partition_string(partition)
                                                if partition is not None else "", "rows": sum(f["rows"] for f in files)})
        try:
            commit_files(str(self.lake.path(name)), s.schema, files, replace is not None, s.partition_by, replace, props)
        except Exception:
            # a commit that failed may still have landed: files the table now references are no
            # longer staged (``discard`` must not delete them); the others stay for ``discard``
            if self.lake.exists(name):
                live = set(pa.table(self.lake.table(name).get_add_actions(flatten=True)).column("path").to_pylist())
                self.files[name] = [f for f in files if f["path"] not in live]
            raise
        self.files.pop(name, None)
        return self.lake.version(name)

    def discard(self) -> None:
        """Delete every staged file not committed yet."""
        for name, files in self.files.items():
            remove_files(str(self.lake.path(name)), files)
        self.files = {}

"""Quality gates: Great Expectations 1.x suites (``expectations/<table>.json``) run with an
ephemeral context on exactly one partition of a table (or the whole table for dimensions).

A partition of at least ``settings.quality_spark_min_rows`` rows (by the Delta log's record counts) is validated as a
Spark DataFrame (GX's Spark execution engine: every expectation is a Spark job, nothing is
collected); smaller ones are read into pandas, which is faster for them.

Suites are reviewed JSON. Values that depend on the run (the date window, the allowed quarantine
reasons) are GX suite parameters (``{"$PARAMETER": name}``) filled in by :func:`suite_parameters`.
A column that references a dimension is checked with ``expect_column_values_to_be_in_dimension``
(:mod:`osmf.quality.gx_dimension`), whose keys :func:`dimension_keys` loads from the lake.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from osmf.config.settings import Settings
from osmf.lake import Lake
from osmf.lake.tables import spec

log = logging.getLogger("osmf.quality")
DIMENSION_EXPECTATION = "expect_column_values_to_be_in_dimension"
DEFAULT_SUITES = Settings().expectations_dir  # settings.expectations_dir ([osmf].expectations_dir) where a lake is at hand


@dataclass
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    observed: object
    unexpected_count: int | None
    sample: list


@dataclass
class ValidationReport:
    table: str
    partition: str | None
    rows: int
    success: bool
    outcomes: list[ExpectationOutcome]

    def summary(self) -> str:
        where = f"{self.table} [{spec(self.table).partition_by}={self.partition}]" if self.partition else self.table
        lines = [f"{'PASSED' if self.success else 'FAILED'}: {where}, {self.rows} rows, "
                 f"{sum(o.success for o in self.outcomes)}/{len(self.outcomes)} expectations met"]
        for o in self.outcomes:
            if not o.success:
                detail = f"unexpected={o.unexpected_count} sample={o.sample[:5]}" if o.unexpected_count is not None \
                    else f"observed={o.observed}"
                lines.append(f"  FAIL {o.expectation}({o.column or ''}): {detail}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"table": self.table, "partition": self.partition, "rows": self.rows, "success": self.success,
                "outcomes": [o.__dict__ for o in self.outcomes]}


def suite_path(table: str, suites: Path = DEFAULT_SUITES) -> Path:
    path = Path(suites) / f"{table}.json"
    if not path.exists():
        raise FileNotFoundError(f"no expectation suite for table {table!r}: {path} is missing")
    return path


def suite_parameters(lake: Lake, table: str, run_date: str | None) -> dict:
    params: dict = {}
    if run_date:
        day = pd.Timestamp(run_date, tz="UTC")
        params.update(day_start=day, day_end=day + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1),
                      run_date_set=[dt.date.fromisoformat(run_date)])
    text = suite_path(table, lake.settings.expectations_dir).read_text()
    if "quarantine_reasons" in text:
        from osmf.ingest.events import REASONS

        params["quarantine_reasons"] = sorted(REASONS)
    if "users_x_products" in text:  # a row for every user x product (serving_assignments)
        params["users_x_products"] = lake.rows("users") * lake.rows("products")
    return params


def _dimension_refs(table: str, suites: Path) -> set[tuple[str, str]]:
    return {(e["kwargs"]["dimension"], e["kwargs"]["key"])
            for e in json.loads(suite_path(table, suites).read_text())["expectations"]
            if e["type"] == DIMENSION_EXPECTATION}


def dimension_keys(lake: Lake, table: str) -> dict[str, frozenset]:
    """The keys of every dimension the table's suite references (``"users.user_id" -> frozenset``);
    a dimension ``a+b`` is the union of the keys of tables ``a`` and ``b``."""
    return {f"{dim}.{key}": frozenset().union(*(lake.read_arrow(d, columns=[key]).column(key).to_pylist()
                                               for d in dim.split("+")))
            for dim, key in sorted(_dimension_refs(table, lake.settings.expectations_dir))}


def validate_frame(table: str, df, params: dict, partition: str | None = None, scratch: Path | None = None,
                   dimensions: dict | None = None, suites: Path = DEFAULT_SUITES) -> ValidationReport:
    """Run the table's suite on a DataFrame (pandas, or Spark) with an ephemeral GX context;
    ``dimensions``: the keys from :func:`dimension_keys` (needed when the suite references a
    dimension). GX's ephemeral docs site goes to ``scratch`` (default ``Settings().tmp_root``) rather
    than the system temp dir; ``suites``: the folder of the suites."""
    import tempfile

    from osmf.quality.gx_dimension import keys_in_use

    missing = {f"{d}.{k}" for d, k in _dimension_refs(table, suites)} - set(dimensions or {})
    if missing:
        raise ValueError(f"suite {table!r} checks columns against {sorted(missing)}: pass their keys "
                         f"(dimensions=osmf.quality.dimension_keys(lake, {table!r}))")

    scratch = Path(scratch or Settings().tmp_root)
    scratch.mkdir(parents=True, exist_ok=True)
    old, tempfile.tempdir = tempfile.tempdir, str(scratch)
    try:
        with keys_in_use(dimensions or {}):
            return _validate_frame(table, df, params, partition, suites)
    finally:
        tempfile.tempdir = old


def _validate_frame(table: str, df, params: dict, partition: str | None, suites: Path) -> ValidationReport:
    import great_expectations as gx
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    raw = json.loads(suite_path(table, suites).read_text())
    ctx = gx.get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # progress bars are cosmetic
        pass
    on_spark = not isinstance(df, pd.DataFrame)
    source = ctx.data_sources.add_spark("osmf") if on_spark else ctx.data_sources.add_pandas("osmf")
    batch_def = source.add_dataframe_asset(table).add_batch_definition_whole_dataframe("partition")
    suite = ctx.suites.add(ExpectationSuite(
        name=raw["name"], meta=raw.get("meta", {}),
        expectations=[ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"], meta=e.get("meta", {}))
                      for e in raw["expectations"]]))
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=f"{table}-check", data=batch_def, suite=suite))
    result = vd.run(batch_parameters={"dataframe": df}, expectation_parameters=params)
    outcomes = []
    for r in result.results:
        res = r.result or {}
        outcomes.append(ExpectationOutcome(
            r.expectation_config.type, r.expectation_config.kwargs.get("column"), bool(r.success),
            _jsonable(res.get("observed_value")), res.get("unexpected_count"),
            [_jsonable(v) for v in (res.get("partial_unexpected_list") or [])[:10]]))
    return ValidationReport(table, partition, df.count() if on_spark else len(df), bool(result.success), outcomes)


def _jsonable(v):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def validate_table(lake: Lake, table: str, run_date: str | None, spark_min_rows: int | None = None) -> ValidationReport:
    """Validate exactly one partition (``run_date``) of a partitioned table, or a whole dimension:
    in Spark from ``spark_min_rows`` rows (default ``settings.quality_spark_min_rows``), else in pandas."""
    s = spec(table)
    partition = run_date if s.partition_by else None
    if s.partition_by and not run_date:
        raise ValueError(f"table {table!r} is partitioned by {s.partition_by}: give --run-date")
    params, dims = suite_parameters(lake, table, run_date), dimension_keys(lake, table)
    settings = lake.settings
    threshold = settings.quality_spark_min_rows if spark_min_rows is None else spark_min_rows
    if lake.exists(table) and lake.rows(table, partition) >= threshold:
        from osmf.lake.spark import get_spark

        df = lake.read_spark(get_spark(lake.settings), table, partition=partition).persist()
        try:
            return validate_frame(table, df, params, partition, scratch=settings.tmp_root, dimensions=dims,
                                  suites=settings.expectations_dir)
        finally:
            df.unpersist()
    return validate_frame(table, lake.read_pandas(table, partition=partition), params, partition,
                          scratch=settings.tmp_root, dimensions=dims, suites=settings.expectations_dir)

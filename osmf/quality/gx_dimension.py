"""A Great Expectations expectation for referential integrity: ``expect_column_values_to_be_in_dimension``.

In a suite::

    {"type": "expect_column_values_to_be_in_dimension",
     "kwargs": {"column": "user_id", "dimension": "users", "key": "user_id"}}

passes when every non-null value of ``column`` is a ``key`` of the ``dimension`` table. The
dimension's keys are loaded once per validation by :func:`osmf.quality.dimension_keys` and handed
to :func:`keys_in_use`; GX only sees the two names. (``expect_column_values_to_be_in_set`` with
the keys as its value set gives the same outcomes, but GX copies a 100k-key set through its
configuration objects again and again and builds a Spark ``isin`` from one Python literal per key:
about 290 s to validate a 6.4M-row ``user_groups`` partition of the ``medium`` world, nearly all
spent on those two things.)

pandas: ``Series.isin`` of a frozenset. Spark: one SQL ``IN (...)`` expression, which Spark turns
into a hash set; the frame is filtered in the tasks, nothing is collected.

Imported lazily (it imports GX): defining the classes registers the expectation and its metric.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import ClassVar, Tuple

from great_expectations.execution_engine import PandasExecutionEngine, SparkDFExecutionEngine
from great_expectations.expectations.expectation import ColumnMapExpectation
from great_expectations.expectations.metrics.map_metric_provider import (
    ColumnMapMetricProvider,
    column_condition_partial,
)

_KEYS: contextvars.ContextVar[dict] = contextvars.ContextVar("osmf_dimension_keys", default={})


@contextlib.contextmanager
def keys_in_use(keys: dict[str, frozenset]):
    """The dimension keys (``"users.user_id" -> frozenset``) the expectation checks against while
    a validation runs."""
    token = _KEYS.set(keys)
    try:
        yield
    finally:
        _KEYS.reset(token)


def known(dimension: str, key: str) -> frozenset:
    name = f"{dimension}.{key}"
    keys = _KEYS.get()
    if name not in keys:
        raise KeyError(f"no keys of dimension {name} were loaded for this validation "
                       f"(osmf.quality.dimension_keys(lake, table) loads the ones a suite names)")
    return keys[name]


def _sql_literal(v) -> str:
    if isinstance(v, str):
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(v, (bool, int, float)):
        return repr(v)
    raise TypeError(f"dimension keys must be strings or numbers, got {type(v).__name__}")


class ColumnValuesInDimension(ColumnMapMetricProvider):
    condition_metric_name = "column_values.in_dimension"
    condition_value_keys = ("dimension", "key")

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, dimension, key, **kwargs):
        return column.isin(known(dimension, key))

    @column_condition_partial(engine=SparkDFExecutionEngine)
    def _spark(cls, column, dimension, key, **kwargs):
        from pyspark.sql import functions as F

        keys = known(dimension, key)
        if not keys:
            return F.lit(False)
        name = kwargs["_accessor_domain_kwargs"]["column"].replace("`", "``")
        return F.expr(f"`{name}` IN ({','.join(_sql_literal(v) for v in sorted(keys))})")


class ExpectColumnValuesToBeInDimension(ColumnMapExpectation):
    """Expect each non-null value of the column to be a key of a dimension table (``dimension``'s
    column ``key``)."""

    dimension: str
    key: str

    map_metric = "column_values.in_dimension"
    args_keys = ("column", "dimension", "key")
    domain_keys: ClassVar[Tuple[str, ...]] = ("column", "row_condition", "condition_parser")
    success_keys = ("dimension", "key", "mostly")
    library_metadata: ClassVar[dict] = {"maturity": "experimental", "tags": ["osmf", "referential integrity"],
                                        "contributors": ["osmf"], "requirements": []}

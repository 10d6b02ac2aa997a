"""The lake: the one module family that owns Delta I/O (``store``: the ``Lake`` class, both
backends), the table contracts (``tables``), the Spark data source over delta-rs (``delta_source``),
the Spark session (``spark``) and the analyst SQL runner (``sqlrun``)."""

from osmf.lake.spark_io import StagedWrite
from osmf.lake.store import Lake, TableNotFound, conform, is_spark, summary

__all__ = ["Lake", "StagedWrite", "TableNotFound", "conform", "is_spark", "summary"]

"""Run analyst SQL (a file from sql/ or an inline query) on the lake, with Spark SQL or DuckDB.

Queries name lake tables directly (``FROM impressions``); every existing table is registered as a
view. Named parameters are written ``:name`` (Spark SQL's named parameter markers; rewritten to
DuckDB's ``$name``). A file documents its parameters in header comments::

    -- param start_date: first event_date to include (YYYY-MM-DD)
    -- param k = 5: an optional parameter with a default
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from osmf.lake import Lake
from osmf.lake.tables import TABLES

_MARKER = re.compile(r"(?<![\w:]):([A-Za-z_]\w*)")
_PARAM_DOC = re.compile(r"^--\s*param\s+([A-Za-z_]\w*)\s*(?:=\s*([^:]+?))?\s*:\s*(.*)$")
ENGINES = ("spark", "duckdb")
FORMATS = ("table", "csv", "json")


@dataclass
class Query:
    name: str
    text: str
    params: dict[str, tuple[str | None, str]]  # name -> (default, description)
    description: str


def list_queries(sql_dir: Path) -> list[Query]:
    """Every query of ``sql_dir`` (``settings.sql_dir``), by name."""
    return [load_query(str(f), sql_dir) for f in sorted(Path(sql_dir).glob("*.sql"))]


def load_query(file_or_query: str, sql_dir: Path) -> Query:
    """A path, a name in ``sql_dir`` (with or without .sql), or an inline query."""
    path, sql_dir = Path(file_or_query), Path(sql_dir)
    candidates = [path, sql_dir / file_or_query, sql_dir / f"{file_or_query}.sql"]
    found = next((p for p in candidates if p.suffix == ".sql" and p.is_file()), None)
    if found is None and re.match(r"^\s*(select|with)\b", file_or_query, re.I) is None:
        raise FileNotFoundError(f"{file_or_query!r} is neither a .sql file, a query in {sql_dir}, nor a SELECT")
    text = found.read_text() if found else file_or_query
    params, desc = {}, []
    for line in text.splitlines():
        m = _PARAM_DOC.match(line.strip())
        if m:
            params[m.group(1)] = (m.group(2).strip() if m.group(2) else None, m.group(3).strip())
        elif line.startswith("--") and not params:
            desc.append(line.lstrip("- ").strip())
    for marker in _MARKER.findall(_strip_comments(text)):
        params.setdefault(marker, (None, ""))
    return Query(found.stem if found else "inline", text, params, " ".join(desc))


def _strip_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.strip().startswith("--"))


def bind(query: Query, given: dict[str, str]) -> dict[str, str]:
    unknown = set(given) - set(query.params)
    if unknown:
        raise ValueError(f"query {query.name!r} has no parameter(s) {sorted(unknown)}; "
                         f"its parameters: {sorted(query.params) or 'none'}")
    values = {}
    for name, (default, desc) in query.params.items():
        if name in given:
            values[name] = given[name]
        elif default is not None:
            values[name] = default
        else:
            raise ValueError(f"query {query.name!r} needs --param {name}=... ({desc or 'no description'})")
    return values


def run_query(query: Query, params: dict[str, str], lake: Lake, engine: str = "spark", spark=None) -> pd.DataFrame:
    values = bind(query, params)
    sql = _strip_comments(query.text).strip().rstrip(";")
    if engine == "spark":
        from osmf.lake.spark import get_spark

        spark = spark or get_spark(lake.settings)
        lake.register_views(spark)
        return spark.sql(sql, args=values).toPandas()
    if engine == "duckdb":
        con = duckdb_connection(lake)
        return con.execute(_MARKER.sub(lambda m: "$" + m.group(1), sql), values).df()
    raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


def duckdb_connection(lake: Lake):
    """A DuckDB connection with the bundled delta extension loaded and a view per lake table."""
    import os

    import duckdb
    import duckdb_extension_delta

    ext = Path(duckdb_extension_delta.__file__).parent / "extensions" / f"v{duckdb.__version__}" / "delta.duckdb_extension"
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{ext}'")
    for name in sorted(TABLES):
        if lake.exists(name):
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM delta_scan('{os.fspath(lake.path(name))}')")
    return con


def render(df: pd.DataFrame, fmt: str = "table") -> str:
    if fmt == "csv":
        return df.to_csv(index=False)
    if fmt == "json":
        return df.to_json(orient="records", date_format="iso", indent=1)
    if fmt == "table":
        with pd.option_context("display.max_rows", 500, "display.width", 200, "display.max_columns", 50):
            return df.to_string(index=False) if len(df) else "(no rows)"
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")

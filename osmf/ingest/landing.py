"""The landing contract (docs/landing.md) and ``osmf landing check``: a drop validated before ingest.

A drop is what a producer writes under ``$OSMF_HOME/landing``:

* ``contract.json``: ``{"contract_version": 1, ...}``;
* ``dimensions/``: ``users.parquet``, ``products.parquet``, ``creatives.parquet`` (columns in
  :data:`DIMENSIONS`), then ``_SUCCESS``;
* ``assets/``: the images and masks the dimension files name (URIs relative to ``landing/``);
* ``events/event_date=D/*.jsonl``: one JSON object per line (``osmf.ingest.lines``), then ``_SUCCESS``.

:func:`check_landing` reads the drop and nothing else (no lake, no Spark) and returns every
problem with its file, row or line, column and what is expected. Errors stop the ingest before it
writes anything (:func:`require_clean`); warnings are what ingest handles itself (lines it will
quarantine, extra columns it ignores).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pyarrow as pa

from osmf.config.settings import CONTRACT_VERSION, LANDING_MARKER, Settings

# column -> (kind, required); kinds: string | integer | number. The lake's types are in osmf.lake.tables.
DIMENSIONS: dict[str, dict[str, tuple[str, bool]]] = {
    "users": {"user_id": ("string", True), "age": ("integer", True), "gender": ("string", True),
              "city_tier": ("integer", True), "income_level": ("integer", True), "activity": ("string", True),
              "device": ("string", True), "tenure_days": ("integer", True)},
    "products": {"product_id": ("string", True), "title": ("string", True), "category": ("string", True),
                 "price": ("number", True), "image_uri": ("string", True), "mask_uri": ("string", True)},
    "creatives": {"creative_id": ("string", True), "product_id": ("string", True),
                  "background_prompt": ("string", True), "image_uri": ("string", True),
                  "source": ("string", False)},
}
KEYS = {"users": "user_id", "products": "product_id", "creatives": "creative_id"}
# what changed between contract versions, for the message that refuses an older drop
CHANGES = {0: "contract 1 moved the dimension files from world/ to landing/dimensions/ (with a _SUCCESS marker), "
              "the images to landing/assets/ with URIs relative to landing/, and added landing/contract.json"}


class LandingRefused(RuntimeError):
    """The drop has errors: nothing was ingested. The message is the full report."""


@dataclass(frozen=True)
class Problem:
    severity: str  # error | warning
    file: str  # relative to the landing root
    where: str  # "row 3" (a dimension file, 1-based), "line 17" (an events file), or ""
    column: str
    message: str

    def __str__(self) -> str:
        at = ", ".join(x for x in (self.where, f"column {self.column}" if self.column else "") if x)
        return f"{self.severity.upper():7} {self.file}{' ' + at if at else ''}: {self.message}"


@dataclass
class LandingReport:
    root: Path
    problems: list[Problem] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # the dimension files as read (those with every required column of the right kind): what the
    # ingest loads once the report is clean, so the files are read once
    dimensions: dict[str, pa.Table] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def text(self) -> str:
        head = (f"landing check of {self.root}: {len(self.errors)} errors, "
                f"{len(self.problems) - len(self.errors)} warnings ({self.seconds:.1f}s)")
        return "\n".join([head, *(f"  checked {c}" for c in self.checked), *map(str, self.problems)])


class _Sink:
    """Collects problems, at most ``limit`` of one (severity, file, column, message kind) in full."""

    def __init__(self, report: LandingReport, limit: int):
        self.report, self.limit, self.seen = report, limit, Counter()

    def add(self, severity: str, file: str, where: str, column: str, message: str, kind: str | None = None) -> None:
        key = (severity, file, column, kind or message)
        self.seen[key] += 1
        if self.seen[key] <= self.limit:
            self.report.problems.append(Problem(severity, file, where, column, message))

    def close(self) -> None:
        for (severity, file, column, _), n in self.seen.items():
            if n > self.limit:
                self.report.problems.append(Problem(severity, file, "", column,
                                                    f"... and {n - self.limit} more like the above"))


def check_landing(settings: Settings, dates: list[str] | None = None) -> LandingReport:
    """Check the drop under ``settings.landing_root``: the contract version, the dimensions and their
    assets, and the events of ``dates`` (default: every landed date)."""
    t0 = time.perf_counter()
    report = LandingReport(settings.landing_root)
    sink = _Sink(report, settings.landing.max_problems_per_check)
    if _check_contract(settings, sink):
        dims = report.dimensions = read_dimensions(settings, sink)
        report.checked.append("the dimensions and their assets")
        _check_references(dims, sink)
        _check_assets(settings, dims, sink)
        from osmf.ingest.landing_events import check_events_day

        for date in (landed_dates(settings) if dates is None else dates):
            report.checked.append(f"the events of {date}")
            check_events_day(settings, date, dims, sink)
    sink.close()
    report.seconds = time.perf_counter() - t0
    return report


def require_clean(settings: Settings, dates: list[str] | None) -> LandingReport:
    """:func:`check_landing`, raising :class:`LandingRefused` (the report as its message) on errors."""
    import logging

    report = check_landing(settings, dates)
    log = logging.getLogger("osmf.landing")
    if not report.ok:
        raise LandingRefused(report.text() + "\nnothing was ingested; fix the drop and rerun "
                                             "(`osmf landing check` repeats these checks)")
    for line in report.text().splitlines():
        log.info("%s", line)
    return report


def landed_dates(settings: Settings) -> list[str]:
    """The dates with an events folder in the landing, in order."""
    root = settings.landing_root / "events"
    return sorted(p.name.split("=", 1)[1] for p in root.glob("event_date=*") if p.is_dir()) if root.exists() else []


def _check_contract(settings: Settings, sink: _Sink) -> bool:
    """The drop's contract version: True when this osmf reads it."""
    path = settings.landing_contract
    if not path.exists():
        if (settings.home / "world" / "users.parquet").exists():
            sink.add("error", "contract.json", "", "", f"this is a contract-0 drop (dimension files under "
                     f"{settings.home / 'world'}), which this osmf no longer reads: {CHANGES[0]}. "
                     "Regenerate it (`osmf world generate`) or move the files (docs/landing.md)")
        else:
            sink.add("error", "contract.json", "", "contract_version",
                     f"{path} is missing: a drop says which contract it follows, e.g. "
                     f'{{"contract_version": {CONTRACT_VERSION}}} (docs/landing.md)')
        return False
    try:
        version = json.loads(path.read_text())["contract_version"]
        if not isinstance(version, int) or isinstance(version, bool):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        sink.add("error", "contract.json", "", "contract_version", "expected a JSON object with an integer "
                 f'"contract_version" (this osmf reads {CONTRACT_VERSION})')
        return False
    if version > CONTRACT_VERSION:
        sink.add("error", "contract.json", "", "contract_version", f"the drop follows contract {version}; this "
                 f"osmf reads contract {CONTRACT_VERSION}: upgrade osmf")
        return False
    if version < CONTRACT_VERSION:
        sink.add("error", "contract.json", "", "contract_version", f"contract {version} is no longer read: "
                 + "; ".join(CHANGES[v] for v in range(version, CONTRACT_VERSION) if v in CHANGES))
        return False
    return True


def _kind_ok(kind: str, t: pa.DataType) -> bool:
    if kind == "string":
        return pa.types.is_string(t) or pa.types.is_large_string(t)
    if kind == "integer":
        return pa.types.is_integer(t)
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def read_dimensions(settings: Settings, sink: _Sink) -> dict[str, pa.Table]:
    """The dimension files as Arrow tables (only those that can be read and have every required
    column of the right kind); every problem found goes to ``sink``."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    folder = settings.landing_dimensions
    if not (folder / LANDING_MARKER).exists():
        sink.add("error", f"dimensions/{LANDING_MARKER}", "", "", "the dimensions are not marked complete: a "
                 f"producer writes {LANDING_MARKER} in landing/dimensions/ after the last dimension file")
    out = {}
    for name, columns in DIMENSIONS.items():
        rel = f"dimensions/{name}.parquet"
        if not (folder / f"{name}.parquet").exists():
            sink.add("error", rel, "", "", f"missing: every drop has {name}.parquet ({', '.join(columns)})")
            continue
        try:
            tbl = pq.read_table(folder / f"{name}.parquet")
        except (pa.ArrowException, OSError) as exc:
            sink.add("error", rel, "", "", f"not a readable Parquet file ({exc})")
            continue
        good = True
        for col, (kind, required) in columns.items():
            if col not in tbl.column_names:
                if required:
                    sink.add("error", rel, "", col, f"missing column (expected {kind}, required)")
                    good = False
                continue
            t = tbl.schema.field(col).type
            if not _kind_ok(kind, t):
                sink.add("error", rel, "", col, f"has type {t}; expected {kind}")
                good = False
            elif required and tbl.column(col).null_count:
                rows = pc.indices_nonzero(pc.is_null(tbl.column(col))).to_pylist()
                for r in rows:
                    sink.add("error", rel, f"row {r + 1}", col, "is null; the column is required", "null")
                good = False
        for col in sorted(set(tbl.column_names) - set(columns)):
            sink.add("warning", rel, "", col, "is not in the contract: ignored")
        if good:
            _check_keys(name, tbl, sink)
            out[name] = tbl
    return out


def _check_keys(name: str, tbl: pa.Table, sink: _Sink) -> None:
    key = KEYS[name]
    seen: dict[str, int] = {}
    for r, v in enumerate(tbl.column(key).to_pylist()):
        if v == "":
            sink.add("error", f"dimensions/{name}.parquet", f"row {r + 1}", key, "is empty", "empty")
        elif v in seen:
            sink.add("error", f"dimensions/{name}.parquet", f"row {r + 1}", key,
                     f"duplicate key {v!r} (first at row {seen[v] + 1}); keys are unique", "duplicate")
        else:
            seen[v] = r


def _check_references(dims: dict[str, pa.Table], sink: _Sink) -> None:
    if "creatives" not in dims or "products" not in dims:
        return
    products = set(dims["products"].column("product_id").to_pylist())
    for r, p in enumerate(dims["creatives"].column("product_id").to_pylist()):
        if p not in products:
            sink.add("error", "dimensions/creatives.parquet", f"row {r + 1}", "product_id",
                     f"{p!r} is not a product_id of dimensions/products.parquet", "unknown product")


def _safe_uri(uri: str) -> bool:
    p = PurePosixPath(uri)
    return bool(uri) and not p.is_absolute() and ".." not in p.parts and "\\" not in uri


def _open_image(settings: Settings, uri: str, rel: str, row: int, column: str, sink: _Sink, mode: str):
    """The image behind a landing URI as a PIL image in ``mode``, or None (a problem is recorded)."""
    from PIL import Image, UnidentifiedImageError

    where = f"row {row + 1}"
    if not _safe_uri(uri):
        sink.add("error", rel, where, column, f"{uri!r} is not a path relative to landing/ (e.g. assets/x.png)", "uri")
        return None
    path = settings.landing_asset(uri)
    if not path.exists():
        sink.add("error", rel, where, column, f"{uri} does not exist under landing/", "missing file")
        return None
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert(mode)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        sink.add("error", rel, where, column, f"{uri} does not decode as an image ({exc.__class__.__name__})",
                 "decode")
        return None


def _check_assets(settings: Settings, dims: dict[str, pa.Table], sink: _Sink) -> None:
    """Every product's image and mask (same size, product pixels in the mask, background around
    them), every creative's image (its product's size)."""
    import numpy as np

    sizes = {}
    if "products" in dims:
        p = dims["products"]
        rel = "dimensions/products.parquet"
        for r, (pid, img_uri, mask_uri) in enumerate(zip(*(p.column(c).to_pylist() for c in
                                                           ("product_id", "image_uri", "mask_uri")))):
            img = _open_image(settings, img_uri, rel, r, "image_uri", sink, "RGB")
            mask = _open_image(settings, mask_uri, rel, r, "mask_uri", sink, "L")
            if img is not None:
                sizes[pid] = img.size
            if img is None or mask is None:
                continue
            if mask.size != img.size:
                sink.add("error", rel, f"row {r + 1}", "mask_uri", f"the mask is {mask.size[0]}x{mask.size[1]}, "
                         f"the image {img.size[0]}x{img.size[1]}: a mask has its image's size", "mask size")
                continue
            share = float((np.asarray(mask) > 127).mean())
            if share == 0 or share == 1:
                sink.add("error", rel, f"row {r + 1}", "mask_uri", "the mask has no product pixels (> 127)" if share == 0
                         else "the mask is all product: no background to render", "mask content")
    if "creatives" in dims:
        c = dims["creatives"]
        rel = "dimensions/creatives.parquet"
        for r, (pid, uri) in enumerate(zip(c.column("product_id").to_pylist(), c.column("image_uri").to_pylist())):
            img = _open_image(settings, uri, rel, r, "image_uri", sink, "RGB")
            if img is not None and pid in sizes and img.size != sizes[pid]:
                sink.add("error", rel, f"row {r + 1}", "image_uri", f"the creative is {img.size[0]}x{img.size[1]}, "
                         f"its product's image {sizes[pid][0]}x{sizes[pid][1]}: a creative has its product's size",
                         "creative size")

"""What both engines share: ``FitResult`` (one candidate K's groups, kept on the executors), the
assignment rows of a K from a wide frame, merging engines' results, and whole products as Arrow
blocks (rows of a product are never split across blocks)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd



@dataclass
class FitResult:
    """One candidate K: ``rows``, a Spark DataFrame (product_id, user_id, group_id) of the users'
    groups, computed once and kept by the executors (``release`` frees it); ``assignments`` collects
    it to the driver, sorted (tests, comparisons, small audiences)."""
    rows: object
    fits: int = 0  # MLlib fits used for this K (0 for products fitted by the grouped engine)
    cached: tuple = ()  # the persisted DataFrames ``rows`` reads from

    @property
    def assignments(self) -> pd.DataFrame:
        a = self.rows.toPandas().astype({"group_id": np.int32})
        return a.sort_values(["product_id", "user_id"], kind="stable").reset_index(drop=True)


def release(fits: dict) -> None:
    """Free what the fits of ``fit_candidates`` keep cached on the executors."""
    for fit, _ in fits.values():
        for df in fit.cached:
            df.unpersist()


_ROWS_DDL = "product_id string, user_id string, group_id int"


def rows_of_k(wide, k: int):
    """The assignment rows of one K from a persisted wide frame (g<K> set)."""
    from pyspark.sql import functions as F

    return (wide.where(F.col("user_id").isNotNull() & F.col(f"g{k}").isNotNull())
            .select("product_id", "user_id", F.col(f"g{k}").cast("int").alias("group_id")))


_SCORE_COLUMNS = ["product_id", "silhouette", "min_size", "k", "gain", "gain_1"]


def click_gains(S: np.ndarray, audience: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PAAG's predicted click gain per audience user from the groups' summed embeddings ``S``
    (P x K x d; an empty group sums to 0): (K groups, each shown its best theme: the sum over groups
    of the largest coordinate of the group's sum; the whole audience as one group), each divided by
    the audience size. See ``osmf.grouping.fit.predicted_gain``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return S.max(2).sum(1) / audience, S.sum(1).max(1) / audience


def empty_fits(spark, ks) -> dict[int, tuple]:
    return {k: (FitResult(spark.createDataFrame([], _ROWS_DDL)), pd.DataFrame(columns=_SCORE_COLUMNS)) for k in ks}


def merge_fits(parts: list[dict], ks) -> dict[int, tuple]:
    from functools import reduce

    out = {}
    for k in ks:
        fits = [p[k][0] for p in parts if k in p]
        scores = [p[k][1] for p in parts if k in p and len(p[k][1])]
        rows = reduce(lambda a, b: a.unionByName(b), [f.rows for f in fits])
        out[k] = (FitResult(rows, sum(f.fits for f in fits), tuple(c for f in fits for c in f.cached)),
                  pd.concat(scores, ignore_index=True) if scores else pd.DataFrame(columns=_SCORE_COLUMNS))
    return out


# ---------------------------------------------------------------- whole products as Arrow blocks (both engines)


def arrow_columns(tbl):
    """(product ids, user ids, X) of an Arrow table of product_id, user_id, embedding."""
    import pyarrow as pa
    import pyarrow.compute as pc

    emb = tbl.column("embedding").combine_chunks()
    lengths = pc.list_value_length(emb).to_numpy(zero_copy_only=False)
    d = int(lengths[0]) if len(lengths) else 0
    if len(lengths) and (lengths != d).any():
        raise ValueError("embeddings of different lengths")
    X = emb.flatten().cast(pa.float64()).to_numpy(zero_copy_only=False).reshape(len(emb), d)
    return tbl.column("product_id").combine_chunks(), tbl.column("user_id").combine_chunks(), X


def whole_products(batches, block_rows: int):
    """Arrow batches sorted by product -> tables of whole products, about ``block_rows`` rows each
    (a product is never split; one larger than ``block_rows`` comes alone)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    pending, rows = [], 0
    for rb in batches:
        if rb.num_rows:
            pending.append(rb)
            rows += rb.num_rows
        if rows < block_rows:
            continue
        tbl = pa.Table.from_batches(pending)
        pid = tbl.column("product_id")
        cut = rows - pc.sum(pc.equal(pid, pid[rows - 1])).as_py()  # the last product may go on
        if cut > 0:
            yield tbl.slice(0, cut)
            pending, rows = tbl.slice(cut).to_batches(), rows - cut
    if rows:
        yield pa.Table.from_batches(pending)


def by_product(spark, emb_df):
    """The rows of each product together in one partition, sorted by product, then user id."""
    parts = int(spark.conf.get("spark.sql.shuffle.partitions"))
    return (emb_df.select("product_id", "user_id", "embedding").repartition(parts, "product_id")
            .sortWithinPartitions("product_id", "user_id"))


def split_products(tbl):
    """(product ids, user ids, X, starts, counts, products) of a table of whole products."""
    import pyarrow as pa
    import pyarrow.compute as pc

    pid, uid, X = arrow_columns(tbl)
    change = pc.not_equal(pid[1:], pid[:-1]).to_numpy(zero_copy_only=False) if len(pid) > 1 else np.zeros(0, bool)
    starts = np.concatenate([[0], np.flatnonzero(change) + 1]).astype(np.int64)
    counts = np.diff(np.concatenate([starts, [len(pid)]]))
    return pid, uid, X, starts, counts, pid.take(pa.array(starts)).to_pylist()

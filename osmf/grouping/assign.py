"""Every user into one group of every product, from their attributes: what serving needs for users
who had no impression of a product in the window (they are not in ``user_groups``).

A user's PAAG embedding for a product comes from their attributes alone (as for every audience user,
held-out ones included); the user goes to the product's group whose centroid (``groups``) is nearest.
Products of a category that PAAG reads alike (the same product features) are embedded once.
"""

from __future__ import annotations

ASSIGN_DDL = "user_id string, product_id string, group_id int"
USER_COLUMNS = ["user_id", "age", "income_level", "city_tier", "tenure_days", "gender", "activity", "device"]
_MODEL_CACHE: dict = {}


def scoring_model(model_dir: str):
    """The PAAG checkpoint of ``model_dir`` for scoring in a Spark task (one thread), cached per
    worker and keyed by the checkpoint's modification time too: a rerun of the same date in a reused
    worker must not score with the previous run's model. In float64: float32 results depend on the
    batch's shape by an ulp, which :func:`embed` 's rounding would turn into a different 6th
    decimal now and then; in float64 a row's embedding is the same whatever batch it is in."""
    import os

    import torch

    from osmf_models.paag import PAAG

    key = (model_dir, os.path.getmtime(os.path.join(model_dir, "model.safetensors")))
    model = _MODEL_CACHE.get(key)
    if model is None:
        model = _MODEL_CACHE[key] = PAAG.load(model_dir).double().eval()
    torch.set_num_threads(1)
    return model


def embed(model, users, product_x):
    """The embeddings (numpy, rounded to 6 decimals: what ``user_product_embeddings`` holds and the
    centroids are means of) of the users' attribute rows (a DataFrame) for ``product_x`` (tensor)."""
    import numpy as np
    import torch

    ux = torch.from_numpy(model.features.user_matrix(users).astype(np.float64))
    with torch.no_grad():
        return np.round(model.embed(ux, product_x).numpy(), 6)


def _nearest_groups(batches, model_dir: str, product_features: dict, centroids: dict):
    """mapInArrow body: user attributes -> (user_id, product_id, group_id) for every product."""
    import numpy as np
    import pyarrow as pa
    import torch

    model = scoring_model(model_dir)
    by_features: dict[bytes, list[str]] = {}
    for pid in sorted(centroids):
        by_features.setdefault(np.asarray(product_features[pid], np.float64).tobytes(), []).append(pid)
    for batch in batches:
        pdf = batch.to_pandas()
        if pdf.empty:
            continue
        users, prods, groups = [], [], []
        for feat, pids in by_features.items():
            emb = embed(model, pdf, torch.from_numpy(np.frombuffer(feat, np.float64).copy()).expand(len(pdf), -1))
            for pid in pids:
                c = centroids[pid]  # (k, d)
                d2 = ((emb[:, None, :] - c[None, :, :]) ** 2).sum(-1)
                users.append(pdf["user_id"].to_numpy())
                prods.append(np.full(len(pdf), pid, dtype=object))
                groups.append(d2.argmin(1).astype(np.int32))
        yield pa.RecordBatch.from_pydict({"user_id": np.concatenate(users).tolist(),
                                          "product_id": np.concatenate(prods).tolist(),
                                          "group_id": np.concatenate(groups)})


def assign_by_attributes(spark, lake, settings, run_date: str):
    """A Spark DataFrame (user_id, product_id, group_id): every user of ``users`` in one group of
    every product that has groups on ``run_date``, by the nearest centroid of their PAAG embedding."""
    import numpy as np
    import pandas as pd

    from osmf_models.paag import PAAG

    groups = lake.read_pandas("groups", partition=run_date)
    if groups.empty:
        raise ValueError(f"groups has no rows for {run_date}; run `osmf regroup --run-date {run_date}` first")
    centroids = {}
    for pid, g in groups.sort_values(["product_id", "group_id"]).groupby("product_id"):
        if list(g.group_id) != list(range(len(g))):
            raise ValueError(f"groups of {pid} on {run_date} are not numbered 0..k-1: {list(g.group_id)}")
        centroids[pid] = np.stack(g.centroid.to_numpy()).astype(np.float64)
    model_dir = settings.paag_dir(run_date)
    features = PAAG.load(model_dir).features
    products = lake.read_pandas("products")
    products = products[products.product_id.isin(centroids)].sort_values("product_id")
    pf = dict(zip(products.product_id, features.product_matrix(pd.DataFrame(products))))
    path = str(model_dir.resolve())
    return (lake.read_spark(spark, "users").select(*USER_COLUMNS)
            .mapInArrow(lambda it: _nearest_groups(it, path, pf, centroids), ASSIGN_DDL))

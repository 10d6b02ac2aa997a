"""PAAG: train the product-aware user encoder on the trailing window's clicks, then score every
(product, audience user) pair inside Spark (mapInArrow) into ``user_product_embeddings``; the
creatives' themes (the embedding's coordinates) go to ``creative_themes``.

PAAG learns a user's taste over the visual themes the pipeline finds in the historical creatives'
pixels and prompts (``osmf.grouping.themes``), from the clicks of every user except those held out for
evaluation. The audience of a product is the users with impressions of it in the trailing window
(``[grouping].window_days``); held-out users are in it (an impression is not a click) and are
embedded from their attributes alone, like every user. Training runs on the driver (small model, tens of thousands of rows
per second on CPU); scoring is a Spark job and scales with executors. The model is saved to
``$OSMF_HOME/models/paag/run_date=D`` with its metrics.
"""

from __future__ import annotations

import json
import logging
import time

from osmf.runtime.context import JobContext
from osmf.runtime.entrypoint import job_main

log = logging.getLogger("osmf.paag")


def _score(batches, model_dir: str, product_features: dict):
    """mapInArrow body: (product_id, user attributes...) -> (product_id, user_id, embedding)."""
    import numpy as np
    import pyarrow as pa
    import torch

    from osmf.grouping.assign import embed, scoring_model

    model = scoring_model(model_dir)
    for batch in batches:
        pdf = batch.to_pandas()
        if pdf.empty:
            continue
        px = torch.from_numpy(np.stack([product_features[p] for p in pdf["product_id"]]).astype(np.float64))
        emb = embed(model, pdf, px)
        yield pa.RecordBatch.from_pydict({"product_id": pdf["product_id"].tolist(), "user_id": pdf["user_id"].tolist(),
                                          "embedding": [row.tolist() for row in emb]})


def training_events(spark, lake, impressions, themes, g):
    """user_id, product_id, theme, clicked of the window's impressions, without the clicks of the
    users held out for evaluation, in a fixed order (Spark returns rows in none; training must see
    the same order on every rerun). When there are more than ``paag_max_events``, a fixed sample
    of about that many (by a hash of the event id, the same on every rerun) is what reaches the driver."""
    from pyspark.sql import functions as F

    from osmf.data.audience import without_heldout

    imp = without_heldout(spark, lake, impressions, g.eval_holdout_fraction)
    if g.paag_max_events > 0:
        n = imp.count()
        if n > g.paag_max_events:
            keep = int(1_000_000 * g.paag_max_events / n)
            imp = imp.where(F.pmod(F.xxhash64("event_id"), F.lit(1_000_000)) < keep)
            log.info("PAAG: a fixed sample of %.1f%% of the window's %d training events (paag_max_events %d)",
                     100 * keep / 1_000_000, n, g.paag_max_events)
    events = imp.select("user_id", "product_id", "creative_id", "clicked").toPandas()
    events["theme"] = events["creative_id"].map(themes)
    events = events.drop(columns="creative_id")[["user_id", "product_id", "theme", "clicked"]]
    return events.sort_values(["product_id", "user_id", "theme", "clicked"], kind="stable").reset_index(drop=True)


def creative_themes(themes, run_date: str):
    """``creative_themes`` rows of the run date: each historical creative's theme and the theme's
    coordinate in the embeddings (PAAG's vocabulary is the sorted theme names)."""
    import datetime as dt

    import pandas as pd

    names = sorted(themes.unique())
    return pd.DataFrame({"run_date": dt.date.fromisoformat(run_date), "creative_id": themes.index.astype(str),
                         "theme": themes.to_numpy(), "theme_index": [names.index(t) for t in themes]})


def run(ctx: JobContext) -> dict:
    from pyspark.sql import functions as F

    from osmf.data.audience import heldout_rule, window_impressions
    from osmf.grouping.assign import USER_COLUMNS
    from osmf.grouping.themes import fit_themes
    from osmf_models.paag import PAAGConfig
    from osmf_models.paag.train import train_paag

    t0 = time.perf_counter()
    settings, lake, spark, g = ctx.settings, ctx.lake, ctx.spark, ctx.settings.grouping
    run_date, run_id = ctx.run_date, ctx.run_id
    imp = window_impressions(spark, lake, run_date, g.window_days)
    users = lake.read_pandas("users").sort_values("user_id").reset_index(drop=True)
    products = lake.read_pandas("products").sort_values("product_id").reset_index(drop=True)
    themes = fit_themes(lake.read_pandas("creatives"), products, settings.asset_root, g.paag_themes, g.seed)
    events = training_events(spark, lake, imp, themes, g)
    if events.empty:
        raise ValueError(f"no impressions in the {g.window_days}-day window ending {run_date}; "
                         f"ingest first (`osmf ingest --run-date {run_date}`)")
    cfg = PAAGConfig(epochs=g.paag_epochs, bottleneck=g.paag_bottleneck, directions=g.paag_directions, text_encoder=g.paag_product_text, seed=g.seed)
    model, metrics = train_paag(events, users, products, sorted(themes.unique()), cfg)
    metrics["heldout_rule"] = heldout_rule(g.eval_holdout_fraction)  # the evaluation must hold out exactly these
    log.info("PAAG trained on %d events: held-out AUC %.3f (theme-only baseline %.3f)",
             metrics["n_events"], metrics["holdout_auc"], metrics["holdout_auc_theme_only"])
    model_dir = settings.paag_dir(run_date)
    model.save(model_dir)
    (model_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))

    lake.replace_partition("creative_themes", creative_themes(themes, run_date), run_date, run_id=run_id,
                           job="paag_embeddings")

    pf = dict(zip(products["product_id"], model.features.product_matrix(products)))
    audience = imp.select("product_id", "user_id").distinct()
    scored = (audience.join(lake.read_spark(spark, "users").select(*USER_COLUMNS), "user_id")
              .mapInArrow(lambda it: _score(it, str(model_dir.resolve()), pf),
                          "product_id string, user_id string, embedding array<double>"))
    out = scored.withColumn("run_date", F.lit(run_date).cast("date"))
    lake.write_spark(out, "user_product_embeddings", partition=run_date, run_id=run_id, job="paag_embeddings")
    n = lake.read_arrow("user_product_embeddings", partition=run_date, columns=["user_id"]).num_rows
    metrics.update(rows=n, seconds_total=time.perf_counter() - t0, model_dir=str(model_dir))
    log.info("user_product_embeddings %s: %d rows in %.1fs", run_date, n, metrics["seconds_total"])
    return metrics


def main(argv=None) -> int:
    return job_main(run, __doc__, argv, show=lambda m: f"{m['rows']} embeddings; PAAG held-out AUC {m['holdout_auc']:.3f} "
                                                      f"(theme-only {m['holdout_auc_theme_only']:.3f})")


if __name__ == "__main__":
    raise SystemExit(main())

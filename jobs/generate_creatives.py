"""Generate one creative per (product, group) of a run date with the champion models.

For each group: ``[models].best_of_n`` candidate backgrounds from ``models:/osmf-gmllm@champion``
(the greedy one and seeded samples), each rendered by retrieval from the lake and scored for the group by
``models:/osmf-grm@champion``; the best is rendered with ``[models].renderer`` (the product pasted
back exactly) to ``$OSMF_HOME/generated/run_date=D/``. Writes the ``generated_creatives`` partition
(replaced on rerun: same seeds, same rows and images) and logs a grid of the images to MLflow.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from osmf.runtime.context import JobContext
from osmf.runtime.entrypoint import job_main

log = logging.getLogger("osmf.generate")


def _log_run(settings, run_date: str, df, images: list, summary: dict) -> None:
    import mlflow

    from osmf.reports import plots

    m = settings.models
    with mlflow.start_run(run_name=f"generate-{run_date}"):
        mlflow.set_tags({"osmf.stage": "generate", "osmf.run_date": run_date,
                         "osmf.gmllm_version": summary["gmllm_version"], "osmf.grm_version": summary["grm_version"]})
        mlflow.log_params({"best_of_n": m.best_of_n, "temperature": m.temperature, "renderer": m.renderer})
        mlflow.log_metrics({"creatives": len(df), "mean_grm_score": summary["mean_grm_score"]})
        with tempfile.TemporaryDirectory(dir=settings.home) as tmp:
            n = min(len(images), 48)
            labels = [f"{p} g{g}\n{(b or '')[:22]}" for p, g, b in zip(df.product_id, df.group_id, df.background)]
            mlflow.log_artifact(str(plots.image_grid(images[:n], labels[:n], Path(tmp) / "creatives_grid.png")), "plots")


def run(ctx: JobContext) -> dict:
    import pandas as pd
    from PIL import Image

    from osmf.data.assets import product_assets
    from osmf.data.training import load_group_data
    from osmf.generation.rendering import final_renderer, scoring_renderer
    from osmf.tracking import registry
    from osmf.tracking import runs as tracking
    from osmf_models.gmllm.candidates import best_of_n
    from osmf_models.gmllm.data import full_prompt

    t0 = time.perf_counter()
    settings, lake, run_date, m = ctx.settings, ctx.lake, ctx.run_date, ctx.settings.models
    tracking.setup(settings)
    gm, gm_version = registry.load(registry.GMLLM, "champion")
    grm, grm_version = registry.load(registry.GRM, "champion")
    d = load_group_data(lake, settings.asset_root, run_date, target=settings.models.sft_target)
    ex = d.ex
    assets = product_assets(d.frames["products"], settings.asset_root)
    scoring = scoring_renderer(d.frames, settings)
    backgrounds, scores, n_cands = best_of_n(gm, grm, ex, d.G, d.images(gm.cfg.image_size), assets,
                                             scoring, m.best_of_n, m.temperature)
    renderer = final_renderer(scoring, m.renderer)
    settings.asset(settings.generated_uri(run_date)).mkdir(parents=True, exist_ok=True)
    rows, images = [], []
    for i, (pid, gid, title) in enumerate(zip(ex.product_id, ex.group_id, ex.title)):
        prompt = full_prompt(title, backgrounds[i])
        img, mask = assets[pid]
        res = renderer.render(img, mask, prompt, background=backgrounds[i])
        uri = settings.generated_uri(run_date, f"{pid}_g{gid}.png")
        Image.fromarray(res.image).save(settings.asset(uri))
        images.append(res.image)
        rows.append({"product_id": pid, "group_id": int(gid), "creative_id": f"gen-{run_date}-{pid}-g{gid}",
                     "prompt": prompt, "background": backgrounds[i], "image_uri": uri,
                     "grm_score": float(scores[i]), "candidates": n_cands[i], "renderer": res.renderer,
                     "gmllm_version": gm_version, "grm_version": grm_version})
        if (i + 1) % max(1, len(ex) // 5) == 0:
            ctx.say(f"  generated {i + 1}/{len(ex)} creatives")
    df = pd.DataFrame(rows).assign(run_date=pd.Timestamp(run_date).date())
    lake.replace_partition("generated_creatives", df, run_date, run_id=ctx.run_id, job="generate")
    summary = {"creatives": len(df), "mean_grm_score": float(df.grm_score.mean()), "gmllm_version": gm_version,
               "grm_version": grm_version, "renderer": rows[0]["renderer"] if rows else None,
               "seconds": time.perf_counter() - t0}
    _log_run(settings, run_date, df, images, summary)
    log.info("generate %s: %s", run_date, summary)
    return summary


def main(argv=None) -> int:
    return job_main(run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())

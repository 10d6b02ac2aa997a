"""Generate one creative per (product, group) of a run date with the champion models.

For each group: ``[models].best_of_n`` candidate backgrounds from ``models:/osmf-gmllm@champion``
(the greedy one and seeded samples), each rendered by retrieval from the lake and scored for the group by
``models:/osmf-grm@champion``; the best is rendered with ``[models].renderer`` (the product pasted
back exactly) to ``$OSMF_HOME/generated/run_date=D/``. Writes the ``generated_creatives`` partition
(replaced on rerun: same seeds, same rows and images) and logs a grid of the images to MLflow.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

import pandas as pd

from osmf import registry
from osmf.entrypoint import job_parser, run_main
from osmf.lake import Lake
from osmf.settings import Settings, load_models
from osmf.training_data import load_group_data

log = logging.getLogger("osmf.generate")


def run(run_date: str, settings: Settings, lake: Lake | None = None, run_id: str | None = None, say=None) -> dict:
    import mlflow
    from PIL import Image

    from osmf import plots, tracking
    from osmf.candidates import best_of_n
    from osmf.rendering import final_renderer, product_assets, scoring_renderer
    from osmf.runinfo import resolve_run_id
    from osmf_models.gmllm.data import full_prompt

    t0 = time.perf_counter()
    m = load_models()
    lake = lake or Lake(settings)
    tracking.setup(settings)
    gm, gm_version = registry.load(registry.GMLLM, "champion")
    grm, grm_version = registry.load(registry.GRM, "champion")
    d = load_group_data(lake, settings.home, run_date)
    ex = d.ex
    assets = product_assets(d.frames["products"], settings.home)
    scoring = scoring_renderer(d.frames, settings.home)
    backgrounds, scores, n_cands = best_of_n(gm, grm, ex, d.G, d.images(gm.cfg.image_size), assets,
                                             scoring, m.best_of_n, m.temperature)
    renderer = final_renderer(scoring, m.renderer)
    out_dir = settings.home / "generated" / f"run_date={run_date}"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, images = [], []
    for i, (pid, gid, title) in enumerate(zip(ex.product_id, ex.group_id, ex.title)):
        prompt = full_prompt(title, backgrounds[i])
        img, mask = assets[pid]
        res = renderer.render(img, mask, prompt, background=backgrounds[i])
        uri = f"generated/run_date={run_date}/{pid}_g{gid}.png"
        Image.fromarray(res.image).save(settings.home / uri)
        images.append(res.image)
        rows.append({"product_id": pid, "group_id": int(gid), "creative_id": f"gen-{run_date}-{pid}-g{gid}",
                     "prompt": prompt, "background": backgrounds[i], "image_uri": uri,
                     "grm_score": float(scores[i]), "candidates": n_cands[i], "renderer": res.renderer,
                     "gmllm_version": gm_version, "grm_version": grm_version})
        if say and (i + 1) % max(1, len(ex) // 5) == 0:
            say(f"  generated {i + 1}/{len(ex)} creatives")
    df = pd.DataFrame(rows).assign(run_date=pd.Timestamp(run_date).date())
    lake.replace_partition("generated_creatives", df, run_date, run_id=resolve_run_id(settings, run_id), job="generate")
    summary = {"creatives": len(df), "mean_grm_score": float(df.grm_score.mean()), "gmllm_version": gm_version,
               "grm_version": grm_version, "renderer": rows[0]["renderer"] if rows else None,
               "seconds": time.perf_counter() - t0}
    with mlflow.start_run(run_name=f"generate-{run_date}"):
        mlflow.set_tags({"osmf.stage": "generate", "osmf.run_date": run_date, "osmf.gmllm_version": gm_version,
                         "osmf.grm_version": grm_version})
        mlflow.log_params({"best_of_n": m.best_of_n, "temperature": m.temperature, "renderer": m.renderer})
        mlflow.log_metrics({"creatives": len(df), "mean_grm_score": summary["mean_grm_score"]})
        with tempfile.TemporaryDirectory(dir=settings.home) as tmp:
            n = min(len(images), 48)
            labels = [f"{p} g{g}\n{(b or '')[:22]}" for p, g, b in zip(df.product_id, df.group_id, df.background)]
            mlflow.log_artifact(str(plots.image_grid(images[:n], labels[:n], Path(tmp) / "creatives_grid.png")), "plots")
    log.info("generate %s: %s", run_date, summary)
    return summary


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    return run_main(parser, lambda a, s: print(json.dumps(run(a.run_date, s, run_id=a.run_id), indent=1, default=str)), argv)


if __name__ == "__main__":
    raise SystemExit(main())

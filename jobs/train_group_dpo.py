"""Align the G-MLLM with Group-DPO for a run date; register it as ``challenger`` of ``osmf-gmllm``.

Starts from ``models:/osmf-gmllm@base`` (the reference) and scores candidates with
``models:/osmf-grm@champion``. Pairs per (product, group): the observed ``group_preference_pairs``
and/or GRM pairs (the world's candidate backgrounds rendered for the product and scored for the
group: the best against the worst few), per ``[models].dpo_pair_source``. Also trains the plain-DPO
baseline on the same pairs pooled per product with no group conditioning, logged in the same run
as the artifact ``pooled_dpo`` (the one-size-fits-all arm of ``osmf evaluate ab``). Logs the GRM
reward (mean predicted CTR of the greedy prompt per group) of base, Group-DPO and pooled DPO.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from jobs.train_gmllm import input_example
from osmf import registry
from osmf.entrypoint import job_parser, run_main
from osmf.lake import Lake
from osmf.settings import Settings, load_models
from osmf.training_data import load_group_data

log = logging.getLogger("osmf.train_group_dpo")


def dpo_config(env: dict | None = None):
    from osmf_models.group_dpo import GroupDPOConfig

    m = load_models(env)
    cfg = GroupDPOConfig.tiny() if m.size == "tiny" else GroupDPOConfig()
    cfg = replace(cfg, beta=m.dpo_beta, group_weighting=m.dpo_group_weighting, pair_source=m.dpo_pair_source)
    cfg = replace(cfg, epochs=m.dpo_epochs) if m.dpo_epochs else cfg
    return replace(cfg, max_steps=m.dpo_max_steps) if m.dpo_max_steps >= 0 else cfg


def candidate_backgrounds(creatives: pd.DataFrame, products: pd.DataFrame) -> list[str]:
    """Every distinct background of the creative catalogue (all products)."""
    from osmf_models.gmllm.data import background_of

    title = dict(zip(products.product_id, products.title))
    return sorted({background_of(p, title.get(pid, "")) for p, pid in zip(creatives.background_prompt, creatives.product_id)})


def build_pairs(d, cfg, grm, assets, renderer) -> pd.DataFrame:
    from osmf.candidates import score_backgrounds
    from osmf_models.group_dpo.train import grm_pairs, observed_pairs

    parts = []
    if cfg.pair_source in ("observed", "both"):
        parts.append(observed_pairs(d.ex, d.frames["group_preference_pairs"], d.frames["creatives"]))
    if cfg.pair_source in ("grm", "both"):
        cands = candidate_backgrounds(d.frames["creatives"], d.frames["products"])
        scores = score_backgrounds(grm, d.ex, [cands] * len(d.ex), assets, renderer)
        parts.append(grm_pairs(cands, np.stack(scores), cfg.grm_pairs_per_group, cfg.grm_margin))
    return pd.concat(parts, ignore_index=True)


def _train_both(base, d, pairs, I, cfg, say):
    """Group-DPO and the plain-DPO baseline (pairs pooled per product, the audience's features)."""
    from osmf_models.group_dpo.train import audience_features, train_group_dpo

    say("  Group-DPO (per-group pairs, group-averaged loss)")
    policy, m_group, c_group = train_group_dpo(base, d.ex, pairs, d.G, I, cfg, say=say)
    say("  plain DPO baseline (pairs pooled per product, no group conditioning)")
    G_aud = audience_features(d.ex, d.ex["size"].to_numpy(float))
    pooled, m_pooled, c_pooled = train_group_dpo(base, d.ex, pairs, G_aud, I, replace(cfg, group_weighting="pairs"),
                                                 group_keys=np.zeros(len(d.ex), dtype=np.int64), say=say)
    metrics = {f"group_dpo_{k}": v for k, v in m_group.items()}
    metrics.update({f"pooled_dpo_{k}": v for k, v in m_pooled.items()})
    return policy, pooled, G_aud, metrics, c_group, c_pooled


def _log_curves(c_group, c_pooled, tmp: Path, run_date: str) -> None:
    import mlflow

    from osmf import plots

    for step, (a, b) in enumerate(zip(c_group["loss"], c_pooled["loss"])):
        mlflow.log_metrics({"group_dpo_loss": a, "pooled_dpo_loss": b}, step=step)
    plot = plots.loss_plot({"Group-DPO loss": c_group["loss"], "plain DPO loss": c_pooled["loss"],
                            "Group-DPO reward accuracy": c_group["reward_accuracy"]}, tmp / "dpo.png",
                           title=f"DPO {run_date}")
    mlflow.log_artifact(str(plot), "plots")


def run(run_date: str, settings: Settings, lake: Lake | None = None, say=None) -> dict:
    import mlflow

    from osmf import tracking
    from osmf.candidates import grm_reward
    from osmf.rendering import product_assets, scoring_renderer

    say = say or (lambda m: log.info(m))
    lake = lake or Lake(settings)
    tracking.setup(settings)
    base, base_version = registry.load(registry.GMLLM, "base")
    grm, grm_version = registry.load(registry.GRM, "champion")
    cfg = dpo_config()
    d = load_group_data(lake, settings.home, run_date)
    I = d.images(base.cfg.image_size)
    assets = product_assets(d.frames["products"], settings.home)
    renderer = scoring_renderer(d.frames, settings.home)
    pairs = build_pairs(d, cfg, grm, assets, renderer)
    say(f"  {len(pairs)} preference pairs for {len(d.ex)} groups ({pairs.source.value_counts().to_dict()})")
    with mlflow.start_run(run_name=f"group-dpo-{run_date}") as run:
        mlflow.set_tags({"osmf.model": registry.GMLLM, "osmf.stage": "group-dpo", "osmf.run_date": run_date,
                         "osmf.base_version": base_version, "osmf.grm_version": grm_version})
        mlflow.log_params({f"dpo.{k}": v for k, v in cfg.to_dict().items()})
        tracking.log_lineage(lake, d.pinned.lineage())
        policy, pooled, G_aud, metrics, c_group, c_pooled = _train_both(base, d, pairs, I, cfg, say)
        metrics.update(base_grm_reward=grm_reward(base, grm, d.ex, d.G, I, assets, renderer),
                       group_dpo_grm_reward=grm_reward(policy, grm, d.ex, d.G, I, assets, renderer),
                       pooled_dpo_grm_reward=grm_reward(pooled, grm, d.ex, G_aud, I, assets, renderer),
                       observed_pairs=int((pairs.source == "observed").sum()), grm_pairs=int((pairs.source == "grm").sum()))
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        with tempfile.TemporaryDirectory(dir=settings.home) as tmp:
            tmp = Path(tmp)
            _log_curves(c_group, c_pooled, tmp, run_date)
            mlflow.log_artifacts(str(pooled.save(tmp / "pooled_dpo")), "pooled_dpo")
            version = registry.register(registry.GMLLM, policy.save(tmp / "gmllm"), input_example(d),
                                        tags={"stage": "group-dpo", "run_date": run_date, "base_version": base_version,
                                              "grm_version": grm_version, "grm_reward": metrics["group_dpo_grm_reward"]})
        metrics.update(run_id=run.info.run_id, version=version)
    say(f"  GRM reward of the greedy prompts: base {metrics['base_grm_reward']:.4f}, Group-DPO "
        f"{metrics['group_dpo_grm_reward']:.4f}, plain DPO {metrics['pooled_dpo_grm_reward']:.4f}")
    log.info("Group-DPO %s: registered %s version %s as challenger", run_date, registry.GMLLM, version)
    return metrics


def evaluate_uri(settings: Settings, run_date: str, grm_version: str, lake: Lake | None = None):
    """An evaluator for promotion: GRM reward (pinned GRM version) on the pinned groups. Challenger
    and champion are scored on the same data, so the GRM, the data and the renderer are loaded once."""
    shared: dict = {}

    def evaluate(model_uri: str, lineage: dict) -> float:
        from osmf.candidates import grm_reward
        from osmf.rendering import product_assets, scoring_renderer

        key = tuple(sorted(lineage.items()))
        if key not in shared:
            d = load_group_data(lake or Lake(settings), settings.home, run_date, versions=lineage)
            shared[key] = (registry.load_uri(f"models:/{registry.GRM}/{grm_version}"), d,
                           product_assets(d.frames["products"], settings.home), scoring_renderer(d.frames, settings.home))
        grm, d, assets, renderer = shared[key]
        gm = registry.load_uri(model_uri)
        return grm_reward(gm, grm, d.ex, d.G, d.images(gm.cfg.image_size), assets, renderer)

    return evaluate


def promote(settings: Settings, lake: Lake | None = None) -> dict:
    """Promote the G-MLLM challenger if its GRM reward beats the champion's on the same data."""
    from osmf import tracking

    tracking.setup(settings)
    tags = registry.run_tags(registry.GMLLM, "challenger")
    return registry.promote(registry.GMLLM, evaluate_uri(settings, tags["osmf.run_date"], tags["osmf.grm_version"], lake),
                            "grm_reward")


def main(argv=None) -> int:
    parser = job_parser(__doc__.splitlines()[0])
    return run_main(parser, lambda a, s: print(json.dumps(run(a.run_date, s), indent=1, default=str)), argv)


if __name__ == "__main__":
    raise SystemExit(main())

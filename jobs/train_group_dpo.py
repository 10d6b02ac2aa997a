"""Align the G-MLLM with Group-DPO for a run date; register it as ``challenger`` of ``osmf-gmllm``.

Starts from ``models:/osmf-gmllm@base`` (the reference) and scores candidates with
``models:/osmf-grm@champion``. Pairs per (product, group): the observed ``group_preference_pairs``
and/or GRM pairs (the world's candidate backgrounds rendered for the product and scored for the
group: the best against the worst few), or the group's G-MLLM target against the GRM's worst few
(``target``), per ``[models].dpo_pair_source``. Also trains the plain-DPO
baseline on the product-level pairs (observed and GRM; with ``both``, the same pairs) pooled per
product with no group conditioning, logged in the same run
as the artifact ``pooled_dpo`` (the one-size-fits-all arm of ``osmf evaluate ab``). Logs the GRM
reward (mean predicted CTR of the greedy prompt per group) of base, Group-DPO and pooled DPO.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from osmf.runtime.context import JobContext
from osmf.runtime.entrypoint import job_main

log = logging.getLogger("osmf.train_group_dpo")


def _log_curves(c_group, c_pooled, tmp: Path, run_date: str) -> None:
    import mlflow

    from osmf.reports import plots

    for step, (a, b) in enumerate(zip(c_group["loss"], c_pooled["loss"])):
        mlflow.log_metrics({"group_dpo_loss": a, "pooled_dpo_loss": b}, step=step)
    plot = plots.loss_plot({"Group-DPO loss": c_group["loss"], "plain DPO loss": c_pooled["loss"],
                            "Group-DPO reward accuracy": c_group["reward_accuracy"]}, tmp / "dpo.png",
                           title=f"DPO {run_date}")
    mlflow.log_artifact(str(plot), "plots")


def run(ctx: JobContext) -> dict:
    import mlflow

    from osmf.data.assets import product_assets
    from osmf.data.training import load_group_data
    from osmf.generation.rendering import scoring_renderer
    from osmf.data.audience import rule_of
    from osmf.tracking import registry
    from osmf.tracking import runs as tracking
    from osmf_models.gmllm import lifecycle
    from osmf_models.group_dpo import GroupDPOConfig
    from osmf_models.group_dpo.pairs import baseline_pairs, build_pairs, group_pairs
    from osmf_models.group_dpo.train import train_with_pooled_baseline

    settings, lake, run_date, say = ctx.settings, ctx.lake, ctx.run_date, ctx.say
    tracking.setup(settings)
    base, base_version = registry.load(registry.GMLLM, "base")
    grm, grm_version = registry.load(registry.GRM, "champion")
    cfg = GroupDPOConfig.from_section(settings.models)
    d = load_group_data(lake, settings.asset_root, run_date, target=settings.models.sft_target)
    I = d.images(base.cfg.image_size)
    assets = product_assets(d.frames["products"], settings.asset_root)
    renderer = scoring_renderer(d.frames, settings)
    pairs = build_pairs(d.ex, d.frames, cfg, grm, assets, renderer)
    say(f"  {len(pairs)} preference pairs for {len(d.ex)} groups ({pairs.source.value_counts().to_dict()})")
    with mlflow.start_run(run_name=f"group-dpo-{run_date}") as run:
        mlflow.set_tags({"osmf.model": registry.GMLLM, "osmf.stage": "group-dpo", "osmf.run_date": run_date,
                         "osmf.base_version": base_version, "osmf.grm_version": grm_version})
        mlflow.log_params({f"dpo.{k}": v for k, v in cfg.to_dict().items()})
        tracking.log_lineage(lake, d.pinned.lineage())
        tracking.log_heldout_rule(rule_of(settings, run_date))
        policy, pooled, G_aud, metrics, c_group, c_pooled = train_with_pooled_baseline(
            base, d.ex, group_pairs(pairs, cfg.pair_source), d.G, I, cfg, say, pooled_pairs=baseline_pairs(pairs))
        reward = lambda gm, G: lifecycle.promotion_metric(gm, grm, d.ex, G, I, assets, renderer)  # noqa: E731
        metrics.update(base_grm_reward=reward(base, d.G), group_dpo_grm_reward=reward(policy, d.G),
                       pooled_dpo_grm_reward=reward(pooled, G_aud),
                       **{f"{src}_pairs": int((pairs.source == src).sum()) for src in ("observed", "grm", "target")})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        with tempfile.TemporaryDirectory(dir=settings.home) as tmp:
            tmp = Path(tmp)
            _log_curves(c_group, c_pooled, tmp, run_date)
            mlflow.log_artifacts(str(pooled.save(tmp / "pooled_dpo")), "pooled_dpo")
            version = registry.register(registry.GMLLM, policy.save(tmp / "gmllm"),
                                        lifecycle.input_example(d.ex, settings.asset_root),
                                        tags={"stage": "group-dpo", "run_date": run_date, "base_version": base_version,
                                              "grm_version": grm_version, "grm_reward": metrics["group_dpo_grm_reward"]})
        metrics.update(run_id=run.info.run_id, version=version)
    say(f"  GRM reward of the greedy prompts: base {metrics['base_grm_reward']:.4f}, Group-DPO "
        f"{metrics['group_dpo_grm_reward']:.4f}, plain DPO {metrics['pooled_dpo_grm_reward']:.4f}")
    log.info("Group-DPO %s: registered %s version %s as challenger", run_date, registry.GMLLM, version)
    return metrics


def evaluator(ctx: JobContext, run_date: str, grm_version: str):
    """Promotion's evaluator: the G-MLLM's promotion metric (GRM reward, pinned GRM version) on the
    pinned groups. Challenger and champion are scored on the same data, so the GRM, the data and the
    renderer are loaded once."""
    shared: dict = {}

    def evaluate(model_uri: str, lineage: dict) -> float:
        from osmf.data.assets import product_assets
        from osmf.data.training import load_group_data
        from osmf.generation.rendering import scoring_renderer
        from osmf.tracking import registry
        from osmf_models.gmllm import lifecycle

        settings = ctx.settings
        key = tuple(sorted(lineage.items()))
        if key not in shared:
            d = load_group_data(ctx.lake, settings.asset_root, run_date, versions=lineage,
                                target=settings.models.sft_target)
            shared[key] = (registry.load_uri(f"models:/{registry.GRM}/{grm_version}"), d,
                           product_assets(d.frames["products"], settings.asset_root), scoring_renderer(d.frames, settings))
        grm, d, assets, renderer = shared[key]
        gm = registry.load_uri(model_uri)
        return lifecycle.promotion_metric(gm, grm, d.ex, d.G, d.images(gm.cfg.image_size), assets, renderer)

    return evaluate


def promote(ctx: JobContext) -> dict:
    """Promote the G-MLLM challenger if its GRM reward beats the champion's on the same data."""
    from osmf.tracking import registry
    from osmf.tracking import runs as tracking

    tracking.setup(ctx.settings)
    tags = registry.run_tags(registry.GMLLM, "challenger")
    return registry.promote(registry.GMLLM, evaluator(ctx, tags["osmf.run_date"], tags["osmf.grm_version"]))


def main(argv=None) -> int:
    return job_main(run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())

"""What each step of the chain runs: one job of ``jobs/`` with the run date, returning a flat,
JSON-able summary (an Airflow XCom). Every step has the signature
``step(run_date, settings, run_id=None, conf={}, **job_kwargs) -> dict``; the name of the function
is the step's name in ``osmf_app.chain``. Jobs are imported inside each call (cheap to import
for the DAG files)."""

from __future__ import annotations


def _flat(out) -> dict:
    return {k: v for k, v in dict(out).items() if isinstance(v, (int, float, str, bool))}


def ingest(run_date: str, settings, run_id=None, conf=None, spark=None, lake=None, **_) -> dict:
    from jobs import ingest_events

    res = ingest_events.run(run_date, settings, run_id=run_id, spark=spark, lake=lake)
    return {"run_date": run_date, **{k: res.total(k) for k in ("lines_read", "accepted", "duplicates", "quarantined")}}


def _grouping_job(name: str, run_date: str, settings, run_id, **job_kwargs) -> dict:
    import importlib

    job = importlib.import_module(f"jobs.{name}")
    keep = {k: v for k, v in job_kwargs.items() if k in ("spark", "lake", "grouping")}
    return {"run_date": run_date, **_flat(job.run(run_date, settings, run_id=run_id, **keep))}


def paag_embeddings(run_date: str, settings, run_id=None, conf=None, **kw) -> dict:
    return _grouping_job("paag_embeddings", run_date, settings, run_id, **kw)


def group_users(run_date: str, settings, run_id=None, conf=None, **kw) -> dict:
    return _grouping_job("group_users", run_date, settings, run_id, **kw)


def group_ctr(run_date: str, settings, run_id=None, conf=None, **kw) -> dict:
    return _grouping_job("group_ctr", run_date, settings, run_id, **kw)


def train_grm(run_date: str, settings, run_id=None, conf=None, **_) -> dict:
    """Train the GRM (challenger) and promote it if it beats the champion."""
    from jobs import train_grm as job

    m = job.run(run_date, settings)
    return {"run_date": run_date, "version": m["version"], "grm_pair_accuracy": m["grm_pair_accuracy"],
            "promoted": bool(job.promote(settings)["promoted"])}


def pretrain_gmllm(run_date: str, settings, run_id=None, conf=None, **_) -> dict:
    """Pre-train when there is no ``osmf-gmllm@base`` yet, or when conf says ``pretrain: true``."""
    from jobs import train_gmllm
    from osmf import registry, tracking

    tracking.setup(settings)
    base = registry.version_of(registry.GMLLM, "base")
    if base is not None and not (conf or {}).get("pretrain"):
        return {"run_date": run_date, "skipped": f"base version {base.version} exists (set conf pretrain=true to retrain)"}
    m = train_gmllm.run(run_date, settings)
    return {"run_date": run_date, "version": m["version"], "prompt_exact_match": m["prompt_exact_match"]}


def group_dpo(run_date: str, settings, run_id=None, conf=None, **_) -> dict:
    """Align with Group-DPO (challenger, plus the plain-DPO baseline) and promote by GRM reward."""
    from jobs import train_group_dpo

    m = train_group_dpo.run(run_date, settings)
    return {"run_date": run_date, "version": m["version"], "promoted": bool(train_group_dpo.promote(settings)["promoted"]),
            **{k: m[k] for k in ("base_grm_reward", "group_dpo_grm_reward", "pooled_dpo_grm_reward")}}


def generate(run_date: str, settings, run_id=None, conf=None, **_) -> dict:
    from jobs import generate_creatives

    return {"run_date": run_date, **_flat(generate_creatives.run(run_date, settings, run_id=run_id))}


def missing_inputs(stage, run_date: str, settings) -> str | None:
    """Why the stage cannot run for ``run_date`` (its input partitions or champion models are not
    there yet), or None. A scheduled run that finds this skips instead of failing."""
    from osmf import registry, tracking
    from osmf.lake import Lake
    from osmf.tables import TABLES

    lake = Lake(settings)
    for table in stage.needs:
        if not lake.has_partition(table, run_date):
            return (f"no {table} for {run_date} yet (made by `{TABLES[table].made_by}`); "
                    f"{stage.dag_id} runs when it lands")
    if stage.needs_models:
        tracking.setup(settings)
        for name in stage.needs_models:
            if registry.version_of(name, "champion") is None:
                return f"no registered model {name}@champion yet (osmf_train makes it); {stage.dag_id} runs after it"
    return None


def already_built(stage, run_date: str, settings) -> str | None:
    """Why a scheduled run has nothing to do (the stage's output for ``run_date`` exists), or None."""
    from osmf.lake import Lake

    if stage.builds and Lake(settings).has_partition(stage.builds, run_date):
        return f"{stage.builds} for {run_date} is already built (an asset-triggered run made it); trigger to rebuild"
    return None

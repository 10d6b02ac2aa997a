"""The one definition of the nightly chain, read by the DAG files, ``osmf regroup``, the local
Airflow runner and the demo.

A *stage* is one DAG: an ordered list of *steps* (each one Airflow task, each one job of ``jobs/``
named here by its module), then a quality gate (the Great Expectations suites of the tables it
wrote, on the run date's partition) that updates the stage's asset, which triggers the next stage:

    osmf_ingest -> [impressions] -> osmf_regroup -> [groups] -> osmf_train -> [models] -> osmf_generate -> [generated_creatives]

(osmf_generate also writes ``serving_assignments``, what an ad server loads.)

Every job is ``run(ctx: JobContext) -> dict``; a step may also name a ``skip_if(ctx)`` (why there is
nothing to do, or None) and ask for the job's ``promote(ctx)`` after it. The jobs import their heavy
libraries inside ``run``, so importing this module (DAG files do while parsing) stays light.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from jobs import (generate_creatives, group_ctr, group_users, ingest_events, paag_embeddings, serving_assignments,
                  train_gmllm, train_grm, train_group_dpo, validate_table)
from osmf.runtime.context import JobContext


@dataclass(frozen=True)
class Step:
    name: str  # the task id
    job: ModuleType  # a module of jobs/: its run(ctx) runs the step
    timeout_minutes: int = 60
    models_queue: bool = False  # runs on [models].train_queue (a GPU worker's, in production)
    skip_if: Callable[[JobContext], str | None] | None = None  # a reason to skip, or None
    promote: bool = False  # then the job's promote(ctx): challenger -> champion if it is better


@dataclass(frozen=True)
class Stage:
    dag_id: str
    steps: tuple[Step, ...]
    asset: str  # updated when the stage succeeds
    validates: tuple[str, ...] = ()  # partitioned tables checked on the run date's partition
    validates_whole: tuple[str, ...] = ()  # dimension tables checked whole
    needs: tuple[str, ...] = ()  # partitioned tables whose run-date partition must exist (else: skip)
    needs_models: tuple[str, ...] = ()  # registered models whose @champion must exist (else: skip)
    builds: str | None = None  # the table whose run-date partition means "done" (a cron run then skips)

    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"stage {self.dag_id} has no step {name!r}; steps: {[s.name for s in self.steps]}")


INGEST = Stage("osmf_ingest", (Step("ingest", ingest_events),), "impressions",
               validates=("impressions", "quarantine", "ingest_audit"),
               validates_whole=("users", "products", "creatives"))
REGROUP = Stage("osmf_regroup", (Step("paag_embeddings", paag_embeddings), Step("group_users", group_users),
                                 Step("group_ctr", group_ctr)), "groups",
                validates=("user_product_embeddings", "creative_themes", "user_groups", "groups", "group_creative_ctr",
                           "group_preference_pairs"), needs=("impressions",), builds="groups")
TRAIN = Stage("osmf_train", (Step("train_grm", train_grm, 120, True, promote=True),
                             Step("pretrain_gmllm", train_gmllm, 240, True, skip_if=train_gmllm.base_exists),
                             Step("group_dpo", train_group_dpo, 240, True, promote=True)),
              "models", needs=("groups", "group_preference_pairs"))
GENERATE = Stage("osmf_generate", (Step("generate", generate_creatives, 120, True),
                                   Step("serving", serving_assignments, 60)), "generated_creatives",
                 validates=("generated_creatives", "serving_assignments"), needs=("groups",),
                 needs_models=("osmf-grm", "osmf-gmllm"), builds="serving_assignments")
STAGES = (INGEST, REGROUP, TRAIN, GENERATE)
DAILY = (INGEST,)  # run for every landing date; the others run for the last date of a batch


def stage(dag_id: str) -> Stage:
    for s in STAGES:
        if s.dag_id == dag_id:
            return s
    raise KeyError(f"no stage {dag_id!r}; stages: {[s.dag_id for s in STAGES]}")


class QualityGateFailed(RuntimeError):
    """A table's suite failed: the stage stops and nothing downstream runs."""


def _flat(out) -> dict:
    return {k: v for k, v in dict(out).items() if isinstance(v, (int, float, str, bool))}


def run_step(step: Step, ctx: JobContext) -> dict:
    """One step for ``ctx.run_date``: its job's ``run(ctx)`` (and ``promote(ctx)``), as a flat,
    JSON-able summary (an Airflow XCom)."""
    why = step.skip_if(ctx) if step.skip_if else None
    if why:
        import logging

        logging.getLogger("osmf.chain").warning("step %s skipped for %s: %s", step.name, ctx.run_date, why)
        return {"run_date": ctx.run_date, "skipped": why}
    out = step.job.run(ctx)
    if step.promote:
        out["promoted"] = bool(step.job.promote(ctx)["promoted"])
    return {"run_date": ctx.run_date, **_flat(out)}


def validate(stage_: Stage, ctx: JobContext) -> dict:
    """Run the stage's quality suites; raise ``QualityGateFailed`` listing every failed suite."""
    out, failed = {}, []
    for table in (*stage_.validates, *stage_.validates_whole):
        report = validate_table.validate(ctx, table)
        out[table] = "passed" if report.success else "failed"
        if not report.success:
            failed.append(report.summary())
    if failed:
        raise QualityGateFailed("quality gate failed:\n" + "\n".join(failed))
    return out


def run_stage(stage_: Stage, ctx: JobContext, say=print) -> dict:
    """Every step of a stage in this process, then its quality gate (what the DAG does, without
    Airflow). Returns each step's summary and the validation outcome."""
    t0 = time.perf_counter()
    n = len(stage_.steps) + 1
    out = {}
    for i, s in enumerate(stage_.steps, start=1):
        say(f"[{time.perf_counter() - t0:6.1f}s] {stage_.dag_id} {ctx.run_date} [{i}/{n}] {s.name}")
        out[s.name] = run_step(s, ctx)
    say(f"[{time.perf_counter() - t0:6.1f}s] {stage_.dag_id} {ctx.run_date} [{n}/{n}] validation")
    out["validation"] = validate(stage_, ctx)
    say(f"[{time.perf_counter() - t0:6.1f}s] {stage_.dag_id} {ctx.run_date} done")
    return out


def missing_inputs(stage_: Stage, ctx: JobContext) -> str | None:
    """Why the stage cannot run for ``ctx.run_date`` (its input partitions or champion models are
    not there yet), or None. A scheduled run that finds this skips instead of failing."""
    from osmf.lake.tables import TABLES
    from osmf.tracking import registry
    from osmf.tracking import runs as tracking

    for table in stage_.needs:
        if not ctx.lake.has_partition(table, ctx.run_date):
            return (f"no {table} for {ctx.run_date} yet (made by `{TABLES[table].made_by}`); "
                    f"{stage_.dag_id} runs when it lands")
    if stage_.needs_models:
        tracking.setup(ctx.settings)
        for name in stage_.needs_models:
            if registry.version_of(name, "champion") is None:
                return f"no registered model {name}@champion yet (osmf_train makes it); {stage_.dag_id} runs after it"
    return None


def already_built(stage_: Stage, ctx: JobContext) -> str | None:
    """Why a scheduled run has nothing to do (the stage's output for the run date exists), or None."""
    if stage_.builds and ctx.lake.has_partition(stage_.builds, ctx.run_date):
        return f"{stage_.builds} for {ctx.run_date} is already built (an asset-triggered run made it); trigger to rebuild"
    return None

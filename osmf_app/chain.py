"""The one definition of the nightly chain, read by the DAG files, ``osmf regroup``, the local
Airflow runner and the demo.

A *stage* is one DAG: an ordered list of *steps* (each one Airflow task, each a job), then a
quality gate (the Great Expectations suites of the tables it wrote, on the run date's partition)
that updates the stage's asset, which triggers the next stage:

    osmf_ingest -> [impressions] -> osmf_regroup -> [groups] -> osmf_train -> [models] -> osmf_generate -> [generated_creatives]

Stdlib only at import time (DAG files import this while parsing); a step's code is imported
when it runs (``osmf_app.steps``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    name: str  # the task id, and the function of osmf_app.steps that runs it
    timeout_minutes: int = 60
    models_queue: bool = False  # runs on [models].train_queue (a GPU worker's, in production)


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


INGEST = Stage("osmf_ingest", (Step("ingest"),), "impressions",
               validates=("impressions", "quarantine", "ingest_audit"),
               validates_whole=("users", "products", "creatives"))
REGROUP = Stage("osmf_regroup", (Step("paag_embeddings"), Step("group_users"), Step("group_ctr")), "groups",
                validates=("user_product_embeddings", "user_groups", "groups", "group_creative_ctr",
                           "group_preference_pairs"), needs=("impressions",), builds="groups")
TRAIN = Stage("osmf_train", (Step("train_grm", 120, True), Step("pretrain_gmllm", 240, True),
                             Step("group_dpo", 240, True)), "models", needs=("groups", "group_preference_pairs"))
GENERATE = Stage("osmf_generate", (Step("generate", 120, True),), "generated_creatives",
                 validates=("generated_creatives",), needs=("groups",), needs_models=("osmf-grm", "osmf-gmllm"),
                 builds="generated_creatives")
STAGES = (INGEST, REGROUP, TRAIN, GENERATE)
DAILY = (INGEST,)  # run for every landing date; the others run for the last date of a batch


def stage(dag_id: str) -> Stage:
    for s in STAGES:
        if s.dag_id == dag_id:
            return s
    raise KeyError(f"no stage {dag_id!r}; stages: {[s.dag_id for s in STAGES]}")


class QualityGateFailed(RuntimeError):
    """A table's suite failed: the stage stops and nothing downstream runs."""


def validate(stage_: Stage, run_date: str, settings) -> dict:
    """Run the stage's quality suites; raise ``QualityGateFailed`` listing every failed suite."""
    from jobs import validate_table

    checks = [(t, run_date) for t in stage_.validates] + [(t, None) for t in stage_.validates_whole]
    out, failed = {}, []
    for table, day in checks:
        report = validate_table.run(table, day, settings)
        out[table] = "passed" if report.success else "failed"
        if not report.success:
            failed.append(report.summary())
    if failed:
        raise QualityGateFailed("quality gate failed:\n" + "\n".join(failed))
    return out


def run_stage(stage_: Stage, run_date: str, settings, run_id: str | None = None, conf: dict | None = None,
              say=print, **job_kwargs) -> dict:
    """Every step of a stage in this process, then its quality gate (what the DAG does, without
    Airflow). ``job_kwargs`` (a shared ``spark``, ``lake``, ``grouping`` config) go to the jobs that
    take them. Returns each step's summary and the validation outcome."""
    from osmf_app import steps

    t0 = time.perf_counter()
    n = len(stage_.steps) + 1
    out = {}
    for i, s in enumerate(stage_.steps, start=1):
        say(f"[{time.perf_counter() - t0:6.1f}s] {stage_.dag_id} {run_date} [{i}/{n}] {s.name}")
        out[s.name] = getattr(steps, s.name)(run_date, settings, run_id=run_id, conf=conf or {}, **job_kwargs)
    say(f"[{time.perf_counter() - t0:6.1f}s] {stage_.dag_id} {run_date} [{n}/{n}] validation")
    out["validation"] = validate(stage_, run_date, settings)
    say(f"[{time.perf_counter() - t0:6.1f}s] {stage_.dag_id} {run_date} done")
    return out

"""The ``osmf`` command line. Every subcommand has ``--help``; each sets its handler with
``set_defaults(func=...)``, and ``main`` runs it under ``osmf.runtime.entrypoint.run_guarded`` (a
bad setting exits 2 naming the key; a known error is one ``error:`` line and exit 1). Every command
that works on a date takes ``--run-date`` (``--date``, the old name, still works for one release
and says so). A command that runs a job builds its ``JobContext`` and calls the job module named
here (``osmf train grm`` -> ``jobs.train_grm.run``), the same code as the chain and the DAGs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

from jobs import (generate_creatives, ingest_events, serving_assignments, train_gmllm, train_grm, train_group_dpo,
                  validate_table)
from osmf.runtime.context import JobContext
from osmf.runtime.entrypoint import date_arg, run_guarded
from osmf_app import chain

# each model's CLI mapping: `osmf train <model>` runs the job's run(ctx), `osmf promote <model>` its promote(ctx)
TRAINERS = {"grm": train_grm, "gmllm": train_gmllm, "group-dpo": train_group_dpo}
PROMOTERS = {"grm": train_grm, "gmllm": train_group_dpo}


def _kv(value: str) -> tuple[str, str]:
    if "=" not in value:
        raise argparse.ArgumentTypeError(f"--param {value!r} is not of the form name=value")
    k, _, v = value.partition("=")
    return k.strip(), v


def _progress(msg: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {msg}", flush=True)


def _json(obj) -> None:
    print(json.dumps(obj, indent=1, default=str))


def _ctx(args, settings, **conf) -> JobContext:
    """The job context of a command: its run date, run id (if it takes one) and conf."""
    return JobContext(settings, args.run_date, getattr(args, "run_id", None), conf, say=_progress)


def _world_config(preset, config):
    from osmf.world import WorldConfig

    return WorldConfig.from_toml(config) if config else WorldConfig.preset(preset)


# ---- handlers: (args, settings) -> exit code ------------------------------------------------------
def cmd_settings(args, settings) -> int:
    import dataclasses

    from osmf.config.settings import SECTIONS

    for k, v in settings.__dict__.items():
        if k in SECTIONS:
            for f, fv in dataclasses.asdict(v).items():
                print(f"{k}.{f} = {fv}")
        else:
            print(f"{k} = {v}")
    for k, v in (("lake_root", settings.lake_root), ("landing_root", settings.landing_root),
                 ("landing_dimensions", settings.landing_dimensions), ("asset_root", settings.asset_root),
                 ("airflow_home", settings.airflow_home), ("mlflow_uri", settings.mlflow_uri)):
        print(f"{k} = {v}")
    return 0


def cmd_world_generate(args, settings) -> int:
    from osmf.world import generate_world

    s = generate_world(_world_config(args.preset, args.config), settings.home, progress=_progress)
    print(f"world written to {settings.home}: {len(s.dates)} days ({s.dates[0]}..{s.dates[-1]}), "
          f"{s.n_lines} landing lines ({s.n_malformed} malformed, {s.n_duplicates} duplicates) in {s.seconds:.1f}s")
    return 0


def cmd_world_show(args, settings) -> int:
    from osmf.world import read_manifest

    _json(read_manifest(settings.home))
    return 0


def cmd_ingest(args, settings) -> int:
    print(ingest_events.run(_ctx(args, settings))["report"])
    return 0


def cmd_regroup(args, settings) -> int:
    _json(chain.run_stage(chain.REGROUP, _ctx(args, settings), say=lambda m: print(m, flush=True)))
    return 0


def cmd_train(args, settings) -> int:
    _json(TRAINERS[args.model].run(_ctx(args, settings)))
    return 0


def cmd_promote(args, settings) -> int:
    _json(PROMOTERS[args.model].promote(JobContext(settings, dt.date.today().isoformat(), say=_progress)))
    return 0


def cmd_generate(args, settings) -> int:
    ctx = _ctx(args, settings)
    _json({"generate": generate_creatives.run(ctx), "serving": serving_assignments.run(ctx)})
    return 0


def cmd_validate(args, settings) -> int:
    from osmf.lake.tables import spec

    partitioned = bool(spec(args.table).partition_by)
    if partitioned and not args.run_date:
        raise ValueError(f"table {args.table!r} is partitioned by {spec(args.table).partition_by}: give --run-date")
    day = args.run_date or dt.date.today().isoformat()  # a dimension is validated whole: the date is unused
    report = validate_table.validate(JobContext(settings, day, say=_progress), args.table)
    print(report.summary())
    return 0 if report.success else 1


def cmd_evaluate_grouping(args, settings) -> int:
    from osmf_app.evaluation import grouping_report

    plot = args.plot or args.json.with_suffix(".png")
    _json(grouping_report(settings, args.run_date, args.json, plot, reuse=False))
    print(f"wrote {args.json} and {plot}")
    return 0


def cmd_evaluate_ab(args, settings) -> int:
    from osmf.world import read_manifest
    from osmf_app.evaluation import ab, ab_on_new_world

    if not args.world_config and not settings.world_manifest.exists():
        raise ValueError(
            f"the simulated A/B test needs a synthetic world: it judges creatives by the world's hidden truth "
            f"({settings.truth_root}, written by `osmf world generate`), and the drop in {settings.landing_root} was "
            f"not made by the generator. The models' offline metrics are in MLflow ({settings.mlflow_uri}, experiment "
            "osmf): the GRM's held-out pair accuracy against the group-blind baseline with 95% intervals (runs "
            "grm-D: grm_pair_accuracy, baseline_pair_accuracy, *_ci_low/high), the Group-DPO and pre-training "
            "runs (group-dpo-D, gmllm-pretrain-D), and PAAG's held-out AUC ($OSMF_HOME/models/paag/run_date=D/metrics.json)")
    run_date = ab_on_new_world(settings, args.world_config) if args.world_config else None
    ab(settings, args.run_date or run_date or read_manifest(settings.home)["dates"][-1], args.json, args.html)
    return 0


def cmd_sql(args, settings) -> int:
    from osmf.lake import sqlrun

    if args.list:
        for q in sqlrun.list_queries(settings.sql_dir):
            params = ", ".join(f"{k}{'=' + d if d else ''}" for k, (d, _) in q.params.items())
            print(f"{q.name:<36} {q.description}  [{params}]")
        return 0
    from osmf.lake import Lake

    q = sqlrun.load_query(args.query, settings.sql_dir)
    print(sqlrun.render(sqlrun.run_query(q, dict(args.param), Lake(settings), args.engine), args.format))
    return 0


def cmd_lake_list(args, settings) -> int:
    from osmf.lake import Lake, summary

    print(summary(Lake(settings)))
    return 0


def cmd_lake_history(args, settings) -> int:
    from osmf.lake import Lake

    for h in Lake(settings).history(args.table, args.limit):
        print(f"v{h.get('version'):<4} {h.get('operation', ''):<12} run={h.get('osmf.run_id', '-'):<40} "
              f"job={h.get('osmf.job', '-'):<16} {h.get('osmf.partition', '')}")
    return 0


def cmd_lake_optimize(args, settings) -> int:
    from osmf.lake import Lake

    _json(Lake(settings).optimize(args.table))
    return 0


def cmd_lake_vacuum(args, settings) -> int:
    from osmf.lake import Lake

    files = Lake(settings).vacuum(args.table, args.retention_hours, dry_run=not args.apply)
    print(f"{'deleted' if args.apply else 'would delete'} {len(files)} file(s)")
    return 0


def cmd_landing_check(args, settings) -> int:
    from osmf.ingest.landing import check_landing

    report = check_landing(settings, [args.run_date] if args.run_date else None)
    print(report.text())
    return 0 if report.ok else 1


def cmd_chain(args, settings) -> int:
    from osmf.ingest.landing import landed_dates
    from osmf_app.airflow_local import run_chain

    dates = sorted(args.run_date or []) or landed_dates(settings)
    if not dates:
        raise FileNotFoundError(f"no landing dates under {settings.landing_root / 'events'}: land a drop first "
                                "(docs/landing.md) or generate a world (`osmf world generate --preset tiny`)")
    run_chain(settings, dates, say=_progress)
    return 0


def cmd_export_serving(args, settings) -> int:
    from osmf.generation.serving import export_serving
    from osmf.lake import Lake

    n = export_serving(Lake(settings), args.run_date, args.out)
    print(f"wrote {n} serving assignments of {args.run_date} to {args.out}")
    return 0


def cmd_demo(args, settings) -> int:
    from osmf_app.demo import run_demo

    return run_demo(settings, _world_config(args.preset, args.config))


def cmd_stack(args, settings) -> int:
    from osmf_app.stack import stack_for

    stack = stack_for(settings)
    if args.stack_cmd == "env":
        stack.secrets()
        print(stack.write_env_file().read_text(), end="")
        return 0
    if args.stack_cmd == "up":
        stack.up(say=_progress)
    elif args.stack_cmd == "down":
        stopped = stack.down(say=_progress)
        print(f"stack down: {len(stopped)} process(es) stopped")
        return 0
    status = stack.status()
    print(f"{'service':<24}{'pid':>8}  {'state':<9}address")
    for name, st in status.items():
        print(f"{name:<24}{st['pid'] or '-':>8}  {st['state']:<9}{st['address']}")
    return 0 if all(st["state"] == "ready" for st in status.values()) else 3


# ---- the parser ---------------------------------------------------------------------------------
def _add_stack(sub) -> None:
    st = sub.add_parser("stack", help="the production stack as local processes (Postgres, MLflow, Spark, Airflow)",
                        description="Start, inspect or stop the real stack on this machine without Docker: "
                                    "PostgreSQL, an MLflow server, a Spark standalone master and worker, and "
                                    "Airflow's api-server, scheduler, dag-processor and triggerer, all on "
                                    "[stack].host. State, secrets, pids and logs live in $OSMF_HOME/stack/.")
    st.add_argument("stack_cmd", choices=["up", "status", "down", "env"],
                    help="up: start what is not running (idempotent); status: each service (exit 3 unless all "
                         "are ready); down: stop what up started; env: print the shell exports of the stack")
    st.set_defaults(func=cmd_stack)



def _add_world(sub) -> None:
    w = sub.add_parser("world", help="the synthetic GAIP-style world").add_subparsers(dest="world_cmd", required=True)
    g = w.add_parser("generate", help="generate a world into $OSMF_HOME (landing, world, truth)",
                     description="Generate a seeded world. Same config, same bytes.")
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", choices=["tiny", "small", "medium"], help="a bundled preset")
    src.add_argument("--config", type=Path, help="a TOML file with a [world] table")
    g.set_defaults(func=cmd_world_generate)
    w.add_parser("show", help="print the current world's manifest").set_defaults(func=cmd_world_show)


def _run_date(p, required: bool = True, help: str = "the run date, YYYY-MM-DD") -> None:
    """``--run-date`` (and ``--date``, its old name, deprecated: still accepted for one release)."""
    p.add_argument("--run-date", type=date_arg, default=None, help=help + (" (required)" if required else ""))
    p.add_argument("--date", dest="deprecated_date", type=date_arg, default=None, help=argparse.SUPPRESS)
    p.set_defaults(run_date_required=required)


def _resolve_run_date(parser, args) -> None:
    """Apply the deprecated ``--date`` with a warning; a required ``--run-date`` that is missing is a usage error."""
    old = getattr(args, "deprecated_date", None)
    if old:
        print("warning: --date is deprecated and will be removed in the next release; use --run-date", file=sys.stderr)
        if args.run_date and args.run_date != old:
            parser.error(f"--date {old} and --run-date {args.run_date} disagree; give --run-date only")
        args.run_date = args.run_date or old
    if getattr(args, "run_date_required", False) and not args.run_date:
        parser.error(f"osmf {args.command}: the following arguments are required: --run-date")


def _add_data(sub) -> None:
    i = sub.add_parser("ingest", help="ingest one day of landing events", description="Landing JSONL -> impressions + quarantine.")
    _run_date(i, help="the landing date, YYYY-MM-DD")
    i.add_argument("--run-id", default=None, help="run id for commit metadata")
    i.set_defaults(func=cmd_ingest)
    r = sub.add_parser("regroup", help="PAAG -> grouping -> group CTR and pairs -> validation for a date",
                       description="Product-aware regrouping of one run date (the osmf_regroup stage, in this process).")
    _run_date(r)
    r.add_argument("--run-id", default=None, help="run id for commit metadata")
    r.set_defaults(func=cmd_regroup)
    v = sub.add_parser("validate", help="run a table's quality suite on one partition")
    v.add_argument("--table", required=True, help="table name (see `osmf lake list`)")
    _run_date(v, required=False, help="the partition, YYYY-MM-DD (partitioned tables)")
    v.set_defaults(func=cmd_validate)


def _add_models(sub) -> None:
    tr = sub.add_parser("train", help="train a model, track it in MLflow, register it as challenger")
    tr.add_argument("model", choices=list(TRAINERS),
                    help="grm: the group reward model (osmf-grm challenger); gmllm: pre-train the G-MLLM "
                         "(osmf-gmllm base); group-dpo: align it (osmf-gmllm challenger, plus the plain-DPO baseline)")
    _run_date(tr)
    tr.set_defaults(func=cmd_train)
    pr = sub.add_parser("promote", help="move 'champion' to the challenger if it is better on pinned data")
    pr.add_argument("model", choices=list(PROMOTERS),
                    help="grm: by held-out pair accuracy; gmllm: by GRM reward of its greedy prompts")
    pr.set_defaults(func=cmd_promote)
    g = sub.add_parser("generate", help="one creative per (product, group) with the champion models",
                       description="Best-of-N G-MLLM prompts by the GRM, rendered, into generated_creatives; "
                                   "then serving_assignments (every user x product: group and creative).")
    _run_date(g)
    g.add_argument("--run-id", default=None, help="run id for commit metadata")
    g.set_defaults(func=cmd_generate)


def _add_landing(sub) -> None:
    la = sub.add_parser("landing", help="the landing drop (docs/landing.md)").add_subparsers(dest="landing_cmd",
                                                                                           required=True)
    c = la.add_parser("check", help="validate a drop before ingest (exit 0 clean, 1 with problems)",
                      description="Check the contract version, the dimension files (columns, types, keys, "
                                  "references), their images and masks, and the events of one date (default: "
                                  "every landed date). Prints every problem with file, row or line and column.")
    c.add_argument("--run-date", "--date", dest="run_date", type=date_arg, default=None,
                   help="the landing date to check (default: every date in landing/events)")
    c.set_defaults(func=cmd_landing_check)
    ch = sub.add_parser("chain", help="run the nightly chain through Airflow for landed dates",
                        description="osmf_ingest for every date, then regroup, train and generate for the last one "
                                    "(Airflow's dag.test in this process, metadata under $OSMF_HOME/airflow).")
    ch.add_argument("--run-date", action="append", type=date_arg, default=None,
                    help="a landing date (repeatable; default: every date in landing/events)")
    ch.set_defaults(func=cmd_chain)
    ex = sub.add_parser("export", help="files for other systems").add_subparsers(dest="export_cmd", required=True)
    sv = ex.add_parser("serving", help="the serving assignments of a run date, for an ad server",
                       description="Every user x product of the run date with its group and creative (image URI, "
                                   "prompt, model versions), as Parquet or JSON lines (by the --out suffix).")
    _run_date(sv)
    sv.add_argument("--out", type=Path, required=True, help="FILE.parquet or FILE.jsonl")
    sv.set_defaults(func=cmd_export_serving)


def _add_evaluate(sub) -> None:
    ev = sub.add_parser("evaluate", help="evaluation reports").add_subparsers(dest="eval_cmd", required=True)
    eg = ev.add_parser("grouping", help="NDCG@5 by K, ARI vs hidden segments, product-agnostic baseline",
                       description="Evaluate the grouping of a run date on the simulator (reads the hidden truth).")
    _run_date(eg)
    eg.add_argument("--json", required=True, type=Path, help="where to write the JSON report")
    eg.add_argument("--plot", type=Path, default=None, help="PNG plot (default: next to the JSON)")
    eg.set_defaults(func=cmd_evaluate_grouping)
    ea = ev.add_parser("ab", help="simulated A/B: one-size-fits-all vs OSMF vs oracle on held-out users",
                       description="Expected CTR per arm on held-out users (reads the hidden truth). With "
                                   "--world-config, first runs the whole chain on a new world from that file.")
    _run_date(ea, required=False, help="the run date (default: the world's last day)")
    ea.add_argument("--json", type=Path, default=None, help="JSON report (default: $OSMF_HOME/reports/ab_<date>.json)")
    ea.add_argument("--html", type=Path, default=None, help="HTML report with plots (default: next to the JSON)")
    ea.add_argument("--world-config", type=Path, default=None,
                    help="a world TOML: generate it under $OSMF_HOME and run the whole chain through Airflow first")
    ea.set_defaults(func=cmd_evaluate_ab)


def _add_sql(sub) -> None:
    s = sub.add_parser("sql", help="run analyst SQL on the lake",
                       description="Run a file from sql/ (by path or name) or an inline SELECT.")
    s.add_argument("query", nargs="?", help="a .sql path, a name in sql/, or a SELECT statement")
    s.add_argument("--param", action="append", type=_kv, default=[], metavar="NAME=VALUE", help="a named parameter (repeatable)")
    s.add_argument("--format", choices=["table", "csv", "json"], default="table")
    s.add_argument("--engine", choices=["spark", "duckdb"], default="spark",
                   help="spark (default) or duckdb (no JVM, fast start)")
    s.add_argument("--list", action="store_true", help="list the queries in sql/ and their parameters")
    s.set_defaults(func=cmd_sql)


def _add_lake(sub) -> None:
    lk = sub.add_parser("lake", help="inspect and maintain lake tables").add_subparsers(dest="lake_cmd", required=True)
    lk.add_parser("list", help="tables with version, rows and files").set_defaults(func=cmd_lake_list)
    h = lk.add_parser("history", help="a table's commits with their run ids")
    h.add_argument("table")
    h.add_argument("--limit", type=int, default=20)
    h.set_defaults(func=cmd_lake_history)
    o = lk.add_parser("optimize", help="compact a table's small files")
    o.add_argument("table")
    o.set_defaults(func=cmd_lake_optimize)
    vc = lk.add_parser("vacuum", help="delete files no version references (dry run unless --apply)")
    vc.add_argument("table")
    vc.add_argument("--retention-hours", type=int, default=168)
    vc.add_argument("--apply", action="store_true")
    vc.set_defaults(func=cmd_lake_vacuum)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="osmf", description="OSMF: one ad creative per group of users. "
                                "State lives under $OSMF_HOME (default ./.osmf).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_world, _add_landing, _add_data, _add_models, _add_evaluate, _add_sql, _add_lake, _add_stack):
        add(sub)
    d = sub.add_parser("demo", help="the main job: world -> the nightly chain through Airflow -> A/B report",
                       description="Generate the world, run the nightly chain through Airflow (ingest every "
                                   "day; regroup, train, generate the last), then evaluate the grouping and the "
                                   "simulated A/B test and print the results.")
    d.add_argument("--preset", choices=["tiny", "small", "medium"], default="small")
    d.add_argument("--config", type=Path, default=None, help="a world TOML instead of a preset")
    d.set_defaults(func=cmd_demo)
    sub.add_parser("settings", help="print the effective settings").set_defaults(func=cmd_settings)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _resolve_run_date(parser, args)
    if args.func is cmd_sql and not (args.list or args.query):
        parser.error("osmf sql: give a query (a .sql path, a name in sql/, or a SELECT) or --list")
    from osmf.ingest.landing import LandingRefused
    from osmf.world import WorldConfigError
    from osmf_app.stack import StackError

    return run_guarded(lambda settings: args.func(args, settings), (WorldConfigError, StackError, LandingRefused))


if __name__ == "__main__":
    raise SystemExit(main())

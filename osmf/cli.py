"""The ``osmf`` command line. Every subcommand has ``--help``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from osmf.runinfo import parse_run_date


def _date(value: str) -> str:
    try:
        return parse_run_date(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _kv(value: str) -> tuple[str, str]:
    if "=" not in value:
        raise argparse.ArgumentTypeError(f"--param {value!r} is not of the form name=value")
    k, _, v = value.partition("=")
    return k.strip(), v


TRAINERS = {"grm": "train_grm", "gmllm": "train_gmllm", "group-dpo": "train_group_dpo"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="osmf", description="OSMF: one ad creative per group of users. "
                                "State lives under $OSMF_HOME (default ./.osmf).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    w = sub.add_parser("world", help="the synthetic GAIP-style world").add_subparsers(dest="world_cmd", required=True)
    g = w.add_parser("generate", help="generate a world into $OSMF_HOME (landing, world, truth)",
                     description="Generate a seeded world. Same config, same bytes.")
    src = g.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", choices=["tiny", "small"], help="a bundled preset")
    src.add_argument("--config", type=Path, help="a TOML file with a [world] table")
    w.add_parser("show", help="print the current world's manifest")

    i = sub.add_parser("ingest", help="ingest one day of landing events", description="Landing JSONL -> impressions + quarantine.")
    i.add_argument("--date", required=True, type=_date, help="the landing date, YYYY-MM-DD")
    i.add_argument("--run-id", default=None, help="run id for commit metadata")

    r = sub.add_parser("regroup", help="PAAG -> grouping -> group CTR and pairs -> validation for a date",
                       description="Product-aware regrouping of one run date (trailing window of impressions).")
    r.add_argument("--date", required=True, type=_date, help="the run date, YYYY-MM-DD")
    r.add_argument("--run-id", default=None, help="run id for commit metadata")

    ev = sub.add_parser("evaluate", help="evaluation reports").add_subparsers(dest="eval_cmd", required=True)
    eg = ev.add_parser("grouping", help="NDCG@5 by K, ARI vs hidden segments, product-agnostic baseline",
                       description="Evaluate the grouping of a run date on the simulator (reads the hidden truth).")
    eg.add_argument("--run-date", required=True, type=_date)
    eg.add_argument("--json", required=True, type=Path, help="where to write the JSON report")
    eg.add_argument("--plot", type=Path, default=None, help="PNG plot (default: next to the JSON)")

    ea = ev.add_parser("ab", help="simulated A/B: one-size-fits-all vs OSMF vs oracle on held-out users",
                       description="Expected CTR per arm on held-out users (reads the hidden truth). With "
                                   "--world-config, first runs the whole chain on a new world from that file.")
    ea.add_argument("--run-date", type=_date, default=None, help="the run date (default: the world's last day)")
    ea.add_argument("--json", type=Path, default=None, help="JSON report (default: $OSMF_HOME/reports/ab_<date>.json)")
    ea.add_argument("--html", type=Path, default=None, help="HTML report with plots (default: next to the JSON)")
    ea.add_argument("--world-config", type=Path, default=None,
                    help="a world TOML: generate it under $OSMF_HOME and run the whole chain through Airflow first")

    tr = sub.add_parser("train", help="train a model, track it in MLflow, register it as challenger")
    tr.add_argument("model", choices=list(TRAINERS),
                    help="grm: the group reward model (osmf-grm challenger); gmllm: pre-train the G-MLLM "
                         "(osmf-gmllm base); group-dpo: align it (osmf-gmllm challenger, plus the plain-DPO baseline)")
    tr.add_argument("--run-date", required=True, type=_date)
    pr = sub.add_parser("promote", help="move 'champion' to the challenger if it is better on pinned data")
    pr.add_argument("model", choices=["grm", "gmllm"],
                    help="grm: by held-out pair accuracy; gmllm: by GRM reward of its greedy prompts")
    g = sub.add_parser("generate", help="one creative per (product, group) with the champion models",
                       description="Best-of-N G-MLLM prompts by the GRM, rendered, into generated_creatives.")
    g.add_argument("--run-date", required=True, type=_date)
    g.add_argument("--run-id", default=None, help="run id for commit metadata")

    v = sub.add_parser("validate", help="run a table's quality suite on one partition")
    v.add_argument("--table", required=True, help="table name (see `osmf lake list`)")
    v.add_argument("--date", type=_date, default=None, help="the partition, YYYY-MM-DD (partitioned tables)")

    s = sub.add_parser("sql", help="run analyst SQL on the lake",
                       description="Run a file from sql/ (by path or name) or an inline SELECT.")
    s.add_argument("query", help="a .sql path, a name in sql/, or a SELECT statement")
    s.add_argument("--param", action="append", type=_kv, default=[], metavar="NAME=VALUE", help="a named parameter (repeatable)")
    s.add_argument("--format", choices=["table", "csv", "json"], default="table")
    s.add_argument("--engine", choices=["spark", "duckdb"], default="spark",
                   help="spark (default) or duckdb (no JVM, fast start)")
    s.add_argument("--list", action="store_true", help="list the queries in sql/ and their parameters")

    lk = sub.add_parser("lake", help="inspect and maintain lake tables").add_subparsers(dest="lake_cmd", required=True)
    lk.add_parser("list", help="tables with version, rows and files")
    h = lk.add_parser("history", help="a table's commits with their run ids")
    h.add_argument("table")
    h.add_argument("--limit", type=int, default=20)
    o = lk.add_parser("optimize", help="compact a table's small files")
    o.add_argument("table")
    vc = lk.add_parser("vacuum", help="delete files no version references (dry run unless --apply)")
    vc.add_argument("table")
    vc.add_argument("--retention-hours", type=int, default=168)
    vc.add_argument("--apply", action="store_true")

    d = sub.add_parser("demo", help="the main job: world -> the nightly chain through Airflow -> A/B report",
                       description="Generate the world, run the nightly chain through Airflow (ingest every "
                                   "day; regroup, train, generate the last), then evaluate the grouping and the "
                                   "simulated A/B test and print the results.")
    d.add_argument("--preset", choices=["tiny", "small"], default="small")
    d.add_argument("--config", type=Path, default=None, help="a world TOML instead of a preset")

    sub.add_parser("settings", help="print the effective settings")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from jobs._common import run_guarded
    from osmf.world import WorldConfigError

    return run_guarded(lambda settings: _dispatch(args, settings), (WorldConfigError,))


def _world_config(preset, config):
    from osmf.world import WorldConfig

    return WorldConfig.from_toml(config) if config else WorldConfig.preset(preset)


def _dispatch(args, settings) -> int:
    cmd = args.command
    if cmd == "settings":
        for k, v in settings.__dict__.items():
            print(f"{k} = {v}")
        for k in ("lake_root", "landing_root", "truth_root", "world_root", "airflow_home", "mlflow_uri"):
            print(f"{k} = {getattr(settings, k)}")
        return 0
    if cmd == "world":
        from osmf.world import generate_world, read_manifest

        if args.world_cmd == "show":
            print(json.dumps(read_manifest(settings.home), indent=1))
            return 0
        summary = generate_world(_world_config(args.preset, args.config), settings.home, progress=_progress)
        print(f"world written to {settings.home}: {len(summary.dates)} days ({summary.dates[0]}..{summary.dates[-1]}), "
              f"{summary.n_lines} landing lines ({summary.n_malformed} malformed, {summary.n_duplicates} duplicates) "
              f"in {summary.seconds:.1f}s")
        return 0
    if cmd == "ingest":
        from jobs import ingest_events

        print(ingest_events.run(args.date, settings, args.run_id).table())
        return 0
    if cmd == "regroup":
        from osmf.regroup import regroup

        out = regroup(args.date, settings, args.run_id, say=lambda m: print(m, flush=True))
        print(json.dumps({k: v for k, v in out.items()}, indent=1, default=str))
        return 0
    if cmd == "evaluate" and args.eval_cmd == "ab":
        from osmf.pipeline import ab_command

        return ab_command(settings, args.run_date, args.json, args.html, args.world_config)
    if cmd == "evaluate":
        from osmf import evaluate_grouping

        report = evaluate_grouping.evaluate(args.run_date, settings)
        plot = args.plot or args.json.with_suffix(".png")
        evaluate_grouping.write(report, args.json, plot)
        print(json.dumps(report, indent=1))
        print(f"wrote {args.json} and {plot}")
        return 0
    if cmd == "train":
        import importlib

        job = importlib.import_module(f"jobs.{TRAINERS[args.model]}")
        print(json.dumps(job.run(args.run_date, settings, say=_progress), indent=1, default=str))
        return 0
    if cmd == "promote":
        import importlib

        job = importlib.import_module(f"jobs.{TRAINERS['group-dpo' if args.model == 'gmllm' else 'grm']}")
        print(json.dumps(job.promote(settings), indent=1, default=str))
        return 0
    if cmd == "generate":
        from jobs import generate_creatives

        print(json.dumps(generate_creatives.run(args.run_date, settings, run_id=args.run_id, say=_progress),
                         indent=1, default=str))
        return 0
    if cmd == "validate":
        from jobs import validate_table

        report = validate_table.run(args.table, args.date, settings)
        print(report.summary())
        return 0 if report.success else 1
    if cmd == "sql":
        from osmf import sqlrun

        if args.list:
            for f in sorted(sqlrun.SQL_DIR.glob("*.sql")):
                q = sqlrun.load_query(str(f))
                params = ", ".join(f"{k}{'=' + d if d else ''}" for k, (d, _) in q.params.items())
                print(f"{q.name:<36} {q.description}  [{params}]")
            return 0
        q = sqlrun.load_query(args.query)
        df = sqlrun.run_query(q, dict(args.param), args.engine)
        print(sqlrun.render(df, args.format))
        return 0
    if cmd == "lake":
        return _lake(args, settings)
    if cmd == "demo":
        from osmf.demo import run_demo

        return run_demo(settings, _world_config(args.preset, args.config))
    raise AssertionError(cmd)


def _progress(msg: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {msg}", flush=True)


def _lake(args, settings) -> int:
    from osmf.lake import Lake

    lake = Lake(settings)
    if args.lake_cmd == "list":
        print(lake_summary(lake))
    elif args.lake_cmd == "history":
        for h in lake.history(args.table, args.limit):
            print(f"v{h.get('version'):<4} {h.get('operation', ''):<12} run={h.get('osmf.run_id', '-'):<40} "
                  f"job={h.get('osmf.job', '-'):<16} {h.get('osmf.partition', '')}")
    elif args.lake_cmd == "optimize":
        print(json.dumps(lake.optimize(args.table), indent=1, default=str))
    elif args.lake_cmd == "vacuum":
        files = lake.vacuum(args.table, args.retention_hours, dry_run=not args.apply)
        print(f"{'deleted' if args.apply else 'would delete'} {len(files)} file(s)")
    return 0


def lake_summary(lake) -> str:
    import pyarrow as pa

    from osmf.tables import TABLES

    rows = [f"{'table':<24} {'version':>7} {'rows':>10} {'files':>6} {'partitions':>10}  description",
            "-" * 100]
    for name, s in TABLES.items():
        if not lake.exists(name):
            rows.append(f"{name:<24} {'-':>7} {'-':>10} {'-':>6} {'-':>10}  (not created yet: {s.made_by})")
            continue
        dt = lake.table(name)
        adds = pa.table(dt.get_add_actions(flatten=True))
        n_rows = sum(adds.column("num_records").to_pylist()) if adds.num_rows else 0
        parts = len(set(adds.column(f"partition.{s.partition_by}").to_pylist())) if s.partition_by and adds.num_rows else "-"
        rows.append(f"{name:<24} {dt.version():>7} {n_rows:>10} {adds.num_rows:>6} {parts:>10}  {s.description[:60]}")
    return "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())

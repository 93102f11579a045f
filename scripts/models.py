"""Registry CLI: `list` champions/candidates per series; `rollback` the champion alias.

Usage:
  python scripts/models.py list
  python scripts/models.py rollback --series "BLACK VELVET"|all --to previous|last-passed|<version> --reason "..."
  python scripts/models.py serve --series "BLACK VELVET" [--version N] [--host 127.0.0.1] [--port 5002]
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import sys
import time
from pathlib import Path
from typing import Any


def main() -> int:
    """Run the sub-command against the configured MLflow store."""
    from mlflow import MlflowClient

    from include.forecasting import alerts, registry
    from include.forecasting.config import load_config

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list")
    rb = sub.add_parser("rollback")
    rb.add_argument("--series", required=True, help='series id, or "all"')
    rb.add_argument("--to", default="previous", help="previous | last-passed | <version>")
    rb.add_argument("--reason", default="manual rollback")
    sv = sub.add_parser("serve", help="serve one series' champion (or --version) over HTTP: mlflow models serve")
    sv.add_argument("--series", required=True, help="series id")
    sv.add_argument("--version", default=None, help="a version number (default: the champion alias)")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=5002)
    args = parser.parse_args()

    config = load_config()
    client = MlflowClient(tracking_uri=config.mlflow.tracking_uri)
    alias = config.mlflow.champion_alias
    overview = registry.registry_overview(client, config.mlflow.model_prefix, alias)
    if args.command == "list":
        for row in overview:
            print(f"{row['series_id']}  ({row['model']})  champion v{row['champion'] or '-'}  previous v{row['previous'] or '-'}")
            moved = row.get("moved") or {}
            if moved.get("rolled_back_from"):
                print(f"    alias moved here from v{moved['rolled_back_from']} by {moved.get('rolled_back_by')} at {moved.get('rolled_back_at')}: {moved.get('rollback_reason')}")
            if row.get("withdrawn"):
                print(f"    withdrawn (never served again unless rolled forward): v{', v'.join(row['withdrawn'])}")
            for c in row["candidates"]:
                mase = f"{c['mase']:.3f}" if c["mase"] is not None else "  -  "
                naive = f"{c['naive_mase']:.3f}" if c["naive_mase"] is not None else "  -  "
                print(f"    v{c['version']:>3}  trained for {c['logical_date']}  MASE {mase}  naive {naive}  gate {'passed' if c['gate_passed'] else '-'}")
        if not overview:
            print("no registered models yet: run `make demo` first")
        return 0

    if not args.series.strip():
        # No default: a bare `make rollback` must not move every champion (the rollback DAG has none either).
        usage = {"rollback": 'make rollback SERIES="...", or SERIES=all for every series', "serve": 'make serve-model SERIES="..."'}
        print(f"name the series: {usage[args.command]} (make models lists them)", file=sys.stderr)
        return 2
    try:
        wanted = set(registry.match_series([r["series_id"] for r in overview], args.series))
    except LookupError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    targets = [r for r in overview if r["series_id"] in wanted]
    if args.command == "serve":
        return serve(config, targets, alias, args)
    actor = f"cli:{getpass.getuser()}"
    failures = 0
    rolled: list[str] = []
    for row in targets:
        started = time.perf_counter()
        try:
            result = registry.rollback(client, row["model"], row["series_id"], alias, args.to, actor, args.reason)
            registry.verify_version(config.mlflow.tracking_uri, row["model"], result.version, config.forecast.horizon)
        except (LookupError, ValueError) as exc:
            print(f"{row['series_id']}: NOT rolled back: {exc}", file=sys.stderr)
            failures += 1
            continue
        print(f"{row['series_id']}: {result.note}; verified by loading v{result.version} and forecasting ({time.perf_counter() - started:.2f}s)")
        rolled.append(row["series_id"])
    if rolled:
        # The warehouse shows what the registry serves: the newest published rows of each rolled-back
        # series are replaced by the restored version's forecast for the same logical date.
        from forecast_ops.hooks.warehouse import republish_served

        run_id = f"rollback__{dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}"
        for series_id, done in republish_served(config, rolled, run_id, config.mlflow.tracking_uri).items():
            failed = "error" in done
            print(f"{series_id}: {alerts.republished_text(done)}", file=sys.stderr if failed else sys.stdout)
            failures += int(failed)
    return 1 if failures else 0


def serve(config: Any, rows: list[dict[str, Any]], alias: str, args: argparse.Namespace) -> int:
    """Replace this process by `mlflow models serve` on one series' champion (or `args.version`): the
    registered pyfunc model answers POST /invocations with a forecast, from the newer periods it is given
    (README, Operations, "Serving a champion outside Airflow")."""
    if len(rows) != 1:
        print(f"serve takes one series, not {len(rows)}: name it with SERIES=", file=sys.stderr)
        return 2
    (row,) = rows
    if args.version is None and not row["champion"]:
        print(f"{row['series_id']} has no champion yet: pass VERSION=<n> to serve a candidate (make models lists them)", file=sys.stderr)
        return 2
    uri = f"models:/{row['model']}/{args.version}" if args.version else f"models:/{row['model']}@{alias}"
    bin_dir = Path(sys.executable).parent  # the scoring server runs `uvicorn` from PATH
    env = {**os.environ, "MLFLOW_TRACKING_URI": config.mlflow.tracking_uri, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    print(
        f"Serving {row['series_id']} ({uri}) on http://{args.host}:{args.port}/invocations; POST e.g.\n"
        f'  {{"dataframe_records": [{{"date": "YYYY-MM-DD", "value": 12.5}}], "params": {{"horizon": {config.forecast.horizon}}}}}',
        flush=True,
    )
    command = [str(bin_dir / "mlflow"), "models", "serve", "-m", uri, "--env-manager", "local", "-h", args.host, "-p", str(args.port)]
    os.execve(command[0], command, env)
    return 0  # not reached: execve replaces the process


if __name__ == "__main__":
    sys.exit(main())

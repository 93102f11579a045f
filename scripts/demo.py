"""`make demo`: run the sales_forecast DAG end to end (dag.test) for the last day of the seed data and
print what happened, read back from the real stores (snapshot, GX report, gate report, MLflow, DuckDB).

Before it, sales_forecast runs for earlier dates (default: 2, one forecast horizon apart), so the newest
run has a previous champion to roll back to and the earlier forecasts have actuals; after it,
forecast_monitor scores those forecasts and the demo prints the realized accuracy.

Usage: python scripts/demo.py [--logical-date YYYY-MM-DD] [--earlier-runs N] [--every DAYS]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def _source(config: Any) -> Iterator[tuple[Any, str]]:
    """A read-only connection to the embedded warehouse and the source table's quoted name."""
    import duckdb

    schema, table = config.source.table.split(".")
    con = duckdb.connect(str(config.warehouse.path), read_only=True)
    try:
        yield con, f'"{schema}"."{table}"'
    finally:
        con.close()


def data_span(config: Any) -> tuple[dt.date | None, dt.date | None]:
    """The oldest and newest dates in the embedded source table (None, None when it has no dated row):
    the demo runs the logical date after the newest and no earlier run on or before the oldest."""
    with _source(config) as (con, table):
        return con.execute(f"SELECT min(CAST(date AS DATE)), max(CAST(date AS DATE)) FROM {table}").fetchone()


def nth_date(config: Any, n: int) -> dt.date | None:
    """The embedded source table's `n`-th oldest distinct date (None if it has fewer): an earlier run needs
    3 dates of data before it, the fewest a panel's cadence can be told from (`frequency.series_cadence`)."""
    with _source(config) as (con, table):
        row = con.execute(f"SELECT DISTINCT CAST(date AS DATE) AS d FROM {table} WHERE date IS NOT NULL ORDER BY d LIMIT 1 OFFSET ?", [n - 1]).fetchone()
    return row[0] if row else None


def future_rows(config: Any, today: dt.date) -> list[tuple[str, dt.date]]:
    """(series, date) of the embedded source's rows dated after `today` (at most 5, newest first)."""
    with _source(config) as (con, table):
        query = f"SELECT item_description, CAST(date AS DATE) AS d FROM {table} WHERE CAST(date AS DATE) > ? ORDER BY d DESC, 1 LIMIT 5"
        return [(str(series), day) for series, day in con.execute(query, [today]).fetchall()]


def _cadence(config: Any) -> Any:
    """The embedded source's `Cadence` as validation will detect it, or None where validation will
    refuse the panel (and say why)."""
    from include.forecasting.frequency import CadenceError, detect_cadence

    with _source(config) as (con, table):
        frame = con.execute(f"SELECT DISTINCT CAST(date AS DATE) AS sales_date, item_description AS series_id FROM {table}").df()
    try:
        return detect_cadence(frame, config.source.frequency, config.source.week_dated_on)
    except CadenceError:
        return None


def data_cadence(config: Any) -> str:
    """The embedded source's cadence (`daily` / `weekly` / `monthly`), as validation will detect it."""
    cadence = _cadence(config)
    return cadence.name if cadence is not None else "daily"


def logical_date_after(config: Any, last: dt.date, today: dt.date) -> dt.date:
    """The logical date whose run covers the newest row dated `last`: the first day after its period
    (the day after it; for a month dated on its first day, the next month's first day), but not after
    tomorrow: a month still running is left out of the run and forecast (`Cadence.last_period_before`)."""
    import pandas as pd

    cadence = _cadence(config)
    end = cadence.period_end(pd.Timestamp(last)).date() if cadence is not None else last + dt.timedelta(days=1)
    return min(end, max(today, last) + dt.timedelta(days=1))


def earlier_date(logical_date: dt.date, back: int, every: int | None, cadence: str, horizon: int = 7) -> dt.date:
    """The logical date `back` steps before `logical_date`: `every` days, or by default one forecast
    horizon (`horizon` days, weeks or months, by the cadence). A horizon apart, each earlier run's forecast
    periods all have actuals by the newest run (the monitor scores every one of them), and no two runs
    forecast the same period: the warehouse table keeps every run's rows, and a reader of the demo's
    withheld periods finds one forecast for each, the newest run's."""
    if every is not None:
        return logical_date - dt.timedelta(days=back * every)
    if cadence == "monthly":
        import pandas as pd

        return (pd.Timestamp(logical_date) - pd.DateOffset(months=back * horizon)).date()
    return logical_date - dt.timedelta(days=back * horizon * (7 if cadence == "weekly" else 1))


def earlier_dates(logical_date: dt.date, runs: int, every: int | None, cadence: str, third: dt.date | None, horizon: int = 7) -> tuple[list[dt.date], list[dt.date]]:
    """The earlier runs' logical dates, oldest first, split into those to run and those to skip: a run for
    a date on or before `third`, the data's third date, would see fewer than 3 dates of data, from which
    validation cannot tell their cadence (or none at all: "the history window has rows") and refuses the
    run, which says nothing about the user's data."""
    dates = [earlier_date(logical_date, back, every, cadence, horizon) for back in range(runs, 0, -1)]
    skipped = [d for d in dates if third is not None and d <= third]
    return [d for d in dates if d not in skipped], skipped


def run_dag(dag_id: str, logical_date: dt.date, conf: dict[str, Any] | None = None) -> Any:
    """Parse the dags folder and run one DAG with dag.test(); return the DagRun."""
    from airflow.dag_processing.dagbag import DagBag
    from forecast_ops.callbacks import DEADLINE_ENV

    # No run deadline under dag.test(), whatever .env or the shell says: Airflow 3.3's dag.test() crashes
    # at the end of a successful run of a DAG that has one (forecast_ops.callbacks.DEADLINE_ENV).
    os.environ[DEADLINE_ENV] = "0"

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    if bag.import_errors:
        raise SystemExit(f"DAG import errors: {bag.import_errors}")
    dag = bag.get_dag(dag_id)
    when = dt.datetime.combine(logical_date, dt.time(), tzinfo=dt.UTC)
    return dag.test(logical_date=when, run_conf=conf)


def amount_decimals(values: Any) -> int:
    """Decimals that show a series' forecasts to 3 significant digits of its largest amount, at least 2:
    a series sold in grams or fractions of a unit would otherwise print as 0.00 [0.00, 0.00]."""
    finite = [abs(float(v)) for v in values if v is not None and math.isfinite(float(v)) and v != 0]
    if not finite:
        return 2
    return int(min(8, max(2, 2 - math.floor(math.log10(max(finite))))))


def summary(config: Any, logical_date: dt.date, run_id: str, state: str) -> str:
    """A readable report of the run, from the stores the DAG wrote to."""
    import duckdb
    from mlflow import MlflowClient

    from include.forecasting import alerts, extract, publish, registry

    run_report = config.storage_root / "runs" / f"{run_id.replace(':', '_')}.json"
    outcome = json.loads(run_report.read_text()) if run_report.is_file() else None
    verdict = state.upper()
    if state == "success" and outcome and outcome["quarantined"]:
        fallback = len(outcome.get("fallback") or [])
        by_fallback = f" ({fallback} by the fallback)" if fallback else ""
        verdict = f"PARTIAL ({len(outcome['published'])} series published{by_fallback}, {len(outcome['quarantined'])} quarantined)"
    lines = [f"sales_forecast run {run_id}: {verdict}", ""]
    window = extract.history_window(logical_date, config.forecast.history_days)
    con = duckdb.connect(str(config.warehouse.path), read_only=True)
    try:
        frame = extract.extract_duckdb(con, config.source.table, window, config.series_ids)
        forecasts = publish.read_forecasts(con, config.warehouse.forecasts_table, logical_date)
    finally:
        con.close()
    forecasts = forecasts[forecasts["run_id"] == run_id] if not forecasts.empty else forecasts  # this run's rows only
    sha = extract.frame_sha256(frame)
    if frame.empty:
        lines.append(f"Extract:    no rows in the window {window[0]} → {window[1]} (source {config.source.table})")
    else:
        lines.append(f"Extract:    {len(frame)} rows, {frame['series_id'].nunique()} series, {frame['sales_date'].min():%Y-%m-%d} → {frame['sales_date'].max():%Y-%m-%d} (snapshot {sha[:12]})")
    report_path = config.storage_root / "validation" / f"{sha[:20]}.json"
    if report_path.is_file():
        report = json.loads(report_path.read_text())
        if report["success"]:
            # Rows or series that break a per-series rule quarantine just those series: the run-level
            # verdict is still a pass, but not "every expectation passed".
            held = len(report.get("quarantined") or {})
            passed = f"{report['evaluated']} expectations passed" if not held else f"run-level rules passed ({report['evaluated']} expectations), {held} series quarantined (below)"
            lines.append(f"Validation: {passed}; cadence {report.get('cadence')}")
        else:
            lines.append(f"Validation: {len(report['failures'])} of {report['evaluated']} expectations FAILED:")
            lines += [f"  - {_failure_text(f)}" for f in report["failures"]]
        lines += [f"            {note}" for note in report.get("notes") or []]
    if outcome and outcome["quarantined"]:
        lines.append(f"Quarantined ({len(outcome['quarantined'])}): champion and published rows kept; fallback forecast if no champion, none from bad or anomalous rows")
        lines += [f"  - {series}: {reason}" for series, reason in outcome["quarantined"].items()]
    if outcome and outcome.get("spikes_left_out"):
        spikes = outcome["spikes_left_out"]
        lines.append(f"Spikes left out of training ({len(spikes)} series; published, check the source; rule: config anomaly.spike_ratio, anomaly.spike_mad, anomaly.spike_ratio_always)")
        lines += [f"  - {series}: {alerts.spike_days(days)}" for series, days in spikes.items()]
    gate_path = config.storage_root / "gate" / f"{run_id.replace(':', '_')}.json"
    if gate_path.is_file():
        decisions = json.loads(gate_path.read_text())
        # A short history is scored on fewer folds than configured: say how many were used.
        used = sorted({int((d.get("candidate") or {}).get("folds") or 0) for d in decisions} - {0})
        folds = str(config.backtest.folds) if used in ([], [config.backtest.folds]) else "/".join(map(str, used)) + f" of {config.backtest.folds}"
        lines += ["", f"Backtest ({folds} folds x {config.forecast.horizon} periods) cand MASE  naive MASE  champ MASE   RMSE   sMAPE  cover80  gate", "-" * 104]
        for d in decisions:
            c, n, ch = d.get("candidate") or {}, d.get("naive") or {}, d.get("champion") or {}
            fmt = lambda m, k: f"{m[k]:.3f}" if m.get(k) is not None else "  -  "  # noqa: E731
            num = lambda m, k, spec: format(m[k], spec) if m.get(k) is not None else "-"  # noqa: E731
            lines.append(
                f"{d['series_id'][:32]:32s} v{d.get('candidate_version') or '-':>3}  {fmt(c, 'mase'):>8}  {fmt(n, 'mase'):>10}  {fmt(ch, 'mase'):>10}"
                f"  {num(c, 'rmse', '6.0f'):>6}  {num(c, 'smape', '6.3f'):>6}  {num(c, 'coverage_80', '7.2f'):>7}  {'PASS' if d['passed'] else 'REJECT: ' + '; '.join(d['reasons'])}"
            )
    client = MlflowClient(tracking_uri=config.mlflow.tracking_uri)
    lines += ["", "Champions (MLflow alias '" + config.mlflow.champion_alias + "'):"]
    for row in registry.registry_overview(client, config.mlflow.model_prefix, config.mlflow.champion_alias):
        champion = f"champion v{row['champion']}" if row["champion"] else "no champion"
        # The series id beside the model name: an id beyond ASCII is only a hash in the slug.
        lines.append(f"  {str(row['series_id'] or '-')[:32]:32s} {row['model']:40s} {champion}  (previous: v{row['previous'] or '-'})")
    lines += ["", f"Forecasts published by this run to {config.warehouse.path.name}:{config.warehouse.forecasts_table} for logical date {logical_date} (80 % interval):"]
    if forecasts.empty:
        lines.append("  (none)")
    for series_id, group in forecasts.groupby("series_id"):
        version = group["model_version"].iloc[0]
        lines.append(f"  {series_id} ({'model v' + version if not version.startswith('fallback') else version}):")
        digits = amount_decimals(group[["yhat", "yhat_lower", "yhat_upper"]].to_numpy().ravel())
        for _, r in group.iterrows():
            lines.append(f"    {r['forecast_date']:%a %Y-%m-%d}  {r['yhat']:10.{digits}f}   [{r['yhat_lower']:10.{digits}f}, {r['yhat_upper']:10.{digits}f}]")
    lines += [
        "",
        "Next steps:",
        "  make airflow     Airflow UI on http://127.0.0.1:8080 (trigger, backfill; admin password in",
        f"                   {Path(os.environ.get('AIRFLOW_HOME', ROOT / '.local/airflow')) / 'simple_auth_manager_passwords.json.generated'})",
        "  make mlflow-ui   MLflow UI on http://127.0.0.1:5000/#/experiments?workflowType=machine_learning (runs, plots, registry)",
        "  make models      champions and candidates; make rollback SERIES=... to roll back",
        "  make serve-model SERIES=...   one series' champion over HTTP (forecasts from the newer data you post)",
    ]
    return "\n".join(lines)


def monitor_summary(config: Any, monitor_date: dt.date, state: str, log_file: Path) -> str:
    """Realized accuracy of the published forecasts, as forecast_monitor wrote it to the warehouse."""
    import duckdb

    from include.forecasting import monitor_tables

    names = monitor_tables.table_names(config.warehouse)
    con = duckdb.connect(str(config.warehouse.path), read_only=True)
    try:
        health = monitor_tables.read_table(con, names["health"], "WHERE monitor_date = $d ORDER BY series_id", {"d": monitor_date})
        scored = monitor_tables.read_table(con, names["accuracy"], "WHERE forecast_date < $d", {"d": monitor_date})
    finally:
        con.close()
    lines = [f"forecast_monitor for {monitor_date}: {state.upper()} (log {log_file})"]
    if health.empty:
        return "\n".join([*lines, "  no health rows written"])
    published = scored["logical_date"].nunique() if len(scored) else 0
    lines.append(
        f"Realized accuracy: {len(scored)} forecast periods from {published} publishing date{'' if published == 1 else 's'} "
        f"scored against actuals ({config.warehouse.accuracy_table}, {config.warehouse.health_table})"
    )
    lines.append(f"{'series':32s} scored  real MASE  backtest  naive   cover  bias    flags")
    num = lambda v, spec: "-" if v is None or v != v else format(v, spec)  # noqa: E731
    for r in health.itertuples(index=False):
        flags = ", ".join(f for f, on in (("DEGRADED", r.degraded), ("DRIFTED", r.drifted)) if on) or "ok"
        lines.append(
            f"{r.series_id[:32]:32s} {r.scored_periods:6d}  {num(r.mase, '9.3f')}  {num(r.expected_mase, '8.3f')}  {num(r.naive_mase, '5.3f')}"
            f"  {num(r.coverage, '5.2f')}  {num(r.bias, '+5.2f')}  {flags}"
        )
        if r.reasons:
            lines.append(f"    {r.reasons}")
    host, port = os.environ.get("AIRFLOW_HOST", "127.0.0.1"), os.environ.get("AIRFLOW_PORT", "8080")
    lines += [
        "Flagged series are refit at the next sales_forecast run (reason recorded on the new version).",
        f"Daily report with charts: {config.storage_root / 'reports' / f'health_{monitor_date}.html'}",
        f"Forecasts page: `make airflow`, then http://{host}:{port}/forecasts/ (or \"Forecasts\" in the UI's navigation)",
    ]
    return "\n".join(lines)


def _failure_text(f: dict[str, Any]) -> str:
    """One failed expectation as the demo prints it: rule, config key, example rows, observed value."""
    parts = [f["expectation"] + (f" on {f['column']}" if f.get("column") else "")]
    if f.get("rule"):
        parts.append(f"rule: {f['rule']}" + (f" (config {f['config_key']})" if f.get("config_key") else ""))
    if f.get("rows"):
        from include.forecasting.validation import row_text

        parts.append("e.g. " + "; ".join(row_text(r) for r in f["rows"][:3]))
    if f.get("observed") is not None:
        parts.append(f"observed {f['observed']}")
    return ", ".join(parts)


def _run_quietly(logical_date: dt.date, log_file: Path | None = None, dag_id: str = "sales_forecast") -> Any:
    """Run the DAG for one date with every task log line sent to a file (dag.test prints them all)."""
    log_file = log_file or ROOT / ".local" / "logs" / f"demo-{dag_id}-{logical_date}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, mode="w")
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    saved = os.dup(1), os.dup(2)
    with open(log_file, "a") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            return run_dag(dag_id, logical_date)
        finally:
            sys.stdout.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)


def tasks_that_ran(dag_run: Any) -> int:
    """How many task instances of the run reached a running state (0: the run did nothing)."""
    ran = 0
    for ti in dag_run.get_task_instances():
        if str(ti.state) in ("success", "failed", "up_for_retry", "running") or ti.start_date is not None:
            ran += 1
    return ran


def main() -> int:
    """Run the demo; exit non-zero if the DAG run did not succeed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--logical-date", type=dt.date.fromisoformat)
    parser.add_argument("--earlier-runs", type=int, default=2, help="sales_forecast runs before the logical date (oldest first)")
    parser.add_argument("--every", type=int, help="days between those runs (default: one forecast horizon, `forecast.horizon` periods)")
    args = parser.parse_args()
    from include.forecasting.config import load_config

    config = load_config()
    # The run for logical date D trains on data through D-1: cover the last day of data.
    first, last = data_span(config)
    if args.logical_date is None:
        if last is None:
            print(f"The source table {config.source.table} has no dated rows: check source.seed_csv and source.columns in {config.path}.", file=sys.stderr)
            return 1
        if last > dt.date.today():
            rows = "; ".join(f"{series!r} on {day}" for series, day in future_rows(config, dt.date.today()))
            print(
                f"The newest row of {config.source.table} is dated {last}, in the future (rows dated after today, e.g. {rows}): a typo "
                "in the data? The demo takes its logical date from the newest row; fix the row, or pass one with "
                "`python scripts/demo.py --logical-date YYYY-MM-DD`.",
                file=sys.stderr,
            )
            return 1
    logical_date = args.logical_date or logical_date_after(config, last, dt.date.today())
    with scheduler_hands_off(("sales_forecast", "forecast_monitor")):
        return run_demo(config, logical_date, args.earlier_runs, args.every, first, nth_date(config, 3) or last)


@contextmanager
def scheduler_hands_off(dag_ids: tuple[str, ...]) -> Iterator[list[str]]:
    """Pause the DAGs that are unpaused for the demo's runs, and unpause them afterwards.

    The demo runs DAGs in-process (dag.test), whose runs start at their logical date (2025-05-31 for
    the shipped data). A live scheduler (`make airflow` with the DAG unpaused) may take such a run for
    one older than `dagrun_timeout` and time it out, skipping every task (reported with `airflow
    standalone`). A scheduler leaves a paused DAG's runs alone, and dag.test does not need the DAG
    unpaused."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    def set_paused(ids: list[str], paused: bool) -> None:
        with create_session() as session:
            for model in session.query(DagModel).filter(DagModel.dag_id.in_(ids)):
                model.is_paused = paused

    with create_session() as session:
        found = {m.dag_id for m in session.query(DagModel).filter(DagModel.dag_id.in_(dag_ids), DagModel.is_paused.is_(False))}
    unpaused = [d for d in dag_ids if d in found]
    if unpaused:
        print(f"Pausing {', '.join(unpaused)} while the demo runs (a live scheduler would time its runs out); unpaused again afterwards.", flush=True)
        set_paused(unpaused, True)
    try:
        yield unpaused
    finally:
        if unpaused:
            set_paused(unpaused, False)


def run_demo(config: Any, logical_date: dt.date, earlier_runs: int, every: int | None, first: dt.date | None, third: dt.date | None = None) -> int:
    """The demo's runs and their summaries (`first`, `third`: the oldest and third-oldest dates of data, see
    `earlier_dates`); returns the exit code."""
    cadence = data_cadence(config) if earlier_runs else "daily"
    to_run, skipped = earlier_dates(logical_date, earlier_runs, every, cadence, third or first, config.forecast.horizon)
    for earlier in skipped:
        why = "no history before it" if first is None or earlier <= first else "fewer than 3 of its dates before this one, too few to tell their cadence from"
        print(f"sales_forecast for the earlier logical date {earlier}: skipped (the data starts on {first}: {why})", flush=True)
    log_dir = ROOT / ".local" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    for earlier in to_run:  # oldest first: each one's champion is the next one's "previous"
        earlier_log = log_dir / f"demo-sales_forecast-{earlier}.log"
        state = str(_run_quietly(earlier, earlier_log).state).upper()
        why = "" if state == "SUCCESS" else f" (task logs: {earlier_log})"
        print(f"sales_forecast for the earlier logical date {earlier}: {state}{why}", flush=True)
    log_file = log_dir / f"demo-{logical_date}.log"
    print(
        f"Running sales_forecast for logical date {logical_date} (data through {logical_date - dt.timedelta(days=1)}, "
        f"config {config.path}); task logs → {log_file}",
        flush=True,
    )
    dag_run = _run_quietly(logical_date, log_file)
    state = str(getattr(dag_run, "state", "unknown"))
    if tasks_that_ran(dag_run) == 0:
        print(
            f"sales_forecast run {dag_run.run_id}: NO TASK RAN (run state {state}).\n"
            f"Nothing was extracted, trained or published for logical date {logical_date}. Check the log {log_file}: "
            "a logical date before the DAG's start_date, or a run that a live scheduler timed out, leaves every task unrun.",
            file=sys.stderr,
        )
        return 1
    print(summary(config, logical_date, dag_run.run_id, state))
    if state != "success":
        print(f"\nThe run did not succeed: see {log_file}", file=sys.stderr)
        return 1
    monitor_log = log_dir / f"demo-forecast_monitor-{logical_date}.log"
    monitor = _run_quietly(logical_date, monitor_log, "forecast_monitor")
    print("\n" + monitor_summary(config, logical_date, str(monitor.state), monitor_log))
    return 0 if str(monitor.state) == "success" else 1


if __name__ == "__main__":
    sys.exit(main())

"""`make bench`: forecast quality and training cost on every shipped panel, all methods on the same folds.

Panels: the Iowa panel (daily, whole bottles), the vegetable supermarket panel daily (kg, decimals, zero-heavy
and late-starting series) and weekly (kg, weeks ending Sunday). On each, `backtest.folds` (>= 8 here)
rolling-origin folds of `forecast.horizon` periods. Methods: the project's training step (exactly
`training.fit_series`, the code the DAG runs; a series it cannot fit gets the DAG's fallback), seasonal naive,
statsforecast's AutoARIMA, AutoETS and AutoTheta (the bar is the best of the three on each panel), and
statsforecast's ARIMA with the project's first candidate order (like-for-like timing). statsforecast runs in
.venv-bench through bench/statsforecast_worker.py because it needs pandas<3.
Reported per panel: MASE, RMSE, sMAPE, 80 % coverage, fit seconds, per-fold MASE, MASE without holiday days.
Also: smart retraining (warm vs cold refit; unchanged rerun vs cold train step through the real MLflow
store), each DAG file's parse cost, and the scale run (bench/scale.py: one real DAG run through the
scheduler over a derived 1,000-series panel).
Writes bench/results/latest.json and latest.md (quick.* with --quick) and prints the tables.

Usage: python bench/run.py [--panel CSV --columns date,series,value] [--folds N] [--quick] [--scale-series N] [--out DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from bench import quality  # noqa: E402
from include.forecasting import evaluation, training  # noqa: E402
from include.forecasting.config import Config, load_config  # noqa: E402
from include.forecasting.extract import read_sales_csv  # noqa: E402
from include.forecasting.frequency import detect_cadence  # noqa: E402

BENCH_PYTHON = Path(os.environ.get("BENCH_PYTHON", ROOT / ".venv-bench" / "bin" / "python"))
DATA = ROOT / "include" / "data"
VEG = {"date": "date", "series": "series", "value": "value"}
IOWA = {"date": "date", "series": "item_name", "value": "total_amount_sold"}
PANELS = {
    "iowa_daily": (DATA / "iowa_sales.csv", IOWA),
    "veg_daily_kg": (DATA / "veg_supermarket_daily_kg.csv", VEG),
    "veg_weekly_kg": (DATA / "veg_supermarket_weekly_kg.csv", VEG),
}
# The data part of the config a user of each panel sets (README "Your own data"): the calendar of the
# country the sales happened in. Iowa uses the config's default (US, Iowa); the supermarket is in China.
HOLIDAYS = {"veg_daily_kg": "CN", "veg_weekly_kg": "CN"}


def with_holidays(config: Config, holidays: str | None) -> Config:
    """The config with `forecast.holidays` set from "COUNTRY[-SUBDIVISION]" ("none": off; None: unchanged)."""
    if holidays is None:
        return config
    from include.forecasting.config import HolidayConfig

    country, _, subdivision = holidays.partition("-")
    calendar = None if holidays.lower() == "none" else HolidayConfig(country=country, subdivision=subdivision or None)
    return config.model_copy(update={"forecast": config.forecast.model_copy(update={"holidays": calendar})})


def bench_panel(name: str, path: Path, columns: dict[str, str], config: Config, folds: int, quick: bool) -> dict[str, Any]:
    """Every method on one panel's folds; ratios against AutoARIMA and against the best of the trio."""
    panel = quality.load_panel(name, path, columns, config, folds, max_series=2 if quick else None)
    s = panel.settings
    no_holidays = quality.project_forecaster(training.ModelSettings(**{**s.__dict__, "holidays": None}))
    runs = {
        "project": quality.points(panel, "project", quality.project_forecaster(s)),
        "seasonal_naive": quality.points(panel, "seasonal_naive", evaluation.seasonal_naive(panel.m, s.interval_levels)),
    }
    if s.holidays:
        runs["project_without_holidays"] = quality.points(panel, "project_without_holidays", no_holidays)
    versions = None
    if not quick:
        sf, seconds, versions = quality.statsforecast_points(panel, BENCH_PYTHON, s.candidate_orders[0])
        runs.update({k: (v, seconds[k]) for k, v in sf.items()})
    methods = {}
    for method, (p, secs) in runs.items():
        row = quality.summarise(p, secs)
        holiday = quality.holiday_mask(panel, p)
        row["mase_without_holiday_days"] = quality.summarise(p[~holiday], secs)["mase"] if holiday.any() else row["mase"]
        methods[method] = row
        print(f"{name} {method}: MASE {row['mase']:.3f}", file=sys.stderr, flush=True)
    out: dict[str, Any] = {
        "panel": name, "path": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path), "cadence": s.cadence.label,
        "series": len(panel.ys), "folds": folds, "horizon": s.horizon, "mase_lag": panel.m, "methods": methods, "statsforecast_env": versions,
    }
    if not quick:
        best = min(quality.TRIO, key=lambda m: methods[m]["mase"])
        p, aa = methods["project"], methods["AutoARIMA"]
        out["best_of_trio"] = best
        out["ratios"] = {
            "mase_vs_best_of_trio": p["mase"] / methods[best]["mase"],
            "mase_vs_autoarima": p["mase"] / aa["mase"],
            "mase_without_holidays_vs_best_of_trio": p["mase_without_holiday_days"] / methods[best]["mase_without_holiday_days"],
            "fit_time_vs_autoarima": p["fit_s_per_series"] / aa["fit_s_per_series"],
            "fit_cpu_time_vs_autoarima": p["fit_cpu_s_per_series"] / aa["fit_cpu_s_per_series"],
            "fit_time_vs_fixed_order_arima": p["fit_s_per_series"] / methods["ARIMA_fixed"]["fit_s_per_series"],
            "fit_cpu_time_vs_fixed_order_arima": p["fit_cpu_s_per_series"] / methods["ARIMA_fixed"]["fit_cpu_s_per_series"],
            "mase_by_fold_vs_best_of_trio": [a / b for a, b in zip(p["mase_by_fold"], methods[best]["mase_by_fold"], strict=True)],
        }
    return out


def smart_retraining(config: Config, frame: pd.DataFrame, ys: dict[str, pd.Series], end: pd.Timestamp) -> dict[str, Any]:
    """Warm vs cold refit after one new period (a day, a week or a month: the panel's cadence); unchanged
    rerun vs cold train step on a real MLflow store."""
    from include.forecasting import pipeline, registry
    from include.forecasting.extract import history_window, write_snapshot

    settings = training.settings_for(config.forecast, detect_cadence(frame), config.anomaly)
    warm_clock, cold_clock, diffs = [], [], []
    for y in ys.values():
        yesterday = training.fit_series(y.iloc[:-1], settings)
        started = time.perf_counter()
        cold = training.fit_series(y, settings)
        cold_clock.append(time.perf_counter() - started)
        started = time.perf_counter()
        warm = training.fit_series(y, settings, start_params=training.warm_start_params(yesterday.spec), orders=(yesterday.spec.order,))
        warm_clock.append(time.perf_counter() - started)
        a, b = cold.forecast(7)["yhat"].to_numpy(), warm.forecast(7)["yhat"].to_numpy()
        diffs.append(float(np.max(np.abs(a - b) / np.maximum(a, 1.0))))

    # The DAG's train step (pipeline.train_chunk: fit, log the MLflow run, register the version) cold,
    # then the same step again with unchanged data + config + code: it finds the idempotency key and reuses.
    with tempfile.TemporaryDirectory() as tmp:
        store = config.mlflow.model_copy(update={"tracking_uri": f"sqlite:///{tmp}/mlflow.db", "artifact_root": Path(tmp) / "mlruns"})
        cfg = config.model_copy(update={"mlflow": store, "storage": config.storage.model_copy(update={"root": Path(tmp)})})
        registry.ensure_experiment(store.tracking_uri, store.experiment, store.artifact_root)  # store creation is not training
        series = list(ys)
        ref = write_snapshot(frame[frame["series_id"].isin(series)], Path(tmp), history_window(end.date(), config.forecast.history_days), cfg.run_sha256)
        started = time.perf_counter()
        pipeline.train_chunk(cfg, ref, series, end.date().isoformat(), "bench_cold", store.tracking_uri)
        cold_step = time.perf_counter() - started
        started = time.perf_counter()
        again = pipeline.train_chunk(cfg, ref, series, end.date().isoformat(), "bench_rerun", store.tracking_uri)
        rerun_step = time.perf_counter() - started
        if not all(item["reused"] for item in again):
            raise AssertionError(f"unchanged rerun refit something: {again}")
    return {
        "cold_fit_s": float(np.mean(cold_clock)),
        "warm_fit_s": float(np.mean(warm_clock)),
        "warm_over_cold": float(np.sum(warm_clock) / np.sum(cold_clock)),
        "max_rel_forecast_diff_warm_vs_cold": float(np.max(diffs)),
        "train_step_cold_s": cold_step,
        "train_step_unchanged_rerun_s": rerun_step,
        "rerun_over_cold": rerun_step / cold_step,
        "series": len(series),
        # What "one new period" is on this panel (the report names it).
        "period": {"daily": "day", "weekly": "week", "monthly": "month"}[settings.cadence.name],
    }


def parse_costs() -> dict[str, float]:
    """Each DAG file's own import time beyond `import airflow.sdk`, in a fresh interpreter (best of 3)."""
    code = (
        "import time, importlib.util, pathlib, json, airflow.sdk\nout = {}\n"
        f"for p in sorted(pathlib.Path({str(ROOT / 'dags')!r}).glob('*.py')):\n"
        "    t = time.perf_counter(); s = importlib.util.spec_from_file_location(p.stem, p)\n"
        "    m = importlib.util.module_from_spec(s); s.loader.exec_module(m); out[p.name] = time.perf_counter() - t\n"
        "print(json.dumps(out))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")])}
    best: dict[str, float] = {}
    for _ in range(3):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        for name, seconds in json.loads(result.stdout.strip().splitlines()[-1]).items():
            best[name] = min(seconds, best.get(name, float("inf")))
    return best


def render(payload: dict[str, Any]) -> str:
    """The Markdown report: per panel a methods table with ratios and per-fold figures; then smart
    retraining, scale and parse cost."""
    fmt = lambda v, d=3: "-" if v is None else f"{v:.{d}f}"  # noqa: E731
    machine = payload["machine"]
    lines = [f"Machine: {machine['platform']}, {machine['cpus']} CPUs, Python {machine['python']}; run {payload['finished']}", ""]
    for panel in payload["panels"]:
        lines += [
            f"### {panel['panel']}: {panel['path']} ({panel['series']} series, {panel['cadence']}, {panel['folds']} folds x {panel['horizon']} periods, MASE lag {panel['mase_lag']})",
            "",
            "| method | MASE | MASE w/o holiday days | RMSE | sMAPE | coverage 80 % | fit s/series | fit CPU s/series | MASE by fold |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for method, r in panel["methods"].items():
            folds = " ".join(f"{v:.2f}" for v in r["mase_by_fold"])
            lines.append(
                f"| {method} | {fmt(r['mase'])} | {fmt(r['mase_without_holiday_days'])} | {fmt(r['rmse'], 1)} | {fmt(r['smape'])} | "
                f"{fmt(r['coverage_80'], 2)} | {fmt(r['fit_s_per_series'], 4)} | {fmt(r.get('fit_cpu_s_per_series'), 4)} | {folds} |"
            )
        ratios = panel.get("ratios")
        if ratios:
            lines += [
                "",
                f"Project vs best of AutoARIMA/AutoETS/AutoTheta ({panel['best_of_trio']}): MASE x{ratios['mase_vs_best_of_trio']:.3f} "
                f"(without holiday days x{ratios['mase_without_holidays_vs_best_of_trio']:.3f}; per fold "
                + " ".join(f"{v:.2f}" for v in ratios["mase_by_fold_vs_best_of_trio"])
                + f"); vs AutoARIMA MASE x{ratios['mase_vs_autoarima']:.3f}, fit time x{ratios['fit_time_vs_autoarima']:.3f} "
                f"(CPU time x{ratios['fit_cpu_time_vs_autoarima']:.3f}); vs statsforecast ARIMA with the same fixed order, fit time "
                f"x{ratios['fit_time_vs_fixed_order_arima']:.2f} (CPU time x{ratios['fit_cpu_time_vs_fixed_order_arima']:.2f}).",
            ]
        lines.append("")
    smart = payload["smart_retraining"]
    lines += [
        f"Smart retraining ({smart['series']} series): warm-started refit after one new {smart['period']} {smart['warm_fit_s']:.3f} s vs cold {smart['cold_fit_s']:.3f} s "
        f"per series (ratio {smart['warm_over_cold']:.2f}, max relative forecast difference {smart['max_rel_forecast_diff_warm_vs_cold']:.1e}); "
        f"the DAG's train step, unchanged rerun {smart['train_step_unchanged_rerun_s']:.2f} s vs cold {smart['train_step_cold_s']:.2f} s "
        f"(ratio {smart['rerun_over_cold']:.3f}: no fit, no new version).",
    ]
    scale = payload.get("scale")
    if scale:
        rss = ", ".join(f"{k} {v:.0f}" for k, v in scale["peak_rss_mib_by_role"].items())
        lines += [
            "",
            f"Scale: {scale['series']} derived series in one DAG run ({scale['executor']}, {scale['slots']} slots): {scale['state']}, "
            f"wall {scale['wall_s']:.0f} s, {scale['series_per_s']:.2f} series/s, parallel efficiency {scale['parallel_efficiency']:.2f}, "
            f"{scale['task_instances']} task instances ({scale['train_chunks']} training chunks of {scale['series_per_chunk']} series, "
            f"median {scale['train_task_s_median']:.0f} s each), {scale['champions_registered']} champions. Peak RSS MiB by role: {rss}.",
        ]
        use = scale.get("slot_use")
        if use:
            lines.append(
                f"Slot-seconds ({scale['slots']} x wall): busy {use['busy_s']:.0f}, idle with a ready task not yet queued "
                f"{use['waiting_to_queue_s']:.0f}, idle with a queued task not yet started {use['queued_not_started_s']:.0f}, "
                f"idle with nothing ready (the DAG's serial steps) {use['nothing_ready_s']:.0f}, held by other runs "
                f"{use['other_runs_s']:.0f} ({', '.join(scale.get('other_runs') or []) or 'none'})."
            )
    lines.append("DAG parse time beyond `import airflow.sdk`: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in payload["parse_s_beyond_airflow_sdk"].items()))
    return "\n".join(lines)


def main() -> int:
    """Run every method on every panel's folds, the smart-retraining, parse and scale measurements; write results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--panel", type=Path, action="append", help="a CSV panel (repeatable); default: the three shipped panels")
    parser.add_argument("--columns", default="date,series,value", help="date,series,value column names of --panel files")
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--holidays", default=None, help="calendar of --panel files: COUNTRY[-SUBDIVISION] or none (default: the config's)")
    parser.add_argument("--folds", type=int, default=8, help="rolling-origin folds per panel (default 8)")
    parser.add_argument("--quick", action="store_true", help="2 series, 2 folds, no statsforecast, no scale run (CI smoke run)")
    parser.add_argument("--scale-series", type=int, default=None, help="series in the scale run (default 1000; 0 skips; --quick: 0)")
    parser.add_argument("--skip-quality", action="store_true", help="only smart retraining, parse cost and the scale run (results: scale.*)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    started = time.perf_counter()
    # SIGTERM (CI timeout, kill) must unwind through the scale run's `finally`, which stops its services.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    config = load_config(args.config)
    folds = 2 if args.quick else args.folds
    if args.panel:
        names = dict(zip(("date", "series", "value"), args.columns.split(","), strict=True))
        panels = {p.stem: (p, names) for p in args.panel}
    else:
        panels = PANELS
    calendars = {name: args.holidays for name in panels} if args.panel else HOLIDAYS
    results = [] if args.skip_quality else [
        bench_panel(name, path, columns, with_holidays(config, calendars.get(name)), folds, args.quick) for name, (path, columns) in panels.items()
    ]

    first_path, first_columns = next(iter(panels.values()))
    frame = read_sales_csv(first_path, first_columns)
    series_ids = sorted(frame["series_id"].unique())[:2 if args.quick else 5]
    cadence = detect_cadence(frame)
    end = cadence.period_end(frame["sales_date"].max())
    ys = {s: training.period_series(frame, s, end, cadence) for s in series_ids}
    smart = smart_retraining(config, frame, ys, end)
    print("smart retraining: done", file=sys.stderr, flush=True)
    scale_series = (0 if args.quick else 1000) if args.scale_series is None else args.scale_series
    scale = None
    if scale_series:
        from bench.scale import run_scale

        scale = run_scale(config.path, PANELS["iowa_daily"][0], scale_series, (pd.Timestamp("2025-05-30") + pd.Timedelta(days=1)).date())
        print("scale: done", file=sys.stderr, flush=True)
    payload = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "quick": args.quick,
        "panels": results,
        "smart_retraining": smart,
        "scale": scale,
        "parse_s_beyond_airflow_sdk": parse_costs(),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    payload["bench_wall_s"] = time.perf_counter() - started
    table = render(payload)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "quick" if args.quick else "scale" if args.skip_quality else "latest"
    (args.out / f"{stem}.json").write_text(json.dumps(payload, indent=2, default=float))
    (args.out / f"{stem}.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

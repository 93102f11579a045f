"""`make bench`: forecast quality and training cost on a panel, all methods on the same rolling-origin folds.

Methods: the project's training step (exactly `training.fit_series`, the code the DAG runs), seasonal naive
(m=7), a fixed SARIMAX(1,0,1)(1,0,1,7), and statsforecast's AutoARIMA(season_length=7) (bench-only; it
runs in .venv-bench through bench/autoarima_worker.py because statsforecast 2.1 needs pandas<3).
Ablations (same folds, no extra AutoARIMA fits): the project without its holiday handling, and AutoARIMA
with the project's holiday adjustment applied to its forecasts.
Also: smart retraining (warm vs cold refit; unchanged rerun vs cold train step through the real MLflow
store), each DAG file's parse cost, and the scale run (bench/scale.py: one real DAG run through the
scheduler over a derived 1,000-series panel).
Writes bench/results/latest.json and latest.md (quick.* with --quick) and prints the table.

Usage: python bench/run.py [--panel CSV] [--config YAML] [--quick] [--scale-series N] [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from include.forecasting import evaluation, training  # noqa: E402
from include.forecasting.config import Config, load_config  # noqa: E402
from include.forecasting.extract import read_sales_csv  # noqa: E402

BENCH_PYTHON = Path(os.environ.get("BENCH_PYTHON", ROOT / ".venv-bench" / "bin" / "python"))


def sarimax_fixed(train: pd.Series, horizon: int) -> pd.DataFrame:
    """The anchor: SARIMAX(1,0,1)(1,0,1,7) on raw sales, Gaussian 80 % interval."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = SARIMAX(train.to_numpy(), order=(1, 0, 1), seasonal_order=(1, 0, 1, 7)).fit(disp=False)
            fc = res.get_forecast(horizon)
            ci = fc.conf_int(alpha=0.2)
            return pd.DataFrame({"yhat": fc.predicted_mean, "yhat_lower": ci[:, 0], "yhat_upper": ci[:, 1]})
        except (np.linalg.LinAlgError, ValueError):  # seen on this panel: "LU decomposition error"
            naive = evaluation.seasonal_naive(7)(train, horizon)
            return naive.assign(yhat_lower=naive["yhat"], yhat_upper=naive["yhat"])


def autoarima_fits(ys: dict[str, pd.Series], backtest: Any) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Fit AutoARIMA on every fold's training data in the bench venv; return results by `series|origin`."""
    if not BENCH_PYTHON.exists():
        raise SystemExit(f"{BENCH_PYTHON} missing: run `make bench` (it builds .venv-bench with requirements-bench.txt)")
    tasks = []
    for series_id, y in ys.items():
        for origin in evaluation.fold_origins(len(y), backtest.folds, backtest.fold_days):
            tasks.append({"key": f"{series_id}|{origin}", "y": y.iloc[:origin].tolist()})
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "in.json", Path(tmp) / "out.json"
        source.write_text(json.dumps({"season_length": 7, "horizon": backtest.fold_days, "level": 80, "tasks": tasks}))
        subprocess.run([str(BENCH_PYTHON), str(ROOT / "bench" / "autoarima_worker.py"), str(source), str(target)], check=True)
        payload = json.loads(target.read_text())
    return payload["results"], payload["versions"]


def from_fits(fits: dict[str, dict[str, Any]], clock: list[float], holidays: tuple[str, ...] = ()) -> evaluation.Forecaster:
    """A forecaster answering from precomputed AutoARIMA fits (their own fit time goes to `clock`).

    With `holidays`, the forecast gets the project's holiday adjustment, learned from the same training data.
    """

    def forecast(train: pd.Series, horizon: int) -> pd.DataFrame:
        fit = fits[f"{train.name}|{len(train)}"]
        clock.append(fit["seconds"])
        dates = pd.date_range(train.index.max() + pd.Timedelta(days=1), periods=horizon, freq="D")
        out = pd.DataFrame({"forecast_date": dates, "yhat": fit["mean"], "yhat_lower": fit["lo"], "yhat_upper": fit["hi"]})
        if holidays:
            effect = training.holiday_effect(train, training.holiday_dates(holidays, train.index.min(), train.index.max()))
            out = training.apply_holiday_effect(out, effect, holidays)
        return out

    return forecast


def timed(forecaster: Any, clock: list[float]) -> Any:
    """Wrap a forecaster to add its wall time per call to `clock`."""

    def run(train: pd.Series, horizon: int) -> pd.DataFrame:
        started = time.perf_counter()
        out = forecaster(train, horizon)
        clock.append(time.perf_counter() - started)
        return out

    return run


def score(method: str, ys: dict[str, pd.Series], forecaster: Any, backtest: Any, clock: list[float]) -> dict[str, Any]:
    """Backtest one method on every series; mean metrics over series, mean seconds per fit."""
    per_series = [evaluation.backtest(y, forecaster, backtest) for y in ys.values()]
    return {
        "method": method,
        "mase": float(np.mean([m.mase for m in per_series])),
        "rmse": float(np.mean([m.rmse for m in per_series])),
        "smape": float(np.mean([m.smape for m in per_series])),
        "coverage_80": float(np.mean([m.coverage_80 for m in per_series])) if per_series[0].coverage_80 is not None else None,
        "fit_s_per_series": float(np.mean(clock)),  # one fit + forecast per series per fold
        "mase_by_series": {s: round(m.mase, 4) for s, m in zip(ys, per_series, strict=True)},
    }


def smart_retraining(config: Config, frame: pd.DataFrame, ys: dict[str, pd.Series], end: pd.Timestamp) -> dict[str, Any]:
    """Warm vs cold refit after one new day; unchanged rerun vs cold train step on a real MLflow store."""
    from include.forecasting import pipeline, registry
    from include.forecasting.extract import history_window, write_snapshot

    warm_clock, cold_clock, diffs = [], [], []
    for y in ys.values():
        yesterday = training.fit_series(y.iloc[:-1], config.forecast)
        started = time.perf_counter()
        cold = training.fit_series(y, config.forecast)
        cold_clock.append(time.perf_counter() - started)
        started = time.perf_counter()
        warm = training.fit_series(y, config.forecast, start_params=training.warm_start_params(yesterday.spec), orders=(yesterday.spec.order,))
        warm_clock.append(time.perf_counter() - started)
        a, b = cold.forecast(7)["yhat"].to_numpy(), warm.forecast(7)["yhat"].to_numpy()
        diffs.append(float(np.max(np.abs(a - b) / np.maximum(a, 1.0))))

    # The DAG's train step (pipeline.train_chunk: fit, log the MLflow run, register the version) cold,
    # then the same step again with unchanged data + config + code: it finds the idempotency key and reuses.
    with tempfile.TemporaryDirectory() as tmp:
        store = dataclasses.replace(config.mlflow, tracking_uri=f"sqlite:///{tmp}/mlflow.db", artifact_root=Path(tmp) / "mlruns")
        cfg = dataclasses.replace(config, mlflow=store, storage_root=Path(tmp))
        registry.ensure_experiment(store.tracking_uri, store.experiment, store.artifact_root)  # store creation is not training
        series = list(ys)
        ref = write_snapshot(frame[frame["series_id"].isin(series)], Path(tmp), history_window(end.date(), config.forecast.history_days), cfg.sha256)
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
    """The Markdown report: methods table, ablations, smart retraining, scale, parse cost."""
    fmt = lambda v, d=3: "-" if v is None else f"{v:.{d}f}"  # noqa: E731
    panel, machine = payload["panel"], payload["machine"]
    lines = [
        f"Panel: {panel['path']} ({panel['series']} series, {panel['folds']} folds x {panel['fold_days']} days); "
        f"machine: {machine['platform']}, {machine['cpus']} CPUs, Python {machine['python']}; run {payload['finished']}",
        "",
        "| method | MASE | RMSE | sMAPE | coverage 80 % | fit s/series | MASE / AutoARIMA | time / AutoARIMA |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in payload["methods"] + payload["ablations"]:
        lines.append(
            f"| {r['method']} | {fmt(r['mase'])} | {fmt(r['rmse'], 0)} | {fmt(r['smape'])} | {fmt(r['coverage_80'], 2)} | {fmt(r['fit_s_per_series'])} | "
            f"{fmt(r.get('mase_ratio_to_autoarima'), 3)} | {fmt(r.get('time_ratio_to_autoarima'), 3)} |"
        )
    smart = payload["smart_retraining"]
    lines += [
        "",
        f"Smart retraining ({smart['series']} series): warm-started refit after one new day {smart['warm_fit_s']:.3f} s vs cold {smart['cold_fit_s']:.3f} s "
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
    lines.append("DAG parse time beyond `import airflow.sdk`: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in payload["parse_s_beyond_airflow_sdk"].items()))
    return "\n".join(lines)


def main() -> int:
    """Run every method on the same folds, the smart-retraining, parse and scale measurements; write results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--panel", type=Path, default=ROOT / "include" / "data" / "iowa_sales.csv")
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="2 series, 2 folds, no AutoARIMA, no scale run (CI smoke run)")
    parser.add_argument("--scale-series", type=int, default=None, help="series in the scale run (default 1000; 0 skips; --quick: 0)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    started = time.perf_counter()
    # SIGTERM (CI timeout, kill) must unwind through the scale run's `finally`, which stops its services.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    config = load_config(args.config)
    backtest = config.backtest
    frame = read_sales_csv(args.panel, config.source.columns)
    series_ids = sorted(frame["series_id"].unique())
    if args.quick:
        series_ids = series_ids[:2]
        backtest = dataclasses.replace(backtest, folds=2)
    end = frame["sales_date"].max() + pd.Timedelta(days=1)
    ys = {s: training.daily_series(frame, s, end) for s in series_ids}
    levels = config.forecast.interval_levels
    no_holidays = dataclasses.replace(config.forecast, holidays=())

    def project(train: pd.Series, horizon: int) -> pd.DataFrame:
        return training.fit_series(train, config.forecast).forecast(horizon, levels)

    def project_without_holidays(train: pd.Series, horizon: int) -> pd.DataFrame:
        return training.fit_series(train, no_holidays).forecast(horizon, levels)

    results, ablations = [], []
    for method, forecaster in (("project", project), ("seasonal_naive", evaluation.seasonal_naive(backtest.season_length)), ("sarimax_fixed", sarimax_fixed)):
        clock: list[float] = []
        results.append(score(method, ys, timed(forecaster, clock), backtest, clock))
        print(f"{method}: done", file=sys.stderr, flush=True)
    clock = []
    ablations.append(score("project_without_holidays", ys, timed(project_without_holidays, clock), backtest, clock))
    versions = None
    if not args.quick:
        fits, versions = autoarima_fits(ys, backtest)
        clock = []
        results.append(score("autoarima", ys, from_fits(fits, clock), backtest, clock))
        clock = []
        ablations.append(score("autoarima_with_project_holidays", ys, from_fits(fits, clock, config.forecast.holidays), backtest, clock))
        print("autoarima: done", file=sys.stderr, flush=True)
    reference = next((r for r in results if r["method"] == "autoarima"), None)
    for r in results + ablations:
        r["mase_ratio_to_autoarima"] = r["mase"] / reference["mase"] if reference else None
        r["time_ratio_to_autoarima"] = r["fit_s_per_series"] / reference["fit_s_per_series"] if reference else None

    smart = smart_retraining(config, frame, ys, end)
    print("smart retraining: done", file=sys.stderr, flush=True)
    scale_series = (0 if args.quick else 1000) if args.scale_series is None else args.scale_series
    scale = None
    if scale_series:
        from bench.scale import run_scale

        scale = run_scale(config.path, args.panel, scale_series, end.date())
        print("scale: done", file=sys.stderr, flush=True)
    payload = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(), "autoarima_env": versions},
        "panel": {
            "path": str(args.panel.relative_to(ROOT) if args.panel.is_relative_to(ROOT) else args.panel),
            "series": len(series_ids), "folds": backtest.folds, "fold_days": backtest.fold_days, "quick": args.quick,
        },
        "methods": results,
        "ablations": ablations,
        "smart_retraining": smart,
        "scale": scale,
        "parse_s_beyond_airflow_sdk": parse_costs(),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    payload["bench_wall_s"] = time.perf_counter() - started
    table = render(payload)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "quick" if args.quick else "latest"
    (args.out / f"{stem}.json").write_text(json.dumps(payload, indent=2))
    (args.out / f"{stem}.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make bench`: forecast quality and training cost on a panel, all methods on the same rolling-origin folds.

Methods: the project's training step (exactly `training.fit_series`, the code the DAG runs), seasonal naive
(m=7), a fixed SARIMAX(1,0,1)(1,0,1,7), and statsforecast's AutoARIMA(season_length=7) (bench-only).
Also: the project's warm-started refit (smart retraining) and each DAG file's parse cost.
Writes bench/results/latest.json and bench/results/latest.md, prints the table.

Usage: python bench/run.py [--panel CSV] [--config YAML] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from include.forecasting import evaluation, training  # noqa: E402
from include.forecasting.config import load_config  # noqa: E402
from include.forecasting.extract import read_sales_csv  # noqa: E402


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


def autoarima(train: pd.Series, horizon: int) -> pd.DataFrame:
    """statsforecast AutoARIMA(season_length=7) with its 80 % interval."""
    from statsforecast.models import AutoARIMA

    model = AutoARIMA(season_length=7).fit(train.to_numpy(dtype=float))
    out = model.predict(h=horizon, level=[80])
    return pd.DataFrame({"yhat": out["mean"], "yhat_lower": out["lo-80"], "yhat_upper": out["hi-80"]})


def timed(forecaster: Any, clock: list[float]) -> Any:
    """Wrap a forecaster to add its wall time per call to `clock`."""

    def run(train: pd.Series, horizon: int) -> pd.DataFrame:
        started = time.perf_counter()
        out = forecaster(train, horizon)
        clock.append(time.perf_counter() - started)
        return out

    return run


def parse_costs() -> dict[str, float]:
    """Each DAG file's own import time beyond `import airflow.sdk`, in a fresh interpreter (best of 3)."""
    code = (
        "import time, importlib.util, pathlib, json, airflow.sdk\nout = {}\n"
        f"for p in sorted(pathlib.Path({str(ROOT / 'dags')!r}).glob('*.py')):\n"
        "    t = time.perf_counter(); s = importlib.util.spec_from_file_location(p.stem, p)\n"
        "    m = importlib.util.module_from_spec(s); s.loader.exec_module(m); out[p.name] = time.perf_counter() - t\n"
        "print(json.dumps(out))"
    )
    best: dict[str, float] = {}
    for _ in range(3):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        for name, seconds in json.loads(result.stdout.strip().splitlines()[-1]).items():
            best[name] = min(seconds, best.get(name, float("inf")))
    return best


def main() -> int:
    """Run every method on the same folds and write the results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--panel", type=Path, default=ROOT / "include" / "data" / "iowa_sales.csv")
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="2 series, 2 folds, no AutoARIMA (CI smoke run)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()

    config = load_config(args.config)
    backtest = config.backtest
    frame = read_sales_csv(args.panel, config.source.columns)
    series_ids = sorted(frame["series_id"].unique())
    if args.quick:
        import dataclasses

        series_ids = series_ids[:2]
        backtest = dataclasses.replace(backtest, folds=2)
    end = frame["sales_date"].max() + pd.Timedelta(days=1)
    levels = config.forecast.interval_levels

    def project(train: pd.Series, horizon: int) -> pd.DataFrame:
        return training.fit_series(train, config.forecast).forecast(horizon, levels)

    methods: dict[str, Any] = {"project": project, "seasonal_naive": evaluation.seasonal_naive(backtest.season_length), "sarimax_fixed": sarimax_fixed}
    if not args.quick:
        methods["autoarima"] = autoarima
    results = []
    for method, forecaster in methods.items():
        clock: list[float] = []
        per_series = []
        for series_id in series_ids:
            y = training.daily_series(frame, series_id, end)
            per_series.append(evaluation.backtest(y, timed(forecaster, clock), backtest))
        results.append(
            {
                "method": method,
                "mase": float(np.mean([m.mase for m in per_series])),
                "rmse": float(np.mean([m.rmse for m in per_series])),
                "smape": float(np.mean([m.smape for m in per_series])),
                "coverage_80": float(np.mean([m.coverage_80 for m in per_series])) if per_series[0].coverage_80 is not None else None,
                "fit_s_per_series": float(np.mean(clock)),  # one fit + forecast per series per fold
            }
        )
        print(f"{method}: done", file=sys.stderr, flush=True)
    reference = next((r for r in results if r["method"] == "autoarima"), None)
    for r in results:
        r["mase_ratio_to_autoarima"] = r["mase"] / reference["mase"] if reference else None
        r["time_ratio_to_autoarima"] = r["fit_s_per_series"] / reference["fit_s_per_series"] if reference else None

    # Smart retraining: refit on one more day warm-started from yesterday's model vs cold.
    warm_clock: list[float] = []
    cold_clock: list[float] = []
    diffs = []
    for series_id in series_ids:
        y = training.daily_series(frame, series_id, end)
        yesterday = training.fit_series(y.iloc[:-1], config.forecast)
        started = time.perf_counter()
        cold = training.fit_series(y, config.forecast)
        cold_clock.append(time.perf_counter() - started)
        started = time.perf_counter()
        warm = training.fit_series(y, config.forecast, start_params=training.warm_start_params(yesterday.spec), orders=(yesterday.spec.order,))
        warm_clock.append(time.perf_counter() - started)
        a, b = cold.forecast(7)["yhat"].to_numpy(), warm.forecast(7)["yhat"].to_numpy()
        diffs.append(float(np.max(np.abs(a - b) / np.maximum(a, 1.0))))
    smart = {
        "cold_fit_s": float(np.mean(cold_clock)),
        "warm_fit_s": float(np.mean(warm_clock)),
        "warm_over_cold": float(np.sum(warm_clock) / np.sum(cold_clock)),
        "max_rel_forecast_diff_warm_vs_cold": float(np.max(diffs)),
        "note": "a rerun with unchanged data+config+code reuses the registered version (no fit at all): see tests/integration",
    }
    payload = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "panel": {"path": str(args.panel.relative_to(ROOT) if args.panel.is_relative_to(ROOT) else args.panel), "series": len(series_ids), "folds": backtest.folds, "fold_days": backtest.fold_days, "quick": args.quick},
        "methods": results,
        "smart_retraining": smart,
        "parse_s_beyond_airflow_sdk": parse_costs(),
        "scale": None,  # the 1,000-series run is not built yet (see README "Benchmark")
    }
    lines = [
        f"Panel: {payload['panel']['path']} ({len(series_ids)} series, {backtest.folds} folds x {backtest.fold_days} days); machine: {payload['machine']['platform']}, {payload['machine']['cpus']} CPUs",
        "",
        "| method | MASE | RMSE | sMAPE | coverage 80 % | fit s/series | MASE / AutoARIMA | time / AutoARIMA |",
        "|---|---|---|---|---|---|---|---|",
    ]
    fmt = lambda v, d=3: "-" if v is None else f"{v:.{d}f}"  # noqa: E731
    for r in results:
        lines.append(
            f"| {r['method']} | {fmt(r['mase'])} | {fmt(r['rmse'], 0)} | {fmt(r['smape'])} | {fmt(r['coverage_80'], 2)} | {fmt(r['fit_s_per_series'])} | "
            f"{fmt(r['mase_ratio_to_autoarima'], 2)} | {fmt(r['time_ratio_to_autoarima'], 3)} |"
        )
    lines += [
        "",
        f"Smart retraining (one new day): warm refit {smart['warm_fit_s']:.3f} s vs cold {smart['cold_fit_s']:.3f} s "
        f"(ratio {smart['warm_over_cold']:.2f}); max relative forecast difference {smart['max_rel_forecast_diff_warm_vs_cold']:.4f}",
        "DAG parse time beyond `import airflow.sdk`: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in payload["parse_s_beyond_airflow_sdk"].items()),
    ]
    table = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "quick" if args.quick else "latest"
    (args.out / f"{stem}.json").write_text(json.dumps(payload, indent=2))
    (args.out / f"{stem}.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The benchmark runs end to end (quick mode) and computes its numbers correctly on a tiny panel."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
from conftest import ROOT


def test_quick_bench_on_a_tiny_panel(tmp_path):
    # Weekly pattern + linear trend: seasonal naive is off by exactly 7*slope every day, and so is its
    # in-sample scale, so its MASE is 1.0 by construction (a hand-derived check, not the code's own).
    days = pd.date_range("2024-01-01", periods=210, freq="D")
    rows = []
    for name, level, slope in (("A", 100.0, 0.5), ("B", 400.0, 2.0)):
        pattern = np.tile([1.0, 1.2, 1.1, 1.3, 1.5, 0.6, 0.4], 30)
        values = np.round(level * pattern + slope * np.arange(210)).astype(int)
        rows += [{"date": d.date().isoformat(), "item_name": name, "total_amount_sold": int(v)} for d, v in zip(days, values, strict=True)]
    panel = tmp_path / "tiny.csv"
    pd.DataFrame(rows).to_csv(panel, index=False)
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "bench" / "run.py"), "--panel", str(panel), "--columns", "date,item_name,total_amount_sold", "--quick", "--out", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads((out / "quick.json").read_text())
    [panel_result] = data["panels"]
    methods = panel_result["methods"]
    assert set(methods) == {"project", "seasonal_naive", "project_without_holidays"}
    naive = methods["seasonal_naive"]
    # Rounding to whole units perturbs the exact 1.0 slightly.
    assert abs(naive["mase"] - 1.0) < 0.05 and 0 <= naive["coverage_80"] <= 1
    assert 0 < methods["project"]["coverage_80"] <= 1 and methods["project"]["fit_s_per_series"] > 0
    # CPU time of a single-threaded fit cannot exceed its wall time by more than the clocks' resolution.
    assert 0 < methods["project"]["fit_cpu_s_per_series"] <= methods["project"]["fit_s_per_series"] * 1.05 + 1e-3
    assert len(methods["project"]["mase_by_fold"]) == 2 and methods["project"]["mase_without_holiday_days"] is not None
    assert panel_result["series"] == 2 and panel_result["folds"] == 2 and panel_result["cadence"] == "daily"
    assert data["smart_retraining"]["warm_fit_s"] > 0
    assert data["smart_retraining"]["period"] == "day"  # the quick run's Iowa panel is daily
    # The unchanged rerun went through the real train step and reused every version (bench asserts it).
    smart = data["smart_retraining"]
    assert smart["series"] == 2 and 0 < smart["train_step_unchanged_rerun_s"] < smart["train_step_cold_s"]
    assert data["scale"] is None  # --quick skips the DAG run
    assert set(data["parse_s_beyond_airflow_sdk"]) >= {"sales_forecast.py"}
    report = (out / "quick.md").read_text()
    assert "| seasonal_naive |" in report and "warm-started refit after one new day" in report


def test_a_panel_gets_the_calendar_of_its_country(tmp_path):
    """The bench sets the data part of the config a user of each panel would: its holiday calendar."""
    from conftest import write_config

    from bench.run import HOLIDAYS, with_holidays
    from include.forecasting.config import load_config

    config = load_config(write_config(tmp_path))
    assert with_holidays(config, None) is config
    assert with_holidays(config, "CN").forecast.holidays.model_dump() == {"country": "CN", "subdivision": None, "categories": ("public",)}
    assert with_holidays(config, "US-IA").forecast.holidays.model_dump() == {"country": "US", "subdivision": "IA", "categories": ("public",)}
    assert with_holidays(config, "none").forecast.holidays is None
    assert HOLIDAYS["veg_daily_kg"] == "CN" and "iowa_daily" not in HOLIDAYS  # Iowa: the config's US/IA


def test_development_folds_end_where_the_reported_folds_begin():
    """bench/dev_folds.py tunes on the folds just before the ones `make bench` reports, never on those."""
    from bench.dev_folds import DevPanel
    from bench.quality import Panel
    from include.forecasting import training
    from include.forecasting.frequency import DAILY

    settings = training.ModelSettings(cadence=DAILY, candidate_orders=((1, 0, 1),), seasonal_order=(0, 1, 1, 7), horizon=7)
    y = pd.Series(1.0, index=pd.date_range("2023-01-01", periods=400, freq="D"))
    reported = Panel("p", ROOT, {"s": y}, settings, 8).origins(y)
    development = DevPanel("p", ROOT, {"s": y}, settings, 8).origins(y)
    assert len(development) == len(reported) == 8
    assert development[-1] + 7 == reported[0]  # the last development fold's test week ends where reporting starts
    assert reported[-1] + 7 == len(y)


def test_weekly_development_sets_sum_the_shipped_days_to_whole_weeks(tmp_path, monkeypatch):
    """A `WEEKLY_SETS` panel is its daily panel summed per week ending on its weekday, dated on that day;
    the week still running at the newest day is left out (Iowa's rows end on a Friday: weeks ending Sunday
    stop the Sunday before, weeks ending Friday on it). A "last" set is scored on its newest folds, a
    "before" set on the folds before those, as the shipped panels."""
    from bench import dev_folds
    from bench.quality import Panel
    from include.forecasting.extract import read_sales_csv

    monkeypatch.setattr(dev_folds, "CACHE", tmp_path)
    daily = read_sales_csv(*dev_folds.PANELS["iowa_daily"])
    newest = daily["sales_date"].max()
    assert newest.day_name() == "Friday"
    for name, last_week in (("iowa_weeks_sun", newest - pd.Timedelta(days=5)), ("iowa_weeks_fri", newest)):
        weeks = pd.read_csv(dev_folds.weekly_set_csv(name), parse_dates=["date"])
        assert weeks["date"].max() == last_week
        assert set(weeks["date"].dt.day_name()) == {last_week.day_name()}
        one = weeks[(weeks["date"] == last_week) & (weeks["series"] == "TITOS HANDMADE VODKA")]["value"].item()
        days = daily[(daily["series_id"] == "TITOS HANDMADE VODKA") & daily["sales_date"].between(last_week - pd.Timedelta(days=6), last_week)]
        assert one == days["value"].sum() > 0
    last = dev_folds.dev_panel("iowa_weeks_fri", None, 8, None)
    before = dev_folds.dev_panel("veg_weeks_wed", None, 8, None)
    assert type(last) is Panel and isinstance(before, dev_folds.DevPanel)
    y = next(iter(last.ys.values()))
    assert last.origins(y)[-1] + last.settings.horizon == len(y) and last.settings.cadence.name == "weekly"


def test_development_detail_scores_each_series_and_fold_like_the_summary():
    """`dev_folds.mase_table` is the summary's MASE split by series or by fold: their means agree with
    `quality.summarise`, and a series the project forecasts perfectly scores 0."""
    from bench.dev_folds import detail, mase_table
    from bench.quality import summarise

    dates = pd.date_range("2024-01-01", periods=2, freq="D")
    rows = []
    for method, miss in (("project", 0.0), ("AutoARIMA", 2.0), ("AutoETS", 1.0), ("AutoTheta", 4.0)):
        for series, scale in (("a", 2.0), ("b", 4.0)):
            for fold in (0, 1):
                off = miss * (fold + 1) if series == "b" or method != "project" else 0.0
                rows.append(pd.DataFrame({"method": method, "series_id": series, "fold": fold, "date": dates, "actual": 10.0, "yhat": 10.0 + off, "lo": np.nan, "hi": np.nan, "scale": scale}))
    points = pd.concat(rows, ignore_index=True)
    by_series = mase_table(points, "series_id")
    assert by_series.loc["a", "project"] == 0.0
    assert by_series.loc["b", "AutoETS"] == (1.0 / 4 + 2.0 / 4) / 2
    for method in by_series.columns:
        one = points[points["method"] == method]
        assert abs(by_series[method].mean() - summarise(one, {})["mase"]) < 1e-12
        assert abs(mase_table(points, "fold")[method].mean() - summarise(one, {})["mase"]) < 1e-12
    text = detail(points[points["method"] == "project"], points[points["method"] != "project"])
    assert "ratio_to_best" in text and "series_id" in text and "fold" in text


def test_gate_simulation_serves_naive_where_the_gate_rejects_and_the_model_after_a_first_pass():
    """`dev_folds.serving_table` on a hand-built case. Trend + weekly pattern: seasonal naive misses by
    exactly 7 x slope, so its MASE is 1.0 everywhere. The "model" is exact while it trains on fewer than
    372 days and 70 x slope too high after (MASE 10). Origins 358..393: the gate passes at 358 and 365
    (exact backtests) and at 372 (its 4 backtest folds still train on < 372 days), then rejects (one of
    4 folds at MASE 10: mean 2.5 > 1)."""
    from bench.dev_folds import serving_table
    from bench.quality import Panel
    from include.forecasting import evaluation, training
    from include.forecasting.frequency import DAILY

    slope = 0.5
    t = np.arange(400)
    y = pd.Series(100 * np.tile([1.0, 1.2, 1.1, 1.3, 1.5, 0.6, 0.4], 58)[:400] + slope * t, index=pd.date_range("2023-01-01", periods=400, freq="D"))

    def model(train: pd.Series, horizon: int) -> pd.DataFrame:
        truth = y.to_numpy()[len(train) : len(train) + horizon]
        return pd.DataFrame({"yhat": truth + (70 * slope if len(train) >= 372 else 0.0)})

    settings = training.ModelSettings(cadence=DAILY, candidate_orders=((0, 1, 1),), seasonal_order=(0, 1, 1, 7), horizon=7)
    table = serving_table(Panel("p", ROOT, {"s": y}, settings, 6), model, evaluation.seasonal_naive(7), 4)
    assert table["passed"].tolist() == [True, True, True, False, False, False]
    assert np.allclose(table["naive"], 1.0) and np.allclose(table["model"], [0, 0, 10, 10, 10, 10])
    assert np.allclose(table["gated"], [0, 0, 10, 1, 1, 1])
    assert np.allclose(table["until_first_pass"], [0, 0, 10, 10, 10, 10])


def test_calibration_tables_split_zero_and_selling_periods():
    """`dev_folds.calibration_tables` on hand-made points: the probability buckets leave closed periods
    out, and each share and score is the one counted by hand (4 periods: a zero covered by [0, 2], a zero
    below [1, 3], a sale above its upper bound by 2, a sale inside; one closed period)."""
    from bench.dev_folds import calibration_tables

    points = pd.DataFrame({
        "actual": [0.0, 0.0, 7.0, 4.0, 0.0],
        "pi": [0.5, 0.02, 0.1, 0.0, 0.97],
        "closed": [False, False, False, False, True],
        "yhat": [0.0, 2.0, 4.0, 4.0, 0.0],
        "lo": [0.0, 1.0, 3.0, 3.0, 0.0], "hi": [2.0, 3.0, 5.0, 5.0, 0.0],
        "lo95": [0.0, 0.0, 2.0, 2.0, 0.0], "hi95": [4.0, 5.0, 8.0, 6.0, 0.0],
    })
    reliability, balance = calibration_tables(points)
    assert reliability["periods"].tolist() == [2, 1, 1] and reliability["periods"].sum() == 4
    assert reliability["forecast"].round(3).tolist() == [0.01, 0.1, 0.5]
    assert reliability["observed"].tolist() == [0.5, 0.0, 1.0]
    selling, zero, everything = balance.loc["selling periods"], balance.loc["zero periods"], balance.loc["all"]
    assert selling["periods"] == 2 and selling["above median"] == 0.5 and selling["below median"] == 0.0
    assert selling["above 80 % upper"] == 0.5 and selling["80 % coverage"] == 0.5 and selling["95 % coverage"] == 1.0
    assert zero["periods"] == 3 and zero["below median"] == 1 / 3 and zero["below 80 % lower"] == 1 / 3
    assert zero["80 % coverage"] == 2 / 3 and zero["95 % coverage"] == 1.0
    # interval score: widths 2, 2, 2, 2, 0 plus 10 x misses (1 below, 2 above), over the mean actual 11 / 5
    assert np.isclose(everything["80 % interval score"], (8 + 10 * (1 + 2)) / 5 / (11 / 5))


def test_a_series_the_project_cannot_fit_gets_the_dags_fallback(monkeypatch):
    """Where every candidate order is rejected the bench scores what the DAG would publish: its fallback,
    seasonal naive with the spikes training leaves out left out (a x1,000 day a week before the origin
    is not forecast again)."""
    from bench.quality import project_forecaster
    from include.forecasting import training
    from include.forecasting.frequency import DAILY

    raw = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv", parse_dates=["date"])
    y = raw[raw.item_name == "BLACK VELVET"].set_index("date")["total_amount_sold"].astype(float).asfreq("D", fill_value=0.0)
    y.iloc[-3] *= 1000
    settings = training.ModelSettings(cadence=DAILY, candidate_orders=((0, 1, 1),), seasonal_order=(0, 1, 1, 7), horizon=7)

    def no_stable_fit(*_args, **_kwargs):
        raise training.ModelFitError("no candidate order gave a stable fit")

    monkeypatch.setattr(training, "fit_series", no_stable_fit)
    out = project_forecaster(settings)(y, 7)
    assert list(out.columns[:1]) == ["yhat"] and "forecast_date" not in out and len(out) == 7
    assert out["yhat"].iloc[4] == y.iloc[-10] and out["yhat"].max() < 1000 * y.median()

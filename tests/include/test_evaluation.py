"""Metrics and rolling-origin folds, checked against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from include.forecasting import evaluation


def test_fold_metrics_by_hand():
    train = np.array([1, 2, 3, 4, 5, 6, 7, 2, 3, 4, 5, 6, 7, 8], dtype=float)  # lag-7 diffs all 1
    actual = np.array([10.0, 0.0, 4.0])
    pred = np.array([8.0, 1.0, 4.0])
    m = evaluation.fold_metrics(actual, pred, train, 7)
    assert m["mase"] == pytest.approx(1.0)  # MAE (2+1+0)/3 = 1 over scale 1
    assert m["sse"] == pytest.approx(5.0)
    assert m["mape"] == pytest.approx((0.2 + 0.0) / 2)  # the zero actual is skipped
    assert m["smape"] == pytest.approx((2 * 2 / 18 + 2 * 1 / 1 + 0) / 3)


def test_the_mase_scale_leaves_out_excluded_periods():
    """A left-out period drops every lag-m difference it is an end of; nothing else changes."""
    train = np.array([1, 2, 3, 4, 5, 6, 7, 2, 3, 4, 5, 6, 7, 8, 3, 4], dtype=float)  # lag-7 diffs all 1
    typo = train.copy()
    typo[9] = 4000.0
    exclude = np.zeros(len(train), dtype=bool)
    exclude[9] = True
    assert evaluation.mase_scale(typo, 7) > 400  # (2 x 3996 + 7) / 9: the typo swamps the scale
    assert evaluation.mase_scale(typo, 7, exclude) == pytest.approx(1.0)  # diffs 9-2 and 16-9 left out
    assert evaluation.mase_scale(train, 7, np.zeros(len(train), dtype=bool)) == evaluation.mase_scale(train, 7)
    assert np.isnan(evaluation.mase_scale(train[:8], 7, np.ones(8, dtype=bool)))  # nothing left: undefined


def test_folds_are_the_last_k_weeks():
    assert evaluation.fold_origins(100, 4, 7) == [72, 79, 86, 93]
    with pytest.raises(ValueError, match="too short"):
        evaluation.fold_origins(20, 4, 7)


def test_seasonal_naive_repeats_last_week():
    y = pd.Series(np.arange(14, dtype=float))
    assert list(evaluation.seasonal_naive(7)(y, 9)["yhat"]) == [7, 8, 9, 10, 11, 12, 13, 7, 8]


def test_backtest_of_a_perfect_and_the_naive_forecaster():
    index = pd.date_range("2025-01-01", periods=70)
    weekly = pd.Series(np.tile([5, 6, 7, 8, 9, 0, 1], 10).astype(float), index=index)
    naive = evaluation.backtest(weekly, evaluation.seasonal_naive(7), 4, 7, 7)
    assert naive.mase != naive.mase or naive.mase == 0.0  # flat weekly pattern: scale 0 -> nan, or 0 error
    noisy = weekly + np.linspace(0, 7, 70)
    result = evaluation.backtest(noisy, evaluation.seasonal_naive(7), 4, 7, 7)
    assert result.folds == 4 and result.mase == pytest.approx(1.0) and result.coverage_80 is None

    def oracle(train: pd.Series, horizon: int) -> pd.DataFrame:
        start = len(train)
        truth = noisy.to_numpy()[start : start + horizon]
        return pd.DataFrame({"yhat": truth, "yhat_lower": truth - 1, "yhat_upper": truth + 1})

    perfect = evaluation.backtest(noisy, oracle, 4, 7, 7)
    assert perfect.mase == 0 and perfect.rmse == 0 and perfect.coverage_80 == 1.0


def test_seasonal_naive_intervals_are_empirical_and_non_negative():
    """The fallback forecast: lag-m repeat with intervals from the history's own lag-m errors."""
    rng = np.random.default_rng(7)
    y = pd.Series(np.tile([5.0, 6, 7, 8, 9, 0, 1], 12) + rng.normal(0, 1, 84).clip(-3, 3))
    frame = evaluation.seasonal_naive(7, (0.8, 0.95))(y, 14)
    assert (frame["yhat_lower"] <= frame["yhat"]).all() and (frame["yhat"] <= frame["yhat_upper"]).all()
    assert (frame["yhat_lower_95"] <= frame["yhat_lower"]).all() and (frame["yhat_lower_95"] >= 0).all()
    # Wider two seasons ahead than one.
    assert (frame["yhat_upper"].iloc[7:].to_numpy() - frame["yhat"].iloc[7:].to_numpy() > frame["yhat_upper"].iloc[:7].to_numpy() - frame["yhat"].iloc[:7].to_numpy()).all()
    # A series of a few periods (fewer than 8 errors): from 0 to the largest value seen, never the observed
    # range, which after one period is a single point.
    short = evaluation.seasonal_naive(7, (0.8,))(pd.Series([2.0, 4.0]), 3)
    assert list(short["yhat"]) == [3.0, 3.0, 3.0] and list(short["yhat_lower"]) == [0.0] * 3 and list(short["yhat_upper"]) == [4.0] * 3
    one = evaluation.seasonal_naive(1, (0.8, 0.95))(pd.Series([28.4]), 2)
    assert list(one["yhat"]) == [28.4, 28.4] and list(one["yhat_lower"]) == [0.0, 0.0] and list(one["yhat_upper_95"]) == [28.4, 28.4]


def test_undefined_metrics_are_strict_json():
    """A series whose test days are all zero has no MAPE, and one that never changed has no MASE scale:
    the metrics must still travel through XCom (strict JSON), as None."""
    import json

    index = pd.date_range("2025-01-01", periods=70)
    flat = pd.Series(np.r_[np.full(42, 3.0), np.zeros(28)], index=index)
    metrics = evaluation.backtest(flat, evaluation.seasonal_naive(7), 4, 7, 7).to_dict()
    assert metrics["mape"] is None
    json.dumps(metrics, allow_nan=False)


def test_a_short_history_is_scored_on_the_folds_it_holds():
    """Three years of months with a 7-month horizon hold 2 of 4 folds: the backtest runs on those 2 (and
    says so) instead of failing; a history without room for one fold is still an error."""
    months = pd.Series(np.linspace(10, 40, 33) + np.tile(np.arange(12.0), 3)[:33], index=pd.date_range("2020-01-01", periods=33, freq="MS"))
    assert evaluation.usable_folds(33, 4, 7, 13) == 2 and evaluation.usable_folds(100, 4, 7) == 4
    result = evaluation.backtest(months, evaluation.seasonal_naive(12), 4, 7, 12)
    assert result.folds == 2 and result.mase == result.mase
    with pytest.raises(ValueError, match="series of 20 periods is too short for 4 folds"):
        evaluation.backtest(months.iloc[:20], evaluation.seasonal_naive(12), 4, 7, 12)


def _young_weekly(series: str) -> pd.Series:
    """One vegetable's last 56 weeks of the shipped weekly panel (a panel that began a year ago)."""
    from conftest import ROOT

    panel = pd.read_csv(ROOT / "include" / "data" / "veg_supermarket_weekly_kg.csv", parse_dates=["date"])
    end = panel["date"].max() - pd.Timedelta(weeks=4)
    rows = panel[(panel["series"] == series) & (panel["date"] > end - pd.Timedelta(weeks=56)) & (panel["date"] <= end)]
    return rows.set_index("date")["value"].asfreq("W-SUN").fillna(0.0)


def test_folds_whose_history_has_too_few_sales_are_dropped_for_every_method():
    """A young, zero-heavy series has the weeks for 4 folds but, before the oldest two, fewer than the 20
    selling weeks a fit needs (6 and 13): the project's fit would fail there and quarantine the series.
    With `min_selling` every method is scored on the 2 newest folds, whose histories hold 20 and 27."""
    from include.forecasting import training
    from include.forecasting.config import load_config
    from include.forecasting.frequency import weekly

    y = _young_weekly("娃娃菜")
    assert len(y) == 56 and [int((y.iloc[: 56 - k * 7] > 0).sum()) for k in (4, 3, 2, 1)] == [6, 13, 20, 27]
    settings = training.settings_for(load_config().forecast, weekly("SUN"))
    with pytest.raises(training.ModelFitError, match="too little history"):
        evaluation.backtest(y, lambda train, h: training.fit_series(train, settings).forecast(h), 4, 7, 1, 20)
    seen: list[int] = []

    def project(train: pd.Series, horizon: int) -> pd.DataFrame:
        seen.append(int((train > 0).sum()))
        return training.fit_series(train, settings).forecast(horizon)

    candidate = evaluation.backtest(y, project, 4, 7, 1, 20, min_selling=20)
    naive = evaluation.backtest(y, evaluation.seasonal_naive(1, (0.8,)), 4, 7, 1, 20, min_selling=20)
    assert candidate.folds == naive.folds == 2 and seen == [20, 27]
    # Not even the newest fold's history has 20 selling weeks (7): named, and the series is quarantined.
    with pytest.raises(ValueError, match=r"too few sales to backtest: 7 selling periods before the newest fold \(the last 7 periods\), need 20"):
        evaluation.backtest(_young_weekly("青尖椒"), evaluation.seasonal_naive(1), 4, 7, 1, 20, min_selling=20)

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
    short = evaluation.seasonal_naive(7, (0.8,))(pd.Series([2.0, 4.0]), 3)
    assert list(short["yhat"]) == [3.0, 3.0, 3.0] and list(short["yhat_lower"]) == [2.0] * 3 and list(short["yhat_upper"]) == [4.0] * 3


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

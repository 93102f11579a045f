"""SARIMA fitting on the real Iowa series: closure days, guarded order selection, calibrated intervals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from conftest import read_seed, write_config

from include.forecasting import training
from include.forecasting.config import load_config

END = pd.Timestamp("2025-05-31")


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return load_config(write_config(tmp_path_factory.mktemp("t")))


@pytest.fixture(scope="module")
def velvet(request):
    frame = request.getfixturevalue("iowa_frame")
    return training.daily_series(frame, "BLACK VELVET", END)


@pytest.fixture(scope="module")
def iowa_frame():
    """Module-scoped (conftest's is per test): the fits below share one read of the panel."""
    return read_seed()


def test_daily_series_fills_missing_days_with_zero(velvet):
    assert velvet.index.is_monotonic_increasing and velvet.index.freq == "D"
    assert velvet.index[-1] == pd.Timestamp("2025-05-30")
    assert len(velvet) == (pd.Timestamp("2025-05-30") - pd.Timestamp("2023-01-02")).days + 1
    assert (velvet == 0).sum() == len(velvet) - 724


def test_saturday_is_the_closed_day(velvet):
    assert training.closed_weekdays(velvet, 12, 0.5) == ("sat",)
    assert training.closed_weekdays(velvet, 12, 0.0) == ()


def test_fit_and_forecast(velvet, config):
    fitted = training.fit_series(velvet, config.forecast)
    assert tuple(fitted.spec.order) in config.forecast.candidate_orders
    fc = fitted.forecast(7, (0.8, 0.95))
    assert list(fc["forecast_date"]) == list(pd.date_range("2025-05-31", periods=7))
    sat = fc["forecast_date"].dt.day_of_week == 5
    assert (fc.loc[sat, ["yhat", "yhat_lower", "yhat_upper"]] == 0).all().all()
    open_days = fc[~sat]
    assert (open_days["yhat_lower_95"] <= open_days["yhat_lower"]).all()
    assert (open_days["yhat_lower"] < open_days["yhat"]).all() and (open_days["yhat"] < open_days["yhat_upper"]).all()
    assert (open_days["yhat_upper"] <= open_days["yhat_upper_95"]).all()
    assert open_days["yhat"].between(1, 3 * velvet.max()).all()
    assert all(c["rejected"] is None or isinstance(c["rejected"], str) for c in fitted.candidates)


def test_fit_is_deterministic(velvet, config):
    a = training.fit_series(velvet, config.forecast).forecast(7)
    b = training.fit_series(velvet, config.forecast).forecast(7)
    pd.testing.assert_frame_equal(a, b)


def test_forecast_with_spec_reproduces_the_fit(velvet, config):
    fitted = training.fit_series(velvet, config.forecast)
    again = training.forecast_with_spec(velvet, fitted.spec, 7, config.forecast.interval_levels)
    np.testing.assert_allclose(again["yhat"], fitted.forecast(7)["yhat"], rtol=1e-6)
    spec = training.ModelSpec.from_dict(fitted.spec.to_dict())
    assert spec == fitted.spec


def test_warm_start_reaches_the_same_model(velvet, config):
    cold = training.fit_series(velvet.iloc[:-1], config.forecast)
    warm = training.fit_series(velvet, config.forecast, start_params=training.warm_start_params(cold.spec))
    ref = training.fit_series(velvet, config.forecast)
    assert abs(warm.spec.aic - ref.spec.aic) < 1.0


def test_explosive_forecasts_are_rejected(config):
    """A series that has just tripled: with a tight explosion factor every candidate is refused."""
    index = pd.date_range("2024-01-01", periods=200, freq="D")
    y = pd.Series(np.r_[np.full(190, 100.0), np.geomspace(100, 5000, 10)], index=index, name="ramp")
    import dataclasses

    strict = dataclasses.replace(config.forecast, explosion_factor=1.0)
    with pytest.raises(training.ModelFitError, match="explosive forecast|no candidate"):
        training.fit_series(y, strict)


def test_too_little_data_is_a_clear_error(config):
    y = pd.Series([5.0] * 20, index=pd.date_range("2025-01-01", periods=20), name="short")
    with pytest.raises(training.ModelFitError, match="too little data"):
        training.fit_series(y, config.forecast)


def test_unknown_series_is_a_key_error(iowa_frame):
    with pytest.raises(KeyError, match="no rows"):
        training.daily_series(iowa_frame, "NOPE", END)


def test_closure_holidays_are_learned_and_applied(velvet, config):
    """Memorial Day 2025 (Mon 26 May) sold ~1 % of a normal Monday: the model must not forecast a Monday."""
    dates = training.holiday_dates(config.forecast.holidays, velvet.index.min(), velvet.index.max())
    assert pd.Timestamp("2024-12-25") in dates and pd.Timestamp("2025-05-26") in dates
    assert pd.Timestamp("2024-11-11") not in dates  # Veterans Day is not in the shipped list
    history = velvet[: pd.Timestamp("2025-05-23")]  # data through Fri 23 May; forecast Sat 24 .. Fri 30
    effect = training.holiday_effect(history, dates)
    assert 0 <= effect["low"] <= effect["factor"] <= effect["high"] <= 1 and effect["factor"] < 0.5
    fc = training.fit_series(history, config.forecast).forecast(7, (0.8,)).set_index("forecast_date")
    memorial, tuesday = fc.loc[pd.Timestamp("2025-05-26")], fc.loc[pd.Timestamp("2025-05-27")]
    assert memorial["yhat"] < 0.25 * tuesday["yhat"]
    assert memorial["yhat_lower"] <= memorial["yhat"] <= memorial["yhat_upper"]
    without = training.fit_series(history, dataclasses.replace(config.forecast, holidays=())).forecast(7, (0.8,))
    assert without.set_index("forecast_date").loc[pd.Timestamp("2025-05-26"), "yhat"] > 0.5 * tuesday["yhat"]
    assert velvet.loc["2025-05-26"] < 0.1 * velvet.loc["2025-05-27"]  # what actually happened


def test_holiday_effect_needs_usable_neighbours():
    days = pd.date_range("2025-05-12", "2025-06-08", freq="D")
    y = pd.Series(100.0, index=days)
    y[pd.Timestamp("2025-05-26")] = 30.0
    effect = training.holiday_effect(y, pd.DatetimeIndex([pd.Timestamp("2025-05-26")]))
    assert effect == {"factor": 0.3, "low": 0.3, "high": 0.3, "n": 1.0}
    assert training.holiday_effect(y, pd.DatetimeIndex([])) == {}


def test_targeted_search_stops_at_the_first_stable_candidate(velvet, config):
    targeted = training.fit_series(velvet, config.forecast)
    assert config.forecast.order_search == "first_stable"
    assert [c["order"] for c in targeted.candidates] == [list(config.forecast.candidate_orders[0])]
    full = training.fit_series(velvet, dataclasses.replace(config.forecast, order_search="aic"))
    assert [c["order"] for c in full.candidates] == [list(o) for o in config.forecast.candidate_orders]
    best = min((c for c in full.candidates if c["rejected"] is None), key=lambda c: c["aic"])
    assert list(full.spec.order) == best["order"]

"""SARIMA fitting on the real Iowa series: closure days, guarded order selection, calibrated intervals."""

from __future__ import annotations

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
    sat = fc["forecast_date"].dt.dayofweek == 5
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

"""SARIMA fitting on the real Iowa series: closure days, guarded order selection, calibrated intervals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, read_seed, write_config

from include.forecasting import holiday_effects, state_space, training, year_ago, zeros
from include.forecasting.config import load_config
from include.forecasting.frequency import DAILY, weekly

END = pd.Timestamp("2025-05-31")


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return load_config(write_config(tmp_path_factory.mktemp("t")))


@pytest.fixture(scope="module")
def settings(config):
    return training.settings_for(config.forecast, DAILY)


@pytest.fixture(scope="module")
def iowa_frame():
    """Module-scoped (conftest's is per test): the fits below share one read of the panel."""
    return read_seed()


def test_daily_series_fills_missing_days_with_zero(velvet):
    assert velvet.index.is_monotonic_increasing and velvet.index.freq == "D"
    assert velvet.index[-1] == pd.Timestamp("2025-05-30")
    assert len(velvet) == (pd.Timestamp("2025-05-30") - pd.Timestamp("2023-01-02")).days + 1
    assert (velvet == 0).sum() == len(velvet) - 724


def test_fit_and_forecast(velvet, settings):
    fitted = training.fit_series(velvet, settings)
    assert tuple(fitted.spec.order) in settings.candidate_orders and fitted.spec.seasonal_order == (0, 1, 1, 7)
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


def test_fit_is_deterministic(velvet, settings):
    a = training.fit_series(velvet, settings).forecast(7)
    b = training.fit_series(velvet, settings).forecast(7)
    pd.testing.assert_frame_equal(a, b)


def test_forecast_with_spec_reproduces_the_fit(velvet, settings):
    fitted = training.fit_series(velvet, settings)
    again = training.forecast_with_spec(velvet, fitted.spec, 7, settings.interval_levels)
    np.testing.assert_allclose(again["yhat"], fitted.forecast(7)["yhat"], rtol=1e-6)
    spec = training.ModelSpec.from_dict(fitted.spec.to_dict())
    assert spec == fitted.spec


def test_an_old_spike_is_left_out_of_training(velvet, settings):
    """A x1,000 typo 7 weeks back, too old for validation's recent-days spike check: training leaves it
    out, so the forecast is the clean series' (to the fit's tolerance), and refiltering the recorded spec
    leaves it out again. Without the rule the same typo moves the forecast."""
    typo = velvet.copy()
    typo["2025-04-10"] *= 1000
    clean = training.fit_series(velvet, settings).forecast(7)
    fitted = training.fit_series(typo, settings)
    assert fitted.spec.spike_rule == (10.0, 8.0, 100.0) and fitted.history_max == velvet.max()
    # The spec names what was left out, with the value the data held (what the run report shows).
    assert fitted.spec.spikes_left_out == {"2025-04-10": float(typo["2025-04-10"])}
    assert training.ModelSpec.from_dict(fitted.spec.to_dict()).spikes_left_out == fitted.spec.spikes_left_out
    assert training.fit_series(velvet, settings).spec.spikes_left_out == {}
    np.testing.assert_allclose(fitted.forecast(7)["yhat"], clean["yhat"], rtol=2e-2)
    again = training.forecast_with_spec(typo, fitted.spec, 7, settings.interval_levels)
    np.testing.assert_allclose(again["yhat"], fitted.forecast(7)["yhat"], rtol=1e-6)
    unguarded = training.fit_series(typo, dataclasses.replace(settings, spike_rule=())).forecast(7)
    assert np.max(np.abs(unguarded["yhat_upper"] / clean["yhat_upper"] - 1)) > 0.05
    # A version recorded before the rule keeps its own view of the data: nothing left out; one recorded
    # before anomaly.spike_ratio_always keeps its two thresholds (the 1,000 x typo is past both anyway).
    assert training.ModelSpec.from_dict({**fitted.spec.to_dict(), "spike_rule": None}).spike_rule == ()
    older = training.ModelSpec.from_dict({**fitted.spec.to_dict(), "spike_rule": [10.0, 8.0]})
    assert older.spike_rule == (10.0, 8.0)
    np.testing.assert_allclose(training.forecast_with_spec(typo, older, 7, settings.interval_levels)["yhat"], again["yhat"], rtol=1e-6)


def test_warm_start_reaches_the_same_model(velvet, settings):
    cold = training.fit_series(velvet.iloc[:-1], settings)
    warm = training.fit_series(velvet, settings, start_params=training.warm_start_params(cold.spec))
    ref = training.fit_series(velvet, settings)
    assert abs(warm.spec.aic - ref.spec.aic) < 1.0


def test_explosive_forecasts_are_rejected(settings):
    """A series that has just tripled: with a tight explosion factor every candidate is refused."""
    index = pd.date_range("2024-01-01", periods=200, freq="D")
    y = pd.Series(np.r_[np.full(190, 100.0), np.geomspace(100, 5000, 10)], index=index, name="ramp")
    strict = dataclasses.replace(settings, explosion_factor=1.0)
    with pytest.raises(training.ModelFitError, match="explosive forecast|no candidate"):
        training.fit_series(y, strict)


def test_too_little_data_is_a_clear_error(settings):
    y = pd.Series([5.0] * 19, index=pd.date_range("2025-01-01", periods=19), name="short")
    with pytest.raises(training.ModelFitError, match=r"too little history to fit \(\d+ selling periods, need 20\)$"):
        training.fit_series(y, settings)
    # A series that sold nothing at all says so, not only that it is short.
    never = pd.Series(0.0, index=pd.date_range("2023-01-01", periods=400), name="never sold")
    with pytest.raises(training.ModelFitError, match=r"\(0 selling periods, need 20\); no sale in any of its 400 daily periods fitted$"):
        training.fit_series(never, settings)


def test_too_short_for_the_seasonal_part_fits_without_it(velvet, settings):
    """The last 22 selling days of a real series: too few for SARIMA's weekly part (2 x 7 + 10), enough
    for the same orders without it; a longer history keeps the seasonal part."""
    young = velvet[velvet > 0].iloc[-22:].asfreq("D", fill_value=0.0).rename("young")
    fitted = training.fit_series(young, settings)
    assert fitted.spec.seasonal_order == (0, 0, 0, 0) and tuple(fitted.spec.order) in settings.candidate_orders
    fc = fitted.forecast(7, (0.8,))
    assert np.isfinite(fc[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()).all()
    assert training.fit_series(velvet[velvet > 0].iloc[-30:].asfreq("D", fill_value=0.0), settings).spec.seasonal_order == (0, 1, 1, 7)


def test_unknown_series_is_a_key_error(iowa_frame):
    with pytest.raises(KeyError, match="no rows"):
        training.daily_series(iowa_frame, "NOPE", END)


def test_closure_holidays_are_learned_and_applied(velvet, settings):
    """Memorial Day 2025 (Mon 26 May) sold ~1 % of a normal Monday: the model must not forecast a Monday.
    The calendar is the `holidays` package's (US, Iowa); each holiday has its own learned ratio."""
    names = holiday_effects.holiday_names(("US", "IA"), velvet.index.min(), velvet.index.max())
    assert names[pd.Timestamp("2024-12-25")] == "Christmas Day" and names[pd.Timestamp("2025-05-26")] == "Memorial Day"
    history = velvet[: pd.Timestamp("2025-05-23")]  # data through Fri 23 May; forecast Sat 24 .. Fri 30
    effect = holiday_effects.holiday_effect(history, names[names.index <= history.index.max()])
    memorial = effect["Memorial Day"]
    assert 0 <= memorial["low"] <= memorial["factor"] <= memorial["high"] and memorial["factor"] < 0.5
    fc = training.fit_series(history, settings).forecast(7, (0.8,)).set_index("forecast_date")
    monday, tuesday = fc.loc[pd.Timestamp("2025-05-26")], fc.loc[pd.Timestamp("2025-05-27")]
    assert monday["yhat"] < 0.25 * tuesday["yhat"]
    assert monday["yhat_lower"] <= monday["yhat"] <= monday["yhat_upper"]
    without = training.fit_series(history, dataclasses.replace(settings, holidays=None)).forecast(7, (0.8,))
    assert without.set_index("forecast_date").loc[pd.Timestamp("2025-05-26"), "yhat"] > 0.5 * tuesday["yhat"]
    assert velvet.loc["2025-05-26"] < 0.1 * velvet.loc["2025-05-27"]  # what actually happened


def test_a_reload_leaves_out_the_holidays_training_left_out(velvet, settings):
    """A stop-start seller with sales on holidays but never on the same weekday a week before or after
    one: no holiday ratio can be learned, but training still left the holidays out. The recorded version
    names the calendar, so refiltering it (how a champion forecasts new days, and how its backtest
    refits) leaves out the same days and gives the fit's own forecast."""
    rng = np.random.default_rng(3)
    y = velvet.where(rng.random(len(velvet)) < 0.5, 0.0)  # real Black Velvet days, half of them kept
    names = holiday_effects.holiday_names(("US", "IA"), y.index.min(), y.index.max())
    week = pd.Timedelta(days=7)
    y[y.index.isin(names.index - week) | y.index.isin(names.index + week)] = 0.0
    y[names.index] = velvet[names.index].where(velvet[names.index] > 0, 500.0)
    assert holiday_effects.holiday_effect(y, names) == {}
    fitted = training.fit_series(y, settings)
    assert fitted.spec.holiday_effect == {} and fitted.spec.holidays == ("US", "IA")
    spec = training.ModelSpec.from_dict(fitted.spec.to_dict())
    pd.testing.assert_frame_equal(training.forecast_with_spec(y, spec, 7, (0.8, 0.95)), fitted.forecast(7, (0.8, 0.95)), rtol=1e-9)


def test_holiday_categories_widen_the_calendar(velvet, settings, config):
    """A calendar with the US `unofficial` category holds Christmas Eve and New Year's Eve; training leaves
    them out too, records the categories in its key, and a reloaded version refilters the same days."""
    assert settings.holidays == ("US", "IA")  # the default calendar as before categories existed
    unofficial = config.forecast.model_copy(update={"holidays": config.forecast.holidays.model_copy(update={"categories": ("public", "unofficial")})})
    assert training.settings_for(unofficial, DAILY).holidays == ("US", "IA", "public,unofficial")
    names = holiday_effects.holiday_names(("US", "IA", "public,unofficial"), pd.Timestamp("2024-12-20"), pd.Timestamp("2025-01-02"))
    assert {names[pd.Timestamp("2024-12-24")], names[pd.Timestamp("2024-12-31")]} == {"Christmas Eve", "New Year's Eve"}
    assert pd.Timestamp("2024-12-24") not in holiday_effects.holiday_names(("US", "IA"), pd.Timestamp("2024-12-20"), pd.Timestamp("2025-01-02")).index
    assert holiday_effects.is_package_calendar(("US", "IA", "public,unofficial")) and holiday_effects.is_package_calendar(("CN", ""))
    assert not holiday_effects.is_package_calendar(("Memorial Day", "Christmas Day"))
    wider = dataclasses.replace(settings, holidays=("US", "IA", "public,unofficial"))
    fitted = training.fit_series(velvet, wider)
    assert fitted.spec.holidays == ("US", "IA", "public,unofficial") and "Christmas Eve" in fitted.spec.holiday_effect
    spec = training.ModelSpec.from_dict(fitted.spec.to_dict())
    pd.testing.assert_frame_equal(training.forecast_with_spec(velvet, spec, 7, (0.8,)), fitted.forecast(7, (0.8,)), rtol=1e-9)
    assert fitted.spec.params != training.fit_series(velvet, settings).spec.params  # more days left out


def test_a_closure_seen_once_widens_the_interval_not_the_point(velvet, settings):
    """Black Velvet's stores closed on Christmas Day 2023, the only Christmas in a history from 2023: one
    sighting does not move the forecast of Christmas 2024, but its 80 % interval must reach down towards
    a closure (it held the ordinary Wednesday's sales only, and the day sold nothing)."""
    christmas = pd.Timestamp("2024-12-25")
    history = velvet[: pd.Timestamp("2024-12-21")]
    effect = training.fit_series(history, settings).spec.holiday_effect["Christmas Day"]
    assert effect["n"] == 1.0 and effect["low"] < 0.05
    wide = training.fit_series(history, settings).forecast(7, (0.8,)).set_index("forecast_date").loc[christmas]
    fitted = training.fit_series(history, settings)
    del fitted.spec.holiday_effect["Christmas Day"]  # as if never seen: the ordinary Wednesday
    ordinary = fitted.forecast(7, (0.8,)).set_index("forecast_date").loc[christmas]
    assert wide["yhat"] == pytest.approx(ordinary["yhat"]) and wide["yhat_upper"] == pytest.approx(ordinary["yhat_upper"])
    assert wide["yhat_lower"] == pytest.approx(ordinary["yhat_lower"] * effect["low"] ** 0.5)
    assert wide["yhat_lower"] <= velvet[christmas] <= wide["yhat_upper"] and not ordinary["yhat_lower"] <= velvet[christmas]


def test_fits_run_with_one_blas_thread(velvet, settings, monkeypatch):
    """Tiny state space matrices: BLAS threads only contend (two parallel fits were 3x slower with them)."""
    from threadpoolctl import threadpool_info

    seen = []
    original = training._fit_one

    def spy(*args, **kwargs):
        seen.append({i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"})
        return original(*args, **kwargs)

    def blas_threads() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    monkeypatch.setattr(training, "_fit_one", spy)
    training._blas_controller()  # statsmodels (and scipy's BLAS) loaded, so `before` sees every library
    before = blas_threads()
    training.fit_series(velvet, settings)
    assert seen and all(threads == {1} for threads in seen)
    assert blas_threads() == before  # the process's setting is back after the fit


def test_targeted_search_stops_at_the_first_stable_candidate(velvet, settings):
    targeted = training.fit_series(velvet, settings)
    assert settings.order_search == "first_stable"
    assert [c["order"] for c in targeted.candidates] == [list(settings.candidate_orders[0])]
    full = training.fit_series(velvet, dataclasses.replace(settings, order_search="aic"))
    assert [c["order"] for c in full.candidates] == [list(o) for o in settings.candidate_orders]
    best = min((c for c in full.candidates if c["rejected"] is None), key=lambda c: c["aic"])
    assert list(full.spec.order) == best["order"]


def test_rejected_candidates_fall_back_to_safe_orders(velvet, settings):
    """A candidate list whose every order is rejected (here: unusable AR(5) with 5 iterations, explosive
    guard tight) still yields a stable model from the safe orders, never an unstable one."""
    odd = dataclasses.replace(settings, candidate_orders=((5, 2, 5),), max_iter=5)
    fitted = training.fit_series(velvet, odd)
    tried = [c["order"] for c in fitted.candidates]
    assert tried[0] == [5, 2, 5]
    assert fitted.candidates[0]["rejected"] is not None or fitted.spec.order == (5, 2, 5)
    if fitted.spec.order != (5, 2, 5):
        assert list(fitted.spec.order) in ([0, 1, 1], [0, 1, 0])
    assert np.all(np.abs(fitted.results.maroots) > 1) if len(fitted.results.maroots) else True


def veg_daily(series: str, start: str, end: str) -> pd.Series:
    """One item of the shipped vegetables daily panel (kg), from `start` to `end`, on a daily grid."""
    frame = pd.read_csv(ROOT / "include/data/veg_supermarket_daily_kg.csv", parse_dates=["date"])
    frame = frame[(frame["series"] == series) & frame["date"].between(start, end)]
    return frame.set_index("date")["value"].asfreq("D").fillna(0.0).rename(series)


@pytest.fixture(scope="module")
def stop_start_pepper():
    """螺丝椒 (peppers, kg) from the shipped vegetables panel, 2023-02-02 to 2023-06-02: a series that
    goes out of stock for weeks and comes back, 121 days."""
    return veg_daily("螺丝椒", "2023-02-02", "2023-06-02")


def test_a_rejected_warm_start_is_retried_cold(stop_start_pepper, settings):
    """Warm-started from the previous backtest fold's estimate (both MA coefficients near the unit circle),
    the airline model's estimate forecasts an explosion; started cold it is the usual stable fit."""
    only_airline = dataclasses.replace(settings, candidate_orders=((0, 1, 1),))
    warm = {"[0, 1, 1]": {"ma.L1": -0.9945835854353374, "ma.S.L7": 0.9910599430529385}}
    fitted = training.fit_series(stop_start_pepper, only_airline, start_params=warm)
    first, second = fitted.candidates
    assert first["warm_start"] and first["rejected"].startswith("explosive forecast")
    assert "warm_start" not in second and second["rejected"] is None
    assert fitted.spec.order == (0, 1, 1) and fitted.spec.seasonal_order == (0, 1, 1, 7)
    assert fitted.spec == training.fit_series(stop_start_pepper, only_airline).spec  # the cold fit itself


def test_the_last_resort_is_a_random_walk_without_season(stop_start_pepper, settings):
    """When every seasonal plan is rejected (here: the seasonal MA of (0,1,0) at the unit circle, the
    airline model over a tight explosion guard), the fit is a log-scale random walk, which has no
    coefficient to leave the stable region: a model, not an error."""
    # The airline model at its likelihood estimate: the multi-step step lowers this series' peak under
    # the guard, and the case is about what follows when every seasonal plan is rejected.
    tight = dataclasses.replace(settings, candidate_orders=((0, 1, 0),), explosion_factor=0.8, multi_step_horizon=0)
    fitted = training.fit_series(stop_start_pepper, tight)
    reasons = [(c["order"], c.get("seasonal_order"), c["rejected"]) for c in fitted.candidates]
    assert reasons[0] == ([0, 1, 0], None, "non-invertible seasonal MA part")
    assert reasons[1][0] == [0, 1, 1] and reasons[1][2].startswith("explosive forecast")
    assert reasons[2] == ([0, 1, 0], [0, 0, 0, 0], None)
    assert fitted.spec.label == "SARIMA(0, 1, 0)x(0, 0, 0, 0)" and fitted.spec.params == {}
    fc = fitted.forecast(7, (0.8,))
    assert np.isfinite(fc[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()).all()
    assert fc["yhat"].max() <= 0.8 * stop_start_pepper.max()  # the guard the seasonal plans failed
    assert fc["yhat_upper"].is_monotonic_increasing  # a random walk's uncertainty grows with the horizon
    # A recorded random walk refilters and forecasts like any other spec (the served model's path).
    again = training.forecast_with_spec(stop_start_pepper, fitted.spec, 7, (0.8,))
    pd.testing.assert_frame_equal(again, fc, rtol=1e-9)


def test_zero_heavy_series_forecasts_its_zero_probability():
    """A product selling on ~30 % of days, with the shipped config: its median is 0 (hurdle), its upper
    bound is not (the shipped `closure_share` must not close a weekday the 80 % interval does not)."""
    rng = np.random.default_rng(3)
    days = pd.date_range("2024-01-01", periods=364, freq="D")
    sells = rng.random(364) < 0.3
    y = pd.Series(np.where(sells, rng.lognormal(2.0, 0.4, 364), 0.0), index=days, name="sparse")
    settings = dataclasses.replace(training.settings_for(load_config(write_config_tmp()).forecast, DAILY), holidays=None)
    fitted = training.fit_series(y, settings)
    fc = fitted.forecast(7, (0.8,))
    pi = fc["forecast_date"].dt.day_of_week.map(lambda d: fitted.spec.zero_share[zeros.WEEKDAYS[d]])
    assert pi.mean() > 0.5
    # The median is 0 exactly where a sale is less likely than not; the 90 % quantile is a sale where
    # P(no sale) < 0.9 and 0 where it is not.
    assert ((fc["yhat"] == 0) == (pi >= 0.5)).all() and (fc["yhat"] == 0).any()
    assert ((fc["yhat_upper"] > 3) == (pi < 0.9)).all() and (pi < 0.9).any()
    # A mostly-selling series keeps a positive median.
    dense = pd.Series(np.where(rng.random(364) < 0.9, rng.lognormal(2.0, 0.4, 364), 0.0), index=days, name="dense")
    assert (training.fit_series(dense, settings).forecast(7, (0.8,))["yhat"] > 3).all()


def test_weekly_series_keeps_its_weekday(config):
    """A weekly panel dated on Fridays: laid on W-FRI, forecast on the following Fridays, no season."""
    fridays = pd.date_range("2021-01-01", periods=150, freq="W-FRI")
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"sales_date": fridays, "series_id": "store 1", "value": 1000 + rng.normal(0, 50, 150).cumsum()})
    cadence = weekly("FRI")
    y = training.period_series(frame, "store 1", fridays[-1] + pd.Timedelta(days=1), cadence)
    assert y.index.freqstr == "W-FRI" and len(y) == 150
    s = training.settings_for(config.forecast, cadence)
    assert s.seasonal_order == (0, 0, 0, 0) and s.candidate_orders[0] == (0, 1, 1)
    fc = training.fit_series(y, s).forecast(4, (0.8,))
    assert list(fc["forecast_date"]) == list(pd.date_range(fridays[-1] + pd.Timedelta(days=7), periods=4, freq="W-FRI"))
    assert (fc["forecast_date"].dt.day_of_week == 4).all()
    assert fc["yhat"].between(0.5 * y.iloc[-1], 1.5 * y.iloc[-1]).all()


def write_config_tmp():
    """A config file in a fresh temporary folder."""
    import tempfile
    from pathlib import Path

    return write_config(Path(tempfile.mkdtemp()))


def test_a_series_that_always_sells_the_same_amount_is_forecast_as_it_is():
    """A slow mover selling 0 or 1 unit a day: on the log scale every sale is 0, so no ARIMA has a finite
    likelihood. It gets the noise-free random walk at 1 unit with the hurdle for days without a sale,
    instead of a failed fit; its recorded spec forecasts the same from new data."""
    rng = np.random.default_rng(5)
    days = pd.date_range("2024-01-01", periods=364, freq="D")
    y = pd.Series((rng.random(364) < 0.4).astype(float), index=days, name="one unit")
    settings = dataclasses.replace(training.settings_for(load_config(write_config_tmp()).forecast, DAILY), holidays=None)
    fitted = training.fit_series(y, settings)
    assert fitted.spec.order == (0, 1, 0) and fitted.spec.params == {} and np.isnan(fitted.spec.aic)
    fc = fitted.forecast(7, (0.8,))
    pi = fc["forecast_date"].dt.day_of_week.map(lambda d: fitted.spec.zero_share[zeros.WEEKDAYS[d]])
    assert set(fc["yhat"]) <= {0.0, 1.0} and ((fc["yhat"] == 0) == (pi >= 0.5)).all()
    assert (fc["yhat_upper"] <= 1.0 + 1e-9).all() and np.isfinite(fc.drop(columns="forecast_date").to_numpy()).all()
    again = training.forecast_with_spec(y, training.ModelSpec.from_dict(fitted.spec.to_dict()), 7, (0.8,))
    pd.testing.assert_frame_equal(again, fc)


def test_a_one_coefficient_order_is_fitted_to_the_maximum_likelihood(veg_weekly):
    """The scalar search of a one-coefficient order finds statsmodels' own `fit` optimum on real weekly
    series: the local level (0,1,1) to its coefficient. The AR(1) with a constant is estimated in closed
    form: the constant is the sample mean of the observed periods, the coefficient the least-squares one
    over consecutive observed periods (checked here by numpy's lstsq, independently). Neither is the
    maximum-likelihood value, but the likelihood stays within what a likelihood-ratio test at 5 % accepts
    (1.92 units) of statsmodels' two-parameter fit on every series."""
    ys, _ = veg_weekly
    for y in ys:
        endog = state_space.to_model_scale(y)
        mine = training._fit_one(endog, (0, 1, 1), (0, 0, 0, 0), 50, None)
        model = state_space.sarimax(endog, (0, 1, 1), (0, 0, 0, 0))
        theirs = model.filter(model.fit(disp=False, return_params=True))  # scipy's default tolerance
        assert mine.llf >= theirs.llf - 1e-6 and abs(mine.params[0] - theirs.params[0]) < 1e-3
        ar = training._fit_one(endog, (1, 0, 0), (0, 0, 0, 0), 50, None)
        model = state_space.sarimax(endog, (1, 0, 0), (0, 0, 0, 0))
        full = model.filter(model.fit(disp=False, return_params=True))
        intercept, phi = ar.params
        x = endog - np.nanmean(endog)
        pairs = np.isfinite(x[1:]) & np.isfinite(x[:-1])
        expected = np.linalg.lstsq(x[:-1][pairs, None], x[1:][pairs], rcond=None)[0][0]
        assert phi == pytest.approx(expected, rel=1e-12) and 0 < phi < 1
        assert intercept == pytest.approx(np.nanmean(endog) * (1 - phi))
        assert full.llf - 1.92 < ar.llf <= full.llf + 1e-6


def test_the_mean_reverting_level_is_the_last_years_mean(config, veg_weekly):
    """The weekly pool's AR(1) reverts to the series' mean over the last 52 weeks (its observed periods),
    not over the whole history, and its coefficient is the least-squares one around that mean. On a real
    weekly series whose level was a fifth of today's until a year ago, the member's mean is today's
    level, and the pool's median follows it; with `mean_window_years` 0 (the whole history) it is pulled
    down to the older level. A history shorter than the window, or a last year without a sale, uses all
    observed periods."""
    ys, cadence = veg_weekly
    y = ys[0].copy()
    y.iloc[:-52] *= 0.2  # the level moved up fivefold a year ago
    # Without the year-ago term, which the step a year ago would feed (deviations from a year's mean
    # around it), so the member's mean is the plain mean of what the fit sees.
    s = dataclasses.replace(training.settings_for(config.forecast, cadence), year_ago_lag=0)
    endog = state_space.to_model_scale(training._without_spikes(y, cadence, s.spike_rule)[0])  # what the fit sees
    recent = float(np.nanmean(endog[-52:]))
    assert recent > float(np.nanmean(endog)) + 0.3
    assert s.mean_window_years == 1.0
    fitted = training.fit_series(y, s)
    ar = fitted.spec.member_specs()[1]
    assert ar.order == (1, 0, 0) and ar.trend == "c"
    phi = ar.params["ar.L1"]
    assert ar.params["intercept"] / (1 - phi) == pytest.approx(recent, rel=1e-12)
    x = endog - recent
    pairs = np.isfinite(x[1:]) & np.isfinite(x[:-1])
    assert phi == pytest.approx(np.linalg.lstsq(x[:-1][pairs, None], x[1:][pairs], rcond=None)[0][0], rel=1e-12)
    whole = training.fit_series(y, dataclasses.replace(s, mean_window_years=0.0))
    old_ar = whole.spec.member_specs()[1]
    assert old_ar.params["intercept"] / (1 - old_ar.params["ar.L1"]) == pytest.approx(float(np.nanmean(endog)), rel=1e-12)
    # 12 weeks ahead the AR(1) has mostly reverted: to today's level with the window, far below without.
    last_year_median = float(np.exp(recent))
    assert fitted.forecast(12, (0.8,))["yhat"].iloc[-1] > 0.8 * last_year_median
    assert whole.forecast(12, (0.8,))["yhat"].iloc[-1] < fitted.forecast(12, (0.8,))["yhat"].iloc[-1]
    # The recorded spec reproduces the fit's forecast (the mean is in the recorded intercept).
    pd.testing.assert_frame_equal(training.forecast_with_spec(y, fitted.spec, 12, (0.8,)), fitted.forecast(12, (0.8,)), rtol=1e-9)
    # Fallbacks: a short history (the whole of it), a last year without observations (all observed periods).
    short = endog[-40:]
    assert training._recent_mean(short, 52) == pytest.approx(float(np.nanmean(short)))
    quiet = np.r_[endog[:-52], np.full(52, np.nan)]
    assert training._recent_mean(quiet, 52) == pytest.approx(float(np.nanmean(endog[:-52])))


def test_an_ar1_with_too_few_consecutive_sales_falls_back_to_the_likelihood_search():
    """A weekly series selling every other week has no two consecutive observed periods: least squares
    has nothing to go on, and the coefficient comes from the likelihood search instead (statsmodels'
    filter bridges the gaps), still within the stationary range."""
    rng = np.random.default_rng(5)
    endog = np.full(120, np.nan)
    endog[::2] = np.log(100) + 0.3 * rng.standard_normal(60)
    assert training._ar1_least_squares(endog - np.nanmean(endog)) is None
    fitted = training._fit_one(endog, (1, 0, 0), (0, 0, 0, 0), 50, None)
    model = state_space.sarimax(endog, (1, 0, 0), (0, 0, 0, 0))
    mean = np.nanmean(endog)
    grid = [float(model.loglike(np.array([mean * (1 - v), v]))) for v in np.linspace(-0.99, 0.99, 199)]
    assert -1 < fitted.params[1] < 1 and fitted.llf >= max(grid) - 1e-6


def test_an_order_without_differencing_estimates_its_level():
    """(1,0,0) on log sales gets a constant: without it the model reverts to log 1 (one unit)."""
    assert state_space.trend_for((1, 0, 0), (0, 0, 0, 0)) == "c"
    assert state_space.trend_for((1, 0, 1), (0, 1, 1, 7)) == "n" and state_space.trend_for((0, 1, 1), (0, 0, 0, 0)) == "n"
    rng = np.random.default_rng(11)
    weeks = pd.date_range("2022-01-02", periods=120, freq="W-SUN")
    y = pd.Series(np.exp(np.log(500) + 0.2 * rng.standard_normal(120)), index=weeks, name="steady")
    s = training.ModelSettings(cadence=weekly("SUN"), candidate_orders=((1, 0, 0),), seasonal_order=(0, 0, 0, 0), horizon=12)
    fitted = training.fit_series(y, s)
    assert fitted.spec.trend == "c" and "intercept" in fitted.spec.params
    assert fitted.forecast(12, (0.8,))["yhat"].between(350, 700).all()


def test_weekly_forecast_pools_a_local_and_a_mean_reverting_level(config, veg_weekly):
    """The shipped weekly model: (0,1,1) and (1,0,0) with a constant, each fitted; the forecast is the
    equal-weight mixture of their distributions (with the shared zero probability). Each published
    quantile is where the mixture's distribution function reaches its probability, and lies between the
    members' own quantiles. The recorded spec holds both members, round-trips through JSON, reproduces the
    forecast from the data, and warm-starts both members."""
    from scipy import special

    ys, cadence = veg_weekly
    s = training.settings_for(config.forecast, cadence)
    assert s.combine == 2 and s.candidate_orders[:2] == ((0, 1, 1), (1, 0, 0))
    y = ys[0]
    fitted = training.fit_series(y, s)
    members = fitted.spec.member_specs()
    assert [m.order for m in members] == [(0, 1, 1), (1, 0, 0)] and [m.trend for m in members] == ["n", "c"]
    assert fitted.spec.label == "pool of SARIMA(0, 1, 1)x(0, 0, 0, 0) and SARIMA(1, 0, 0)x(0, 0, 0, 0)+c"
    fc = fitted.forecast(7, (0.8, 0.95))
    singles = [training.fit_series(y, dataclasses.replace(s, combine=1, candidate_orders=(o,))).forecast(7, (0.8, 0.95)) for o in ((0, 1, 1), (1, 0, 0))]
    moments = [fitted.moments, fitted.others[0][1]]
    pi = fitted.spec.zero_share["all"]

    def cdf(values: np.ndarray, level: float) -> np.ndarray:
        inner = [special.ndtr((np.log(values) - mean[:7]) / (training._z_scale(m, level) * se[:7])) for (mean, se), m in zip(moments, members, strict=True)]
        return pi + (1 - pi) * np.mean(inner, axis=0)

    np.testing.assert_allclose(cdf(fc["yhat"].to_numpy(), 0.8), 0.5, atol=1e-9)
    assert ((fc["yhat"] >= np.minimum(singles[0]["yhat"], singles[1]["yhat"]) - 1e-9) & (fc["yhat"] <= np.maximum(singles[0]["yhat"], singles[1]["yhat"]) + 1e-9)).all()
    for suffix, level in (("", 0.8), ("_95", 0.95)):
        # Each interval is the equal-tailed one or, where narrower, [0, q_level] (see the next test).
        lower, upper = fc[f"yhat_lower{suffix}"].to_numpy(), fc[f"yhat_upper{suffix}"].to_numpy()
        from_zero = lower == 0
        np.testing.assert_allclose(cdf(upper, level), np.where(from_zero, level, 0.5 + level / 2), atol=1e-9)
        with np.errstate(divide="ignore"):
            np.testing.assert_allclose(cdf(lower, level)[~from_zero], 0.5 - level / 2, atol=1e-9)
    spec = training.ModelSpec.from_dict(fitted.spec.to_dict())
    assert spec == fitted.spec
    again = training.forecast_with_spec(y, spec, 7, (0.8, 0.95))
    pd.testing.assert_frame_equal(again, fc, rtol=1e-6)
    assert set(training.warm_start_params(spec)) == {"[0, 1, 1]", "[1, 0, 0]"}
    warm = training.fit_series(y.iloc[:-1], s, start_params=training.warm_start_params(spec))
    assert [m.order for m in warm.spec.member_specs()] == [(0, 1, 1), (1, 0, 0)]


def test_an_interval_starts_at_zero_where_that_is_narrower(config, veg_weekly, monkeypatch):
    """Sales are never negative, so [0, q_l] holds the same probability l as the equal-tailed interval
    [q_(1-l)/2, q_(1+l)/2]; the published interval is the narrower of the two where no sale is less likely
    than the lower tail. On a real weekly series (the pool's forecast widens with the horizon): the first
    week keeps its equal-tailed interval, later ones start at 0, each narrower than the equal-tailed one,
    the median unchanged and the 95 % interval holding the 80 % one."""
    ys, cadence = veg_weekly
    fitted = training.fit_series(ys[0], training.settings_for(config.forecast, cadence))
    assert fitted.spec.zero_share["all"] == 0.0
    published = fitted.forecast(7, (0.8, 0.95))
    monkeypatch.setattr(training, "_from_zero_where_narrower", lambda *args: None)
    tailed = fitted.forecast(7, (0.8, 0.95))
    np.testing.assert_array_equal(published["yhat"], tailed["yhat"])
    for suffix in ("", "_95"):
        lower, upper = published[f"yhat_lower{suffix}"], published[f"yhat_upper{suffix}"]
        from_zero = (lower == 0).to_numpy()
        assert not from_zero[0] and from_zero[1:].all(), suffix
        assert (upper - lower)[from_zero].lt((tailed[f"yhat_upper{suffix}"] - tailed[f"yhat_lower{suffix}"])[from_zero]).all()
        pd.testing.assert_series_equal(upper[~from_zero], tailed[f"yhat_upper{suffix}"][~from_zero])
        assert (tailed[f"yhat_lower{suffix}"] > 0).all()
    assert (published["yhat_lower_95"] <= published["yhat_lower"]).all() and (published["yhat_upper_95"] >= published["yhat_upper"]).all()
    # Each level has its own calibrated scale: with the 80 % one at its widest bound and the 95 % one at
    # its narrowest, the 80 % interval starts at 0 where the 95 % one would not; the 95 % is widened to hold it.
    monkeypatch.undo()
    z = {"0.8": 2.0 * 1.2815515655446004, "0.95": 0.5 * 1.959963984540054}
    skewed = dataclasses.replace(fitted.spec, z=z, members=[{**m, "z": z} for m in fitted.spec.members])
    fc = training.quantile_frame(skewed, fitted.last_date, 7, (0.8, 0.95), [fitted.moments, fitted.others[0][1]])
    assert (fc["yhat_lower"] == 0).any()
    assert (fc["yhat_lower_95"] <= fc["yhat_lower"]).all() and (fc["yhat_upper_95"] >= fc["yhat_upper"]).all()


def test_an_interval_from_zero_needs_no_sale_to_be_less_likely_than_its_lower_tail():
    """Where the probability of no sale reaches the lower tail, the equal-tailed interval starts at 0
    already; [0, q_l] would then lower the upper bound on that probability alone, so it is not used."""
    columns = {"yhat_lower": np.array([1.0, 0.0, 4.0]), "yhat_upper": np.array([10.0, 10.0, 6.0])}
    training._from_zero_where_narrower(columns, "", np.array([5.0, 5.0, 5.0]), np.array([0.05, 0.2, 0.0]), 0.8)
    # narrower and pi below 0.1 / pi above 0.1 / [0, 5] wider than [4, 6]
    np.testing.assert_array_equal(columns["yhat_lower"], [0.0, 0.0, 4.0])
    np.testing.assert_array_equal(columns["yhat_upper"], [5.0, 10.0, 6.0])


def test_a_pool_of_one_model_is_that_model():
    """The mixture quantile of identical members is the member's own quantile (the search is exact)."""
    pi = np.array([0.0, 0.3, 0.6])
    mean, se = np.array([2.0, 2.5, 3.0]), np.array([0.4, 0.5, 0.6])
    ps = np.array([0.1, 0.5, 0.9])
    pooled = training._pooled_quantiles(ps, pi, np.array([mean, mean]), np.tile(1.1 * se, (3, 2, 1)))
    for i, p in enumerate(ps):
        np.testing.assert_allclose(pooled[i], training._hurdle_quantile(p, pi, mean, se, 1.1), rtol=1e-12)


def test_the_scalar_search_likelihood_does_not_need_the_symmetry_step(veg_weekly):
    """`_fit_one` searches a one-coefficient model with statsmodels' per-period re-symmetrising of the
    state covariance switched off (it is cheaper). On real weekly series with missing weeks, for both
    weekly orders, the likelihood is the same either way across the whole search interval, and the
    model is back on statsmodels' default afterwards."""
    ys, _ = veg_weekly
    for y in ys[:3]:
        endog = state_space.to_model_scale(y)
        for order, extra in (((0, 1, 1), []), ((1, 0, 0), [float(np.nanmean(endog))])):
            default, lean = state_space.sarimax(endog, order, (0, 0, 0, 0)), state_space.sarimax(endog, order, (0, 0, 0, 0))
            lean.ssm.set_stability_method(0)
            for v in np.linspace(-0.99, 0.99, 9):
                params = np.array([*[e * (1 - v) for e in extra], v])
                assert lean.loglike(params) == pytest.approx(default.loglike(params), rel=1e-12, abs=1e-9)
        # The search runs on statsmodels' filter for the AR(1) that least squares cannot take (no two
        # selling weeks in a row); the local level has a filter of its own (`local_level_filter`).
        sparse = endog.copy()
        sparse[::2] = np.nan
        fitted = training._fit_one(sparse, (1, 0, 0), (0, 0, 0, 0), 50, None)
        assert fitted.model.ssm.stability_method == state_space.sarimax(sparse, (1, 0, 0), (0, 0, 0, 0)).ssm.stability_method != 0


def test_the_pooled_quantile_solves_the_mixture_cdf_even_between_far_apart_members():
    """Members 10 log-units apart with tight spreads: between them the mixture's density is ~0, where a
    bare Newton step would jump far outside the bracket. The safeguarded search still lands on the
    quantile: the mixture CDF there equals the target."""
    from scipy import special

    pi = np.array([0.0, 0.2])
    means = np.array([[0.0, 0.0], [10.0, 10.0]])
    ps = np.array([0.1, 0.45, 0.5, 0.55, 0.9])
    sds = np.tile(np.array([[0.1, 0.1], [0.3, 0.3]]), (len(ps), 1, 1))
    pooled = training._pooled_quantiles(ps, pi, means, sds)
    for i, p in enumerate(ps):
        for j in range(2):
            if p <= pi[j]:
                assert pooled[i, j] == 0.0
                continue
            inner = (p - pi[j]) / (1 - pi[j])
            cdf = special.ndtr((np.log(pooled[i, j]) - means[:, j]) / sds[i, :, j]).mean()
            # In the gap the CDF is flat at 1/2: any point there is "the" median to float precision.
            assert abs(cdf - inner) < 1e-9, (p, j, cdf, inner)


def test_a_combination_fills_a_rejected_member_from_the_next_candidate(config, veg_weekly, monkeypatch):
    """The first candidate's fit fails (an LU error, as statsmodels raises on bad starts): the next two
    stable candidates make the combination, and the failure is listed among the candidates tried."""
    ys, cadence = veg_weekly
    s = dataclasses.replace(training.settings_for(config.forecast, cadence), candidate_orders=((2, 1, 2), (0, 1, 1), (1, 0, 0)))
    real_fit = training._fit_one

    def failing(endog, order, seasonal, *rest):
        if tuple(order) == (2, 1, 2):
            raise np.linalg.LinAlgError("LU decomposition error")
        return real_fit(endog, order, seasonal, *rest)

    monkeypatch.setattr(training, "_fit_one", failing)
    fitted = training.fit_series(ys[1], s)
    assert [m.order for m in fitted.spec.member_specs()] == [(0, 1, 1), (1, 0, 0)]
    assert fitted.candidates[0]["order"] == [2, 1, 2] and "LinAlgError" in fitted.candidates[0]["rejected"]


def test_a_legacy_spec_without_a_constant_still_forecasts(velvet, settings):
    """Versions recorded before constants (no `trend`, a stationary order without an intercept) load and
    forecast as they were fitted."""
    endog = state_space.to_model_scale(velvet)
    res = state_space.sarimax(endog, (1, 0, 0), (0, 0, 0, 0), "n").fit(disp=False, maxiter=50)
    data = {
        "order": [1, 0, 0], "seasonal_order": [0, 0, 0, 0], "closed_weekdays": ["sat"], "z": {"0.8": 1.28},
        "params": dict(zip(res.model.param_names, map(float, res.params), strict=True)), "aic": float(res.aic),
    }
    spec = training.ModelSpec.from_dict(data)
    assert spec.trend == "n" and spec.members == []
    fc = training.forecast_with_spec(velvet, spec, 7, (0.8,))
    assert np.isfinite(fc["yhat"]).all() and len(fc) == 7


def _reshaped(y: pd.Series) -> dict[str, pd.Series]:
    """A real series as other users' data would make it: other units, a short or thinned history, a
    recent level shift, a whole-unit count, a slow mover that sells one unit."""
    n, keep = len(y), np.random.default_rng(3).random(len(y))
    late = np.arange(n) > n - 20
    return {
        "grams to tonnes": y * 1e-7, "cents": y * 1e9, "25 periods": y.iloc[-25:], "a sixth of the periods": y.where(keep < 1 / 6, 0.0),
        "whole units": y.round(), "x50 lately": y * np.where(late, 50.0, 1.0), "/50 lately": y * np.where(late, 0.02, 1.0),
        "one unit": (y > 0).astype(float),
    }


def test_every_fit_is_a_usable_forecast_or_a_series_error(config, velvet, veg_weekly):
    """Real daily, weekly and monthly series, reshaped as other panels would have them: each fit either
    raises an error the pipeline quarantines the series for (pipeline.SERIES_ERRORS), or returns a
    forecast with finite, non-negative quantiles in order (80 % inside 95 %) within the explosion bound,
    which the recorded spec reproduces from the data. A NaN or a negative published value would pass
    the warehouse's types silently."""
    from include.forecasting.frequency import monthly
    from include.forecasting.pipeline import SERIES_ERRORS

    ys, week = veg_weekly
    daily_veg = pd.read_csv(ROOT / "include/data/veg_supermarket_daily_kg.csv", parse_dates=["date"])
    daily_veg = daily_veg.rename(columns={"date": "sales_date", "series": "series_id"})
    months = training.period_series(daily_veg, ys[0].name, daily_veg["sales_date"].max() + pd.Timedelta(days=1), monthly(False))
    cases = [(velvet, DAILY), (ys[0], week), (ys[2], week), (months, monthly(False))]
    fitted_count, refused = 0, []
    for y, cadence in cases:
        s = training.settings_for(config.forecast, cadence)
        for how, reshaped in _reshaped(y).items():
            reshaped = reshaped.rename(f"{y.name}: {how}")
            try:
                fitted = training.fit_series(reshaped, s)
            except SERIES_ERRORS as exc:
                refused.append(str(exc))
                continue
            fitted_count += 1
            fc = fitted.forecast(s.horizon, (0.8, 0.95))
            values = fc.drop(columns="forecast_date")
            assert np.isfinite(values.to_numpy()).all() and (values.to_numpy() >= 0).all(), reshaped.name
            scale = float(values.to_numpy().max()) * 1e-12
            assert (fc["yhat_lower_95"] <= fc["yhat_lower"] + scale).all() and (fc["yhat_lower"] <= fc["yhat"] + scale).all(), reshaped.name
            assert (fc["yhat"] <= fc["yhat_upper"] + scale).all() and (fc["yhat_upper"] <= fc["yhat_upper_95"] + scale).all(), reshaped.name
            assert fc["yhat"].max() <= s.explosion_factor * max(float(reshaped.max()), 1.0), reshaped.name
            again = training.forecast_with_spec(reshaped, training.ModelSpec.from_dict(fitted.spec.to_dict()), s.horizon, (0.8, 0.95))
            np.testing.assert_allclose(again.drop(columns="forecast_date").to_numpy(), values.to_numpy(), rtol=1e-6, atol=scale, err_msg=reshaped.name)
    # Most reshapes are fitted; what is refused is refused for too little history, with a reason.
    assert fitted_count >= 24 and all("too little history" in r for r in refused), refused


@pytest.fixture(scope="module")
def restarted_bok_choy():
    """上海青 from the shipped vegetables panel through 2022-11-01: out of stock for weeks, selling again on
    its last three days."""
    return veg_daily("上海青", "2020-07-01", "2022-11-01")


def test_a_product_selling_again_is_forecast_to_sell_sooner(restarted_bok_choy, settings):
    """After a stock-out the weekday shares trail the restart by weeks; the chain knows the product sold
    yesterday. With it, P(no sale) is lower on every open day and a sale is forecast where the weekday
    shares alone forecast none; closed weekdays stay closed."""
    y = restarted_bok_choy
    assert (y.iloc[-3:] > 0).all() and (y.iloc[-20:-3] == 0).all()
    plain_settings = dataclasses.replace(settings, holidays=None, zero_chain_weight=0.0)
    plain = training.fit_series(y, plain_settings).forecast(7, (0.8,))
    fitted = training.fit_series(y, dataclasses.replace(settings, holidays=None))  # the shipped weight
    chained = fitted.forecast(7, (0.8,))
    assert fitted.spec.zero_chain["last_zero"] == 0.0
    assert (plain["yhat"] == 0).all() and (chained["yhat"] > 0).any()
    closed = chained["forecast_date"].dt.day_of_week.map(lambda d: zeros.WEEKDAYS[d] in fitted.spec.closed_weekdays)
    assert closed.any() and (chained.loc[closed, ["yhat", "yhat_upper"]] == 0).all().all()
    assert (chained.loc[~closed, "yhat_upper"] >= plain.loc[~closed, "yhat_upper"]).all()
    # The recorded version forecasts the same from the same data, and starts from the state of newer data:
    # after a week without a sale (its open days included), the chain makes no sale more likely than the
    # weekday shares do.
    spec = training.ModelSpec.from_dict(fitted.spec.to_dict())
    pd.testing.assert_frame_equal(training.forecast_with_spec(y, spec, 7, (0.8,)), chained)
    later = pd.concat([y, pd.Series(0.0, index=pd.date_range(y.index[-1] + pd.Timedelta(days=1), periods=7))]).rename(y.name)
    after_none = training.forecast_with_spec(later, spec, 7, (0.8,))
    # The weekday shares alone, estimated again from the same newer data as the chain is (no chain weight).
    no_chain = {**spec.zero_rule, "chain_weight": 0.0}
    weekday_only = training.forecast_with_spec(later, dataclasses.replace(spec, zero_chain={}, zero_rule=no_chain), 7, (0.8,))
    assert (after_none["yhat_upper"] <= weekday_only["yhat_upper"]).all()
    assert (after_none["yhat_upper"] < weekday_only["yhat_upper"]).any()


def test_a_legacy_spec_without_a_zero_chain_forecasts_from_weekday_shares(restarted_bok_choy, settings):
    """A version written before the chain (no `zero_chain` in its spec.json) still loads and forecasts
    with the weekday shares alone, as it did when it was fitted."""
    y = restarted_bok_choy
    plain = training.fit_series(y, dataclasses.replace(settings, holidays=None, zero_chain_weight=0.0))
    data = training.fit_series(y, dataclasses.replace(settings, holidays=None)).spec.to_dict()
    assert data.pop("zero_chain")
    assert data.pop("zero_rule")  # newer than the chain: a version without the chain has no rule either
    legacy = training.ModelSpec.from_dict(data)
    assert legacy.zero_chain == {}
    pd.testing.assert_frame_equal(training.forecast_with_spec(y, legacy, 7, (0.8,)), plain.forecast(7, (0.8,)))


def test_a_champion_serving_later_estimates_no_sale_from_the_data_it_forecasts_from(config):
    """黄白菜 (Chinese cabbage, kg, the shipped vegetables weekly panel) sold every week to 2023-05-07,
    then four weeks nothing. A version trained to 2023-05-07 that still serves on 2023-06-04 (its
    candidates rejected) forecast its old sales every week with the share of no sale it was trained with;
    estimated again from the four zero weeks by its recorded rule, no sale is the likelier outcome. A spec
    from before the rule (no `zero_rule`) keeps its trained share; on its own training data the version
    forecasts as the fit did."""
    frame = pd.read_csv(ROOT / "include/data/veg_supermarket_weekly_kg.csv", parse_dates=["date"])
    frame = frame.rename(columns={"date": "sales_date", "series": "series_id"})
    cadence = weekly("SUN")
    served = training.period_series(frame, "黄白菜(2)", pd.Timestamp("2023-06-05"), cadence)
    trained = served.loc[:"2023-05-07"]
    assert (served.iloc[-4:] == 0).all() and (trained.iloc[-8:] > 0).all()
    s = training.settings_for(config.forecast, cadence)
    fitted = training.fit_series(trained, s)
    spec = training.ModelSpec.from_dict(fitted.spec.to_dict())
    assert spec.zero_rule == zeros.zero_rule(s.zero_window, s.zero_halflife, s.zero_recent_days, s.zero_chain_weight, s.chain_weekday_gap, s.closure_share)
    assert fitted.spec.zero_share["all"] < 0.5
    pd.testing.assert_frame_equal(training.forecast_with_spec(trained, spec, 7, (0.8,)), fitted.forecast(7, (0.8,)))
    now = training.forecast_with_spec(served, spec, 7, (0.8,))
    legacy = training.forecast_with_spec(served, dataclasses.replace(spec, zero_rule={}), 7, (0.8,))
    assert (legacy["yhat"] > 5).all()
    assert (now["yhat"] == 0).all() and (now["yhat_upper"] < legacy["yhat_upper"]).all()


def test_zero_shares_follow_a_restart_and_keep_the_weekday_pattern(settings):
    """奶白菜 (a leafy vegetable, kg) was out of stock for three weeks, then sold on each of the 7 days to
    2023-05-17 (and on 6 of the next 7). Each weekday's own recency-weighted share still says no sale
    is more likely than not on every weekday, so the week ahead was forecast 0 throughout. Pooled over
    all open days of the recent past, every weekday's share is lower, the forecast sells on some days,
    and the weekday that went without a sale least often over the window (Saturday) stays the lowest."""
    y = veg_daily("奶白菜", "2020-07-01", "2023-05-17")
    assert (y.iloc[-7:] > 0).all() and (y.iloc[-28:-7] == 0).sum() >= 18
    pooled = training.fit_series(y, settings)
    own = training.fit_series(y, dataclasses.replace(settings, zero_recent_days=0.0))
    assert min(own.spec.zero_share.values()) > 0.5
    assert all(pooled.spec.zero_share[d] < own.spec.zero_share[d] for d in zeros.WEEKDAYS)
    assert np.mean([own.spec.zero_share[d] - pooled.spec.zero_share[d] for d in zeros.WEEKDAYS]) > 0.1
    window = y.iloc[-settings.zero_window * 7 :]
    long_run = (window == 0).groupby(window.index.day_of_week).mean()
    assert min(pooled.spec.zero_share, key=pooled.spec.zero_share.get) == zeros.WEEKDAYS[long_run.idxmin()] == "sat"
    assert (own.forecast(7, (0.8,))["yhat"] > 0).sum() == 0 < (pooled.forecast(7, (0.8,))["yhat"] > 0).sum()


def test_a_mostly_closed_weekday_keeps_its_own_share(iowa_frame, settings):
    """Iowa's Saturdays are closed, but BLACK VELVET sold on Saturdays 21 and 28 December 2024 (around
    Christmas). Forecasting from 11 January 2025 the Saturday share of no sale is between 0.5 and the
    closure rule's 0.9, far above the other weekdays'. The chain sees those Saturday zeros as one-day
    stock-outs that a sale ends: blended in, it forecast a full day's sales on the Saturday (the data
    has 0). The weekday keeps its own share, and the version records the rule."""
    y = training.daily_series(iowa_frame, "BLACK VELVET", pd.Timestamp("2025-01-11"))
    fitted = training.fit_series(y, settings)
    assert "sat" not in fitted.spec.closed_weekdays and 0.5 < fitted.spec.zero_share["sat"] < 0.9
    fc = fitted.forecast(7, (0.8,))
    sat = fc["forecast_date"].dt.day_of_week == 5
    assert fc.loc[sat, "yhat"].tolist() == [0.0] and (fc.loc[~sat, "yhat"] > 0).sum() >= 5
    blended = training.fit_series(y, dataclasses.replace(settings, chain_weekday_gap=0.0)).forecast(7, (0.8,))
    assert blended.loc[sat, "yhat"].iloc[0] > 500
    pd.testing.assert_frame_equal(blended.loc[~sat], fc.loc[~sat])  # the other weekdays as before
    spec = training.ModelSpec.from_dict(fitted.spec.to_dict())
    assert spec.zero_chain["weekday_gap"] == settings.chain_weekday_gap == 0.5
    pd.testing.assert_frame_equal(training.forecast_with_spec(y, spec, 7, (0.8,)), fc)


def test_a_champion_trained_out_of_stock_forecasts_sales_once_the_product_is_back(settings):
    """上海青 sold nothing for a month to 29 October 2022: a version trained then has every weekday closed.
    Serving on 8 November, after 8 of 10 days with a sale, it finds the closed weekdays again as a refit
    does and forecasts sales on most days; with the closed weekdays it was trained with (a spec from
    before the rule) it forecast 0, interval [0, 0], every day until a candidate passed the gate."""
    y = veg_daily("上海青", "2020-07-01", "2022-11-08")
    plain = dataclasses.replace(settings, holidays=None)
    old = training.fit_series(y.loc[:"2022-10-29"], plain).spec
    assert old.closed_weekdays == zeros.WEEKDAYS and (y.loc["2022-10-30":] > 0).sum() == 8
    served = training.forecast_with_spec(y, old, 7, (0.8,))
    trained = training.forecast_with_spec(y, dataclasses.replace(old, zero_rule={}), 7, (0.8,))
    assert (trained.drop(columns="forecast_date") == 0).all().all()
    assert (served["yhat"] > 0).sum() >= 4
    refit = training.fit_series(y, plain)
    np.testing.assert_array_equal(served["yhat_upper"] == 0, refit.forecast(7, (0.8,))["yhat_upper"] == 0)


def test_a_champion_serving_later_finds_its_closed_weekdays_again(iowa_frame, settings):
    """BLACK VELVET trained through 14 December 2024 has Saturday closed; the stores then opened on the
    Saturdays before Christmas. Serving on 11 January 2025, the version finds the closed weekdays again
    from the data by its rule, as a refit that day does: Saturday is a mostly closed weekday (median 0,
    its interval open), and each bound is 0 where the refit's is. With the closed weekdays it was trained
    with (a spec from before the rule), Saturday was [0, 0]: right this time, but a product trained out
    of stock would stay at 0 after it is back."""
    y = training.daily_series(iowa_frame, "BLACK VELVET", pd.Timestamp("2025-01-11"))
    old = training.fit_series(y.loc[:"2024-12-14"], settings).spec
    refit = training.fit_series(y, settings)
    assert old.closed_weekdays == ("sat",) and refit.spec.closed_weekdays == ()
    levels = (0.8, 0.95)
    served = training.forecast_with_spec(y, old, 7, levels)
    trained = training.forecast_with_spec(y, dataclasses.replace(old, zero_rule={}), 7, levels)
    expected = refit.forecast(7, levels)
    sat = served["forecast_date"].dt.day_of_week == 5
    assert served.loc[sat, "yhat"].tolist() == [0.0] and served.loc[sat, "yhat_upper"].iloc[0] > 1000
    assert (trained.loc[sat].drop(columns="forecast_date") == 0).all().all()
    for column in ("yhat", "yhat_lower", "yhat_lower_95"):
        np.testing.assert_array_equal(served[column] == 0, expected[column] == 0)


@pytest.fixture(scope="module")
def iowa_weeks(iowa_frame):
    """The shipped Iowa panel summed to weeks ending Sunday, through 2024-11-24 (five weeks before
    Christmas) and the six weeks after it."""
    cadence = weekly("SUN")
    weeks = iowa_frame.assign(sales_date=training.period_label(iowa_frame["sales_date"], cadence))
    weeks = weeks.groupby(["sales_date", "series_id"], as_index=False)["value"].sum()
    return {
        sid: training.period_series(weeks, sid, pd.Timestamp("2025-05-26"), cadence)
        for sid in ("BLACK VELVET", "FIREBALL CINNAMON WHISKEY")
    }, cadence


def test_a_weekly_series_with_a_yearly_peak_gets_the_year_ago_term(config, iowa_weeks):
    """Black Velvet sells a third more in the weeks before Christmas every year: the term is found in its
    history (the weeks a year apart move together), and the forecast made five weeks before Christmas 2024
    rises for the holiday weeks and comes nearer what was sold than the level alone."""
    ys, cadence = iowa_weeks
    s = training.settings_for(config.forecast, cadence)
    assert s.year_ago_lag == 52
    y = ys["BLACK VELVET"]
    train, actual = y[:"2024-11-24"], y["2024-11-25":].iloc[:6].to_numpy()
    fit = training.fit_series(train, s)
    assert fit.spec.year_ago["beta"] > 0.3 and fit.spec.year_ago["t"] >= 2 and fit.spec.year_ago["pairs"] >= 26
    with_term = fit.forecast(6, (0.8,))["yhat"].to_numpy()
    level_only = training.fit_series(train, dataclasses.replace(s, year_ago_lag=0)).forecast(6, (0.8,))["yhat"].to_numpy()
    assert with_term[1] > 1.3 * with_term[0]  # the week before Christmas week, as a year before
    assert np.ptp(level_only) < 0.05 * level_only.mean()  # the level alone is flat
    assert np.abs(actual - with_term).mean() < 0.8 * np.abs(actual - level_only).mean()
    # The champion forecasting from the same data (its recorded term, no refit) gives the same numbers.
    again = training.forecast_with_spec(train, training.ModelSpec.from_dict(fit.spec.to_dict()), 6, (0.8,))
    np.testing.assert_allclose(again["yhat"].to_numpy(), with_term, rtol=1e-9)


def test_no_year_ago_term_without_a_yearly_pattern(config, iowa_weeks, veg_weekly):
    """Fireball's weeks a year apart do not move together, nor do the vegetables' (one shop, seasons that
    move): no term, the same forecast as with the term turned off."""
    ys, cadence = iowa_weeks
    s = training.settings_for(config.forecast, cadence)
    train = ys["FIREBALL CINNAMON WHISKEY"][:"2024-11-24"]
    fit = training.fit_series(train, s)
    assert fit.spec.year_ago == {}
    off = training.fit_series(train, dataclasses.replace(s, year_ago_lag=0))
    np.testing.assert_array_equal(fit.forecast(6, (0.8,))["yhat"], off.forecast(6, (0.8,))["yhat"])
    vegetables, _ = veg_weekly
    assert all(year_ago.year_ago_effect(year_ago.year_ago_deviations(v, s.year_ago_window), 52) == {} for v in vegetables)


def test_a_season_that_ends_every_spring_gets_the_year_ago_term(config):
    """Lotus root (净藕) sells 150-300 kg a week from August to February and 30-80 from April to July, every
    year. Seen from 5 March 2023 each week stands level with its neighbours, so deviations from the local
    level show nothing (no term, a flat forecast); from the year's mean they show the season, which the two
    years before bring back: the forecast falls through March and April as the sales did. A version records
    the window, and the champion forecasting from the same data gives the same numbers."""
    frame = pd.read_csv(ROOT / "include/data/veg_supermarket_weekly_kg.csv", parse_dates=["date"])
    frame = frame.rename(columns={"date": "sales_date", "series": "series_id"})
    cadence = weekly("SUN")
    y = training.period_series(frame, "净藕(1)", frame["sales_date"].max() + pd.Timedelta(days=1), cadence)
    train, actual = y[:"2023-03-05"], y["2023-03-06":].iloc[:8].to_numpy()
    s = training.settings_for(config.forecast, cadence)
    assert s.year_ago_window == 53
    fit = training.fit_series(train, s)
    assert fit.spec.year_ago["t"] >= 2 and fit.spec.year_ago["beta"] > 0.5 and fit.spec.year_ago["window"] == 53
    local = training.fit_series(train, dataclasses.replace(s, year_ago_window=0))
    assert local.spec.year_ago == {}
    with_term, flat = fit.forecast(8, (0.8,))["yhat"].to_numpy(), local.forecast(8, (0.8,))["yhat"].to_numpy()
    assert with_term[-1] < 0.6 * with_term[0] and np.ptp(flat) < 0.05 * flat.mean()
    assert np.abs(actual - with_term).mean() < 0.5 * np.abs(actual - flat).mean()
    again = training.forecast_with_spec(train, training.ModelSpec.from_dict(fit.spec.to_dict()), 8, (0.8,))
    np.testing.assert_allclose(again["yhat"].to_numpy(), with_term, rtol=1e-9)


def test_a_version_from_before_the_yearly_window_reloads_as_it_was_fitted(config, iowa_weeks):
    """A version whose year-ago term records no window took its deviations from the local level: reloaded,
    it recomputes them that way (not from the year's mean), so its forecast is the one it was fitted
    with."""
    ys, cadence = iowa_weeks
    s = dataclasses.replace(training.settings_for(config.forecast, cadence), year_ago_window=0)
    train = ys["BLACK VELVET"][:"2024-11-24"]
    fit = training.fit_series(train, s)
    stored = fit.spec.to_dict()
    assert fit.spec.year_ago and "window" not in stored["year_ago"]
    reloaded = training.forecast_with_spec(train, training.ModelSpec.from_dict(stored), 6, (0.8,))
    np.testing.assert_allclose(reloaded["yhat"].to_numpy(), fit.forecast(6, (0.8,))["yhat"].to_numpy(), rtol=1e-9)


def test_a_spike_a_year_back_is_not_forecast_again(config, iowa_weeks):
    """A x1,000 typo 52 weeks before a forecast week is a spike training leaves out: its deviation is not
    known, so the year-ago term adds nothing for that week, rather than forecasting the typo again."""
    ys, cadence = iowa_weeks
    s = training.settings_for(config.forecast, cadence)
    train = ys["BLACK VELVET"][:"2024-11-24"].copy()
    clean = training.fit_series(train, s).forecast(6, (0.8,))["yhat"].to_numpy()
    typo = train.index[-52 + 2]  # a year before the third forecast week
    train[typo] *= 1000
    spiked = training.fit_series(train, s).forecast(6, (0.8,))["yhat"].to_numpy()
    assert spiked[2] < 1.5 * clean[2]
    assert spiked[2] < 2 * train.drop(typo).max()


def test_year_ago_is_for_weekly_models_only(tmp_path):
    """The config refuses the term on daily or monthly models, naming the key."""
    from include.forecasting.config import ConfigError

    path = write_config(tmp_path, **{"forecast.models": {"daily": {"candidate_orders": [[0, 1, 1]], "seasonal_order": [0, 1, 1], "year_ago": True}}})
    with pytest.raises(ConfigError, match=r"models\.daily\.year_ago"):
        load_config(path)
    off = write_config(tmp_path, **{"forecast.models": {"weekly": {"candidate_orders": [[0, 1, 1]], "seasonal_order": [0, 0, 0], "year_ago": False}}})
    assert training.settings_for(load_config(off).forecast, weekly("SUN")).year_ago_lag == 0


def test_the_multi_step_step_is_a_daily_setting_that_can_be_turned_off(tmp_path):
    """`models.daily.multi_step: false` fits at the likelihood estimate; the config refuses it on weekly or
    monthly models (not measured there), naming the key."""
    from include.forecasting.config import ConfigError

    off = write_config(tmp_path, **{"forecast.models": {"daily": {"candidate_orders": [[0, 1, 1]], "seasonal_order": [0, 1, 1], "multi_step": False}}})
    assert training.settings_for(load_config(off).forecast, DAILY).multi_step_horizon == 0
    path = write_config(tmp_path, **{"forecast.models": {"monthly": {"candidate_orders": [[0, 1, 1]], "seasonal_order": [0, 1, 1], "multi_step": True}}})
    with pytest.raises(ConfigError, match=r"models\.monthly\.multi_step"):
        load_config(path)


def test_the_multi_step_loss_is_the_mean_error_of_h_step_predictions(velvet):
    """`multi_step_loss` from one filter pass equals the same errors computed the slow way: statsmodels'
    own forecast from each origin (a model filtered on the data before it) against the observed periods."""
    endog = state_space.to_model_scale(velvet.iloc[-110:])  # 50 origins after the burn-in
    # The airline model, and an order with a constant (a young daily series' fit without its season).
    for order, seasonal in (((0, 1, 1), (0, 1, 1, 7)), ((1, 0, 1), (0, 0, 0, 0))):
        model = state_space.sarimax(endog, order, seasonal)
        params = model.fit(disp=False, return_params=True)
        errors = []
        for origin in range(training._MULTI_STEP_BURN_IN, len(endog)):
            ahead = state_space.sarimax(endog[:origin], order, seasonal).filter(params).forecast(3)
            for h in range(3):
                if origin + h < len(endog) and np.isfinite(endog[origin + h]):
                    errors.append(abs(endog[origin + h] - ahead[h]))
        assert training.multi_step_loss(model, endog, params, 3) == pytest.approx(np.mean(errors), rel=1e-9), order


def test_daily_coefficients_move_towards_a_lower_multi_step_loss(velvet, config):
    """Daily fits take the likelihood estimate a bounded step towards the coefficients that predict the
    history 1..7 days ahead better (docs/DEVELOPING.md); weekly fits keep the likelihood estimate."""
    daily = training.settings_for(config.forecast, DAILY)
    assert daily.multi_step_horizon == config.forecast.horizon
    assert training.settings_for(config.forecast, weekly("W-SUN")).multi_step_horizon == 0
    endog = state_space.to_model_scale(velvet)
    order, seasonal = (0, 1, 1), (0, 1, 1, 7)
    likelihood = training._fit_one(endog, order, seasonal, 50, None)
    stepped = training._fit_one(endog, order, seasonal, 50, None, 0, (7, daily.multi_step_delta, daily.multi_step_weight))
    model = state_space.sarimax(endog, order, seasonal)
    ml, moved = np.asarray(likelihood.params), np.asarray(stepped.params)
    assert not np.allclose(ml, moved)
    assert np.all(np.abs(moved - ml) <= daily.multi_step_weight * 2 * daily.multi_step_delta + 1e-12)
    assert training.multi_step_loss(model, endog, moved, 7) < training.multi_step_loss(model, endog, ml, 7)
    assert stepped.llf <= likelihood.llf  # it gives up likelihood for it
    # fit_series takes the step on daily data (its history without holidays and spikes, so not the
    # coefficients above), and the version stores the moved coefficients a reload filters at.
    fitted = training.fit_series(velvet, daily)
    unmoved = training.fit_series(velvet, dataclasses.replace(daily, multi_step_horizon=0))
    a, b = np.array(list(fitted.spec.params.values())), np.array(list(unmoved.spec.params.values()))
    assert not np.allclose(a, b) and np.all(np.abs(a - b) <= daily.multi_step_weight * 2 * daily.multi_step_delta + 1e-12)
    pd.testing.assert_frame_equal(training.forecast_with_spec(velvet, fitted.spec, 7, (0.8,)), fitted.forecast(7, (0.8,)))


def test_history_with_lays_newer_periods_over_the_stored_history():
    """What a registered version forecasts from when given newer data: rows replace their period, extend
    the history, and periods between without a row are 0 (no row is no sale)."""
    y = pd.Series([5.0, 6.0, 7.0], index=pd.date_range("2025-01-01", periods=3, freq="D", name="date"), name="TITOS")
    rows = pd.DataFrame({"date": ["2025-01-02", "2025-01-06"], "value": [9, 4.5]})  # text dates, an integer
    merged = training.history_with(y, rows, DAILY)
    assert merged.name == "TITOS" and merged.index.freqstr == "D"
    assert merged.to_dict() == {pd.Timestamp(f"2025-01-0{d}"): v for d, v in zip(range(1, 7), [5.0, 9.0, 7.0, 0.0, 0.0, 4.5], strict=True)}
    assert training.history_with(y, pd.DataFrame({"date": pd.to_datetime(["2025-01-04"], utc=True), "value": [1.0]}), DAILY).index[-1] == pd.Timestamp("2025-01-04")

    weeks = pd.Series([10.0, 12.0], index=pd.date_range("2025-01-05", periods=2, freq="W-SUN", name="date"), name="kale")
    extended = training.history_with(weeks, pd.DataFrame({"date": ["2025-01-26"], "value": [3.25]}), weekly("SUN"))
    assert list(extended) == [10.0, 12.0, 0.0, 3.25] and extended.index.freqstr == "W-SUN"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ({"date": ["2025-01-14"], "value": [3.0]}, "2025-01-14 is not a period date of this weekly \\(W-SUN\\) series"),  # a Tuesday
        ({"date": ["2025-01-19"], "value": [-3]}, "value on 2025-01-19 is -3: a value must be a finite number, not negative"),
        ({"date": ["2025-01-19"], "value": ["n/a"]}, "value on 2025-01-19 is 'n/a'"),
        ({"date": ["2025-01-19"], "value": [float("inf")]}, "value on 2025-01-19 is inf"),
        ({"date": ["2025-01-19", "2025-01-19"], "value": [1.0, 2.0]}, "2025-01-19 is given twice"),
        ({"date": [None], "value": [1.0]}, "every row needs a date"),
    ],
)
def test_history_with_refuses_rows_naming_the_date_and_the_rule(rows, message):
    weeks = pd.Series([10.0, 12.0], index=pd.date_range("2025-01-05", periods=2, freq="W-SUN", name="date"), name="kale")
    with pytest.raises(ValueError, match=message):
        training.history_with(weeks, pd.DataFrame(rows), weekly("SUN"))

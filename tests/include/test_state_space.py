"""state_space: the filters in closed form and plain floats against statsmodels' own, the lean filter, and
the h-step log-scale moments, on real series."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from support.series import logs_with_holes

from include.forecasting import state_space, training


def _assert_filters_agree(ours: Any, full: Any, llf: dict[str, float], errors: float, moments: float) -> None:
    """A filter of the project's own (`ours`) reads as statsmodels' results (`full`) at the same parameters:
    likelihood and AIC (within the `pytest.approx` tolerance `llf`), standardised one-step errors and
    interval z (within `errors`), 9-step forecast moments (within `moments`) and parameter names."""
    assert ours.llf == pytest.approx(full.llf, **llf) and ours.aic == pytest.approx(full.aic, **llf)
    np.testing.assert_allclose(ours.standardized_forecasts_error, full.standardized_forecasts_error, atol=errors)
    assert training._interval_z(ours, (0.8, 0.95)) == pytest.approx(training._interval_z(full, (0.8, 0.95)), abs=errors)
    for got, want in zip(state_space.log_moments(ours, 9), state_space.log_moments(full, 9), strict=True):
        np.testing.assert_allclose(got, want, rtol=moments, atol=moments)
    assert list(ours.param_names) == list(full.param_names)


def test_log_moments_are_statsmodels_forecast(velvet, veg_weekly):
    """The hand-run Kalman recursion gives get_forecast's mean and standard error: a daily airline model on
    a series that ends on a closed (missing) Saturday, a weekly (1,0,0) with a constant, a weekly (0,1,1)."""
    ys, _ = veg_weekly
    cases = [
        (state_space.to_model_scale(velvet.loc[:"2025-05-24"]), (0, 1, 1), (0, 1, 1, 7)),
        (state_space.to_model_scale(ys[0]), (1, 0, 0), (0, 0, 0, 0)),
        (state_space.to_model_scale(ys[1]), (0, 1, 1), (0, 0, 0, 0)),
    ]
    assert np.isnan(cases[0][0][-1])
    for endog, order, seasonal in cases:
        res = training._fit_one(endog, order, seasonal, 50, None)
        mean, se = state_space.log_moments(res, 9)
        reference = state_space.sarimax(endog, order, seasonal).filter(np.asarray(res.params)).get_forecast(9)
        np.testing.assert_allclose(mean, reference.predicted_mean, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(se, np.sqrt(reference.var_pred_mean), rtol=1e-10)


def test_the_ar1_filter_in_closed_form_is_statsmodels_filter(veg_weekly):
    """The mean-reverting member's filter in closed form (`ar1_filter`) gives what statsmodels' SARIMAX
    filter gives at the same parameters: likelihood, AIC, standardised one-step errors (0 where a period
    has no observation), interval z, forecast moments and AR roots, on real weekly series, also with
    periods missing at the start, inside and at the end. A fit and the recorded spec's reload both use it;
    a coefficient outside the stationary range is left to statsmodels."""
    ys, _ = veg_weekly
    for endog in logs_with_holes(ys):
        closed = training._fit_one(endog, (1, 0, 0), (0, 0, 0, 0), 50, None)
        assert isinstance(closed, state_space.AR1Results)
        full = state_space.sarimax(endog, (1, 0, 0), (0, 0, 0, 0)).filter(closed.params, cov_type="none")
        _assert_filters_agree(closed, full, {"abs": 1e-9}, errors=1e-12, moments=1e-12)
        np.testing.assert_allclose(closed.arroots, full.arroots, rtol=1e-12)
        assert training._stable(closed, (1, 0, 0), (0, 0, 0, 0)) is None
    spec = training.ModelSpec((1, 0, 0), (0, 0, 0, 0), (), {}, {"intercept": 0.3, "ar.L1": 0.9}, 0.0, cadence="weekly (W-SUN)", trend="c")
    assert isinstance(training.filter_with_spec(ys[0], spec), state_space.AR1Results)
    assert state_space.ar1_filter(state_space.to_model_scale(ys[0]), np.array([0.0, 1.0])) is None
    assert state_space.ar1_filter(np.full(10, np.nan), np.array([0.3, 0.5])) is None


def test_the_local_level_filter_is_statsmodels_filter(veg_weekly):
    """The local-level member's filter in plain floats (`local_level_filter`) gives what statsmodels'
    SARIMAX (0,1,1) filter gives at the same coefficient (its approximate diffuse start and first-period
    burn included): likelihood, AIC, standardised one-step errors, interval z, forecast moments and MA
    root, on real weekly series, also with periods missing at the start, inside and at the end; the fit's
    bounded search lands on statsmodels' own estimate; a fit and the recorded spec's reload both use it,
    and a series with nothing observed after its first period is left to statsmodels."""
    from scipy import optimize

    ys, _ = veg_weekly
    for endog in logs_with_holes(ys):
        fitted = training._fit_one(endog, (0, 1, 1), (0, 0, 0, 0), 50, None)
        assert isinstance(fitted, state_space.LocalLevelResults)
        model = state_space.sarimax(endog, (0, 1, 1), (0, 0, 0, 0))
        found = optimize.minimize_scalar(
            lambda v, model=model: -float(model.loglike(np.array([v]))), bounds=(-0.9999, 0.9999), method="bounded", options={"xatol": 1e-4}
        )
        assert fitted.params[0] == pytest.approx(found.x, abs=1e-6)
        for theta in (float(fitted.params[0]), -0.9, 0.0, 0.5):
            ours = state_space.local_level_filter(endog, theta)
            full = model.filter(np.array([theta]), cov_type="none")
            # A diffuse variance of 1e6 costs a covariance recursion ~6 of its 16 digits: ~1e-9 relative.
            _assert_filters_agree(ours, full, {"rel": 1e-9}, errors=1e-7, moments=1e-9)
            np.testing.assert_allclose(ours.maroots, full.maroots, rtol=1e-12)
            assert training._stable(ours, (0, 1, 1), (0, 0, 0, 0)) == training._stable(full, (0, 1, 1), (0, 0, 0, 0))
    spec = training.ModelSpec((0, 1, 1), (0, 0, 0, 0), (), {}, {"ma.L1": -0.6}, 0.0, cadence="weekly (W-SUN)", trend="n")
    assert isinstance(training.filter_with_spec(ys[0], spec), state_space.LocalLevelResults)
    assert state_space.local_level_filter(np.r_[1.0, np.full(9, np.nan)], -0.5) is None  # nothing after the burn


def test_the_lean_filter_keeps_what_the_model_reads(velvet, veg_weekly):
    """`lean_filter` stores fewer arrays than statsmodels' default filter; the likelihood, the standardised
    one-step errors (interval calibration) and the forecast moments are the same: a daily airline model on
    real Iowa data, and a weekly local level."""
    ys, _ = veg_weekly
    for endog, order, seasonal in [
        (state_space.to_model_scale(velvet), (0, 1, 1), (0, 1, 1, 7)),
        (state_space.to_model_scale(ys[0]), (0, 1, 1), (0, 0, 0, 0)),
    ]:
        model = state_space.sarimax(endog, order, seasonal)
        params = training._fit_one(endog, order, seasonal, 50, None).params
        lean, full = state_space.lean_filter(model, params), model.filter(params, cov_type="none")
        assert lean.llf == pytest.approx(full.llf, abs=1e-9)
        np.testing.assert_allclose(lean.standardized_forecasts_error, full.standardized_forecasts_error, atol=1e-12)
        assert training._interval_z(lean, (0.8, 0.95)) == training._interval_z(full, (0.8, 0.95))
        for got, want in zip(state_space.log_moments(lean, 9), state_space.log_moments(full, 9), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        # What it does not keep: every period's predicted state (a sign the lean mode was applied).
        assert lean.filter_results.predicted_state.shape[1] < full.filter_results.predicted_state.shape[1]

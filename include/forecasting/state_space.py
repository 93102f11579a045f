"""The state space side of the models: the log scale, statsmodels' SARIMAX as the project builds and
filters it, the filters in closed form or plain floats that stand in for it on one-state orders, and the
h-step forecast moments.

- `to_model_scale`: log sales with zero periods missing (the Kalman filter skips them);
- `sarimax` / `trend_for`: the one SARIMAX definition fits and reloads use (a constant only without
  differencing); `lean_filter`: statsmodels' filter pass keeping only what the project reads;
- `ar1_filter` (AR(1) with a constant) and `local_level_filter` ((0,1,1)): the same likelihood, one-step
  errors and last prediction as statsmodels' filter (to ~1e-12 / ~1e-9, tested), without building a model;
- `log_moments`: the 1..h-step mean and standard error on the log scale from a filter's last prediction.
Estimation (which order, which start, the searches) is `training`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd


def to_model_scale(y: pd.Series) -> np.ndarray:
    """log(sales) with zero periods as NaN (missing for the Kalman filter)."""
    values = y.to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(values > 0, np.log(np.where(values > 0, values, 1.0)), np.nan)


def trend_for(order: tuple[int, ...], seasonal: tuple[int, ...]) -> str:
    """"c" (a constant) for an order without any differencing, else "n".

    Without a difference a model reverts to its mean, and on log sales a model without a constant has mean
    log 1: a mean-reverting model forecasts towards one unit unless it estimates the series' own level.
    """
    return "c" if order[1] == 0 and (len(seasonal) < 2 or seasonal[1] == 0) else "n"


def sarimax(endog: np.ndarray, order: tuple[int, ...], seasonal: tuple[int, ...], trend: str | None = None) -> Any:
    """The statsmodels SARIMAX the project fits and filters with (one definition for both); `trend`
    defaults to `trend_for` the orders."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    trend = trend_for(order, seasonal) if trend is None else trend
    return SARIMAX(endog, order=order, seasonal_order=seasonal, trend=None if trend == "n" else trend, concentrate_scale=True)


def is_ar1_with_constant(order: tuple[int, ...], seasonal: tuple[int, ...], trend: str) -> bool:
    """True for (1,0,0) with a constant and no seasonal part: the weekly pool's mean-reverting member (or
    that candidate fitted without its season on a short history)."""
    return tuple(order) == (1, 0, 0) and not any(tuple(seasonal)[:3]) and trend == "c"


@dataclass
class AR1Results:
    """statsmodels' filter results of SARIMAX (1,0,0) with a constant (scale concentrated out, stationary
    start) at fixed parameters, computed in closed form: the fields the project reads, with the same
    names and shapes (`filter_results` holds the last one-step prediction and the system matrices that
    `log_moments` runs forward).

    With one state the Kalman filter has a closed form even across missing periods: the prediction of an
    observation g periods after the previous one is mu + phi^g (x_prev - mu) with variance (1 - phi^2g) /
    (1 - phi^2) scale units; the first one has the stationary mean and variance. So no model object is
    built and no filter runs: ~0.05 ms where statsmodels' model construction and filter pass took ~1.7 ms
    of a ~5.3 ms weekly fit. Equal to statsmodels to ~1e-12 (tested).
    """

    params: np.ndarray
    llf: float
    aic: float
    standardized_forecasts_error: np.ndarray  # (1, nobs); 0 for a period without an observation
    filter_results: Any  # SimpleNamespace of the (k, k, 1) system matrices and the last prediction
    param_names: list[str] = field(default_factory=lambda: ["intercept", "ar.L1"])
    maroots: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def arroots(self) -> np.ndarray:
        """Roots of the AR polynomial 1 - phi L (none for phi = 0), as statsmodels reports them."""
        phi = float(self.params[1])
        return np.array([1.0 / phi]) if phi else np.empty(0)


def ar1_filter(endog: np.ndarray, params: np.ndarray) -> AR1Results | None:
    """`AR1Results` of (1,0,0) with a constant at `params` (intercept, ar.L1) over the log series `endog`
    (NaN = no observation); None where the closed form does not apply (a coefficient outside the
    stationary range, no observation, no variation), for statsmodels' own filter to handle."""
    intercept, phi = (float(v) for v in params)
    observed = np.flatnonzero(np.isfinite(endog))
    if not abs(phi) < 1.0 or not len(observed):
        return None
    mean = intercept / (1.0 - phi)
    x = endog[observed]
    gaps = np.diff(observed)
    predicted = np.r_[mean, mean + phi**gaps * (x[:-1] - mean)]
    variance = np.r_[1.0, 1.0 - phi ** (2 * gaps)] / (1.0 - phi**2)  # in units of the scale
    errors = x - predicted
    scale = float(np.mean(errors**2 / variance))
    if not (np.isfinite(scale) and scale > 0.0):
        return None
    llf = -0.5 * len(x) * (np.log(2 * np.pi) + np.log(scale) + 1.0) - 0.5 * float(np.sum(np.log(variance)))
    standardized = np.zeros((1, len(endog)))
    standardized[0, observed] = errors / np.sqrt(variance * scale)
    ahead = len(endog) - observed[-1]  # periods from the last observation to the first forecast period
    one = np.ones((1, 1, 1))
    last = SimpleNamespace(
        design=one, obs_intercept=np.zeros((1, 1)), obs_cov=np.zeros((1, 1, 1)), selection=one,
        transition=np.full((1, 1, 1), phi), state_intercept=np.full((1, 1), intercept), state_cov=np.full((1, 1, 1), scale),
        predicted_state=np.full((1, 1), mean + phi**ahead * (x[-1] - mean)),
        predicted_state_cov=np.full((1, 1, 1), scale * (1.0 - phi ** (2 * ahead)) / (1.0 - phi**2)),
    )
    # statsmodels counts the concentrated scale as a parameter: 3 degrees of freedom.
    return AR1Results(np.array([intercept, phi]), llf, -2.0 * llf + 6.0, standardized, last)


def is_local_level(order: tuple[int, ...], seasonal: tuple[int, ...], trend: str) -> bool:
    """True for (0,1,1) without a constant or seasonal part: the weekly pool's local-level member (and the
    safe order of any cadence fitted without its season)."""
    return tuple(order) == (0, 1, 1) and not any(tuple(seasonal)[:3]) and trend == "n"


# statsmodels' SARIMAX starts an integrated state "approximate diffuse": mean 0, this variance (in units
# of the concentrated scale), and leaves the first `d` periods out of the likelihood (its
# `loglikelihood_burn`). `local_level_filter` does the same, so the two agree to rounding (tested).
_APPROXIMATE_DIFFUSE = 1e6
_LOCAL_LEVEL_BURN = 1


def _local_level_pass(values: list[float], theta: float, keep: list[tuple[int, float, float]] | None = None) -> tuple[float, float, int, float, float]:
    """One Kalman filter pass of ARIMA(0,1,1) over `values` (log sales, NaN = no observation), scale 1,
    written as its one-state innovations form: y_t = L_t + e_t, L_t+1 = L_t + (1 + theta) e_t.

    Returns (sum of v^2 / F, sum of log F, observations counted, last predicted level, its variance)
    over the periods after the burn; `keep` collects (period, v, F) of every observed period. Plain
    floats in a Python loop: ~0.05 ms a weekly pass where statsmodels' `loglike` takes ~0.16 ms, and no
    model object (~0.5 ms to build)."""
    a = 1.0 + theta
    a2, t2 = a * a, theta * theta
    level, p = 0.0, _APPROXIMATE_DIFFUSE + t2  # L_0 = y_-1 + theta e_-1: diffuse y_-1, stationary e_-1
    squares = logs = 0.0
    counted = 0
    log = math.log
    for t, x in enumerate(values):
        if x != x:  # no observation: the level carries on, its variance grows by one shock
            p += a2
            continue
        f = p + 1.0
        v = x - level
        if t >= _LOCAL_LEVEL_BURN:
            squares += v * v / f
            logs += log(f)
            counted += 1
        if keep is not None:
            keep.append((t, v, f))
        level += (p + a) / f * v  # gain Cov(L_t+1, y_t) / F = (P + 1 + theta) / F
        p = t2 * p / f  # P + a^2 - (P + a)^2 / F, without the cancellation of a diffuse P
    return squares, logs, counted, level, p


def _concentrated_llf(squares: float, logs: float, counted: int) -> float:
    """The Gaussian log-likelihood with the scale concentrated out (statsmodels' `concentrate_scale`)."""
    scale = squares / counted
    return -0.5 * counted * (math.log(2.0 * math.pi) + math.log(scale) + 1.0) - 0.5 * logs


def local_level_loglike(values: list[float], theta: float) -> float:
    """statsmodels' concentrated log-likelihood of SARIMAX (0,1,1) at `theta` (-inf where undefined)."""
    squares, logs, counted, _, _ = _local_level_pass(values, theta)
    return _concentrated_llf(squares, logs, counted) if counted and squares > 0.0 else -math.inf


@dataclass
class LocalLevelResults:
    """statsmodels' filter results of SARIMAX (0,1,1) (no constant, scale concentrated out, approximate
    diffuse start) at a fixed MA coefficient, from `_local_level_pass`: the fields the project reads, with
    the same names and shapes. `filter_results` holds the last one-step prediction in the two-state form
    (level, shock): y = level + shock, level' = level + (1 + theta) shock, which `log_moments` runs
    forward to the same moments as statsmodels' three states."""

    params: np.ndarray
    llf: float
    aic: float
    standardized_forecasts_error: np.ndarray  # (1, nobs); 0 for a period without an observation
    filter_results: Any
    param_names: list[str] = field(default_factory=lambda: ["ma.L1"])
    arroots: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def maroots(self) -> np.ndarray:
        """Root of the MA polynomial 1 + theta L, as statsmodels reports it (inf for theta = 0)."""
        theta = float(self.params[0])
        return np.array([-1.0 / theta if theta else np.inf])


def local_level_filter(endog: np.ndarray, theta: float) -> LocalLevelResults | None:
    """`LocalLevelResults` of (0,1,1) at `theta` over the log series `endog` (NaN = no observation); None
    where the likelihood is undefined (nothing observed after the first period, every error exactly 0),
    for statsmodels' own filter to handle."""
    kept: list[tuple[int, float, float]] = []
    squares, logs, counted, level, p = _local_level_pass(endog.tolist(), float(theta), kept)
    if not counted or not (np.isfinite(squares) and squares > 0.0):
        return None
    scale = squares / counted
    llf = _concentrated_llf(squares, logs, counted)
    standardized = np.zeros((1, len(endog)))
    at, v, f = (np.array(c) for c in zip(*kept, strict=True))
    standardized[0, at.astype(int)] = v / np.sqrt(f * scale)
    a = 1.0 + float(theta)
    last = SimpleNamespace(
        design=np.ones((1, 2, 1)), obs_intercept=np.zeros((1, 1)), obs_cov=np.zeros((1, 1, 1)),
        selection=np.array([[0.0], [1.0]])[:, :, None], transition=np.array([[1.0, a], [0.0, 0.0]])[:, :, None],
        state_intercept=np.zeros((2, 1)), state_cov=np.full((1, 1, 1), scale),
        predicted_state=np.array([[level], [0.0]]), predicted_state_cov=np.diag([p * scale, scale])[:, :, None],
    )
    # statsmodels counts the concentrated scale as a parameter: 2 degrees of freedom.
    return LocalLevelResults(np.array([float(theta)]), llf, -2.0 * llf + 4.0, standardized, last)


def lean_filter(model: Any, params: Any) -> Any:
    """statsmodels' filter results at `params`, keeping only what the project reads from them: the
    likelihood, the standardised one-step errors (interval calibration) and the last one-step prediction
    (forecast moments). Not storing every period's predicted and filtered states, covariances and gains
    (17 x 17 per day for the daily airline model) cuts a daily fit and forecast by ~12 % (~0.15 ms per
    weekly member), with identical figures; out-of-sample `get_forecast` still works, in-sample
    prediction and smoothing do not.

    cov_type="none": parameter standard errors are never used, and their numerical Hessian costs more
    than the filter (~15 ms of a ~20 ms daily pass).
    """
    from statsmodels.tsa.statespace import kalman_filter as kf

    memory = kf.MEMORY_NO_PREDICTED | kf.MEMORY_NO_FILTERED | kf.MEMORY_NO_GAIN | kf.MEMORY_NO_SMOOTHING
    return model.filter(params, cov_type="none", conserve_memory=memory)


def log_moments(results: Any, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of the 1..horizon-step forecasts on the model's (log) scale.

    The Kalman recursion run forward from the filter's last one-step prediction (a, P): mean Z a + d,
    variance Z P Z' + H, then a <- T a + c, P <- T P T' + R Q R'. This is what `results.get_forecast`
    computes (equal to ~1e-15, tested), without building the extended model it forecasts with (~1.5 ms of
    a ~10 ms weekly fit). The project's SARIMAX has no regressors, so its matrices are time-invariant, and
    with a concentrated scale the stored covariances are already scaled.
    """
    fr = results.filter_results
    design, obs_intercept, obs_cov = fr.design[:, :, -1], fr.obs_intercept[:, -1], fr.obs_cov[:, :, -1]
    transition, state_intercept = fr.transition[:, :, -1], fr.state_intercept[:, -1]
    selection = fr.selection[:, :, -1]
    shock = selection @ fr.state_cov[:, :, -1] @ selection.T
    state, cov = fr.predicted_state[:, -1].copy(), fr.predicted_state_cov[:, :, -1].copy()
    mean, var = np.empty(horizon), np.empty(horizon)
    for step in range(horizon):
        mean[step] = float((design @ state + obs_intercept)[0])
        var[step] = float((design @ cov @ design.T + obs_cov)[0, 0])
        state = transition @ state + state_intercept
        cov = transition @ cov @ transition.T + shock
    return mean, np.sqrt(np.maximum(var, 0.0))

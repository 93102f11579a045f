"""Fit one SARIMA model per series with statsmodels, and forecast with calibrated intervals.

This module searches the orders, estimates, calibrates and forecasts; its parts live next to it:
`state_space` (the log scale, SARIMAX, the filters that stand in for it, the h-step moments), `zeros`
(the probability of no sale), `holiday_effects` (the calendar and each series' learned holiday ratios) and
`year_ago` (the weekly year-ago term).

Modelling choices (see README "Modelling"):
- A series is laid on its panel's calendar grid (daily, weekly on its own weekday, monthly: see
  `frequency`); periods with no row are zero sales.
- The model sees log(sales) with zero periods as *missing* (the Kalman filter skips them): a zero cannot
  be logged, and treating zeros as data wrecks a Gaussian model. Zeros come back as a hurdle: the
  recency-weighted share of zero periods over the last `zero_window` periods (per weekday for daily data;
  half-life `zero_halflife`) is the probability of no sale, and the forecast's quantiles are those of the
  mixture "0 with probability pi, else log-normal".
  The point forecast is the mixture's median (what MAE/MASE reward): 0 where pi >= 0.5. A period whose pi
  reaches `closure_share` (0.9 shipped: where the 80 % interval is [0, 0] anyway) is "closed": exactly 0
  with every interval [0, 0] (Iowa's Saturdays, a product that stopped selling).
- SARIMA (p,d,q)(P,D,Q,s) on log sales, candidates per frequency from the config (daily: weekly seasonal
  differencing carries the weekday profile). The order is picked among the candidates, rejecting
  non-stationary / non-invertible fits and fits whose forecast exceeds `explosion_factor` x the history
  maximum. When every configured candidate is rejected, a short list of simpler safe orders is tried;
  only then is the series given up (quarantined by the pipeline, never handed back unstable). A series
  that sold the same amount in every selling period is constant on the log scale (no finite likelihood):
  it gets the noise-free random walk `_CONSTANT_ORDER` at that amount. An order without differencing
  estimates a constant (`trend_for`).
- Estimation: maximum likelihood (statsmodels' exact Kalman-filter likelihood, scale concentrated out).
  An order with one coefficient (besides a constant, which is then the mean of the observed log periods
  of the last year, `ModelSettings.mean_window_years`) is fitted by a bounded scalar search of that
  likelihood (`_fit_one`); the AR(1) with a constant by least squares, its filter in closed form
  (`ar1_filter`); the local level (0,1,1) with its one-state filter in plain floats
  (`local_level_filter`): both equal to statsmodels' SARIMAX to rounding, without building one.
- Combination (`combine` > 1, the weekly default): the first `combine` stable candidates are all kept and
  the forecast distribution is their equal-weight mixture (a linear pool, `quantile_frame`); the spec
  lists every member.
- Holidays (daily data; the `holidays` package's calendar for the configured country/subdivision): in
  training they are missing (they must not teach the model a fake Monday); in the forecast each holiday is
  the model's forecast x the series' own median ratio for *that* holiday (sales on it / the same weekday a
  week before and after), the interval widened to the lowest and highest ratio seen, once the holiday has
  been seen at least twice, always on the same side of 1 (one odd day is not a holiday effect).
- Intervals: the model's h-step standard errors, scaled by empirical quantiles of the one-step
  standardised residuals instead of Gaussian z (sales residuals are heavy-tailed).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

from include.forecasting import anomaly
from include.forecasting.evaluation import interval_suffix
from include.forecasting.frequency import DAILY, Cadence, from_name
from include.forecasting.holiday_effects import apply_holiday_effect, holiday_effect, holiday_names
from include.forecasting.state_space import (
    ar1_filter,
    is_ar1_with_constant,
    is_local_level,
    lean_filter,
    local_level_filter,
    local_level_loglike,
    log_moments,
    sarimax,
    to_model_scale,
    trend_for,
)
from include.forecasting.year_ago import WEEKS_A_YEAR, plus_year_ago, year_ago_deviations, year_ago_effect, year_ago_offsets
from include.forecasting.zeros import WEEKDAYS, chain_zero_probability, open_days, zero_model, zero_rule

log = logging.getLogger(__name__)

# The first residuals of a seasonally differenced model are dominated by the diffuse start.
_BURN_IN = 21
# Tried after every configured candidate was rejected: simple orders that are stable on most sales data
# (a local level on the log scale, with the frequency's seasonal MA where it has a season).
_SAFE_ORDERS = ((0, 1, 1), (0, 1, 0))
# The model of a series that sold the same amount in every selling period (no noise to estimate).
_CONSTANT_ORDER = (0, 1, 0)
# Fewest periods with sales a series needs for any fit (a non-seasonal ARIMA of at most 3 parameters).
_MIN_SELLING_PERIODS = 20
# Fewest periods a backtest fold trains on: a fold with less could not be fitted even if every period sold.
MIN_FIT_PERIODS = _MIN_SELLING_PERIODS


@functools.lru_cache(maxsize=1)
def _blas_controller() -> Any:
    """threadpoolctl's handle on the BLAS libraries loaded once statsmodels is (numpy's and scipy's)."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX  # noqa: F401  (loads scipy's BLAS before the scan)
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def single_threaded_blas(fn: Any) -> Any:
    """Run `fn` with BLAS limited to one thread.

    The state space matrices are tiny (at most ~16 states), so OpenBLAS threads never speed a fit up; they
    only fight each other and the other task on the worker. Measured on 2 cores with two fits running at
    once (the `training` pool's 2 slots): 0.31 s per Iowa fit with BLAS's default threads, 0.10 s with one,
    the same as a fit running alone.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _blas_controller().limit(limits=1, user_api="blas"):
            return fn(*args, **kwargs)

    return wrapper


class ModelFitError(RuntimeError):
    """No candidate order produced a stable, non-explosive fit for a series."""


@dataclass(frozen=True)
class ModelSettings:
    """What a fit needs, resolved for one panel cadence from the config."""

    cadence: Cadence
    candidate_orders: tuple[tuple[int, int, int], ...]
    seasonal_order: tuple[int, int, int, int]
    horizon: int
    interval_levels: tuple[float, ...] = (0.8, 0.95)
    order_search: str = "first_stable"
    # Members of an equal-weight combination: the first `combine` stable candidates (1 = one model).
    combine: int = 1
    max_iter: int = 50
    zero_window: int = 12
    zero_halflife: float = 2.0
    closure_share: float = 0.9
    explosion_factor: float = 3.0
    # (country, subdivision[, categories joined by ","]): `HolidayConfig.calendar`; daily data only.
    holidays: tuple[str, ...] | None = None
    # The spike rule (config anomaly.spike_ratio, spike_mad, spike_ratio_always): periods it flags anywhere
    # in the history are left out of training. () leaves every period in; a spec stored with two values
    # (before spike_ratio_always) is read with no third arm.
    spike_rule: tuple[float, ...] = (10.0, 8.0, 100.0)
    # The mean a mean-reverting AR(1) with a constant reverts to: the mean of the observed log periods of
    # the last `mean_window_years` years (one whole seasonal cycle, so no season weighs more than another;
    # the whole history when shorter). 0: the whole history.
    mean_window_years: float = 1.0
    # Daily data: the zero probability of a forecast day is this weight on the two-state chain's
    # probability (`zero_chain`: whether the series sold on its last open day) and the rest on the
    # weekday's share. 0: the weekday's share alone.
    zero_chain_weight: float = 0.5
    # ... except on an open weekday whose zero share exceeds the median open weekday's by at least this:
    # it keeps its own share. Such a weekday is mostly closed (a Saturday opened on a few days around
    # Christmas), not out of stock, and the chain, which sees its zeros as one-day stock-outs that a sale
    # follows, would forecast a full day's sales on it. 0: the chain blends on every open weekday.
    chain_weekday_gap: float = 0.5
    # Weekly data: periods in a year (52) for the year-ago term (`year_ago_effect`); 0: none.
    year_ago_lag: int = 0
    # ... and the centred window (periods) whose mean log sales a period's deviation is taken from
    # (`year_ago_deviations`): a year (53), so a season-long high or low counts, not only a peak week.
    # 0: the local level (the median of the 9 periods around it), as versions before it.
    year_ago_window: int = 53
    # Daily data: an open weekday's share of zeros is the share over all open days of the recent past
    # (recency-weighted, this half-life in days) moved by that weekday's log-odds offset over the whole
    # `zero_window` (`pooled_zero_shares`). 0: each weekday's own recency-weighted share (`zero_halflife`).
    zero_recent_days: float = 7.0
    # Daily data: the two-coefficient orders' likelihood estimate is moved towards the coefficients that
    # forecast the history best 1..`multi_step_horizon` periods ahead (`_multi_step_params`: one parabolic
    # step per coefficient, ± `multi_step_delta`, scaled by `multi_step_weight`). 0: the likelihood estimate.
    multi_step_horizon: int = 0
    multi_step_delta: float = 0.05
    multi_step_weight: float = 0.5


def settings_for(forecast: Any, cadence: Cadence, anomaly_rules: Any = None) -> ModelSettings:
    """Resolve the config's forecast section for a cadence (its candidates, its seasonal period); with the
    config's anomaly section, its spike rule (else the default one)."""
    orders = forecast.models[cadence.name]
    p, d, q = orders.seasonal_order
    seasonal = (p, d, q, cadence.season) if cadence.season and any(orders.seasonal_order) else (0, 0, 0, 0)
    holidays = forecast.holidays
    return ModelSettings(
        cadence=cadence,
        candidate_orders=tuple(tuple(o) for o in orders.candidate_orders),  # type: ignore[misc]
        seasonal_order=seasonal,
        horizon=forecast.horizon,
        interval_levels=tuple(forecast.interval_levels),
        order_search=forecast.order_search,
        combine=orders.combine,
        max_iter=forecast.max_iter,
        zero_window=forecast.zero_window,
        zero_halflife=forecast.zero_halflife,
        closure_share=forecast.closure_share,
        explosion_factor=forecast.explosion_factor,
        holidays=holidays.calendar() if holidays and cadence.name == "daily" else None,
        year_ago_lag=WEEKS_A_YEAR if orders.year_ago is not False and cadence.name == "weekly" else 0,
        # Chosen on the daily development folds (docs/DEVELOPING.md); other cadences were not measured.
        multi_step_horizon=forecast.horizon if cadence.name == "daily" and orders.multi_step is not False else 0,
        **({"spike_rule": anomaly_rules.spike_rule()} if anomaly_rules is not None else {}),
    )


@dataclass
class ModelSpec:
    """Everything needed to refit or explain a model: logged to MLflow and tagged on the version."""

    order: tuple[int, int, int]
    seasonal_order: tuple[int, int, int, int]
    closed_weekdays: tuple[str, ...]
    z: dict[str, float]  # interval level -> multiplier on the h-step standard error
    params: dict[str, float]
    aic: float
    transform: str = "log, zero periods missing"
    # Per holiday name: {"factor", "low", "high", "n"} (median, lowest, highest ratio, how many seen).
    # Versions written before per-name effects hold one flat {"factor", ...} for the names in `holidays`.
    holiday_effect: dict[str, Any] = field(default_factory=dict)
    # (country, subdivision or ""[, categories]) of the calendar training left out (whether or not any
    # holiday got a ratio); legacy: holiday names. Versions written before recorded it only with a learned ratio.
    holidays: tuple[str, ...] = ()
    cadence: str = "daily"
    zero_share: dict[str, float] = field(default_factory=dict)  # weekday (daily) or "all" -> P(no sale)
    trend: str = "n"  # "c": a constant (orders without differencing, see `trend_for`); older versions: none
    # The other members of an equal-weight combination, each {"order", "seasonal_order", "trend", "params",
    # "z", "aic"}; this spec's own order is the first member. Empty: a single model.
    members: list[dict[str, Any]] = field(default_factory=list)
    # (ratio, robust deviations) of the spike rule whose flagged periods training left out; refiltering
    # leaves out the same ones. Empty: none left out (versions written before the rule was applied).
    spike_rule: tuple[float, ...] = ()
    # The periods (ISO dates) that rule left out of this model's training data, and what they held: the
    # next fit reports only the ones earlier versions had not already left out (pipeline.new_spikes).
    spikes_left_out: dict[str, float] = field(default_factory=dict)
    # Daily data: the two-state (sold / no sale) chain over the open days of the zero-share window,
    # {"to_zero", "to_sale" (transition probabilities), "weight", "last_zero" (the state training ended
    # in)}; see `zero_chain`. Empty: the weekday's share alone (other cadences, older versions).
    zero_chain: dict[str, float] = field(default_factory=dict)
    # Weekly data: the year-ago term, {"beta", "lag", "t", "pairs", "window"} (see `year_ago_effect`): the
    # model is fitted on log sales minus beta x the deviation of the period `lag` periods before, and its
    # forecast gets the same term back; "window": the deviations' yearly window (`year_ago_deviations`;
    # absent in versions from before it: from the local level). Empty: none (other cadences, no significant
    # yearly pattern, older versions).
    year_ago: dict[str, float] = field(default_factory=dict)
    # The rule the probability of no sale was estimated by (`zeros.zero_rule`: the config's zero_window,
    # zero_halflife, zero_recent_days, zero_chain_weight, chain_weekday_gap, closure_share). A forecast
    # from newer data estimates it again from that data (`forecast_with_spec`: shares, closed periods and
    # chain), as the ARIMA part filters that data. Empty (versions from before it): what training estimated.
    zero_rule: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """Rebuild from the JSON form (older versions lack the newer fields)."""
        return cls(
            order=tuple(data["order"]),  # type: ignore[arg-type]
            seasonal_order=tuple(data["seasonal_order"]),  # type: ignore[arg-type]
            closed_weekdays=tuple(data["closed_weekdays"]),
            z={str(k): float(v) for k, v in data["z"].items()},
            params={str(k): float(v) for k, v in data["params"].items()},
            aic=float(data["aic"]),
            transform=data.get("transform", "log, zero days missing"),
            holiday_effect=dict(data.get("holiday_effect") or {}),
            holidays=tuple(h or "" for h in (data.get("holidays") or ())),
            cadence=data.get("cadence", "daily"),
            zero_share={str(k): float(v) for k, v in (data.get("zero_share") or {}).items()},
            trend=data.get("trend", "n"),
            members=[dict(m) for m in data.get("members") or ()],
            spike_rule=tuple(float(v) for v in data.get("spike_rule") or ()),
            spikes_left_out={str(k): float(v) for k, v in (data.get("spikes_left_out") or {}).items()},
            zero_chain={str(k): float(v) for k, v in (data.get("zero_chain") or {}).items()},
            year_ago={str(k): float(v) for k, v in (data.get("year_ago") or {}).items()},
            zero_rule={str(k): float(v) for k, v in (data.get("zero_rule") or {}).items()},
        )

    def member_specs(self) -> list[ModelSpec]:
        """Every member of the model as a single-model spec (just itself when it is not a combination)."""
        own = dataclasses.replace(self, members=[])
        return [own] + [
            dataclasses.replace(
                own, order=tuple(m["order"]), seasonal_order=tuple(m["seasonal_order"]), trend=m.get("trend", "n"),
                params={str(k): float(v) for k, v in m["params"].items()}, z={str(k): float(v) for k, v in m["z"].items()},
                aic=float(m["aic"]),
            )
            for m in self.members
        ]

    @property
    def label(self) -> str:
        """Short human name of the model, e.g. "SARIMA(0, 1, 1)x(0, 1, 1, 7)", or "pool of ..." for a combination."""
        names = [f"SARIMA{tuple(m.order)}x{tuple(m.seasonal_order)}" + ("+c" if m.trend == "c" else "") for m in self.member_specs()]
        return names[0] if len(names) == 1 else "pool of " + " and ".join(names)

    @property
    def frequency(self) -> Cadence:
        """The cadence this model forecasts in."""
        return from_name(self.cadence)


@dataclass
class FittedModel:
    """A fitted model for one series: its spec, the statsmodels results and the data it saw."""

    series_id: str
    spec: ModelSpec
    results: Any = field(repr=False)
    last_date: pd.Timestamp
    history_max: float
    fit_seconds: float
    candidates: list[dict[str, Any]] = field(default_factory=list)
    # The h-step log-scale mean and standard error computed by the explosion check at fit time, reused by
    # `forecast` for horizons it covers (a step's moments do not depend on how many steps follow it).
    moments: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    # The other members of a combination (their results and moments); the spec lists them too.
    others: list[tuple[Any, tuple[np.ndarray, np.ndarray] | None]] = field(default_factory=list, repr=False)
    # The year-ago term of the periods after the last training period (log scale; `year_ago_offsets`),
    # already in `moments`; empty or zeros without one.
    year_ago_ahead: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def forecast(self, horizon: int, levels: tuple[float, ...] = (0.8, 0.95)) -> pd.DataFrame:
        """Forecast `horizon` periods after the last training period (see `quantile_frame`)."""
        parts = [(self.results, self.moments), *self.others]
        moments = [
            m if m is not None and len(m[0]) >= horizon else plus_year_ago(log_moments(r, horizon), self.year_ago_ahead)
            for r, m in parts
        ]
        return quantile_frame(self.spec, self.last_date, horizon, levels, moments)


def period_label(dates: pd.Series | pd.DatetimeIndex, cadence: Cadence) -> pd.DatetimeIndex:
    """The grid date of the period each date falls in (the date itself for daily data)."""
    index = pd.DatetimeIndex(dates).normalize()
    if cadence.name == "daily":
        return index
    if cadence.name == "weekly":
        return index.to_period(cadence.pandas_freq).end_time.normalize()
    periods = index.to_period("M")
    return (periods.end_time if cadence.pandas_freq == "ME" else periods.start_time).normalize()


def period_series(
    frame: pd.DataFrame, series_id: str, end_exclusive: pd.Timestamp | None = None, cadence: Cadence = DAILY
) -> pd.Series:
    """Sales of one series on its cadence's grid, from its first period to the last one before
    `end_exclusive` (or its newest row); periods without a row are 0."""
    rows = frame.loc[frame["series_id"] == series_id]
    if rows.empty:
        raise KeyError(f"series {series_id!r} has no rows in the snapshot")
    values = rows["value"].astype(float).groupby(period_label(rows["sales_date"], cadence)).sum()
    last = cadence.last_period_before(pd.Timestamp(end_exclusive)) if end_exclusive is not None else values.index.max()
    index = cadence.grid(values.index.min(), max(last, values.index.min()))
    return values.reindex(index, fill_value=0.0).rename(series_id)


def daily_series(frame: pd.DataFrame, series_id: str, end_exclusive: pd.Timestamp | None = None) -> pd.Series:
    """Calendar-daily sales of one series (see `period_series`)."""
    return period_series(frame, series_id, end_exclusive, DAILY)


def _without_spikes(y: pd.Series, cadence: Cadence, rule: tuple[float, ...]) -> tuple[pd.Series, pd.DatetimeIndex]:
    """`y` with the periods the spike rule flags anywhere in its history set to 0 (missing for the model),
    and those periods.

    Validation quarantines a series whose newest periods hold a spike (a x1,000 typo, a double delivery);
    once the spike is older than that window it would be trained on, and a x1,000 value weeks back moved a
    vegetable series' 7-day forecast by up to a third. Left out like a holiday, it moves nothing. A real
    one-off surge (a bulk order, the days before a festival) is left out too: no model here could have
    forecast it."""
    if not rule:
        return y, y.index[:0]
    spikes = anomaly.spike_periods(y, cadence, *rule)
    if len(spikes):
        log.info("%s: %d spike period(s) left out of training: %s", y.name, len(spikes), ", ".join(f"{d:%Y-%m-%d}" for d in spikes[:5]))
        y = y.where(~y.index.isin(spikes), 0.0)
    return y, spikes


# L-BFGS stops when the log-likelihood gains less than ~2e-6 relative per step (scipy's default asks for
# 2e-9: thousandths of a log-likelihood unit at these sample sizes, far below what moves a forecast) or the
# projected gradient is below 1e-4. bench/dev_folds.py: fit time -15 % (Iowa) and -30 % (vegetables daily),
# MASE unchanged on Iowa and weekly, 1.3 % lower on the vegetables daily.
_LBFGS_TOLERANCE = {"factr": 1e10, "pgtol": 1e-4}


# A single lag coefficient c (1 - cL^s) is stationary / invertible for |c| < 1; a search that ends on this
# bound is a unit root, which `_stable` rejects like any other.
_SCALAR_BOUND = 0.9999
# The search stops when the coefficient is known to 1e-4: a hundredth of its standard error on three years
# of weekly data, far below what moves a forecast.
_SCALAR_TOLERANCE = 1e-4


def _ar_at_one(names: list[str], values: np.ndarray) -> float:
    """The AR polynomials at lag operator 1, (1 - sum phi)(1 - sum Phi): a model's constant is its mean times
    this (the intercept of y_t = c + phi y_t-1 + ... whose mean is mu)."""
    factor = 1.0
    for prefix in ("ar.L", "ar.S.L"):
        factor *= 1.0 - sum(float(v) for n, v in zip(names, values, strict=True) if n.startswith(prefix))
    return factor


def _recent_mean(endog: np.ndarray, window: int) -> float:
    """Mean of the observed (finite) values among the last `window` periods (0: all of them); of all
    observed values if none of the last `window` is observed."""
    recent = endog[-window:] if window else endog
    return float(np.nanmean(recent if np.isfinite(recent).any() else endog))


def _fit_one(
    endog: np.ndarray,
    order: tuple[int, ...],
    seasonal: tuple[int, ...],
    max_iter: int,
    start: np.ndarray | None,
    mean_window: int = 0,
    multi_step: tuple[int, float, float] | None = None,
) -> Any:
    """Estimate one order on the log series and return statsmodels' filter results at the estimate.

    `mean_window`: an order with a constant reverts to the mean of the observed periods among the last
    `mean_window` periods (0: all). `multi_step` (horizon, delta, weight): an order with two or more
    coefficients has its likelihood estimate moved by `_multi_step_params`; None or horizon 0: not."""
    # The mean-reverting AR(1): its mean from the recent observed periods, its coefficient by least squares
    # around that mean (None with too few consecutive selling periods: the likelihood search below), its
    # filter in closed form.
    least_squares = None
    if is_ar1_with_constant(order, seasonal, trend_for(order, seasonal)):
        mean = _recent_mean(endog, mean_window)
        least_squares = _ar1_least_squares(endog - mean)
        closed = ar1_filter(endog, np.array([mean * (1.0 - least_squares), least_squares])) if least_squares is not None else None
        if closed is not None:
            return closed
    if is_local_level(order, seasonal, trend_for(order, seasonal)):
        # The local level: the same bounded search of the same likelihood as below, from the filter in
        # plain floats (`local_level_filter`: this member's fit ~2.4 -> ~0.6 ms, equal to statsmodels to rounding).
        # Where the likelihood is undefined (nothing observed after the first period) the search meets only
        # -inf and the filter at its end says None: statsmodels below handles the series, as before.
        values = endog.tolist()
        found = optimize.minimize_scalar(
            lambda v: -local_level_loglike(values, v),
            bounds=(-_SCALAR_BOUND, _SCALAR_BOUND), method="bounded", options={"xatol": _SCALAR_TOLERANCE, "maxiter": max_iter},
        )
        closed = local_level_filter(endog, float(found.x))
        if closed is not None:
            return closed
    model = sarimax(endog, order, seasonal)
    names = list(model.param_names)  # a property statsmodels rebuilds on every access
    constant = names[:1] == ["intercept"]
    free = names[1:] if constant else names
    with warnings.catch_warnings():
        # Convergence chatter is checked explicitly below; keep task logs readable.
        warnings.simplefilter("ignore")
        if not names:
            return lean_filter(model, np.array([]))  # a random walk: nothing to estimate (the scale is concentrated out)
        if len(free) == 1:
            # One coefficient (the mean-reverting AR(1) on a zero-heavy series, which least squares cannot
            # take; the local level when its own filter above cannot): a bounded Brent search of the same
            # likelihood, ~10 evaluations where `fit`'s L-BFGS with its numerical
            # gradient took ~22 plus its start-value and transform steps (on the development folds a weekly
            # fit and forecast 22 -> 10 ms, MASE and coverage within 0.5 %). A constant is the sample mean
            # of the recent observed periods (`mean_window`), so the search stays one-dimensional: not the
            # maximum-likelihood mean, which weights the first and last periods more.
            mean = _recent_mean(endog, mean_window) if constant else 0.0

            def full(coef: np.ndarray) -> np.ndarray:
                return np.r_[mean * _ar_at_one(free, coef), coef] if constant else coef

            coef = least_squares  # the AR(1)'s, when the closed-form filter could not take it
            if coef is None:
                # The search's filter passes skip re-symmetrising the state covariance every period: with
                # at most three states it stays symmetric to rounding anyway (likelihoods equal to the last
                # digit, tested), and on a weekly member that step is ~10-20 % of a pass. The pass at the
                # estimate below runs with the model's own setting again.
                stability = model.ssm.stability_method
                model.ssm.set_stability_method(0)
                found = optimize.minimize_scalar(
                    lambda v: -float(model.loglike(full(np.array([v])))),
                    bounds=(-_SCALAR_BOUND, _SCALAR_BOUND), method="bounded", options={"xatol": _SCALAR_TOLERANCE, "maxiter": max_iter},
                )
                model.ssm.set_stability_method(stability)
                coef = float(found.x)
            params = full(np.array([coef]))
        else:
            if start is not None and len(start) != len(names):
                start = None
            # Estimate, then one filter pass at the estimate: `fit`'s own results come from the Kalman
            # smoother, whose smoothed states nothing here uses (forecasts, residuals and the likelihood
            # are the filter's), ~10 % of a weekly fit; and `lean_filter` skips the parameter covariance.
            params = model.fit(disp=False, maxiter=max_iter, start_params=start, return_params=True, **_LBFGS_TOLERANCE)
            if multi_step and multi_step[0] > 0:
                params = _multi_step_params(model, endog, np.asarray(params, dtype=float), names, *multi_step)
        return lean_filter(model, params)


# Origins of the multi-step loss start after this many periods: the diffuse start of a seasonally
# differenced daily model (d + D x 7 = 8 periods) and its first weeks of large errors are not scored.
_MULTI_STEP_BURN_IN = 60
# The step moves a coefficient no further out than ±0.99 (or than the estimate, where the likelihood put it
# further out): a lag polynomial 1 + cL^s with |c| < 1 is invertible (stationary for an AR), so the step
# itself never hands `_stable` a unit root.
_MULTI_STEP_BOUND = 0.99


def multi_step_loss(model: Any, endog: np.ndarray, params: np.ndarray, horizon: int) -> float:
    """Mean absolute error of the model's 1..`horizon`-step predictions of the observed periods, on its own
    (log) scale, from every origin after `_MULTI_STEP_BURN_IN` periods, at `params`.

    One filter pass keeping only the predicted state means a(t|t-1); the h-step prediction of period t+h
    from the same origin is Z T^h a(t|t-1) (the model has no regressors: time-invariant matrices, no
    intercepts on a differenced order). A missing period (no sale) is no target."""
    from statsmodels.tsa.statespace import kalman_filter as kf

    memory = kf.MEMORY_NO_PREDICTED_COV | kf.MEMORY_NO_FILTERED | kf.MEMORY_NO_GAIN | kf.MEMORY_NO_SMOOTHING | kf.MEMORY_NO_STD_FORECAST
    fr = model.filter(params, cov_type="none", conserve_memory=memory).filter_results
    design, transition = fr.design[:, :, 0], fr.transition[:, :, 0]
    intercept = fr.obs_intercept[0, 0] if fr.obs_intercept.size else 0.0
    n = endog.shape[0]
    state = fr.predicted_state[:, :n]
    total, count = 0.0, 0
    for h in range(horizon):
        predicted = (design @ state)[0] + intercept  # of period t + h, t = 0 .. n - 1 - h
        target = endog[h:]
        scored = np.isfinite(target)
        scored[:_MULTI_STEP_BURN_IN] = False  # origins j < burn-in
        errors = np.abs(target[scored] - predicted[: n - h][scored])
        total += float(errors.sum())
        count += errors.size
        if h + 1 < horizon:
            state = transition @ state[:, : n - h - 1] + fr.state_intercept[:, :1]
    return total / count if count else float("nan")


def _multi_step_params(model: Any, endog: np.ndarray, params: np.ndarray, names: list[str], horizon: int, delta: float, weight: float) -> np.ndarray:
    """The likelihood estimate moved towards the coefficients with the lowest `multi_step_loss`.

    The likelihood scores one-step predictions, a forecast is read 1..`horizon` periods ahead. For each
    AR / MA coefficient (the others held at the estimate): the loss at the estimate and at ± `delta`, the parabola through them, and a
    step to its minimum (at most 2 `delta`; `delta` downhill where the loss is not convex there), taken
    `weight` of the way. 1 + 2 x coefficients filter passes (~4 ms each on three years of days), where a full
    search of the multi-step loss took 2-4 x the fit (docs/DEVELOPING.md). A constant is not moved."""
    at_estimate = multi_step_loss(model, endog, params, horizon)
    if not np.isfinite(at_estimate):
        return params
    moved = params.copy()
    for i, name in enumerate(names):
        if not name.startswith(("ar.", "ma.")):
            continue
        bound = max(_MULTI_STEP_BOUND, abs(float(params[i])))
        up, down = params.copy(), params.copy()
        up[i] = min(params[i] + delta, bound)
        down[i] = max(params[i] - delta, -bound)
        above, below = multi_step_loss(model, endog, up, horizon), multi_step_loss(model, endog, down, horizon)
        if up[i] - params[i] < delta or params[i] - down[i] < delta:
            # Within `delta` of the bound, one probe sits nearer than `delta` (at the estimate itself where
            # the likelihood put it beyond ±0.99), so no parabola: a step towards the upper probe if it is
            # downhill, else to the lower one if that is, else none; never past the bound.
            step = float(up[i] - params[i]) if above < at_estimate else (float(down[i] - params[i]) if below < at_estimate else 0.0)
        else:
            curvature = above - 2.0 * at_estimate + below
            if curvature > 1e-12:
                step = float(np.clip(-delta * (above - below) / (2.0 * curvature), -2.0 * delta, 2.0 * delta))
            else:
                step = delta if above < below else (-delta if below < above else 0.0)
        moved[i] = float(np.clip(params[i] + weight * step, -bound, bound))
    return moved


def _ar1_least_squares(x: np.ndarray) -> float | None:
    """The AR(1) coefficient of a demeaned series by least squares over consecutive observed periods
    (conditional least squares, R's `arima(method = "CSS")` for this order), bounded to the stationary
    range; None with fewer than `_MIN_SELLING_PERIODS` such pairs (a zero-heavy series), which the
    likelihood search then fits.

    For the AR(1) the conditional likelihood's maximum has this closed form, so the ~10 filter passes of
    the search are not needed (README, Modelling: "Faster estimation", for what it changed).
    """
    now, before = x[1:], x[:-1]
    pairs = np.isfinite(now) & np.isfinite(before)
    if int(pairs.sum()) < _MIN_SELLING_PERIODS:
        return None
    denominator = float(np.sum(before[pairs] ** 2))
    if denominator <= 0.0:
        return None
    return float(np.clip(np.sum(now[pairs] * before[pairs]) / denominator, -_SCALAR_BOUND, _SCALAR_BOUND))


def _off_season(seasonal_order: tuple[int, ...], seasonal: tuple[int, ...]) -> dict[str, Any]:
    """{"seasonal_order": ...} for a tried plan whose seasonal order is not the fit's own (the last resort), else {}."""
    return {"seasonal_order": list(seasonal_order)} if tuple(seasonal_order) != tuple(seasonal) else {}


def _stable(results: Any, order: tuple[int, ...], seasonal: tuple[int, ...]) -> str | None:
    """Why a fit is unusable, or None: non-stationary AR, non-invertible MA, non-finite likelihood."""
    if not np.isfinite(results.llf) or not np.all(np.isfinite(np.asarray(results.params))):
        return "non-finite likelihood or parameters"
    if (order[0] or seasonal[0]) and len(results.arroots) and np.min(np.abs(results.arroots)) <= 1.0001:
        return "non-stationary AR part"
    if (order[2] or seasonal[2]) and len(results.maroots) and np.min(np.abs(results.maroots)) <= 1.0001:
        return "non-invertible MA part" if order[2] else "non-invertible seasonal MA part"
    return None


def _interval_z(results: Any, levels: tuple[float, ...]) -> dict[str, float]:
    """Per level, the empirical quantile of the absolute one-step standardised errors (Gaussian z below 30
    of them), bounded to 0.5-2 x Gaussian.

    statsmodels reports error 0 for a period without an observation (no sale, a holiday), and those zeros
    are counted: the quantile shrinks with a series' share of such periods. Counting observed periods only
    made the daily intervals too wide on the development folds (README, Modelling: "Intervals").
    """
    errors = np.asarray(results.standardized_forecasts_error)[0]
    errors = np.abs(errors[np.isfinite(errors)][_BURN_IN:])
    z = {}
    for level in levels:
        normal = float(special.ndtri(0.5 + level / 2))
        empirical = float(np.quantile(errors, level)) if len(errors) >= 30 else normal
        # Bound the correction: a handful of odd residuals must not make intervals absurd.
        z[f"{level:g}"] = float(np.clip(empirical, 0.5 * normal, 2.0 * normal))
    return z


def _hurdle_quantile(p: float, pi: np.ndarray, mean: np.ndarray, se: np.ndarray, scale: float) -> np.ndarray:
    """Quantile p of "0 with probability pi, else log-normal(mean, (scale * se)^2)"."""
    pi = np.clip(pi, 0.0, 0.999)
    inner = np.clip((p - pi) / (1.0 - pi), 1e-6, 1 - 1e-6)
    # ndtri is the standard normal quantile without scipy.stats' argument checks (~8 % of a weekly fit).
    value = np.exp(mean + scale * special.ndtri(inner) * se)
    return np.where(p <= pi, 0.0, value)


def _pooled_quantiles(ps: np.ndarray, pi: np.ndarray, means: np.ndarray, sds: np.ndarray) -> np.ndarray:
    """Quantiles `ps` (n) of "0 with probability pi (h), else the equal-weight mixture of the members'
    log-normals": `means` (k, h) per member, `sds` (n, k, h) per quantile (the interval scale is per level).

    The mixture's quantile lies between the members' own quantiles: Newton's method on the log scale from
    the middle of that bracket, every quantile and period at once. Each step also narrows the bracket (the
    mixture CDF is increasing), and a step that would leave it goes to the bracket's midpoint instead (a
    flat stretch between far-apart members). A handful of steps reach 1e-10 where bisection took ~30
    halvings (a weekly forecast's five quantiles x 7 periods: ~0.27 ms instead of ~0.42).
    """
    pi = np.clip(pi, 0.0, 0.999)
    inner = np.clip((ps[:, None] - pi[None, :]) / (1.0 - pi[None, :]), 1e-6, 1 - 1e-6)  # (n, h)
    sds = np.maximum(sds, 1e-12)
    own = means[None, :, :] + sds * special.ndtri(inner)[:, None, :]  # (n, k, h)
    low, high = own.min(axis=1), own.max(axis=1)
    x = (low + high) / 2
    for _ in range(60):
        z = (x[:, None, :] - means[None, :, :]) / sds
        excess = special.ndtr(z).mean(axis=1) - inner  # mixture CDF minus target: increasing in x
        density = (np.exp(-0.5 * z * z) / (np.sqrt(2 * np.pi) * sds)).mean(axis=1)
        low, high = np.where(excess < 0, x, low), np.where(excess < 0, high, x)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = x - excess / density
        step = np.where((newton >= low) & (newton <= high), newton, (low + high) / 2)
        done = np.max(np.abs(step - x)) <= 1e-10
        x = step
        if done:
            break
    return np.where(ps[:, None] <= pi[None, :], 0.0, np.exp(x))


@single_threaded_blas
def forecast_frame(
    results: Any,
    spec: ModelSpec,
    last_date: pd.Timestamp,
    horizon: int,
    levels: tuple[float, ...],
    moments: tuple[np.ndarray, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Median forecast and calibrated intervals in sales units of a single model; closed periods are
    exactly 0.

    `moments`: the log-scale mean and standard error per step, when already computed (at least `horizon`
    steps); otherwise they come from `results`.
    """
    return quantile_frame(spec, last_date, horizon, levels, [moments if moments is not None else log_moments(results, horizon)])


def period_keys(dates: pd.DatetimeIndex, cadence: Cadence) -> list[str]:
    """The zero-share key of each period: its weekday for daily data ("mon" ...), else "all"."""
    return [WEEKDAYS[d] for d in dates.day_of_week] if cadence.name == "daily" else ["all"] * len(dates)


def zero_probability(spec: ModelSpec, keys: list[str], last_zero: bool | None = None) -> np.ndarray:
    """The probability of no sale a model gives each forecast period (`keys` from `period_keys`).

    A daily model blends the weekday's share with the spec's `zero_chain` from the state of the last open
    day: `last_zero` (the data forecast from), else the one training ended in; a mostly closed weekday
    (the chain's `weekday_gap`) keeps its own share. Closed weekdays keep their share here; the published
    quantiles are 0 on them whatever it is.
    """
    pi = np.array([spec.zero_share.get(k, 0.0) for k in keys], dtype=float)
    if not spec.zero_chain:
        return pi
    chain = spec.zero_chain
    open_day = ~np.isin(keys, spec.closed_weekdays)
    state = bool(chain["last_zero"]) if last_zero is None else last_zero
    steps = np.cumsum(open_day)  # open days ahead: closed weekdays are not steps of the chain
    blended = open_day
    if chain.get("weekday_gap"):
        # A weekday far more often without a sale than the typical open weekday is mostly closed: its
        # own share, not the chain (versions from before this rule have no "weekday_gap").
        open_shares = [v for k, v in spec.zero_share.items() if k not in spec.closed_weekdays]
        typical = float(np.median(open_shares)) if open_shares else 0.0
        blended = open_day & (pi - typical < chain["weekday_gap"])
    return np.where(blended, (1.0 - chain["weight"]) * pi + chain["weight"] * chain_zero_probability(chain, steps, state), pi)


def quantile_frame(
    spec: ModelSpec,
    last_date: pd.Timestamp,
    horizon: int,
    levels: tuple[float, ...],
    moments: list[tuple[np.ndarray, np.ndarray]],
    last_zero: bool | None = None,
) -> pd.DataFrame:
    """The published quantiles of a model from its members' log-scale moments (one per member of
    `spec.member_specs()`): the hurdle log-normal of a single model, or for a combination the hurdle over
    the equal-weight mixture of the members' log-normals (a linear pool: its intervals hold the members'
    disagreement, which averaging their quantiles would not). Closed periods are exactly 0; holidays are
    scaled by their learned ratios. The probability of no sale is `zero_probability`'s (`last_zero`: the
    state of the last open day of the data forecast from; None: the one training ended in).
    """
    moments = [(mean[:horizon], se[:horizon]) for mean, se in moments]
    dates = spec.frequency.future(last_date, horizon)
    keys = period_keys(dates, spec.frequency)
    pi = zero_probability(spec, keys, last_zero)

    first = levels[0]
    suffixes = {level: interval_suffix(level, levels) for level in levels}  # yhat_lower, yhat_lower_95
    # (column, probability, level whose interval scale applies); the median uses the first level's.
    wanted = [("yhat", 0.5, first)]
    for level, suffix in suffixes.items():
        wanted += [(f"yhat_lower{suffix}", 0.5 - level / 2, level), (f"yhat_upper{suffix}", 0.5 + level / 2, level)]
        wanted += [(f"from_zero{suffix}", level, level)]  # the upper bound of the interval [0, q_level]
    if len(moments) == 1:
        mean, se = moments[0]
        columns = {c: _hurdle_quantile(p, pi, mean, se, _z_scale(spec, level)) for c, p, level in wanted}
    else:
        means = np.array([mean for mean, _ in moments])
        members = spec.member_specs()  # only a combination needs its members' interval scales
        sds = np.array([[_z_scale(m, level) * se for (_, se), m in zip(moments, members, strict=True)] for _, _, level in wanted])
        pooled = _pooled_quantiles(np.array([p for _, p, _ in wanted]), pi, means, sds)
        columns = {c: pooled[i] for i, (c, _, _) in enumerate(wanted)}
    inner = None
    for level in sorted(levels):
        suffix = suffixes[level]
        _from_zero_where_narrower(columns, suffix, columns.pop(f"from_zero{suffix}"), pi, level)
        if inner is not None:
            # Keep the intervals nested: a wider level's interval holds the narrower one's (each level has
            # its own calibrated scale, so one can start at 0 where the next does not).
            columns[f"yhat_lower{suffix}"] = np.minimum(columns[f"yhat_lower{suffix}"], columns[f"yhat_lower{inner}"])
            columns[f"yhat_upper{suffix}"] = np.maximum(columns[f"yhat_upper{suffix}"], columns[f"yhat_upper{inner}"])
        inner = suffix
    # Built as arrays and framed once: per-column .loc updates cost more than the forecast itself.
    closed = np.isin(keys, spec.closed_weekdays)
    for values in columns.values():
        values[closed] = 0.0
    out = pd.DataFrame({"forecast_date": dates, **columns})
    return apply_holiday_effect(out, spec.holiday_effect, spec.holidays)


def _from_zero_where_narrower(columns: dict[str, np.ndarray], suffix: str, upper: np.ndarray, pi: np.ndarray, level: float) -> None:
    """Replace the equal-tailed interval [q_(1-l)/2, q_(1+l)/2] by [0, q_l] where that is narrower, in place.

    Sales are never negative, so [0, q_l] holds the same probability l. It is the narrower one for a wide,
    right-skewed forecast whose lower quantile lies near 0 (a small seller's week). Only where no sale is
    less likely than the lower tail (pi < (1 - l) / 2): above that the equal-tailed lower bound is 0
    already, and [0, q_l] would lower the upper bound on the strength of the probability of no sale alone.
    """
    lower, upper_tailed = columns[f"yhat_lower{suffix}"], columns[f"yhat_upper{suffix}"]
    use = (pi < (1.0 - level) / 2) & (upper < upper_tailed - lower)
    columns[f"yhat_lower{suffix}"] = np.where(use, 0.0, lower)
    columns[f"yhat_upper{suffix}"] = np.where(use, upper, upper_tailed)


def _z_scale(spec: ModelSpec, level: float) -> float:
    """The calibrated multiplier of a level relative to the Gaussian one (1 = Gaussian)."""
    normal = float(special.ndtri(0.5 + level / 2))
    return spec.z.get(f"{level:g}", normal) / normal


def _calendar_key(settings: ModelSettings) -> tuple[str, ...]:
    return (settings.holidays[0], settings.holidays[1] or "", *settings.holidays[2:]) if settings.holidays else ()


@single_threaded_blas
def fit_series(
    y: pd.Series,
    settings: ModelSettings,
    start_params: dict[str, dict[str, float]] | None = None,
    orders: tuple[tuple[int, int, int], ...] | None = None,
) -> FittedModel:
    """Select an order among stable, non-explosive candidates and return the fitted model.

    `settings.order_search`: "first_stable" takes the first candidate (in listed order) that passes the
    guards, so later ones are fallbacks; "aic" fits every candidate and keeps the lowest AIC. With
    `settings.combine` = N > 1 the first N that pass (or the N lowest AICs) are all kept: the model is
    their equal-weight combination (fewer members if fewer pass; the safe orders only when none does).
    `start_params` maps str(order) -> params of a previous fit (warm start from the champion; a
    one-coefficient order's bounded search does not use it).
    `orders` puts these orders first (used to refit a known spec on backtest folds); the configured
    candidates and then the safe orders remain fallbacks. Raises ModelFitError if nothing qualifies.
    """
    started = time.perf_counter()
    series_id = str(y.name)
    sold = bool((y > 0).any())
    cadence = settings.cadence
    calendar = _calendar_key(settings)
    names = holiday_names(calendar, y.index.min(), y.index.max())
    effect = holiday_effect(y, names) if len(names) else {}
    rule = zero_rule(
        settings.zero_window, settings.zero_halflife, settings.zero_recent_days, settings.zero_chain_weight, settings.chain_weekday_gap,
        settings.closure_share,
    )
    zero, closed, chain = zero_model(y, rule, cadence, pd.DatetimeIndex(names.index))
    if len(names):
        y = y.where(~y.index.isin(names.index), 0.0)  # zero = missing for the model
    seen = y
    y, spikes = _without_spikes(y, cadence, settings.spike_rule)
    selling = int((y > 0).sum())
    if selling < _MIN_SELLING_PERIODS:
        # A series that sold nothing at all in the window says so: "0 selling periods" alone reads like a
        # short history, and the fix differs (drop the series, or check the source) from waiting for data.
        nothing = f"; no sale in any of its {len(y)} {cadence.name} periods fitted" if not sold else ""
        raise ModelFitError(f"series {series_id!r}: too little history to fit ({selling} selling periods, need {_MIN_SELLING_PERIODS}){nothing}")
    seasonal = settings.seasonal_order
    if seasonal[3] and selling < 2 * seasonal[3] + 10:
        # Two seasons and some are needed to estimate a seasonal part (a 3-year monthly panel's early
        # backtest folds, a young daily series): fit the same orders without it rather than refuse the
        # series. The gate still has to find it better than seasonal naive.
        log.info("%s: %d selling periods, too few for the seasonal part %s: fitting without it", series_id, selling, seasonal)
        seasonal = (0, 0, 0, 0)
    endog = to_model_scale(y)
    year_ago: dict[str, float] = {}
    ahead = np.zeros(0)
    if settings.year_ago_lag:
        deviation = year_ago_deviations(y, settings.year_ago_window)
        year_ago = year_ago_effect(deviation, settings.year_ago_lag)
        if year_ago and settings.year_ago_window:
            year_ago["window"] = float(settings.year_ago_window)  # how a reload recomputes the deviations
        # The term for up to a year ahead (FittedModel.forecast may be asked for more than `horizon` periods).
        past, ahead = year_ago_offsets(deviation, year_ago, max(settings.horizon, settings.year_ago_lag))
        endog = endog - past
    mean_window = round(settings.mean_window_years * 365.25 / cadence.period_days)
    multi_step = (settings.multi_step_horizon, settings.multi_step_delta, settings.multi_step_weight)
    history_max = float(y.max())
    # Accepted fits, each (aic, results, order, seasonal order, h-step moments).
    accepted: list[tuple[float, Any, tuple[int, int, int], tuple[int, int, int, int], tuple[np.ndarray, np.ndarray]]] = []
    tried: list[dict[str, Any]] = []
    primary = list(dict.fromkeys(tuple(o) for o in (orders or ()) + settings.candidate_orders))
    plans = [(o, seasonal) for o in primary]
    plans += [(o, seasonal) for o in _SAFE_ORDERS if o not in primary]
    if seasonal[3]:
        # The last resort: a random walk on the log scale, with no coefficient that can leave the stable
        # region and a forecast at the last selling period's level. A seasonal MA estimated at the unit
        # circle on a short or stop-start history rejects every seasonal plan; the gate still has to find
        # this better than seasonal naive.
        plans.append((_CONSTANT_ORDER, (0, 0, 0, 0)))
    wanted = max(1, settings.combine)
    if np.ptp(endog[np.isfinite(endog)]) < 1e-9:
        # Every selling period sold the same amount (a slow mover's single unit, a fixed order size): on the
        # log scale the series is constant and no ARIMA has a finite likelihood. It is forecast as it is:
        # a noise-free random walk at that amount, with the hurdle for the periods without a sale.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the estimated noise variance is 0: statsmodels divides by it
            res = lean_filter(sarimax(endog, _CONSTANT_ORDER, (0, 0, 0, 0)), [])
        accepted.append((float("nan"), res, _CONSTANT_ORDER, (0, 0, 0, 0), plus_year_ago(log_moments(res, settings.horizon), ahead)))
        tried.append({"order": list(_CONSTANT_ORDER), "rejected": None, "note": "constant on the log scale"})
        plans = []
    for stage, (order, seasonal_order) in enumerate(plans):
        if accepted and (stage >= len(primary) or (settings.order_search == "first_stable" and len(accepted) >= wanted)):
            break  # targeted search: later candidates are fallbacks for a rejected fit; safe orders only if none held
        key = str(list(order))
        warm = None
        if start_params and key in start_params:
            warm = np.array(list(start_params[key].values()), dtype=float)
        # A warm start from a fit near the edge of the stable region can lead the optimiser to an explosive
        # or non-invertible estimate the cold start avoids: a rejected warm-started fit is retried cold.
        for start in (warm, None) if warm is not None else (None,):
            note = {"order": list(order), **_off_season(seasonal_order, seasonal), **({"warm_start": True} if start is not None else {})}
            try:
                res = _fit_one(endog, order, seasonal_order, settings.max_iter, start, mean_window, multi_step)
            except (np.linalg.LinAlgError, ValueError) as exc:  # e.g. "LU decomposition error" on bad starts
                tried.append({**note, "rejected": f"{type(exc).__name__}: {exc}"})
                continue
            reason = _stable(res, order, seasonal_order)
            moments = None
            if reason is None:
                moments = plus_year_ago(log_moments(res, settings.horizon), ahead)
                peak = float(np.exp(np.nanmax(moments[0])))
                if not np.isfinite(peak) or peak > settings.explosion_factor * max(history_max, 1.0):
                    reason = f"explosive forecast (peak {peak:.3g} > {settings.explosion_factor:g} x history max {history_max:.3g})"
            tried.append({**note, "aic": float(res.aic), "rejected": reason})
            if reason is None and moments is not None:
                accepted.append((float(res.aic), res, order, seasonal_order, moments))
                break
    if not accepted:
        raise ModelFitError(f"series {series_id!r}: no candidate order gave a stable fit: {tried}")
    if settings.order_search == "aic":
        accepted.sort(key=lambda a: a[0])  # lowest AIC first (stable sort: ties keep the listed order)
    accepted = accepted[:wanted]

    def member(fit: tuple[float, Any, tuple[int, int, int], tuple[int, int, int, int], Any]) -> dict[str, Any]:
        """A fit in the JSON form `ModelSpec.members` stores."""
        aic, res, order, seasonal_order, _ = fit
        return {
            "order": list(order), "seasonal_order": list(seasonal_order), "trend": trend_for(order, seasonal_order),
            "params": {n: float(v) for n, v in zip(res.param_names, np.asarray(res.params), strict=True)},
            "z": _interval_z(res, settings.interval_levels), "aic": aic,
        }

    first, *others = [member(fit) for fit in accepted]
    spec = ModelSpec(
        order=tuple(first["order"]),  # type: ignore[arg-type]
        seasonal_order=tuple(first["seasonal_order"]),  # type: ignore[arg-type]
        closed_weekdays=closed,
        z=first["z"],
        params=first["params"],
        aic=first["aic"],
        holiday_effect=effect,
        # The calendar whose holidays training left out, with or without learned ratios: a reload must
        # leave out the same days (a sale on a holiday without selling neighbours has no ratio).
        holidays=calendar,
        cadence=cadence.label,
        zero_share=zero,
        trend=first["trend"],
        members=others,
        spike_rule=tuple(settings.spike_rule),
        spikes_left_out={f"{d:%Y-%m-%d}": float(seen[d]) for d in spikes},
        zero_chain=chain,
        year_ago=year_ago,
        zero_rule=rule,
    )
    elapsed = time.perf_counter() - started
    log.info("fitted %s: %s aic %.1f in %.2fs (closed: %s)", series_id, spec.label, spec.aic, elapsed, ",".join(closed) or "none")
    (_, res, _, _, moments), *rest = accepted
    return FittedModel(series_id, spec, res, y.index.max(), history_max, elapsed, tried, moments, [(r, m) for _, r, _, _, m in rest], ahead)


def warm_start_params(spec: ModelSpec | None) -> dict[str, dict[str, float]] | None:
    """Starting values for refitting from a previous model's spec, per member order (None if there is none)."""
    return {str(list(m.order)): m.params for m in spec.member_specs()} if spec else None


def _model_view(y: pd.Series, spec: ModelSpec) -> pd.Series:
    """`y` as the spec's training saw it: its calendar's holidays and its rule's spikes set to 0 (missing)."""
    if spec.holidays:  # no calendar: nothing to leave out
        y = y.where(~y.index.isin(holiday_names(spec.holidays, y.index.min(), y.index.max()).index), 0.0)
    return _without_spikes(y, spec.frequency, spec.spike_rule)[0]


def _model_endog(y: pd.Series, spec: ModelSpec, horizon: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """What the spec's model filters (`_model_view` on the log scale, its year-ago term taken out), and the
    term for the `horizon` periods after `y` (zeros without one). The same for every member of a
    combination: they share the calendar, the spike rule and the term."""
    view = _model_view(y, spec)
    endog = to_model_scale(view)
    if not spec.year_ago:
        return endog, np.zeros(horizon)
    past, ahead = year_ago_offsets(year_ago_deviations(view, int(spec.year_ago.get("window", 0))), spec.year_ago, horizon)
    return endog - past, ahead


def filter_with_spec(y: pd.Series, spec: ModelSpec) -> Any:
    """Run a recorded model's fixed parameters over `y` (no re-estimation); returns statsmodels results."""
    return _filter_endog(_model_endog(y, spec)[0], spec)


@single_threaded_blas
def _filter_endog(endog: np.ndarray, spec: ModelSpec) -> Any:
    """`filter_with_spec` on the model-scale series `_model_endog` gives."""
    if is_ar1_with_constant(spec.order, spec.seasonal_order, spec.trend) and set(spec.params) == {"intercept", "ar.L1"}:
        closed = ar1_filter(endog, np.array([spec.params["intercept"], spec.params["ar.L1"]]))
        if closed is not None:
            return closed  # what the fit itself used
    if is_local_level(spec.order, spec.seasonal_order, spec.trend) and set(spec.params) == {"ma.L1"}:
        closed = local_level_filter(endog, spec.params["ma.L1"])
        if closed is not None:
            return closed
    model = sarimax(endog, spec.order, spec.seasonal_order, spec.trend)
    names = list(model.param_names)
    missing = [n for n in names if n not in spec.params]
    if missing:
        raise ValueError(f"spec lacks parameter(s) {missing} for order {spec.order}x{spec.seasonal_order}")
    with warnings.catch_warnings():
        # A noise-free model (`_CONSTANT_ORDER` on a series that sold one amount) has variance 0.
        warnings.simplefilter("ignore", RuntimeWarning)
        return lean_filter(model, [spec.params[n] for n in names])


def history_with(y: pd.Series, rows: pd.DataFrame, cadence: Cadence) -> pd.Series:
    """A version's stored history `y` with the periods of `rows` (columns `date`, `value`) laid over it: a
    row replaces its period's value, rows after `y` extend it, and periods between without a row are 0 (no
    row is no sale, as in the extract). What a registered model forecasts from when it is given newer data
    (`pyfunc_model`): the data the DAG's champion serves from.

    Raises ValueError naming the date and the rule for a date off the cadence's grid (a Tuesday in a
    weekly series dated on Sundays), a period given twice, or a value that is not a finite non-negative number.
    """
    dates = pd.to_datetime(rows["date"])
    if dates.dt.tz is not None:
        dates = dates.dt.tz_localize(None)  # a JSON timestamp with a zone: the calendar day as written
    values = pd.to_numeric(rows["value"], errors="coerce").astype(float)
    if dates.isna().any():
        raise ValueError(f"every row needs a date: row {int(np.flatnonzero(dates.isna().to_numpy())[0])} has none")
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        at = int(np.flatnonzero(bad.to_numpy())[0])
        raw = rows["value"].iloc[at]
        shown = repr(raw) if isinstance(raw, str) else str(raw)
        raise ValueError(f"value on {dates.iloc[at]:%Y-%m-%d} is {shown}: a value must be a finite number, not negative")
    if dates.duplicated().any():
        raise ValueError(f"{dates[dates.duplicated()].iloc[0]:%Y-%m-%d} is given twice: one row per period")
    # date_range rolls an anchored start (a week's weekday, a month's first day) onto its grid, so a date
    # off the grid is never in it.
    grid = cadence.grid(min(y.index.min(), dates.min()), max(y.index.max(), dates.max()))
    off = dates[~dates.isin(grid)]
    if len(off):
        raise ValueError(f"{off.iloc[0]:%Y-%m-%d} is not a period date of this {cadence.label} series (its periods are dated like {y.index.max():%Y-%m-%d})")
    merged = y.reindex(grid, fill_value=0.0)
    merged.loc[pd.DatetimeIndex(dates)] = values.to_numpy()
    return merged.asfreq(cadence.pandas_freq).rename(y.name)


def forecast_with_spec(y: pd.Series, spec: ModelSpec, horizon: int, levels: tuple[float, ...]) -> pd.DataFrame:
    """Forecast from the end of `y` with a recorded model's parameters (no re-estimation).

    This is how the champion forecasts new periods: its fixed parameters filter the latest data (each
    member's, for a combination, pooled as in `FittedModel.forecast`), and its probability of no sale (the
    shares, the closed weekdays or periods, the daily chain) is estimated again from that data by the rule
    training used (`spec.zero_rule`), as a refit would. A champion serves on while the gate rejects its
    candidates, sometimes for weeks: with what it was trained with, a product that stopped selling since
    would be forecast at its old rate, and one trained out of stock (closed) at 0 after it is back
    (README, Modelling, "A champion serving later runs").
    """
    endog, ahead = _model_endog(y, spec, horizon)  # once: every member sees the same data
    moments = [plus_year_ago(log_moments(_filter_endog(endog, m), horizon), ahead) for m in spec.member_specs()]
    chain = {}
    if spec.zero_rule:
        holidays = pd.DatetimeIndex(holiday_names(spec.holidays, y.index.min(), y.index.max()).index)
        zero, closed, chain = zero_model(y, spec.zero_rule, spec.frequency, holidays)
        # Too few open days for a chain now: the recorded one, from the newest state below.
        spec = dataclasses.replace(spec, zero_share=zero, closed_weekdays=closed, zero_chain=chain or spec.zero_chain)
    last_zero = None
    if spec.zero_chain and not chain:
        # A recorded chain starts from the state of the data forecast from (newer than training's for a
        # champion serving later runs), on the days training would count: no closed weekday, no holiday.
        # A chain estimated again above already ends in that state.
        tail = y.iloc[-7 * 7 :]
        holidays = pd.DatetimeIndex(holiday_names(spec.holidays, tail.index.min(), tail.index.max()).index)
        days = open_days(tail, spec.closed_weekdays, holidays)
        last_zero = bool(days.iloc[-1] == 0) if len(days) else None
    return quantile_frame(spec, y.index.max(), horizon, levels, moments, last_zero)

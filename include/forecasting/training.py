"""Fit one SARIMA model per series with statsmodels, and forecast with calibrated intervals.

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
import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

from include.forecasting import anomaly
from include.forecasting.evaluation import interval_suffix
from include.forecasting.frequency import DAILY, Cadence, from_name

log = logging.getLogger(__name__)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# The first residuals of a seasonally differenced model are dominated by the diffuse start.
_BURN_IN = 21
# Tried after every configured candidate was rejected: simple orders that are stable on most sales data
# (a local level on the log scale, with the frequency's seasonal MA where it has a season).
_SAFE_ORDERS = ((0, 1, 1), (0, 1, 0))
# The model of a series that sold the same amount in every selling period (no noise to estimate).
_CONSTANT_ORDER = (0, 1, 0)
# Fewest periods with sales a series needs for any fit (a non-seasonal ARIMA of at most 3 parameters).
_MIN_SELLING_PERIODS = 20
# The year-ago term of weekly models (`year_ago_effect`): a period's deviation is its log sales minus the
# mean of the observed log periods of the year around it (`ModelSettings.year_ago_window` periods, centred;
# versions from before it: the median of those within `_YEAR_AGO_HALF` periods either side); the term pairs
# each deviation with the one `_WEEKS_A_YEAR` periods before, is fitted on at least `_YEAR_AGO_MIN_PAIRS`
# such pairs (half a year of overlap) and is kept only where its coefficient is significant at the usual
# 5 % (t >= 2). Chosen before any measurement, not tuned.
_WEEKS_A_YEAR = 52
_YEAR_AGO_HALF = 4
_YEAR_AGO_MIN_PAIRS = 26
_YEAR_AGO_T = 2.0
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
        year_ago_lag=_WEEKS_A_YEAR if orders.year_ago is not False and cadence.name == "weekly" else 0,
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
            m if m is not None and len(m[0]) >= horizon else _plus_year_ago(_log_moments(r, horizon), self.year_ago_ahead)
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


def _recency_weighted(zero: np.ndarray, halflife: float) -> float:
    """Share of zeros, each observation weighted 2^(-age / halflife) (the newest has age 0)."""
    weights = 0.5 ** (np.arange(len(zero))[::-1] / halflife)
    return float(np.sum(weights * zero) / np.sum(weights))


def zero_share(
    y: pd.Series, window: int, cadence: Cadence, exclude: pd.DatetimeIndex | None = None, halflife: float = 2.0
) -> dict[str, float]:
    """P(no sale) per weekday (daily data: over the last `window` of each weekday) or overall ("all").

    Recency-weighted (half-life `halflife` observations of the same weekday or period): a product that
    starts selling again after weeks out of stock is a seller again within a couple of weeks, not after
    the whole window has forgotten the gap; a weekday that is always closed stays closed.
    """
    if exclude is not None and len(exclude):
        y = y[~y.index.isin(exclude)]
    if cadence.name == "daily":
        recent = y.iloc[-window * 7 :]
        return {WEEKDAYS[d]: _recency_weighted(g.to_numpy(dtype=float), halflife) for d, g in (recent == 0).groupby(recent.index.day_of_week)}
    recent = y.iloc[-window:]
    return {"all": _recency_weighted((recent == 0).to_numpy(dtype=float), halflife)} if len(recent) else {}


def _open_days(y: pd.Series, closed: tuple[str, ...], exclude: pd.DatetimeIndex | None) -> pd.Series:
    """The days of a daily series that can tell sold from not sold: not a closed weekday, not a holiday."""
    keep = ~np.isin([WEEKDAYS[d] for d in y.index.day_of_week], closed)
    if exclude is not None and len(exclude):
        keep &= ~y.index.isin(exclude)
    return y[keep]


def zero_chain(
    y: pd.Series, window: int, closed: tuple[str, ...], exclude: pd.DatetimeIndex | None, weight: float, weekday_gap: float = 0.0
) -> dict[str, float]:
    """The two-state (sold / no sale) Markov chain of a daily series' open days over the last `window`
    weeks: P(no sale after a sale) and P(a sale after a day without), each with half a transition of
    prior (so neither is 0 or 1), and the state of the last open day. Empty without `weight` or with
    fewer than 14 open days. With `weekday_gap` > 0 the chain records it: a forecast leaves the chain off
    the weekdays that are mostly closed (`zero_probability`).

    Why: no sale mostly comes in runs (a product out of stock for days or weeks), so whether the product
    sold on its last open day says more about the next few days than the weekday's share of the last
    weeks, which trails a restart by weeks; further ahead the chain forgets the state.
    """
    if weight <= 0:
        return {}
    days = _open_days(y.iloc[-window * 7 :], closed, exclude)
    if len(days) < 14:
        return {}
    zero = days.to_numpy(dtype=float) == 0
    before, after = zero[:-1], zero[1:]
    to_zero = (np.sum(~before & after) + 0.5) / (np.sum(~before) + 1.0)
    to_sale = (np.sum(before & ~after) + 0.5) / (np.sum(before) + 1.0)
    chain = {"to_zero": float(to_zero), "to_sale": float(to_sale), "weight": float(weight), "last_zero": float(zero[-1])}
    return {**chain, "weekday_gap": float(weekday_gap)} if weekday_gap > 0 else chain


def chain_zero_probability(chain: dict[str, float], steps: np.ndarray, last_zero: bool) -> np.ndarray:
    """P(no sale) `steps` open days after the chain's state: the stationary share plus the state's
    excess over it, which decays by (1 - to_zero - to_sale) per step."""
    a, b = chain["to_zero"], chain["to_sale"]
    stationary = a / (a + b)
    decay = (1.0 - a - b) ** steps
    return stationary + (1.0 - stationary) * decay if last_zero else stationary * (1.0 - decay)


def pooled_zero_shares(
    y: pd.Series, window: int, closed: tuple[str, ...], exclude: pd.DatetimeIndex | None, halflife_days: float, own: dict[str, float]
) -> dict[str, float]:
    """A daily series' probability of no sale per open weekday: how often it went without a sale lately
    (the share of zeros over all open days of the last `window` weeks, recency-weighted with a half-life
    of `halflife_days` days), moved by how often that weekday goes without one compared with all open
    days over the whole window (the difference of their log-odds; the all-days share with half a day of
    prior, each weekday's with one day at the all-days share, so a weekday seen without a zero sits below
    the rest, never above). Closed weekdays, and every weekday of a series with fewer than 14 open days,
    keep `own`.

    Why: a weekday's own recency-weighted share rests on a handful of its days (half-life two weeks),
    so it is noisy and trails a stock-out or a restart by weeks. Whether a product is in stock is shared
    by all its open days (seven times the observations); how a weekday differs (a quiet Sunday) changes
    slowly and is better estimated over the whole window.
    """
    days = _open_days(y.iloc[-window * 7 :], closed, exclude)
    if len(days) < 14:
        return own
    zero = days.to_numpy(dtype=float) == 0
    # Bounded away from 0 and 1, where the log-odds are infinite (a product that never missed a day).
    recent = float(np.clip(_recency_weighted(zero.astype(float), halflife_days), 0.01, 0.99))
    share = (zero.sum() + 0.5) / (len(zero) + 1.0)
    shares = dict(own)
    for day, flags in pd.Series(zero, index=days.index).groupby(days.index.day_of_week):
        offset = special.logit((flags.sum() + share) / (len(flags) + 1.0)) - special.logit(share)
        shares[WEEKDAYS[day]] = float(special.expit(special.logit(recent) + offset))
    return shares


def closed_weekdays(y: pd.Series, weeks: int, share: float) -> tuple[str, ...]:
    """Weekdays whose share of zero-sales days over the last `weeks` weeks is at least `share`."""
    shares = zero_share(y, weeks, DAILY)
    return tuple(d for d in WEEKDAYS if d in shares and share > 0 and shares[d] >= share)


@functools.lru_cache(maxsize=16)
def _calendar(country: str, subdivision: str | None, first_year: int, last_year: int, categories: str = "public") -> dict[pd.Timestamp, str]:
    """Date -> holiday name from the `holidays` package, built once per process and range (`categories`:
    the package's categories joined by ","; a day in two of them keeps the package's joined name)."""
    import holidays

    found = holidays.country_holidays(
        country, subdiv=subdivision or None, years=range(first_year, last_year + 1), categories=tuple(categories.split(","))
    )
    return {pd.Timestamp(d): name for d, name in sorted(found.items())}


def is_package_calendar(calendar: tuple[str, ...]) -> bool:
    """Whether a recorded calendar key is the `holidays` package's (country, subdivision[, categories]),
    not a legacy tuple of US federal holiday names."""
    return len(calendar) in (2, 3) and len(calendar[0]) in (2, 3) and calendar[0].isupper()


def holiday_names(calendar: tuple[str, ...], start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """Holiday dates between start and end (inclusive) -> name, for a spec's calendar.

    `calendar` is (country, subdivision[, categories]); a legacy spec holds US federal holiday names
    instead, served from pandas' calendar under one name ("holiday") to match its flat effect.
    """
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    if not calendar:
        return pd.Series(dtype=object)
    if is_package_calendar(calendar):
        found = _calendar(calendar[0], calendar[1] or None, start.year, end.year, *calendar[2:])
        return pd.Series({d: n for d, n in found.items() if start <= d <= end}, dtype=object)
    from pandas.tseries.holiday import USFederalHolidayCalendar

    legacy = USFederalHolidayCalendar().holidays(start, end, return_name=True)
    return pd.Series({d: "holiday" for d, n in legacy.items() if n in calendar}, dtype=object)


def holiday_effect(y: pd.Series, names: pd.Series) -> dict[str, dict[str, float]]:
    """Per holiday name: median, lowest and highest ratio of its sales to the same weekday a week
    before and after (neighbours that are holidays or zero are skipped). Holidays never seen -> absent."""
    week = pd.Timedelta(days=7)
    ratios: dict[str, list[float]] = {}
    for day, name in names.items():
        if day not in y.index:
            continue
        neighbours = [y[d] for d in (day - week, day + week) if d in y.index and d not in names.index and y[d] > 0]
        if neighbours:
            ratios.setdefault(str(name), []).append(float(y[day]) / float(np.mean(neighbours)))
    out = {}
    for name, values in ratios.items():
        clipped = np.clip(values, 0.0, 3.0)  # one odd day must not triple a forecast
        out[name] = {"factor": float(np.median(clipped)), "low": float(clipped.min()), "high": float(clipped.max()), "n": float(len(values))}
    return out


def holiday_effect_holds(effect: dict[str, float]) -> bool:
    """Whether a learned holiday ratio is evidence enough to scale a forecast: seen at least twice, every
    time on the same side of 1 (all lower or all higher than the neighbouring weeks).

    One observation cannot tell a holiday effect from an odd day, and a ratio that went both ways has no
    direction to apply. Such a holiday is forecast like any other day (it is still left out of training).
    """
    n = effect.get("n", 2.0)  # a legacy flat effect has no count: it was always applied
    return n >= 2 and (effect["high"] < 1.0 or effect["low"] > 1.0)


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


def to_model_scale(y: pd.Series) -> np.ndarray:
    """log(sales) with zero periods as NaN (missing for the Kalman filter)."""
    values = y.to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(values > 0, np.log(np.where(values > 0, values, 1.0)), np.nan)


def year_ago_deviations(y: pd.Series, window: int = 0) -> np.ndarray:
    """How far each period stood from its year: log sales minus the mean of the observed log periods in the
    `window` periods centred on it (NaN for a period without a sale, or with fewer than half the window
    observed around it; near the end of the history the window is the part of it the history holds).
    `window` 0: from its local level instead, the median of the observed log periods within
    `_YEAR_AGO_HALF` either side (versions from before the yearly window).

    Why the year: a produce in season sells for months above its year's mean and a term on the local level
    sees nothing of it (each week is level with its neighbours), while the mean-reverting member pulls the
    in-season forecast down towards the year's mean. A peak week stands out from its year as it did from
    its neighbours, and a centred window leaves a steady trend at 0.
    """
    log_sales = pd.Series(to_model_scale(y))
    if window > 0:
        level = log_sales.rolling(window, center=True, min_periods=window // 2).mean()
    else:
        level = log_sales.rolling(2 * _YEAR_AGO_HALF + 1, center=True, min_periods=_YEAR_AGO_HALF + 1).median()
    return (log_sales - level).to_numpy()


def _years_before(deviation: np.ndarray, lag: int, length: int) -> np.ndarray:
    """For each of `length` periods counted from the first of `deviation` (past its end: the periods
    ahead): the mean of its known deviations one and two years (`lag` and 2 `lag` periods) before; NaN
    where neither is known. Two years, where there are, halve what a one-off week of one year brings back."""
    total, count = np.zeros(length), np.zeros(length)
    for back in (lag, 2 * lag):
        source = np.arange(length) - back
        inside = (source >= 0) & (source < len(deviation))
        value = np.full(length, np.nan)
        value[inside] = deviation[source[inside]]
        known = np.isfinite(value)
        total[known] += value[known]
        count[known] += 1
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def year_ago_effect(deviation: np.ndarray, lag: int) -> dict[str, float]:
    """The year-ago term of a weekly series, or {} where the history shows no yearly pattern.

    The weekly models follow the level and have no yearly season (three years of weeks are too short for a
    52-week seasonal difference), so a peak that comes back every year at the same week (Thanksgiving,
    Christmas, a season's start) is missed every year. Here each period's deviation from its year
    (`year_ago_deviations`) is regressed, through the origin, on the mean of its deviations one and two
    years before (`_years_before`: `lag` and 2 `lag` periods; the one known where only one is), over every
    period where both sides are known: the coefficient `beta` says how much of the past years' deviation
    comes back. It is kept only on at least `_YEAR_AGO_MIN_PAIRS` pairs and where it is significant
    (t >= 2), and capped at 1 (no more than all of it comes back); a series whose weeks move at random
    keeps no term. `deviation` is the series' `year_ago_deviations`. Returns {"beta", "lag", "t", "pairs"}.
    """
    now = deviation
    if lag <= 0 or len(now) <= lag:
        return {}
    before = _years_before(now, lag, len(now))
    known = np.isfinite(before) & np.isfinite(now)
    pairs = int(known.sum())
    if pairs < _YEAR_AGO_MIN_PAIRS:
        return {}
    x, z = before[known], now[known]
    sxx = float(x @ x)
    if sxx <= 0.0:
        return {}
    beta = float(x @ z) / sxx
    residual = z - beta * x
    se = float(np.sqrt(float(residual @ residual) / (pairs - 1) / sxx))
    t = beta / se if se > 0.0 else np.inf
    if not t >= _YEAR_AGO_T:
        return {}
    return {"beta": min(beta, 1.0), "lag": float(lag), "t": float(min(t, 1e6)), "pairs": float(pairs)}


def year_ago_offsets(deviation: np.ndarray, effect: dict[str, float], horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """The year-ago term on the log scale for every period of a series and for the `horizon` periods after
    it: `beta` x the mean of its deviations (`year_ago_deviations`) one and two years before
    (`_years_before`; 0 where neither is known: no sale, or before the history). All zeros when `effect`
    is empty."""
    n = len(deviation)
    if not effect:
        return np.zeros(n), np.zeros(horizon)
    term = effect["beta"] * np.nan_to_num(_years_before(deviation, int(effect["lag"]), n + horizon), nan=0.0)
    return term[:n], term[n:]


def _plus_year_ago(moments: tuple[np.ndarray, np.ndarray], ahead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """h-step log-scale moments with the year-ago term added to the mean (0 past the term's length)."""
    mean, se = moments
    shift = np.zeros(len(mean))
    k = min(len(mean), len(ahead))
    shift[:k] = ahead[:k]
    return mean + shift, se


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
    endog: np.ndarray, order: tuple[int, ...], seasonal: tuple[int, ...], max_iter: int, start: np.ndarray | None, mean_window: int = 0
) -> Any:
    """Estimate one order on the log series and return statsmodels' filter results at the estimate.

    `mean_window`: an order with a constant reverts to the mean of the observed periods among the last
    `mean_window` periods (0: all)."""
    # The mean-reverting AR(1): its mean from the recent observed periods, its coefficient by least squares
    # around that mean (None with too few consecutive selling periods: the likelihood search below), its
    # filter in closed form.
    least_squares = None
    if _is_ar1_with_constant(order, seasonal, trend_for(order, seasonal)):
        mean = _recent_mean(endog, mean_window)
        least_squares = _ar1_least_squares(endog - mean)
        closed = ar1_filter(endog, np.array([mean * (1.0 - least_squares), least_squares])) if least_squares is not None else None
        if closed is not None:
            return closed
    if _is_local_level(order, seasonal, trend_for(order, seasonal)):
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
        return lean_filter(model, params)


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


def _is_ar1_with_constant(order: tuple[int, ...], seasonal: tuple[int, ...], trend: str) -> bool:
    """True for (1,0,0) with a constant and no seasonal part: the weekly pool's mean-reverting member (or
    that candidate fitted without its season on a short history)."""
    return tuple(order) == (1, 0, 0) and not any(tuple(seasonal)[:3]) and trend == "c"


@dataclass
class AR1Results:
    """statsmodels' filter results of SARIMAX (1,0,0) with a constant (scale concentrated out, stationary
    start) at fixed parameters, computed in closed form: the fields the project reads, with the same
    names and shapes (`filter_results` holds the last one-step prediction and the system matrices that
    `_log_moments` runs forward).

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


def _is_local_level(order: tuple[int, ...], seasonal: tuple[int, ...], trend: str) -> bool:
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
    (level, shock): y = level + shock, level' = level + (1 + theta) shock, which `_log_moments` runs
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
    return quantile_frame(spec, last_date, horizon, levels, [moments if moments is not None else _log_moments(results, horizon)])


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


def _log_moments(results: Any, horizon: int) -> tuple[np.ndarray, np.ndarray]:
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


def _z_scale(spec: ModelSpec, level: float) -> float:
    """The calibrated multiplier of a level relative to the Gaussian one (1 = Gaussian)."""
    normal = float(special.ndtri(0.5 + level / 2))
    return spec.z.get(f"{level:g}", normal) / normal


def apply_holiday_effect(out: pd.DataFrame, effect: dict[str, Any], calendar: tuple[str, ...]) -> pd.DataFrame:
    """Scale a forecast frame's holiday rows: point x median ratio, lower x lowest, upper x highest.

    A holiday whose ratio does not hold (`holiday_effect_holds`: seen once, or both ways) keeps the
    ordinary day's point, but its interval reaches halfway (on the log scale) towards the ratios seen:
    lower x sqrt(lowest) where that is below 1, upper x sqrt(highest) where above. One sighting is not
    evidence enough to move the point (docs/DEVELOPING.md), but it is a warning that the day may be far
    from an ordinary one: with the ordinary day's interval, a once-seen Christmas closure fell outside it.
    """
    if not effect or out.empty:
        return out
    dates = pd.DatetimeIndex(out["forecast_date"])
    names = holiday_names(calendar, dates[0], dates[-1])
    if names.empty:
        return out
    if "factor" in effect:  # a legacy flat effect: one ratio for every listed holiday
        effect = {"holiday": effect}
    out = out.copy()
    for column in [c for c in out.columns if c.startswith("yhat")]:
        key = "low" if "lower" in column else "high" if "upper" in column else "factor"
        values = out[column].to_numpy(dtype=float, copy=True)
        for day, name in names.items():
            if name in effect:
                values[dates == day] *= _holiday_scale(effect[name], key)
        out[column] = values
    return out


def _holiday_scale(effect: dict[str, float], key: str) -> float:
    """What a holiday multiplies its forecast's `key` column by ("factor" the point, "low" / "high" the
    bounds): the learned ratio where it holds; else 1 for the point and, for a bound, halfway on the log
    scale to the ratio seen beyond it (see `apply_holiday_effect`)."""
    if holiday_effect_holds(effect):
        return effect[key]
    if key == "low":
        return math.sqrt(min(effect["low"], 1.0))
    if key == "high":
        return math.sqrt(max(effect["high"], 1.0))
    return 1.0


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
    cadence = settings.cadence
    calendar = _calendar_key(settings)
    names = holiday_names(calendar, y.index.min(), y.index.max())
    effect = holiday_effect(y, names) if len(names) else {}
    zero = zero_share(y, settings.zero_window, cadence, exclude=pd.DatetimeIndex(names.index), halflife=settings.zero_halflife)
    closed = tuple(k for k, s in zero.items() if settings.closure_share > 0 and s >= settings.closure_share)
    if cadence.name == "daily" and settings.zero_recent_days > 0:
        zero = pooled_zero_shares(y, settings.zero_window, closed, pd.DatetimeIndex(names.index), settings.zero_recent_days, zero)
    chain = (
        zero_chain(y, settings.zero_window, closed, pd.DatetimeIndex(names.index), settings.zero_chain_weight, settings.chain_weekday_gap)
        if cadence.name == "daily"
        else {}
    )
    if len(names):
        y = y.where(~y.index.isin(names.index), 0.0)  # zero = missing for the model
    seen = y
    y, spikes = _without_spikes(y, cadence, settings.spike_rule)
    selling = int((y > 0).sum())
    if selling < _MIN_SELLING_PERIODS:
        raise ModelFitError(f"series {series_id!r}: too little history to fit ({selling} selling periods, need {_MIN_SELLING_PERIODS})")
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
        accepted.append((float("nan"), res, _CONSTANT_ORDER, (0, 0, 0, 0), _plus_year_ago(_log_moments(res, settings.horizon), ahead)))
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
                res = _fit_one(endog, order, seasonal_order, settings.max_iter, start, mean_window)
            except (np.linalg.LinAlgError, ValueError) as exc:  # e.g. "LU decomposition error" on bad starts
                tried.append({**note, "rejected": f"{type(exc).__name__}: {exc}"})
                continue
            reason = _stable(res, order, seasonal_order)
            moments = None
            if reason is None:
                moments = _plus_year_ago(_log_moments(res, settings.horizon), ahead)
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
    if _is_ar1_with_constant(spec.order, spec.seasonal_order, spec.trend) and set(spec.params) == {"intercept", "ar.L1"}:
        closed = ar1_filter(endog, np.array([spec.params["intercept"], spec.params["ar.L1"]]))
        if closed is not None:
            return closed  # what the fit itself used
    if _is_local_level(spec.order, spec.seasonal_order, spec.trend) and set(spec.params) == {"ma.L1"}:
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


def forecast_with_spec(y: pd.Series, spec: ModelSpec, horizon: int, levels: tuple[float, ...]) -> pd.DataFrame:
    """Forecast from the end of `y` with a recorded model's parameters (no re-estimation).

    This is how the champion forecasts new periods: its fixed parameters filter the latest data (each
    member's, for a combination, pooled as in `FittedModel.forecast`).
    """
    endog, ahead = _model_endog(y, spec, horizon)  # once: every member sees the same data
    moments = [_plus_year_ago(_log_moments(_filter_endog(endog, m), horizon), ahead) for m in spec.member_specs()]
    last_zero = None
    if spec.zero_chain:
        # The chain starts from the state of the data forecast from (newer than training's for a
        # champion serving later runs), on the days training would count: no closed weekday, no holiday.
        tail = y.iloc[-7 * 7 :]
        holidays = pd.DatetimeIndex(holiday_names(spec.holidays, tail.index.min(), tail.index.max()).index)
        days = _open_days(tail, spec.closed_weekdays, holidays)
        last_zero = bool(days.iloc[-1] == 0) if len(days) else None
    return quantile_frame(spec, y.index.max(), horizon, levels, moments, last_zero)

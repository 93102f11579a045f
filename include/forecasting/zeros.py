"""The probability of no sale: how often a series went without a sale, per weekday for daily data.

The model sees log sales with zero periods missing (`training`); zeros come back as a hurdle whose
probability this module estimates (README, Modelling: "Zeros are a probability", "Runs of no sale"):
- `zero_share`: the recency-weighted share of zero periods over the last `zero_window` periods (per
  weekday for daily data), a share of `closure_share` or more closes the period (`closed_keys`: Iowa's Saturdays);
- `pooled_zero_shares` (daily): the share over all open days of the recent past, moved by each weekday's
  difference from the other open days over the whole window;
- `zero_chain` (daily): a two-state sold / no-sale Markov chain over the open days, so whether the last
  open day sold counts for the next few days (`chain_zero_probability`);
- `zero_model`: all of them by one rule (`zero_rule`), for training and again for each forecast a
  recorded model makes from newer data.
Pure numpy / pandas; `training.zero_probability` combines them for a model's forecast periods.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from include.forecasting.frequency import Cadence

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


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


def open_days(y: pd.Series, closed: tuple[str, ...], exclude: pd.DatetimeIndex | None) -> pd.Series:
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
    days = open_days(y.iloc[-window * 7 :], closed, exclude)
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
    days = open_days(y.iloc[-window * 7 :], closed, exclude)
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


def closed_keys(shares: dict[str, float], share: float) -> tuple[str, ...]:
    """The keys of `shares` (weekdays, or "all") whose share of no sale is at least `share`, in their
    order; none when `share` is 0 (closing turned off)."""
    return tuple(k for k, s in shares.items() if share > 0 and s >= share)


def zero_rule(
    window: int, halflife: float, recent_days: float, chain_weight: float, chain_weekday_gap: float, closure_share: float
) -> dict[str, float]:
    """The settings `zero_model` estimates with, in the JSON form a model's spec records."""
    return {
        "window": float(window), "halflife": float(halflife), "recent_days": float(recent_days),
        "chain_weight": float(chain_weight), "chain_weekday_gap": float(chain_weekday_gap), "closure_share": float(closure_share),
    }


def zero_model(
    y: pd.Series,
    rule: dict[str, float],
    cadence: Cadence,
    exclude: pd.DatetimeIndex | None,
) -> tuple[dict[str, float], tuple[str, ...], dict[str, float]]:
    """A series' probability of no sale by `rule` (`zero_rule`): the shares per key (`zero_share`, pooled
    over the open days of daily data with `recent_days` > 0), the keys closed at the rule's
    `closure_share` (`closed_keys`) and the daily chain (empty for other cadences, with no `chain_weight`
    or too few open days). `exclude`: the holidays, which count neither way.
    """
    window = int(rule["window"])
    zero = zero_share(y, window, cadence, exclude=exclude, halflife=rule["halflife"])
    closed = closed_keys(zero, rule["closure_share"])
    if cadence.name != "daily":
        return zero, closed, {}
    if rule["recent_days"] > 0:
        zero = pooled_zero_shares(y, window, closed, exclude, rule["recent_days"], zero)
    chain = zero_chain(y, window, closed, exclude, rule["chain_weight"], rule["chain_weekday_gap"])
    return zero, closed, chain

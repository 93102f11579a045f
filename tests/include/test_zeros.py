"""zeros: the probability of no sale (weekday shares, the pooled shares, the two-state chain) on real series."""

from __future__ import annotations

import numpy as np
import pandas as pd

from include.forecasting import holiday_effects, zeros
from include.forecasting.frequency import DAILY, weekly


def test_saturday_is_the_closed_day(velvet):
    """The rule fit_series applies to the weekday shares: closed at the share or more, none at 0."""
    shares = zeros.zero_share(velvet, 12, DAILY)
    assert zeros.closed_keys(shares, 0.5) == ("sat",)
    assert zeros.closed_keys(shares, 0.0) == ()


def test_zero_share_forgets_an_old_stock_out():
    """Eight weeks out of stock, then three weeks selling daily: the recency-weighted P(no sale) is below
    one half again, so the median is a sale (a plain 12-week share would still say ~70 % and forecast 0)."""
    days = pd.date_range("2024-01-01", periods=11 * 7, freq="D")
    y = pd.Series(np.r_[np.zeros(8 * 7), np.full(3 * 7, 5.0)], index=days)
    shares = zeros.zero_share(y, 12, DAILY, halflife=2.0)
    assert max(shares.values()) < 0.4
    plain = zeros.zero_share(y, 12, DAILY, halflife=1e9)
    assert min(plain.values()) > 0.7


def test_zero_chain_counts_runs_of_open_days():
    """Ten days sold, six without a sale, twelve sold: from a sale 21 transitions, one into no sale; from
    no sale 6, one into a sale (each with half a transition of prior). A closed weekday is not a step."""
    days = pd.date_range("2024-01-01", periods=28, freq="D")
    y = pd.Series(np.r_[np.full(10, 3.0), np.zeros(6), np.full(12, 3.0)], index=days)
    chain = zeros.zero_chain(y, 12, (), None, 0.5)
    assert chain == {"to_zero": 1.5 / 22, "to_sale": 1.5 / 7, "weight": 0.5, "last_zero": 0.0}
    assert zeros.zero_chain(y, 12, (), None, 0.0) == {}  # weight 0: the weekday share alone
    assert zeros.zero_chain(y.iloc[:13], 12, (), None, 0.5) == {}  # fewer than 14 open days
    # Sundays closed: four days fewer, one of them inside the run of no sale.
    without_sundays = zeros.zero_chain(y, 12, ("sun",), None, 0.5)
    assert without_sundays["to_sale"] == 1.5 / 6 and without_sundays["to_zero"] == 1.5 / 19
    # One step after a sale P(no sale) = to_zero, after no sale 1 - to_sale; far ahead the stationary share.
    steps = np.array([1, 200])
    after_sale = zeros.chain_zero_probability(chain, steps, last_zero=False)
    after_none = zeros.chain_zero_probability(chain, steps, last_zero=True)
    stationary = chain["to_zero"] / (chain["to_zero"] + chain["to_sale"])
    np.testing.assert_allclose([after_sale[0], after_none[0]], [chain["to_zero"], 1 - chain["to_sale"]])
    np.testing.assert_allclose([after_sale[1], after_none[1]], [stationary, stationary])


def test_pooled_zero_shares_leave_closed_weekdays_and_young_series_alone(velvet):
    """Iowa's closed Saturday keeps its own share (exactly). BLACK VELVET sold on every open weekday but one
    Sunday of the last 12 weeks: one recent zero must not lift the weekdays that never missed a sale (a
    weekday's share is shrunk towards the all-days share, so one seen without a zero sits below it).
    Under 14 open days there is too little to pool."""
    own = zeros.zero_share(velvet, 12, DAILY)
    holidays = holiday_effects.holiday_names(("US", "IA"), velvet.index.min(), velvet.index.max())
    pooled = zeros.pooled_zero_shares(velvet, 12, ("sat",), pd.DatetimeIndex(holidays.index), 7.0, own)
    assert pooled["sat"] == own["sat"] > 0.9
    assert all(0 < pooled[d] <= 0.01 for d in zeros.WEEKDAYS if d not in ("sat", "sun"))  # Sundays: one zero
    assert zeros.pooled_zero_shares(velvet.iloc[-15:], 12, ("sat",), None, 7.0, own) == own


def test_zero_model_is_the_parts_by_one_rule(velvet):
    """`zero_model` gives what training would get from the parts (shares pooled over the open days, the
    weekdays closed at the rule's closure share, the chain); with closing turned off (closure share 0) no
    weekday is closed whatever the shares say; a weekly series has one share and no chain."""
    rule = zeros.zero_rule(12, 2.0, 7.0, 0.5, 0.5, 0.5)
    shares, closed, chain = zeros.zero_model(velvet, rule, DAILY, None)
    own = zeros.zero_share(velvet, 12, DAILY, halflife=2.0)
    assert closed == zeros.closed_keys(own, 0.5) == ("sat",)
    assert shares == zeros.pooled_zero_shares(velvet, 12, closed, None, 7.0, own)
    assert chain == zeros.zero_chain(velvet, 12, closed, None, 0.5, 0.5) and chain["weight"] == 0.5
    never_closed = zeros.zero_model(velvet, {**rule, "closure_share": 0.0}, DAILY, None)
    assert never_closed[1] == () and never_closed[2] != chain  # Saturday is a step of the chain when not closed
    weeks = velvet.resample("W-SUN").sum()
    assert zeros.zero_model(weeks, rule, weekly("SUN"), None) == (zeros.zero_share(weeks, 12, weekly("SUN"), halflife=2.0), (), {})

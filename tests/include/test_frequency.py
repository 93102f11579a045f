"""Cadence detection: daily (with closed days), weekly on any weekday, monthly; mixed or irregular refused by name."""

from __future__ import annotations

import pandas as pd
import pytest

from include.forecasting.frequency import DAILY, Cadence, CadenceError, detect_cadence, from_name, panel_cadence, series_cadence


def panel(**series: pd.DatetimeIndex) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"sales_date": dates, "series_id": name, "value": 1.0}) for name, dates in series.items()], ignore_index=True)


def test_real_daily_panel_with_closed_saturdays(iowa_frame):
    assert detect_cadence(iowa_frame) == DAILY


@pytest.mark.parametrize("anchor", ["MON", "WED", "FRI", "SUN"])
def test_weekly_on_any_weekday(anchor):
    cadence = detect_cadence(panel(a=pd.date_range("2024-01-01", periods=30, freq=f"W-{anchor}"), b=pd.date_range("2024-03-01", periods=10, freq=f"W-{anchor}")))
    assert cadence.name == "weekly" and cadence.pandas_freq == f"W-{anchor}" and cadence.naive_lag == 1
    assert from_name(cadence.label) == cadence


def test_monthly_first_or_last_day():
    assert detect_cadence(panel(a=pd.date_range("2020-01-01", periods=36, freq="MS"))).pandas_freq == "MS"
    assert detect_cadence(panel(a=pd.date_range("2020-01-31", periods=36, freq="ME"))).pandas_freq == "ME"


def test_mixed_and_irregular_are_refused_naming_series():
    """With no cadence most series show (one daily store, one weekly), or none at all, the panel is refused."""
    with pytest.raises(CadenceError, match=r"weekly \(W-FRI\): 'store 2'.*daily: 'store 1'|daily: 'store 1'.*weekly \(W-FRI\): 'store 2'"):
        detect_cadence(panel(**{"store 1": pd.date_range("2024-01-01", periods=60), "store 2": pd.date_range("2024-01-05", periods=20, freq="W-FRI")}))
    every_third = pd.date_range("2024-01-01", periods=40, freq="3D")
    with pytest.raises(CadenceError, match=r"irregular \(gaps between dates: 3 days x39\): 'odd'"):
        detect_cadence(panel(odd=every_third))
    # Monthly rows dated on the 15th: refused, saying which dates a monthly panel takes.
    mid_month = pd.date_range("2021-01-01", periods=36, freq="MS") + pd.Timedelta(days=14)
    with pytest.raises(CadenceError, match=r"monthly on day 15 of the month \(monthly rows are dated on the 1st or the last day: re-date them\): 'a'"):
        detect_cadence(panel(a=mid_month))


def test_override_and_new_series():
    weekly = pd.date_range("2024-01-07", periods=30, freq="W-SUN")
    # A brand-new series with two dates takes the panel's cadence.
    assert detect_cadence(panel(a=weekly, new=weekly[-2:])).pandas_freq == "W-SUN"
    assert detect_cadence(panel(a=weekly), "weekly").pandas_freq == "W-SUN"
    with pytest.raises(CadenceError, match="source.frequency is 'monthly'"):
        detect_cadence(panel(a=weekly), "monthly")


def test_a_panel_whose_series_all_have_fewer_than_3_dates():
    """A panel's first weeks: no series has 3 dates. Their dates together tell the cadence; where they
    cannot (one or two dates in all), the panel is refused with the dates and the config key, never taken
    as daily (a weekly panel's fallback would publish daily forecasts of weekly totals)."""
    sundays = pd.date_range("2023-04-09", periods=3, freq="W-SUN")
    # Two series with two Sundays each, three Sundays together: weekly.
    assert detect_cadence(panel(a=sundays[:2], b=sundays[1:])).pandas_freq == "W-SUN"
    assert detect_cadence(panel(a=sundays[:2], b=sundays[1:]), week_dated_on="start").dated_on_start
    # Days: consecutive dates together are daily data.
    days = pd.date_range("2025-05-01", periods=3)
    assert detect_cadence(panel(a=days[:2], b=days[2:])) == DAILY
    # One Sunday in all, or two: nothing tells a week from a day.
    for dates in (sundays[:1], sundays[:2]):
        with pytest.raises(CadenceError, match=r"cannot be told from its dates: every series has fewer than 3, and together they are \d date\(s\), 2023-04-09 \(Sun\).*too few to tell daily, weekly and monthly data apart\. Set source\.frequency"):
            detect_cadence(panel(a=dates, b=dates))
    # Three dates together with no regular spacing: what they show is named.
    with pytest.raises(CadenceError, match=r"together they are 3 date\(s\).*irregular \(gaps between dates: 3 days x2\)"):
        detect_cadence(panel(a=pd.date_range("2025-05-01", periods=2, freq="3D"), b=pd.DatetimeIndex(["2025-05-07"])))
    # With source.frequency set, the panel's dates anchor its grid (a week ending Friday, not the default Sunday).
    fridays = pd.date_range("2023-04-07", periods=2, freq="W-FRI")
    assert detect_cadence(panel(a=fridays, b=fridays[:1]), "weekly").pandas_freq == "W-FRI"
    assert detect_cadence(panel(a=pd.DatetimeIndex(["2023-01-31", "2023-02-28"])), "monthly").pandas_freq == "ME"
    assert detect_cadence(panel(a=sundays[:1]), "daily") == DAILY
    # No date at all: daily, and validation's "the history window has rows" says what is wrong.
    assert detect_cadence(panel(a=pd.DatetimeIndex([]))) == DAILY


def test_slow_movers_in_a_daily_panel_are_daily():
    """Rows only on days with a sale: a product selling on a third of the days (gaps of 1-6 days), or
    every few days and never two days running, is daily data like the rest of the panel."""
    import numpy as np

    days = pd.date_range("2023-01-01", periods=365)
    rng = np.random.default_rng(4)
    third = days[rng.random(365) < 0.33]
    every_few = pd.DatetimeIndex(np.cumsum(rng.integers(2, 6, 80)) * pd.Timedelta(days=1) + days[0])
    assert detect_cadence(panel(dense=days, slow=third)) == DAILY
    assert detect_cadence(panel(dense=days, slow=third, rare=every_few)) == DAILY
    assert detect_cadence(panel(slow=third)) == DAILY
    # On its own, a series that is never two days running has no cadence to tell.
    with pytest.raises(CadenceError, match="irregular"):
        detect_cadence(panel(rare=every_few))


def test_slow_movers_fit_a_weekly_or_monthly_panel():
    """A series that shows no cadence on its own (a row every few weeks, half a year out of stock) takes
    its panel's cadence when its dates lie on that grid; off the grid it is named."""
    weekly = pd.date_range("2022-01-07", periods=100, freq="W-FRI")
    assert detect_cadence(panel(a=weekly, slow=weekly[::3])).pandas_freq == "W-FRI"
    found = panel_cadence(panel(a=weekly, off=pd.date_range("2022-01-08", periods=20, freq="3W-SAT")))
    assert found.cadence.pandas_freq == "W-FRI" and list(found.misfits) == ["off"]
    assert found.misfits["off"].startswith("2022-01-08 (Sat), 2022-01-29 (Sat), 2022-02-19 (Sat) and 17 more not on the panel's weekly (W-FRI) grid")
    months = pd.date_range("2020-01-01", periods=36, freq="MS")
    gap = months[:10].append(months[18:])  # eight months without a sale
    assert detect_cadence(panel(a=months, gap=gap)).pandas_freq == "MS"
    assert detect_cadence(panel(gap=gap)).pandas_freq == "MS"  # mostly a month apart: monthly on its own
    # With the cadence set, a panel of only loose series takes the grid they share.
    assert detect_cadence(panel(slow=weekly[::3]), "weekly").pandas_freq == "W-FRI"
    # A zero-heavy panel whose rows are only its weeks with a sale: no series is weekly on its own, the
    # panel's dates together are; a series off their weekday is still named.
    sparse = {f"s{i}": weekly[i::3] for i in range(3)}  # each sells every third week
    assert all(not isinstance(series_cadence(d), Cadence) for d in sparse.values())
    assert detect_cadence(panel(**sparse)).pandas_freq == "W-FRI"
    found = panel_cadence(panel(**sparse, off=pd.date_range("2022-01-08", periods=20, freq="3W-SAT")))
    assert found.cadence.pandas_freq == "W-FRI" and list(found.misfits) == ["off"]
    # Together they must hold two consecutive weeks somewhere: every series every other Friday is fortnightly.
    with pytest.raises(CadenceError, match="irregular"):
        detect_cadence(panel(a=weekly[::2], b=weekly[::2]))
    assert detect_cadence(panel(a=months[::3], b=months[1::3])).pandas_freq == "MS"
    # Quarterly, yearly or fortnightly data is none of the three, and the refusal says which it is.
    with pytest.raises(CadenceError, match=r"irregular \(gaps between dates: 92 days x\d+, .*; these are quarterly rows, and a panel is daily, weekly or monthly\): 'q'"):
        detect_cadence(panel(q=pd.date_range("2020-01-01", periods=12, freq="QS")))
    with pytest.raises(CadenceError, match="these are yearly rows"):
        detect_cadence(panel(y=pd.date_range("2001-12-31", periods=15, freq="YE")))
    with pytest.raises(CadenceError, match="these are fortnightly rows"):
        detect_cadence(panel(f=weekly[::2]))


def test_series_off_the_panels_cadence_are_named_with_their_dates():
    """The panel's cadence is the one most series show; a series off it (one row dated a day late, a store
    reporting on another weekday, weekly totals in a daily panel) is a misfit named with the dates to fix,
    and the panel keeps its cadence: what happens to the misfit is validation's policy."""
    fridays = pd.date_range("2022-01-07", periods=100, freq="W-FRI")
    late = fridays.delete(60).insert(60, fridays[60] + pd.Timedelta(days=1))  # one row dated on the Saturday
    found = panel_cadence(panel(a=fridays, b=fridays, c=late, d=fridays + pd.Timedelta(days=1)))
    assert found.cadence.pandas_freq == "W-FRI" and sorted(found.misfits) == ["c", "d"]
    assert found.misfits["c"] == "2023-03-04 (Sat) not on the panel's weekly (W-FRI) grid (its rows are irregular): re-date them at the source"
    assert found.misfits["d"].startswith("2022-01-08 (Sat), 2022-01-15 (Sat), 2022-01-22 (Sat) and 97 more not on the panel's weekly (W-FRI) grid (its rows are weekly (W-SAT))")
    assert detect_cadence(panel(a=fridays, b=fridays, c=late)).pandas_freq == "W-FRI"
    days = pd.date_range("2022-01-01", periods=400)
    found = panel_cadence(panel(a=days, b=days, sundays=pd.date_range("2022-01-02", periods=50, freq="W-SUN")))
    assert found.cadence == DAILY and found.misfits == {
        "sundays": "its rows are weekly (W-SUN) (2022-01-02 to 2022-12-11): read as days, those between would be days without a sale "
        "(weekly totals? give them a panel of their own; sales on one weekday only? set source.frequency: daily)"
    }
    # The configured cadence decides; series on another one are misfits, and with none on it the panel is refused.
    found = panel_cadence(panel(a=fridays, b=fridays + pd.Timedelta(days=1), c=fridays + pd.Timedelta(days=1)), "weekly")
    assert found.cadence.pandas_freq == "W-SAT" and list(found.misfits) == ["a"]
    assert panel_cadence(panel(a=fridays, sundays=pd.date_range("2022-01-02", periods=50, freq="W-SUN")), "daily").misfits == {}


def test_a_month_dated_on_its_first_day_counts_once_it_has_ended():
    """Only a month dated on its first day can have a row while it is still running (2025-10-01 holds the
    month so far on the 16th): the grid ends at the month before until the month is over. A day, a week
    (dated on its last day) and a month dated on its last day are over the day after their date."""
    starts, ends = from_name("monthly (MS)"), from_name("monthly (ME)")
    assert starts.last_period_before(pd.Timestamp("2025-10-16")) == pd.Timestamp("2025-09-01")
    assert starts.last_period_before(pd.Timestamp("2025-10-31")) == pd.Timestamp("2025-09-01")
    assert starts.last_period_before(pd.Timestamp("2025-11-01")) == pd.Timestamp("2025-10-01")
    assert starts.period_end(pd.Timestamp("2025-10-01")) == pd.Timestamp("2025-11-01")
    assert ends.last_period_before(pd.Timestamp("2025-11-01")) == pd.Timestamp("2025-10-31")
    assert ends.last_period_before(pd.Timestamp("2025-10-31")) == pd.Timestamp("2025-09-30")
    week = from_name("weekly (W-SUN)")
    assert week.last_period_before(pd.Timestamp("2025-10-13")) == pd.Timestamp("2025-10-12")
    assert week.period_end(pd.Timestamp("2025-10-12")) == pd.Timestamp("2025-10-13")
    assert DAILY.last_period_before(pd.Timestamp("2025-10-16")) == pd.Timestamp("2025-10-15")


def test_a_week_dated_on_its_start_counts_once_it_has_ended():
    """`source.week_dated_on: start` (ISO week labels, SQL's DATE_TRUNC weeks): the week dated Monday
    2025-06-02 runs to Sunday 06-08 and is whole from 06-09; dated on its end, the same date would be whole
    from 06-03. The panel's series are not misfits for it (their own cadence is the same grid)."""
    start = from_name("weekly (W-MON, dated on the start)")
    assert start.label == "weekly (W-MON, dated on the start)" and start.pandas_freq == "W-MON" and start.dated_on_start
    assert from_name(start.label) == start and not from_name("weekly (W-MON)").dated_on_start
    assert start.period_end(pd.Timestamp("2025-06-02")) == pd.Timestamp("2025-06-09")
    assert start.last_period_before(pd.Timestamp("2025-06-05")) == pd.Timestamp("2025-05-26")
    assert start.last_period_before(pd.Timestamp("2025-06-09")) == pd.Timestamp("2025-06-02")
    assert from_name("weekly (W-MON)").last_period_before(pd.Timestamp("2025-06-05")) == pd.Timestamp("2025-06-02")
    mondays = pd.date_range("2024-01-01", periods=60, freq="W-MON")
    found = panel_cadence(panel(a=mondays, b=mondays[5:]), week_dated_on="start")
    assert found.cadence == start and found.misfits == {}
    assert detect_cadence(panel(a=mondays), week_dated_on="start") == start
    assert detect_cadence(panel(a=mondays)).label == "weekly (W-MON)"
    assert detect_cadence(panel(a=pd.date_range("2024-01-01", periods=60)), week_dated_on="start") == DAILY  # weeks only

"""scripts/demo.py: the earlier runs it makes step by the data's cadence."""

from __future__ import annotations

import datetime as dt

import pandas as pd
from conftest import SEED, load_seeded, write_config

from scripts.demo import amount_decimals, data_cadence, data_span, earlier_date, earlier_dates, future_rows, logical_date_after, nth_date


def test_earlier_runs_step_by_one_horizon_of_the_cadence():
    """By default the earlier runs are one forecast horizon apart in the data's periods, so no two of the
    demo's runs forecast the same period (a reader of the warehouse table finds one forecast for each of
    the newest run's periods) and every earlier forecast has actuals by the newest run."""
    day = dt.date(2025, 6, 1)
    assert earlier_date(day, 2, None, "daily") == dt.date(2025, 5, 18)  # horizon 7 (the default): 2 x 7 days
    assert earlier_date(day, 1, None, "weekly") == dt.date(2025, 4, 13)  # 7 weeks
    assert earlier_date(day, 1, None, "weekly", 4) == dt.date(2025, 5, 4)  # 4 weeks
    assert earlier_date(day, 2, None, "monthly") == dt.date(2024, 4, 1)  # 2 x 7 months
    assert earlier_date(day, 2, None, "monthly", 3) == dt.date(2024, 12, 1)
    assert earlier_date(day, 1, 3, "monthly") == dt.date(2025, 5, 29)  # --every wins
    assert earlier_date(day, 2, 10, "weekly") == dt.date(2025, 5, 12)
    for cadence, step in (("daily", pd.DateOffset(days=1)), ("weekly", pd.DateOffset(weeks=1)), ("monthly", pd.DateOffset(months=1))):
        for horizon in (1, 5, 7, 12):
            runs, _ = earlier_dates(day, 2, None, cadence, None, horizon)
            starts = [*runs, day]
            for before, after in zip(starts, starts[1:], strict=False):
                # the last period the earlier run forecasts ends before the next run's first one
                assert (pd.Timestamp(before) + step * horizon).date() <= after, (cadence, horizon, starts)


def test_earlier_runs_before_the_data_are_skipped(tmp_path):
    """A panel of a few days or weeks: an earlier run dated on or before its third date would see fewer
    than 3 dates, too few for validation to tell their cadence (none at all before the first), and be
    refused, so the demo skips it and says why; runs after the third date go ahead."""
    day = dt.date(2025, 5, 30)
    assert earlier_dates(day, 2, None, "daily", dt.date(2025, 5, 19)) == ([dt.date(2025, 5, 23)], [dt.date(2025, 5, 16)])
    assert earlier_dates(day, 2, None, "daily", dt.date(2025, 5, 16)) == ([dt.date(2025, 5, 23)], [dt.date(2025, 5, 16)])
    assert earlier_dates(day, 2, None, "daily", dt.date(2025, 5, 15)) == ([dt.date(2025, 5, 16), dt.date(2025, 5, 23)], [])
    assert earlier_dates(day, 2, None, "daily", None) == ([dt.date(2025, 5, 16), dt.date(2025, 5, 23)], [])
    config = load_seeded(write_config(tmp_path))
    dates = pd.read_csv(SEED, parse_dates=["date"])["date"]
    assert data_span(config)[0] == dates.min().date()
    assert data_span(config)[1] == dates.max().date()
    assert nth_date(config, 3) == sorted(dates.dt.date.unique())[2]
    assert nth_date(config, 10**6) is None


def test_cadence_of_the_embedded_source(tmp_path):
    """The shipped panel is daily; the same sales summed to month starts read as monthly."""
    (tmp_path / "d").mkdir()
    (tmp_path / "m").mkdir()
    assert data_cadence(load_seeded(write_config(tmp_path / "d"))) == "daily"
    frame = pd.read_csv(SEED, parse_dates=["date"])
    monthly = frame.groupby(["item_name", pd.Grouper(key="date", freq="MS")], as_index=False)["total_amount_sold"].sum()
    seed = tmp_path / "monthly.csv"
    monthly.assign(date=monthly["date"].dt.strftime("%Y-%m-%d")).to_csv(seed, index=False)
    months = load_seeded(write_config(tmp_path / "m", seed=seed))
    assert data_cadence(months) == "monthly"
    # The run that covers the newest month (May 2025, dated 2025-05-01) is the one after the month ends;
    # with May still running (today the 16th) it is tomorrow's, which leaves May out and forecasts it.
    assert logical_date_after(months, dt.date(2025, 5, 1), dt.date(2026, 1, 1)) == dt.date(2025, 6, 1)
    assert logical_date_after(months, dt.date(2025, 5, 1), dt.date(2025, 5, 16)) == dt.date(2025, 5, 17)
    days = load_seeded(write_config(tmp_path / "d"))
    assert logical_date_after(days, dt.date(2025, 5, 30), dt.date(2026, 1, 1)) == dt.date(2025, 5, 31)


def test_rows_dated_in_the_future_are_named_with_their_series(tmp_path):
    """A typo'd year (2052 for 2025) makes the newest row a future one: the demo names it before refusing."""
    frame = pd.read_csv(SEED, dtype=str)
    frame.loc[10, "date"] = "2052-05-01"
    seed = tmp_path / "typo.csv"
    frame.to_csv(seed, index=False)
    config = load_seeded(write_config(tmp_path, seed=seed))
    assert future_rows(config, dt.date(2026, 1, 1)) == [(frame.loc[10, "item_name"], dt.date(2052, 5, 1))]
    assert future_rows(config, dt.date(2060, 1, 1)) == []


def test_amounts_print_to_three_significant_digits_of_the_series_largest():
    """Units, thousands and grams: a series of 0.0009 kg a day prints its digits, not 0.00 [0.00, 0.00]."""
    assert amount_decimals([168.0, 120.5, 240.25]) == 2
    assert amount_decimals([9.7e6, 7.7e6, 1.2e7]) == 2
    assert amount_decimals([0.00092, 0.00061, 0.00138]) == 5
    assert f"{0.00092:.{amount_decimals([0.00092, 0.00138])}f}" == "0.00092"
    assert amount_decimals([0.0, 0.0, 0.0]) == 2  # a fallback of zeros
    assert amount_decimals([0.4, 0.0, 0.9]) == 3

"""GX validation on the real panel: it passes clean data and names each failure on corrupted data."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from conftest import ROOT, write_config

from include.forecasting import alerts
from include.forecasting.alerts import RunInfo
from include.forecasting.config import load_config
from include.forecasting.extract import normalise
from include.forecasting.frequency import DAILY
from include.forecasting.validation import series_profile, validate_frame

END = dt.date(2025, 5, 31)


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return load_config(write_config(tmp_path_factory.mktemp("v")))


def failed(report):
    return {(f.expectation, f.column) for f in report.failures}


def test_real_data_passes(iowa_frame, config):
    report = validate_frame(iowa_frame, config, END, "sha")
    assert report.success, report.message()
    assert report.evaluated == 14 and report.cadence == "daily" and report.quarantined == {}


def test_each_fault_is_named_with_observed_values(iowa_frame, config):
    bad = iowa_frame.copy().astype({"value": "float64"})
    bad.loc[3, "value"] = -5
    bad.loc[4, "value"] = None
    bad = normalise(pd.concat([bad, bad.iloc[[7]]]))
    report = validate_frame(bad, config, END, "sha")
    assert not report.success
    assert {
        ("expect_column_values_to_be_between", "value"),
        ("expect_column_values_to_not_be_null", "value"),
        ("expect_compound_columns_to_be_unique", "sales_date,series_id"),
    } <= failed(report)
    between = next(f for f in report.failures if f.expectation == "expect_column_values_to_be_between")
    assert between.unexpected_count == 1 and -5.0 in between.unexpected_examples
    # The alert names the rule, the series and the date of the offending row.
    row = iowa_frame.loc[3]
    assert between.rows[0]["series_id"] == row["series_id"] and str(between.rows[0]["sales_date"])[:10] == f"{row['sales_date']:%Y-%m-%d}"
    message = report.message()
    assert "rule: quantities sold are finite and not negative" in message and f"series {row['series_id']!r} on {row['sales_date']:%Y-%m-%d}: value -5.0" in message


def test_decimals_are_valid_unless_whole_units_is_set(iowa_frame, tmp_path):
    decimals = iowa_frame.astype({"value": "float64"})
    decimals.loc[10, "value"] = 3.67
    assert validate_frame(decimals, load_config(write_config(tmp_path)), END, "sha").success
    strict = load_config(write_config(tmp_path, **{"validation.whole_units": True}))
    report = validate_frame(decimals, strict, END, "sha")
    assert failed(report) == {("expect_column_values_to_be_in_type_list", "value")}
    assert "config validation.whole_units" in report.message()


def test_negative_values_are_refused_unless_read_as_no_sale(iowa_frame, tmp_path):
    """A day whose returns outweigh its sales, in a source that nets them: by default a bad row of its
    series (quarantined, naming series, date and value); with validation.negative_values "zero" it is read
    as no sale, the run is clean and the report's note names the row. An infinite value is still refused."""
    net = iowa_frame.astype({"value": "float64"})
    row = net.loc[3]
    net.loc[3, "value"] = -5.5
    refused = validate_frame(net, load_config(write_config(tmp_path)), END, "sha")
    assert refused.success and refused.bad_rows == [row["series_id"]] and refused.negatives_zeroed == []
    assert "not negative" in refused.quarantined[row["series_id"]]
    zero = load_config(write_config(tmp_path, **{"validation.negative_values": "zero"}))
    report = validate_frame(net, zero, END, "sha")
    assert report.success and report.quarantined == {} and report.bad_rows == []
    assert report.negatives_zeroed == [{"series_id": row["series_id"], "date": f"{row['sales_date']:%Y-%m-%d}", "value": -5.5}]
    assert f"{row['series_id']} {row['sales_date']:%Y-%m-%d}: -5.5" in report.notes[-1] and "validation.negative_values: zero" in report.message()
    net.loc[4, "value"] = float("-inf")
    broken = validate_frame(net, zero, END, "sha")
    assert broken.bad_rows == [net.loc[4, "series_id"]] and len(broken.negatives_zeroed) == 1


def test_a_series_off_the_panels_cadence_is_quarantined_and_a_mixed_panel_refused(iowa_frame, config, tmp_path):
    """Weekly totals in the daily Iowa panel: that one series is quarantined with its dates and the rule
    (as bad rows: no fallback is computed from rows that do not fit the grid), the five daily ones go on.
    Misfits in half the panel (5 daily series, 3 weekly on Fridays, 2 on Saturdays) are a mixed panel: refused, naming the series per cadence; so is any
    misfit with validation.on_bad_rows "block"."""
    fridays = pd.DataFrame({"sales_date": pd.date_range("2024-01-05", periods=60, freq="W-FRI"), "series_id": "WEEKLY STORE", "value": 5})
    report = validate_frame(normalise(pd.concat([iowa_frame, fridays])), config, END, "sha")
    assert report.success and report.cadence == "daily" and report.bad_rows == ["WEEKLY STORE"] and list(report.quarantined) == ["WEEKLY STORE"]
    assert report.quarantined["WEEKLY STORE"] == (
        "bad rows (one cadence per panel): its rows are weekly (W-FRI) (2024-01-05 to 2025-02-21): read as days, those between would be "
        "days without a sale (weekly totals? give them a panel of their own; sales on one weekday only? set source.frequency: daily) "
        "(config source.frequency)"
    )
    saturdays = fridays.assign(sales_date=fridays.sales_date + pd.Timedelta(days=1))
    stores = pd.concat([(fridays if i < 3 else saturdays).assign(series_id=f"WEEKLY STORE {i}") for i in range(5)])
    report = validate_frame(normalise(pd.concat([iowa_frame, stores])), config, END, "sha")
    assert failed(report) == {("single_cadence", None)}
    assert "weekly (W-FRI): 'WEEKLY STORE 0'" in report.message() and "daily: 'BLACK VELVET'" in report.message()
    assert "weekly (W-SAT): 'WEEKLY STORE 3', 'WEEKLY STORE 4'" in report.message()
    assert "Off the panel's daily cadence: 5 of 10 series ('WEEKLY STORE 0', 'WEEKLY STORE 1', 'WEEKLY STORE 2', ...)" in report.message()
    strict = load_config(write_config(tmp_path, **{"validation.on_bad_rows": "block"}))
    assert failed(validate_frame(normalise(pd.concat([iowa_frame, fridays])), strict, END, "sha")) == {("single_cadence", None)}


def test_a_panel_too_young_to_tell_its_cadence_is_refused(config, tmp_path):
    """A weekly panel's first two weeks (every series two Sundays): no cadence can be told, so the run is
    refused naming the dates, the rule and the key, not read as daily (two big days and six days without
    a sale between, and daily fallback forecasts of weekly totals). With source.frequency set it goes on
    (its series too short to train: quarantined)."""
    young = pd.DataFrame(
        {"sales_date": pd.to_datetime(["2025-05-18", "2025-05-25"] * 3), "series_id": ["a", "a", "b", "b", "c", "c"], "value": [3.5, 4.0, 1.0, 0.0, 7.25, 6.0]}
    )
    report = validate_frame(normalise(young), config, END, "sha")
    assert failed(report) == {("single_cadence", None)}
    (failure,) = report.failures
    assert failure.rule == "a cadence its dates show" and failure.config_key == "source.frequency"
    assert "together they are 2 date(s), 2025-05-18 (Sun), 2025-05-25 (Sun): too few to tell daily, weekly and monthly data apart" in report.message()
    weekly = load_config(write_config(tmp_path, **{"source.frequency": "weekly"}))
    report = validate_frame(normalise(young), weekly, END, "sha")
    assert report.success and report.cadence == "weekly (W-SUN)" and sorted(report.quarantined) == ["a", "b", "c"]


def test_a_name_typed_another_way_is_quarantined_and_a_renamed_delivery_blocks(iowa_frame, config):
    """One row of BLACK VELVET delivered as 'Black Velvet': one product under two names that map to one
    registered model. The variant (1 row, on a date the other lacks) is quarantined as bad rows naming
    both; BLACK VELVET goes on (that day reads as a day without a sale). Every name lowercased from
    2025-05-20 on is a renamed delivery: blocked. Two products with rows on the same dates are not
    twins here (the registry's slug-collision rule handles them)."""
    typo = iowa_frame.copy()
    row = typo.index[(typo.series_id == "BLACK VELVET") & (typo.sales_date == "2025-05-27")][0]
    typo.loc[row, "series_id"] = "Black Velvet"
    report = validate_frame(typo, config, END, "sha")
    assert report.success and list(report.quarantined) == ["Black Velvet"] and report.bad_rows == ["Black Velvet"]
    assert report.quarantined["Black Velvet"].startswith(
        "bad rows (one name per series): 'Black Velvet' (1 row, none on a date of the other) is 'BLACK VELVET' (723 rows) "
        "written another way (case, spaces or punctuation): rename its rows at the source; enough history"
    )
    renamed = iowa_frame.assign(series_id=iowa_frame.series_id.where(iowa_frame.sales_date < "2025-05-20", iowa_frame.series_id.str.lower()))
    report = validate_frame(renamed, config, END, "sha")
    assert failed(report) == {("one_name_per_series", "series_id")}
    assert "5 of 10 series are another series' name written another way: 'black velvet', 'fireball cinnamon whiskey', \"five o'clock vodka\", ..." in report.message()
    copy = pd.concat([iowa_frame, iowa_frame[iowa_frame.series_id == "FIVE O'CLOCK VODKA"].assign(series_id="FIVE O CLOCK VODKA")])
    assert validate_frame(copy.reset_index(drop=True), config, END, "sha").quarantined == {}


def test_a_series_whose_rows_stop_is_a_zero_run_and_stale_data_blocks(iowa_frame, config):
    """A period without a series' row is a period without a sale: a product whose rows stop while the
    others go on is judged by its own history (a run of zeros on days it normally sells), not as stale.
    Data that stops for every series is stale: every series quarantined, the run blocked."""
    one_stops = iowa_frame[~((iowa_frame.series_id == "HAWKEYE VODKA") & (iowa_frame.sales_date > "2025-05-10"))]
    report = validate_frame(one_stops.reset_index(drop=True), config, END, "sha")
    assert report.success and list(report.quarantined) == ["HAWKEYE VODKA"]
    assert "zero run" in report.quarantined["HAWKEYE VODKA"] and "through 2025-05-30" in report.quarantined["HAWKEYE VODKA"]
    report = validate_frame(iowa_frame, config, dt.date(2025, 6, 20), "sha")
    assert failed(report) == {("some_series_usable", "series_id")} and len(report.quarantined) == 5
    assert all("fresh data" in r and "periods_since_last_row 20" in r and "validation.max_staleness_periods" in r for r in report.quarantined.values())


def test_a_panel_of_young_series_only_passes_with_every_series_quarantined(iowa_frame, config):
    """The last 45 days of the Iowa panel (a shop that opened six weeks ago): every series has too little
    history, and nothing else is wrong, so the run goes on with each one quarantined (a fallback forecast
    for a series without a champion) instead of publishing nothing. The same panel three weeks later,
    with no new rows, is stale as well: blocked as before (all quarantined for another reason is a broken
    delivery)."""
    recent = iowa_frame[iowa_frame.sales_date >= pd.Timestamp(END) - pd.Timedelta(days=45)].reset_index(drop=True)
    report = validate_frame(recent, config, END, "sha")
    assert report.success and len(report.quarantined) == 5 and report.bad_rows == []
    assert all(r.startswith("enough history: n_periods 45 (min 60") for r in report.quarantined.values())
    report = validate_frame(recent, config, END + dt.timedelta(days=20), "sha")
    assert failed(report) == {("some_series_usable", "series_id")}
    assert all(r.startswith("fresh data") for r in report.quarantined.values())


def test_stale_data_in_a_large_panel_quarantines_every_series_and_blocks(iowa_frame, config):
    """A failure keeps 20 example rows for its message; quarantine must not stop there. 60 series (the 5
    real ones, 12 copies each under other names) whose data stopped 20 days ago: all 60 are quarantined
    and the run is blocked, where only the first 20 used to be and the other 40 went on to training."""
    copies = pd.concat([iowa_frame.assign(series_id=iowa_frame.series_id + f" #{i:02d}") for i in range(12)], ignore_index=True)
    report = validate_frame(copies, config, dt.date(2025, 6, 20), "sha")
    assert failed(report) == {("some_series_usable", "series_id")}
    assert len(report.quarantined) == 60 and all("fresh data" in r for r in report.quarantined.values())


def test_a_per_series_rule_that_names_no_series_blocks_the_run(iowa_frame, config, monkeypatch):
    """A rule added to the per-series suite that cannot name the series it fails (an aggregate over the
    profile, here the mean history length) blocks the run instead of passing with nobody quarantined."""
    from include.forecasting import validation

    real = validation.load_suite_definition

    def with_aggregate(name, *args):
        suite = real(name, *args)
        if name == config.validation.series_suite:
            suite["expectations"].append({"type": "expect_column_mean_to_be_between", "kwargs": {"column": "n_periods", "min_value": 10_000}, "meta": {}})
        return suite

    monkeypatch.setattr(validation, "load_suite_definition", with_aggregate)
    report = validate_frame(iowa_frame, config, END, "sha")
    assert not report.success and ("expect_column_mean_to_be_between", "n_periods") in failed(report) and not report.quarantined


def test_future_rows_fail(iowa_frame, config):
    report = validate_frame(iowa_frame, config, dt.date(2025, 5, 20), "sha")
    assert ("expect_column_max_to_be_between", "sales_date") in failed(report)


def test_a_lone_row_after_a_long_hole_is_named(iowa_frame, tmp_path):
    """One row dated months after the rest (a year or month typed wrong) looks like a hole followed by a
    reopening: the history is cut to that row and the run blocked. The note names the row, so the fix is
    plain; a real reopening (rows for every series after the hole) is not listed."""
    typo = iowa_frame.copy()
    row = typo.index[(typo.series_id == "TITOS HANDMADE VODKA") & (typo.sales_date == "2025-05-20")][0]
    typo.loc[row, "sales_date"] = pd.Timestamp("2025-09-20")
    report = validate_frame(typo, load_config(write_config(tmp_path)), dt.date(2025, 9, 21), "sha")
    assert not report.success and report.history_start == "2025-09-20"
    assert report.notes[0].endswith("so the periods before are not used; after the hole only 'TITOS HANDMADE VODKA' on 2025-09-20: mis-dated?")
    reopened = iowa_frame[~iowa_frame.sales_date.between("2024-03-01", "2024-03-21")].reset_index(drop=True)
    assert "after the hole" not in validate_frame(reopened, load_config(write_config(tmp_path)), END, "sha").notes[0]


def test_gaps_min_rows_and_unknown_series(iowa_frame, tmp_path):
    """Two months without one product's rows are two months without its sales, not a gap; three weeks
    with no row for any product are a hole in the data (a closure, a delivery that never came): the
    history starts after it. A hole just before the end leaves too little: every series is quarantined
    and the run stops, the note naming the hole."""
    config = load_config(write_config(tmp_path, **{"series": ["BLACK VELVET", "HAWKEYE VODKA", "NEW PRODUCT"], "validation.min_rows_per_series": 800}))
    young = iowa_frame[~((iowa_frame.series_id == "HAWKEYE VODKA") & (iowa_frame.sales_date < "2023-06-01"))]
    zeros = young[~((young.series_id == "BLACK VELVET") & young.sales_date.between("2024-03-01", "2024-04-30"))]
    report = validate_frame(zeros.reset_index(drop=True), config, END, "sha")
    names = failed(report)
    assert ("expect_column_values_to_be_in_set", "series_id") in names  # 3 series not in the list
    assert report.quarantined["NEW PRODUCT"] == "no rows in the history window"
    assert "enough history: n_periods 730" in report.quarantined["HAWKEYE VODKA"]  # from 2023-06-01
    assert "BLACK VELVET" not in report.quarantined
    hole = iowa_frame[~iowa_frame.sales_date.between("2024-03-01", "2024-03-21")]
    report = validate_frame(hole.reset_index(drop=True), load_config(write_config(tmp_path)), END, "sha")
    assert report.success and report.quarantined == {} and report.history_start == "2024-03-22"
    assert report.notes == [
        "history from 2024-03-22: no series has a row from 2024-03-01 to 2024-03-21 (21 periods, more than "
        "validation.max_gap_periods 14), so the periods before are not used"
    ]
    assert "history from 2024-03-22" in report.message() and report.to_dict()["history_start"] == "2024-03-22"
    recent = iowa_frame[~iowa_frame.sales_date.between("2025-04-20", "2025-05-12")]
    report = validate_frame(recent.reset_index(drop=True), load_config(write_config(tmp_path)), END, "sha")
    assert not report.success and ("some_series_usable", "series_id") in {(f.expectation, f.column) for f in report.failures}
    assert len(report.quarantined) == 5 and all("enough history: n_periods 18 (min 60" in r for r in report.quarantined.values())
    assert report.history_start == "2025-05-13" and "from 2025-04-19 to 2025-05-12 (24 periods" in report.notes[0]
    assert "- note: history from 2025-05-13" in report.message()
    # Each example is a series and why it is unusable (no date: the finding is about the series, not a row).
    assert "e.g. series 'BLACK VELVET': enough history: n_periods 18 (min 60" in report.message() and " on ?" not in report.message()
    body = alerts.validation_failure(RunInfo("sales_forecast", "validate_sales", "r", "2025-05-31"), report.to_dict())["blocks"][2]["text"]["text"]
    assert "some_series_usable" in body and "note: history from 2025-05-13: no series has a row from 2025-04-19" in body  # 04-19: a Saturday, no rows anyway
    assert "e.g. BLACK VELVET: enough history: n_periods 18" in body and " on ?" not in body


def test_min_rows_follow_the_cadence(iowa_frame, tmp_path):
    """The real panel summed to months (29 rows per series): 60 rows would quarantine every series of a
    monthly panel, so the minimum is set per cadence; one number still applies to every cadence."""
    monthly = (
        iowa_frame.assign(sales_date=pd.to_datetime(iowa_frame.sales_date).dt.to_period("M").dt.to_timestamp())
        .groupby(["sales_date", "series_id"], as_index=False)["value"].sum()
    )
    monthly = monthly[monthly.sales_date < "2025-06-01"].reset_index(drop=True)
    end = dt.date(2025, 6, 1)
    per_cadence = load_config(write_config(tmp_path, **{"validation.min_rows_per_series": {"daily": 60, "monthly": 24}}))
    report = validate_frame(monthly, per_cadence, end, "sha")
    assert report.success and report.cadence.startswith("monthly") and not report.quarantined, report.message()
    assert per_cadence.validation.min_rows("weekly") == 60  # a cadence left out takes the largest number
    one_number = load_config(write_config(tmp_path, **{"validation.min_rows_per_series": 60}))
    report = validate_frame(monthly, one_number, end, "sha")
    assert all("enough history: n_periods 29" in reason for reason in report.quarantined.values()), report.quarantined


def test_a_week_dated_on_its_start_is_left_out_while_it_runs(iowa_frame, tmp_path):
    """The real panel summed to ISO weeks dated on their Monday, through the week of Monday 2025-05-26
    (whose rows hold Monday to Friday). Run on Thursday 2025-05-29 with `source.week_dated_on: start`,
    that week is still running: the report says it is left out and forecast; dated on its end (the
    default), the same date would read as a week that ended on 05-26."""
    days = pd.to_datetime(iowa_frame.sales_date)
    weekly = (
        iowa_frame.assign(sales_date=(days - pd.to_timedelta(days.dt.dayofweek, unit="D")).dt.normalize())
        .groupby(["sales_date", "series_id"], as_index=False)["value"].sum()
    )
    weekly = weekly[weekly.sales_date <= "2025-05-26"].reset_index(drop=True)
    run_end = dt.date(2025, 5, 29)
    overrides = {"validation.min_rows_per_series": {"daily": 60, "weekly": 52}}
    started = validate_frame(weekly, load_config(write_config(tmp_path, **overrides, **{"source.week_dated_on": "start"})), run_end, "sha")
    assert started.success and started.cadence == "weekly (W-MON, dated on the start)", started.message()
    assert "2025-05-26 is a period still running on 2025-05-29 (it ends 2025-06-02)" in started.message()
    ended = validate_frame(weekly, load_config(write_config(tmp_path, **overrides)), run_end, "sha")
    assert ended.cadence == "weekly (W-MON)" and "still running" not in ended.message()


def test_profile_of_real_series(iowa_frame):
    profile = series_profile(iowa_frame, END, DAILY).set_index("series_id")
    assert profile.loc["BLACK VELVET", "n_periods"] == len(pd.date_range("2023-01-02", "2025-05-30"))
    assert profile["periods_since_last_row"].max() <= 1
    assert list(profile.columns) == ["n_periods", "periods_since_last_row"]


def test_suites_are_valid_gx_json():
    import json

    for path in (ROOT / "include" / "expectations").glob("*.json"):
        data = json.loads(path.read_text())
        assert data["name"] == path.stem and data["expectations"]


def test_bad_rows_in_one_series_quarantine_it_not_the_run(iowa_frame, config, tmp_path):
    """A negative and an empty value in two of five series (the first also has an old infinite value, which
    the spike rule, seeing only recent days, would miss): those two are quarantined, each reason naming the
    rule, date and value; the run goes on. `validation.on_bad_rows: block` blocks it instead."""
    bad = iowa_frame.copy().astype({"value": "float64"})
    negative = bad.index[(bad.series_id == "BLACK VELVET") & (bad.sales_date == "2025-05-27")][0]
    empty = bad.index[(bad.series_id == "HAWKEYE VODKA") & (bad.sales_date == "2025-05-20")][0]
    infinite = bad.index[(bad.series_id == "BLACK VELVET") & (bad.sales_date == "2024-03-12")][0]
    bad.loc[negative, "value"] = -40
    bad.loc[empty, "value"] = None
    bad.loc[infinite, "value"] = float("inf")  # "inf" or "1e400" in a CSV: it would make every fit fail
    report = validate_frame(bad, config, END, "sha")
    assert report.success, report.message()
    assert report.bad_rows == ["BLACK VELVET", "HAWKEYE VODKA"] and set(report.quarantined) == {"BLACK VELVET", "HAWKEYE VODKA"}
    reason = report.quarantined["BLACK VELVET"]
    assert reason.startswith("bad rows (quantities sold are finite and not negative): ") and "2025-05-27 value -40.0" in reason, reason
    assert "2024-03-12 value 'inf'" in reason, reason
    assert "bad rows (every row has a numeric value" in report.quarantined["HAWKEYE VODKA"]
    # The empty cell is named as such, not as the NaN it was loaded as.
    assert "2025-05-20 value empty or not a number" in report.quarantined["HAWKEYE VODKA"], report.quarantined["HAWKEYE VODKA"]
    # A rule on the series id itself names the dates only (the id is the key the reason is filed under).
    padded = iowa_frame.copy()
    padded.loc[padded.series_id == "TITOS HANDMADE VODKA", "series_id"] = "TITOS HANDMADE VODKA "
    reason = validate_frame(padded, config, END, "sha").quarantined["TITOS HANDMADE VODKA "]
    assert reason.startswith("bad rows (series ids have no leading or trailing blanks): 2023-") and "value" not in reason, reason
    strict = validate_frame(bad, load_config(write_config(tmp_path, **{"validation.on_bad_rows": "block"})), END, "sha")
    assert not strict.success and strict.quarantined == {} and strict.bad_rows == []
    assert {("expect_column_values_to_be_between", "value"), ("expect_column_values_to_not_be_null", "value")} == failed(strict)


def test_bad_rows_that_cannot_be_pinned_on_a_series_block(iowa_frame, config):
    """A row with no series name cannot quarantine anything: the run is blocked, and so are the other
    series' bad rows found with it."""
    bad = iowa_frame.copy().astype({"value": "float64"})
    bad.loc[3, "value"] = -1
    bad.loc[5, "series_id"] = None
    report = validate_frame(normalise(bad), config, END, "sha")
    assert not report.success and report.quarantined == {}
    assert ("expect_column_values_to_not_be_null", "series_id") in failed(report)
    assert ("expect_column_values_to_be_between", "value") in failed(report)


def test_a_totals_row_is_named_with_its_value_and_blocks(iowa_frame, config):
    """A spreadsheet's footer (`Total,,1234567`: no date, no series) cannot belong to any series: the run is
    blocked, and the message shows the row as it is, value included, instead of `'<NA>' NaT value None`."""
    footer = pd.DataFrame({"sales_date": [pd.NaT], "series_id": [None], "value": [1234567.0]})
    report = validate_frame(normalise(pd.concat([iowa_frame, footer], ignore_index=True)), config, END, "sha")
    assert not report.success and report.quarantined == {}
    message = report.message()
    assert "rule: every row names its series, 1 unexpected, e.g. a row without a series name on no date: value 1234567" in message
    assert "NaT" not in message and "<NA>" not in message
    # The Slack alert renders the same row.
    body = alerts.validation_failure(RunInfo("sales_forecast", "validate_sales", "r", "2025-05-31"), report.to_dict())["blocks"][2]["text"]["text"]
    assert "(no series name) on no date: 1234567" in body and "None" not in body

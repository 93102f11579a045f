"""Anomaly rules on the real Iowa panel: clean data passes, each corruption is named, the policy decides."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from conftest import SEED, write_config

from include.forecasting import anomaly, training
from include.forecasting.config import load_config
from include.forecasting.frequency import DAILY
from include.forecasting.validation import validate_frame

END = dt.date(2025, 5, 31)
SEED_DIR = SEED.parent


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return load_config(write_config(tmp_path_factory.mktemp("a")))


def findings(frame, config):
    out = []
    for series_id, rows in frame.groupby("series_id"):
        out += anomaly.series_findings(training.period_series(rows, series_id, pd.Timestamp(END), DAILY), DAILY, config.anomaly)
    return out


def test_clean_panel_has_no_findings(iowa_frame, config):
    assert findings(iowa_frame, config) == []


def test_one_value_times_1000_quarantines_that_series(iowa_frame, config):
    bad = iowa_frame.copy()
    row = bad.index[(bad.series_id == "FIREBALL CINNAMON WHISKEY") & (bad.sales_date == "2025-05-29")][0]
    bad.loc[row, "value"] = bad.loc[row, "value"] * 1000
    report = validate_frame(bad, config, END, "sha")
    assert report.success and list(report.quarantined) == ["FIREBALL CINNAMON WHISKEY"]
    assert "spike" in report.quarantined["FIREBALL CINNAMON WHISKEY"] and "2025-05-29" in report.quarantined["FIREBALL CINNAMON WHISKEY"]


def test_spikes_anywhere_in_the_history_are_found(iowa_frame, config):
    """The rule judged at every period against the selling periods before it: a x1,000 value 7 weeks back
    (too old for the recent-days check) is found, the clean history gives nothing, and the first weeks
    (no reference yet) are not judged."""
    rule = (config.anomaly.spike_ratio, config.anomaly.spike_mad)
    for series_id, rows in iowa_frame.groupby("series_id"):
        assert anomaly.spike_periods(training.period_series(rows, series_id, pd.Timestamp(END), DAILY), DAILY, *rule).empty, series_id
    y = training.period_series(iowa_frame[iowa_frame.series_id == "BLACK VELVET"], "BLACK VELVET", pd.Timestamp(END), DAILY)
    bad = y.copy()
    bad["2025-04-10"] *= 1000
    bad.iloc[3] *= 1000  # no weeks before it to compare with
    assert anomaly.series_findings(bad, DAILY, config.anomaly) == []  # older than anomaly.recent_days
    assert list(anomaly.spike_periods(bad, DAILY, *rule)) == [pd.Timestamp("2025-04-10")]
    # Both conditions must hold: past a robust-deviation bar no value reaches, nothing is flagged.
    assert anomaly.spike_periods(bad, DAILY, 10.0, 1e6).empty


def test_outage_of_the_whole_panel_blocks_the_run(iowa_frame, config):
    bad = iowa_frame.copy()
    bad.loc[bad.sales_date >= "2025-05-24", "value"] = 0
    report = validate_frame(bad, config, END, "sha")
    assert not report.success
    [failure] = report.failures
    assert failure.expectation == "anomaly_policy"
    assert "anomalous delivery (panel-wide): zero run: every series is 0 in the last 7 periods, through 2025-05-30 (6 of them periods" in str(failure.observed)
    assert "(config anomaly.zero_run_days)" in str(failure.observed)


WEEKLY_END = dt.date(2023, 6, 26)


@pytest.fixture(scope="module")
def weekly_frame():
    """The shipped vegetables panel, weekly (weeks ending Sunday): zero-heavy, half its items often at 0."""
    from include.forecasting.extract import read_sales_csv

    return read_sales_csv(SEED_DIR / "veg_supermarket_weekly_kg.csv", {"date": "date", "series": "series", "value": "value"})


def test_weekly_outage_of_a_zero_heavy_panel_blocks_the_run(weekly_frame, config):
    """Every item at 0 for the last 3 weeks: only the few items that sell nearly every week are flagged one
    by one (too few for anomaly.panel_share), but the panel's total sells every week: panel-wide, blocked."""
    assert validate_frame(weekly_frame, config, WEEKLY_END, "sha").success
    bad = weekly_frame.copy()
    bad.loc[bad.sales_date >= "2023-06-11", "value"] = 0.0
    report = validate_frame(bad, config, WEEKLY_END, "sha")
    assert not report.success
    assert "every series is 0 in the last 3 periods, through 2023-06-25 (3 of them periods the panel normally sells on)" in str(report.failures[0].observed)


def test_a_zero_run_is_judged_on_the_selling_before_it(weekly_frame, config):
    """青茄子(1)'s last 3 weeks at 0 (the week before had no sale either: a run of 4). It sold in 21 of the
    26 weeks before the run (81 %): a zero run. Judged on the 26 weeks before the newest one, which hold
    3 of the run's own zeros, it sold in 19 of them (73 %), and the run would pass for normal."""
    bad = weekly_frame.copy()
    bad.loc[(bad.series_id == "青茄子(1)") & (bad.sales_date >= "2023-06-11"), "value"] = 0.0
    report = validate_frame(bad, config, WEEKLY_END, "sha")
    assert report.success and list(report.quarantined) == ["青茄子(1)"]
    assert "zero run: the last 4 periods are all 0 (4 of them normally selling), through 2023-06-25" in report.quarantined["青茄子(1)"]


def test_a_zero_run_longer_than_the_maximum_is_forecast_again(iowa_frame, config):
    """A product at 0 for 3 weeks is quarantined; at 0 for 5 weeks (past anomaly.zero_run_max_days, 28) it
    is taken to have stopped selling and is forecast again, not kept with forecasts gone stale."""
    for days, flagged in ((21, True), (28, True), (35, False)):
        bad = iowa_frame.copy()
        since = pd.Timestamp(END) - pd.Timedelta(days=days)
        bad.loc[(bad.series_id == "HAWKEYE VODKA") & (bad.sales_date >= since), "value"] = 0
        report = validate_frame(bad, config, END, "sha")
        assert report.success and ("HAWKEYE VODKA" in report.quarantined) is flagged, (days, report.quarantined)


def test_one_series_outage_and_a_duplicated_delivery_are_quarantined(iowa_frame, config):
    bad = iowa_frame.copy()
    bad.loc[(bad.series_id == "HAWKEYE VODKA") & (bad.sales_date >= "2025-05-21"), "value"] = 0
    duplicates = [{"series_id": "BLACK VELVET", "n_keys": 1, "first_date": "2025-05-28", "last_date": "2025-05-28", "max_rows": 2}]
    report = validate_frame(bad, config, END, "sha", duplicates)
    assert report.success and set(report.quarantined) == {"HAWKEYE VODKA", "BLACK VELVET"}
    assert "zero run" in report.quarantined["HAWKEYE VODKA"]
    assert "duplicated source rows" in report.quarantined["BLACK VELVET"] and "(2025-05-28, up to x2)" in report.quarantined["BLACK VELVET"]


def test_policy_block_and_ignore(iowa_frame, tmp_path):
    bad = iowa_frame.copy()
    bad.loc[(bad.series_id == "HAWKEYE VODKA") & (bad.sales_date >= "2025-05-21"), "value"] = 0
    strict = load_config(write_config(tmp_path, **{"anomaly.on_series": "block"}))
    assert not validate_frame(bad, strict, END, "sha").success
    lax = load_config(write_config(tmp_path, **{"anomaly.on_series": "ignore"}))
    report = validate_frame(bad, lax, END, "sha")
    assert report.success and report.quarantined == {}


def test_level_shift_is_named_with_both_medians(iowa_frame, config):
    bad = iowa_frame.copy()
    recent = (bad.series_id == "TITOS HANDMADE VODKA") & (bad.sales_date >= "2025-05-24")
    bad.loc[recent, "value"] = (bad.loc[recent, "value"] / 100).round()  # units became hundreds
    [finding] = [f for f in findings(bad, config) if f.rule == "level shift"]
    assert finding.series_id == "TITOS HANDMADE VODKA" and "vs" in finding.detail


def _rows_per_date(frame, scale_last_day: float = 1.0):
    rows = frame.groupby("sales_date").size().rename("n_rows").reset_index()
    last = rows["sales_date"] == rows["sales_date"].max()
    rows.loc[last, "n_rows"] = (rows.loc[last, "n_rows"] * scale_last_day).round().astype(int)
    return [{"sales_date": f"{d:%Y-%m-%d}", "n_rows": int(n)} for d, n in zip(rows["sales_date"], rows["n_rows"], strict=True)]


def test_delivery_volume_of_a_transaction_grain_source(iowa_frame, config):
    """Rows per delivery against recent deliveries: a day delivered four times over, or with most of its
    rows missing, blocks the run; the real panel's deliveries do not."""
    assert validate_frame(iowa_frame, config, END, "sha", delivery_rows=_rows_per_date(iowa_frame)).success
    report = validate_frame(iowa_frame, config, END, "sha", delivery_rows=_rows_per_date(iowa_frame, 4.0))
    assert not report.success and "source rows on 2025-05-30: 20 vs typical 5 (4x)" in str(report.failures[0].observed)
    thin = _rows_per_date(iowa_frame)
    thin[-1]["n_rows"] = 1  # one product's row of five arrived
    assert not validate_frame(iowa_frame, config, END, "sha", delivery_rows=thin).success



def test_level_shift_on_weekly_data_needs_two_recent_periods(weekly_frame, config, tmp_path):
    """净藕(1)'s last 2 weeks in tonnes instead of kg (÷ 1,000): with recent_days 7 the rule sees one
    week, too few for a median, and says nothing (README, Status); recent_days 14 catches it."""
    bad = weekly_frame.copy()
    recent = (bad.series_id == "净藕(1)") & (bad.sales_date >= "2023-06-18")
    bad.loc[recent, "value"] = bad.loc[recent, "value"] / 1000
    assert validate_frame(bad, config, WEEKLY_END, "sha").quarantined == {}
    two_weeks = load_config(write_config(tmp_path, **{"anomaly.recent_days": 14}))
    report = validate_frame(bad, two_weeks, WEEKLY_END, "sha")
    assert list(report.quarantined) == ["净藕(1)"] and "level shift: median of the last 2 periods" in report.quarantined["净藕(1)"]


def test_a_typo_in_a_widely_spread_series_is_a_spike(config):
    """菠菜 (spinach, kg) sells 0.3-50 kg on a day: a robust deviation of ~0.95 on the log scale, so 8 of
    them are ~3,000 x its typical 4.5 kg and a x1,000 typo passed the deviation arm. The
    spike_ratio_always arm (100 x typical) flags it, in the history (what training leaves out) and on
    the newest day (what validation quarantines), where its Fridays sold too seldom in the last 12 weeks
    to judge by them alone. The clean series has no spike under either rule."""
    raw = pd.read_csv(SEED_DIR / "veg_supermarket_daily_kg.csv", parse_dates=["date"])
    y = raw[raw.series == "菠菜"].set_index("date")["value"].asfreq("D", fill_value=0.0).rename("菠菜")
    rule = config.anomaly.spike_rule()
    assert anomaly.spike_periods(y, DAILY, *rule).equals(anomaly.spike_periods(y, DAILY, *rule[:2]))
    typo = y.copy()
    typo["2023-06-30"] = 4.49 * 1000
    assert anomaly.spike_periods(typo, DAILY, *rule[:2]).empty
    assert list(anomaly.spike_periods(typo, DAILY, *rule)) == [pd.Timestamp("2023-06-30")]
    [finding] = anomaly.series_findings(typo, DAILY, config.anomaly)
    assert finding.rule == "spike" and finding.detail.startswith("4490 on 2023-06-30, typical 4.49")


def _moved(frame, series_id: str, day: str, to: str):
    """`frame` with the series' row of `day` dated `to` instead (a mistyped date)."""
    bad = frame.copy()
    bad.loc[(bad.series_id == series_id) & (bad.sales_date == day), "sales_date"] = pd.Timestamp(to)
    return bad


@pytest.mark.parametrize(
    ("to", "gap"),
    [("2025-06-20", 21), ("2026-05-30", 365)],  # three weeks ahead; a year typed one too high
)
def test_a_row_dated_ahead_of_the_panel_blocks_the_run(iowa_frame, config, to, gap):
    """One row dated after the day every other series' rows end on: judged by the panel's newest row, the
    others would look stale-free with a run of zeros each (quarantined only while it is short and on days
    they normally sell; a year on, forecast as stopped). Blocked, naming the end they share and the row."""
    day = pd.Timestamp(to).date() + dt.timedelta(days=1)
    report = validate_frame(_moved(iowa_frame, "TITOS HANDMADE VODKA", "2025-05-30", to), config, day, "sha")
    assert not report.success
    [failure] = report.failures
    assert failure.expectation == "anomaly_policy" and failure.config_key == "validation.max_staleness_periods / anomaly.on_panel"
    assert (
        f"ragged end: 4 of 5 series' rows end on 2025-05-30, but 1 series has rows after it ('TITOS HANDMADE VODKA' to {to}; "
        f"1 of the {gap} periods after it holds a row): rows dated ahead of the rest of the panel"
    ) in str(failure.observed)
    assert "Fix those rows, or run for logical date 2025-05-31 to forecast from the rows through 2025-05-30" in str(failure.observed)
    # The suggested run passes: its extraction window ends before that date, so the rows ahead are not read.
    bad = _moved(iowa_frame, "TITOS HANDMADE VODKA", "2025-05-30", to)
    assert validate_frame(bad[bad.sales_date < pd.Timestamp("2025-05-31")], config, dt.date(2025, 5, 31), "sha").success


def test_a_ragged_end_within_the_staleness_allowance_or_lasting_passes(iowa_frame, config, tmp_path):
    """Not a ragged end: rows of one series a few days ahead (within validation.max_staleness_periods, a
    store that delivers a day early); the rows of three products ending six weeks before the others' (past
    anomaly.zero_run_max_days, with rows on most days since: what the panel now is); and with
    anomaly.on_panel "quarantine" the per-series rules judge each series instead."""
    few_days = iowa_frame[~((iowa_frame.series_id != "TITOS HANDMADE VODKA") & (iowa_frame.sales_date > "2025-05-27"))]
    assert validate_frame(few_days, config, END, "sha").success
    stopped = iowa_frame[~(iowa_frame.series_id.isin(["TITOS HANDMADE VODKA", "HAWKEYE VODKA", "BLACK VELVET"]) & (iowa_frame.sales_date > "2025-04-18"))]
    assert validate_frame(stopped, config, END, "sha").success
    # The same three stopping three weeks before: a ragged end (the zero runs alone would quarantine them).
    recent = iowa_frame[~(iowa_frame.series_id.isin(["TITOS HANDMADE VODKA", "HAWKEYE VODKA", "BLACK VELVET"]) & (iowa_frame.sales_date > "2025-05-09"))]
    assert "ragged end: 3 of 5 series' rows end on 2025-05-09" in str(validate_frame(recent, config, END, "sha").failures[0].observed)
    lax = load_config(write_config(tmp_path, **{"anomaly.on_panel": "quarantine"}))
    report = validate_frame(recent, lax, END, "sha")
    assert report.success and sorted(report.quarantined) == ["BLACK VELVET", "HAWKEYE VODKA", "TITOS HANDMADE VODKA"]
    assert all("zero run" in r for r in report.quarantined.values())

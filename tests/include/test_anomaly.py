"""Anomaly rules on the real Iowa panel: clean data passes, each corruption is named, the policy decides."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from conftest import write_config

from include.forecasting import anomaly, training
from include.forecasting.config import load_config
from include.forecasting.frequency import DAILY
from include.forecasting.validation import validate_frame

END = dt.date(2025, 5, 31)


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
    assert failure.expectation == "anomaly_policy" and "panel-wide: 5 of 5 series" in str(failure.observed) and "zero run" in str(failure.observed)


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


"""GX validation on the real panel: it passes clean data and names each failure on corrupted data."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from conftest import ROOT, write_config

from include.forecasting.config import load_config
from include.forecasting.extract import normalise
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
    assert report.evaluated == 17


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
        ("expect_column_values_to_be_in_type_list", "value"),
        ("expect_compound_columns_to_be_unique", "sales_date,series_id"),
    } <= failed(report)
    between = next(f for f in report.failures if f.expectation == "expect_column_values_to_be_between")
    assert between.unexpected_count == 1 and -5.0 in between.unexpected_examples
    assert "expect_column_values_to_be_between on column 'value', 1 unexpected" in report.message()


def test_stale_data_fails_freshness(iowa_frame, config):
    report = validate_frame(iowa_frame, config, dt.date(2025, 6, 20), "sha")
    assert failed(report) == {("expect_column_values_to_be_between", "days_since_last_row")}
    assert report.failures[0].unexpected_count == 5


def test_future_rows_fail(iowa_frame, config):
    report = validate_frame(iowa_frame, config, dt.date(2025, 5, 20), "sha")
    assert ("expect_column_max_to_be_between", "sales_date") in failed(report)


def test_gaps_min_rows_and_unknown_series(iowa_frame, tmp_path):
    config = load_config(write_config(tmp_path, **{"series": ["BLACK VELVET", "HAWKEYE VODKA", "NEW PRODUCT"], "validation.min_rows_per_series": 800}))
    gappy = iowa_frame[~((iowa_frame.series_id == "BLACK VELVET") & iowa_frame.sales_date.between("2024-03-01", "2024-04-30"))]
    report = validate_frame(gappy.reset_index(drop=True), config, END, "sha")
    names = failed(report)
    assert ("expect_column_values_to_be_in_set", "series_id") in names  # 3 series not in the list
    assert ("expect_column_distinct_values_to_contain_set", "series_id") in names  # NEW PRODUCT missing
    assert ("expect_column_values_to_be_between", "n_rows") in names
    assert ("expect_column_values_to_be_between", "max_gap_days") in names


def test_profile_of_real_series(iowa_frame):
    profile = series_profile(iowa_frame, END).set_index("series_id")
    assert profile.loc["BLACK VELVET", "n_rows"] == 724
    assert profile["days_since_last_row"].max() <= 1
    assert profile["max_gap_days"].max() <= 5  # a long weekend plus holiday at most


def test_suites_are_valid_gx_json():
    import json

    for path in (ROOT / "include" / "expectations").glob("*.json"):
        data = json.loads(path.read_text())
        assert data["name"] == path.stem and data["expectations"]

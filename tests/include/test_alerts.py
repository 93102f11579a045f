"""Slack message builders on real validation and gate results from the Iowa data."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from conftest import write_config

from include.forecasting import alerts
from include.forecasting.config import GateConfig, load_config
from include.forecasting.extract import normalise
from include.forecasting.gate import decide
from include.forecasting.validation import validate_frame

INFO = alerts.RunInfo("sales_forecast", "validate_sales", "scheduled__2025-05-31T03:00:00+00:00", "2025-05-31", 1, 0, -1, "https://airflow.example.com")


def test_validation_message_names_failures(iowa_frame, tmp_path):
    # on_bad_rows block: bad rows in two of five series would otherwise quarantine them, not fail the run.
    config = load_config(write_config(tmp_path, **{"validation.on_bad_rows": "block"}))
    bad = iowa_frame.copy().astype({"value": "float64"})
    bad.loc[5, "value"] = -12
    report = validate_frame(normalise(pd.concat([bad, bad.iloc[[2]]])), config, dt.date(2025, 5, 31), "abc123")
    payload = alerts.validation_failure(INFO, report.to_dict())
    text = json.dumps(payload)
    json.loads(text)  # strict JSON (no NaN): Slack rejects anything else
    assert "expect_column_values_to_be_between" in text and "`value`" in text and "-12" in text
    assert "expect_compound_columns_to_be_unique" in text
    assert payload["blocks"][0]["type"] == "header"
    assert payload["blocks"][-1]["elements"][0]["url"] == (
        "https://airflow.example.com/dags/sales_forecast/runs/scheduled__2025-05-31T03%3A00%3A00%2B00%3A00/tasks/validate_sales"
    )


def test_gate_message_shows_metrics_against_thresholds():
    gate = GateConfig(min_improvement_vs_naive=0.0, max_degradation_vs_champion=0.05)
    metrics = lambda v: {"mase": v, "rmse": 900.0, "smape": 0.3, "mape": 3.0, "coverage_80": 0.8, "folds": 4}  # noqa: E731
    decisions = [
        decide("TITOS HANDMADE VODKA", "p.t", "4", metrics(1.1), metrics(1.03), "3", metrics(0.94), gate).to_dict(),
        decide("BLACK VELVET", "p.b", "4", metrics(0.5), metrics(0.6), None, None, gate).to_dict(),
    ]
    payload = alerts.gate_rejection(INFO, decisions)
    body = payload["blocks"][2]["text"]["text"]
    assert "1 series kept their champion" in body and "(1 passed the gate)" in body
    assert "TITOS HANDMADE VODKA" in body and "MASE 1.100" in body and "champion v3 MASE 0.940" in body
    assert "naive limit 1.030" in body and "champion limit 0.987" in body
    assert "BLACK VELVET" not in body


def test_gate_message_with_undefined_metrics():
    """A constant series: its MASE is undefined (None in the decision's JSON): the message says so with "-"
    and the reason, and never fails to format (it once failed the gate task and so the whole run)."""
    gate = GateConfig(min_improvement_vs_naive=0.0, max_degradation_vs_champion=0.05)
    undefined = {"mase": None, "rmse": 0.0, "smape": 0.0, "mape": 0.0, "coverage_80": 1.0, "folds": 4}
    decision = decide("CONST", "p.c", "3", undefined, undefined, "2", undefined, gate, champion_recorded=undefined).to_dict()
    body = alerts.gate_rejection(INFO, [decision])["blocks"][2]["text"]["text"]
    assert "*CONST* candidate v3 MASE - / RMSE 0; naive MASE - / RMSE 0; champion v2 MASE -" in body
    assert "naive limit -" in body and "MASE undefined: seasonal naive is exact" in body
    notice = alerts.champion_change(INFO, [{"series_id": "CONST", "previous": "2", "version": "3", "changed": True}], {"CONST": float("nan")})
    assert "v2 → v3 (MASE -)" in json.dumps(notice, ensure_ascii=False)


def test_a_long_failure_keeps_its_rule_and_config_key():
    """One failure whose observed message is long (a young panel's dates): the line is not cut at the
    250 characters each of ten lines gets, so the rule and the key to set still show."""
    report = {
        "failures": [{"expectation": "single_cadence", "column": None, "observed": "the panel's cadence cannot be told from its dates: " + "x" * 400, "rule": "a cadence its dates show", "config_key": "source.frequency"}],
        "evaluated": 1, "snapshot_sha256": "abc",
    }
    body = alerts.validation_failure(INFO, report)["blocks"][2]["text"]["text"]
    assert "rule: a cadence its dates show (config `source.frequency`)" in body and "…" not in body
    ten = {**report, "failures": report["failures"] * 12}
    body = alerts.validation_failure(INFO, ten)["blocks"][2]["text"]["text"]
    assert len(body) <= alerts.MAX_TEXT and "and 2 more" in body and body.count("x…") == 10


def test_lists_are_bounded():
    failures = [{"task_id": "train_series", "map_index": i, "series": [f"S{i}"], "cause": "X" * 300} for i in range(500)]
    payload = alerts.series_report(INFO, {}, failures, 0, [])
    assert len(payload["blocks"][2]["text"]["text"]) <= alerts.MAX_TEXT
    assert "and 490 more" in payload["blocks"][2]["text"]["text"]
    assert len(payload["text"]) <= 3900


def test_exception_description_is_masked():
    masked = alerts.describe_exception(RuntimeError("token=xoxb-123 refused\nsecond line"), lambda s: s.replace("xoxb-123", "***"))
    assert masked == "RuntimeError: token=*** refused"
    assert "unknown cause" in alerts.describe_exception(None)


def test_champion_change_and_rollback_notices():
    promotions = [{"series_id": "A", "version": "2", "previous": "1", "changed": True, "note": ""}, {"series_id": "B", "version": "1", "previous": None, "changed": False, "note": ""}]
    body = alerts.champion_change(INFO, promotions, {"A": 0.61})["blocks"][2]["text"]["text"]
    assert "v1 → v2" in body and "MASE 0.610" in body and "*B*" not in body
    rb = alerts.rollback_notice(INFO, [{"series_id": "A", "version": "1", "previous": "2", "note": "rolled back"}], "alice", "spike")
    assert "alice" in json.dumps(rb) and "v2 → v1" in json.dumps(rb, ensure_ascii=False)
    done = {"logical_date": "2025-05-31", "from": "2", "to": "1"}
    failed = {"logical_date": "2025-05-31", "from": "2", "error": "IOException: locked"}
    rb = alerts.rollback_notice(INFO, [{"series_id": "A", "version": "1", "previous": "2", "note": "", "republished": done}, {"series_id": "B", "version": "1", "previous": "2", "note": "", "republished": failed}], "alice", "spike")
    text = json.dumps(rb)
    assert "forecasts for 2025-05-31 republished with v1 (were v2)" in text and "NOT republished, still v2: IOException: locked" in text


@pytest.mark.parametrize("map_index", [-1, 3])
def test_log_url_for_mapped_tasks(map_index):
    info = alerts.RunInfo("d", "t", "r", "2025-01-01", map_index=map_index)
    assert info.log_url.endswith("/mapped/3") == (map_index == 3)


def test_exception_description_names_the_innermost_cause():
    """What to act on is the innermost error (SQLite's), not only where it surfaced (SQLAlchemy's flush)."""
    try:
        try:
            raise OSError("attempt to write a readonly database")
        except OSError as inner:
            raise RuntimeError("Query-invoked autoflush; consider using a session.no_autoflush block") from inner
    except RuntimeError as exc:
        text = alerts.describe_exception(exc)
    assert text == "RuntimeError: Query-invoked autoflush; consider using a session.no_autoflush block (caused by OSError: attempt to write a readonly database)"


def test_series_report_names_spikes_left_out_of_training():
    """A run with nothing quarantined but a spike newly left out of training is a data notice naming the
    series, date, value and rule; with quarantined series too it stays the partial-run report."""
    spikes = {"TITOS HANDMADE VODKA": {"2024-03-12": 41000.0}}
    notice = alerts.series_report(INFO, {}, [], 5, [], spikes)
    text = json.dumps(notice, ensure_ascii=False)
    assert notice["blocks"][0]["text"]["text"] == ":mag: Sales forecast: data notice"
    assert "partial run" not in text and "quarantined" not in text
    for word in ("TITOS HANDMADE VODKA", "41000 on 2024-03-12", "anomaly.spike_ratio", "5 series published"):
        assert word in text, word
    both = json.dumps(alerts.series_report(INFO, {"FIREBALL": "spike: 9e+05 on 2025-05-29"}, [], 4, [], spikes), ensure_ascii=False)
    assert "partial run" in both and "1 series quarantined" in both and "41000 on 2024-03-12" in both
    many = alerts.series_report(INFO, {}, [], 1, [], {"A": {f"2024-01-{d:02d}": float(d) for d in range(1, 31)}})
    assert "and 20 more" in json.dumps(many)


LATE_RUN = {
    "dag_id": "sales_forecast",
    "dag_run_id": "scheduled__2025-05-31T03:00:00+00:00",
    "logical_date": "2025-05-31T03:00:00Z",
    "queued_at": "2025-05-31T03:00:02.250000Z",
    "start_date": "2025-05-31T03:00:04Z",
    "state": "running",
    "run_type": "scheduled",
}


def test_late_run_message_says_what_is_late_and_links_the_run():
    deadline = dt.datetime(2025, 5, 31, 4, 0, 2, tzinfo=dt.UTC)
    payload = alerts.late_run(LATE_RUN, deadline, 60, 120, "https://airflow.example.com")
    json.loads(json.dumps(payload))
    text = payload["text"]
    assert text.startswith(":hourglass_flowing_sand: Sales forecast run is late: sales_forecast (2025-05-31)")
    assert "*Still running* 60 min after it was queued (2025-05-31 03:00:02 UTC; started 2025-05-31 03:00:04 UTC; deadline 2025-05-31 04:00:02 UTC)" in text
    assert "scheduled run" in text and "not published yet" in text and "120-minute timeout" in text
    button = payload["blocks"][-1]["elements"][0]
    assert button["text"]["text"] == "Open run"
    assert button["url"] == "https://airflow.example.com/dags/sales_forecast/runs/scheduled__2025-05-31T03%3A00%3A00%2B00%3A00"
    # Deadline time as ISO text (how it reaches a callback through JSON), another zone, still queued.
    queued = alerts.late_run({**LATE_RUN, "state": "queued", "start_date": None}, "2025-05-31T06:00:02+02:00", 60, None, "u")
    assert "*Still queued*" in queued["text"] and "not started yet; deadline 2025-05-31 04:00:02 UTC" in queued["text"]
    assert "timeout" not in queued["text"]


@pytest.mark.parametrize("change", [{"state": "failed"}, {"state": "success"}, {"run_type": "backfill"}])
def test_late_run_is_silent_for_ended_runs_and_backfills(change):
    # A failed run has its own failure alert; a backfill's runs wait their turn by design.
    assert alerts.late_run({**LATE_RUN, **change}, None, 60, 120, "u") is None

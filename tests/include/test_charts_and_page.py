"""Charts and the Forecasts page's data, from small real frames (Iowa sales, published-forecast rows)."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd

from include.forecasting import charts, forecasts_page

DAY = dt.date(2025, 5, 31)


def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    dates = pd.date_range("2025-05-10", "2025-05-30")
    actuals = pd.DataFrame({"series_id": "FIVE O'CLOCK VODKA", "date": dates.date, "actual": [float(300 + 10 * (d.dayofweek != 5) * d.day) for d in dates]})
    forecasts = []
    for logical in (DAY - dt.timedelta(days=7), DAY):
        f_dates = pd.date_range(logical, periods=7)
        forecasts.append(
            pd.DataFrame(
                {
                    "series_id": "FIVE O'CLOCK VODKA", "forecast_date": f_dates, "yhat": 400.0, "yhat_lower": 300.0, "yhat_upper": 520.0,
                    "model_version": "2" if logical == DAY else "1", "logical_date": logical,
                }
            )
        )
    return actuals, pd.concat(forecasts, ignore_index=True)


def test_chart_has_actuals_newest_forecast_with_interval_and_older_forecasts():
    actuals, forecasts = frames()
    data = charts.chart_data("FIVE O'CLOCK VODKA", actuals, forecasts)
    assert [r["logical_date"] for r in data["forecasts"]] == ["2025-05-31", "2025-05-24"]  # newest first
    assert data["forecasts"][0]["model_version"] == "2"
    json.dumps(data)  # JSON-ready
    svg = charts.series_svg(data)
    assert svg.count('class="actual"') == 1 and svg.count('class="forecast"') == 1
    assert svg.count('class="interval"') == 1 and svg.count('class="past-forecast"') == 1
    assert "FIVE O&#x27;CLOCK VODKA" in svg and "FIVE O'CLOCK" not in svg  # names are escaped


def test_chart_of_an_unknown_series_says_so():
    actuals, forecasts = frames()
    assert "no data yet" in charts.series_svg(charts.chart_data("NOPE", actuals, forecasts))


def test_series_rows_join_registry_gate_and_realized_accuracy(tmp_path):
    actuals, forecasts = frames()
    gate_dir = tmp_path / "gate"
    gate_dir.mkdir()
    decision = {"series_id": "FIVE O'CLOCK VODKA", "passed": False, "reasons": ["MASE 0.9 does not beat seasonal naive 0.8"], "candidate": {"mase": 0.9}, "naive": {"mase": 0.8}}
    (gate_dir / "manual__2025-05-31T00_00_00+00_00.json").write_text(json.dumps([decision]))
    run, gate = forecasts_page.latest_gate(gate_dir)
    assert run == "manual__2025-05-31T00_00_00+00_00"
    assert forecasts_page.latest_gate(gate_dir, "manual__2025-05-31T00:00:00+00:00")[1] == gate  # a run id as the UI passes it
    assert forecasts_page.latest_gate(gate_dir, "scheduled__other") == (None, {})
    health = pd.DataFrame(
        {"series_id": ["FIVE O'CLOCK VODKA"], "monitor_date": [DAY], "scored_periods": [7], "mase": [0.7], "expected_mase": [0.5], "naive_mase": [0.9],
         "rmse": [80.0], "coverage": [0.71], "bias": [0.05], "degraded": [False], "drifted": [True], "reasons": ["drift: KS 0.4"]}
    )
    url = forecasts_page.model_version_url("http://127.0.0.1:5000/", "sales_forecast.five_o_clock_vodka", "1")
    assert url == "http://127.0.0.1:5000/#/models/sales_forecast.five_o_clock_vodka/versions/1"
    rows = forecasts_page.series_rows(forecasts, health, gate, {"FIVE O'CLOCK VODKA": "1"}, {"FIVE O'CLOCK VODKA": url})
    assert len(rows) == 1
    row = rows[0]
    assert row["champion_version"] == "1" and row["published_version"] == "2" and row["published_logical_date"] == "2025-05-31"
    assert row["champion_url"] == url
    assert row["gate"]["passed"] is False and row["gate"]["naive_mase"] == 0.8
    assert row["realized"]["drifted"] is True and row["realized"]["mase"] == 0.7
    json.dumps(rows)
    page = forecasts_page.page_html(rows, row["series_id"], charts.chart_data(row["series_id"], actuals, forecasts), run)
    assert "rejected: MASE 0.9 does not beat seasonal naive 0.8" in page and "drifted" in page and "<svg" in page
    assert f'<a href="{url}" target="_blank"' in page and ">v1</a>" in page  # the champion opens in the MLflow UI
    # Without a URL (or a champion) the cell is plain text.
    plain = forecasts_page.page_html(forecasts_page.series_rows(forecasts, health, gate, {"FIVE O'CLOCK VODKA": "1"}), None, None, run)
    assert "<td>v1</td>" in plain and "#/models/" not in plain
    assert "<td>none</td>" in forecasts_page.page_html(forecasts_page.series_rows(forecasts, health, gate, {}), None, None, run)


def test_model_version_url_quotes_the_name():
    """Registered names are slugs, but a user's prefix may hold any character the registry accepts."""
    assert forecasts_page.model_version_url("http://h:5000", "sales forecast/x&y", "12") == "http://h:5000/#/models/sales%20forecast%2Fx%26y/versions/12"

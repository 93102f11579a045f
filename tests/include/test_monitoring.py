"""Realized accuracy, degradation and drift on the shipped Iowa panel (real sales) with forecasts whose
quality is known by construction: the truth itself, seasonal naive, and a forecast twice the truth."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from conftest import SEED

from include.forecasting import monitoring
from include.forecasting.frequency import DAILY, detect_cadence
from include.forecasting.monitor_tables import ensure_tables, read_table, replace_duckdb

MONITOR = dt.date(2025, 5, 31)
SETTINGS = monitoring.MonitorSettings()


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    raw = pd.read_csv(SEED, parse_dates=["date"])
    frame = raw.rename(columns={"date": "sales_date", "item_name": "series_id", "total_amount_sold": "value"})
    return frame[frame["sales_date"] < pd.Timestamp(MONITOR)][["sales_date", "series_id", "value"]]


@pytest.fixture(scope="module")
def actuals(history: pd.DataFrame) -> dict[str, pd.Series]:
    return monitoring.actual_series(history, DAILY, MONITOR)


def published(actuals: dict[str, pd.Series], series_id: str, scale: float = 1.0, origins: int = 4, version: str = "3") -> pd.DataFrame:
    """Daily forecasts of 7 days published at each of the last `origins` weeks: truth x scale, +-10 %."""
    y = actuals[series_id]
    rows = []
    for k in range(origins, 0, -1):
        logical = MONITOR - dt.timedelta(days=7 * k)
        dates = pd.date_range(logical, periods=7)
        truth = y.reindex(dates).to_numpy(dtype=float)
        rows.append(
            pd.DataFrame(
                {
                    "series_id": series_id, "forecast_date": dates, "yhat": truth * scale, "yhat_lower": truth * scale * 0.9,
                    "yhat_upper": truth * scale * 1.1, "model_name": f"p.{series_id}", "model_version": version, "logical_date": logical,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_accuracy_rows_join_only_arrived_periods_with_horizons(actuals, history):
    forecasts = published(actuals, "BLACK VELVET", origins=2)
    # One more forecast published on the monitor date: none of its periods has arrived.
    forecasts = pd.concat([forecasts, published(actuals, "BLACK VELVET", origins=1).assign(logical_date=MONITOR, forecast_date=pd.date_range(MONITOR, periods=7))])
    arrived = monitoring.arrived_through(history, MONITOR)
    assert arrived == pd.Timestamp("2025-05-30")
    rows = monitoring.accuracy_rows(forecasts, actuals, arrived)
    assert list(rows.columns) == monitoring.ACCURACY_COLUMNS
    assert len(rows) == 14 and rows["logical_date"].max() < MONITOR
    assert rows.groupby("logical_date")["horizon"].apply(list).tolist() == [list(range(1, 8))] * 2
    truth = actuals["BLACK VELVET"].reindex(pd.to_datetime(rows["forecast_date"])).to_numpy()
    np.testing.assert_allclose(rows["actual"].to_numpy(), truth)


def test_a_perfect_forecast_is_healthy_and_a_doubled_one_is_degraded(actuals, history):
    arrived = monitoring.arrived_through(history, MONITOR)
    good = monitoring.accuracy_rows(published(actuals, "BLACK VELVET"), actuals, arrived)
    bad = monitoring.accuracy_rows(published(actuals, "HAWKEYE VODKA", scale=2.0), actuals, arrived)
    expected = {("BLACK VELVET", "3"): {"mase": 0.4, "rmse": 500.0}, ("HAWKEYE VODKA", "3"): {"mase": 0.4, "rmse": 400.0}}
    health = monitoring.series_health(pd.concat([good, bad]), actuals, expected, DAILY, MONITOR, SETTINGS).set_index("series_id")
    assert health.loc["BLACK VELVET", "mase"] == pytest.approx(0.0)
    assert health.loc["BLACK VELVET", "coverage"] == pytest.approx(1.0)
    assert not health.loc["BLACK VELVET", "degraded"]
    assert health.loc["HAWKEYE VODKA", "degraded"]
    assert health.loc["HAWKEYE VODKA", "bias"] == pytest.approx(1.0)  # forecasts twice the sales
    assert "MASE" in health.loc["HAWKEYE VODKA", "reasons"] and "expected 0.4" in health.loc["HAWKEYE VODKA", "reasons"]
    assert health.loc["HAWKEYE VODKA", "scored_periods"] == SETTINGS.window_periods


def test_losing_to_seasonal_naive_is_degradation_even_without_an_expectation(actuals, history):
    arrived = monitoring.arrived_through(history, MONITOR)
    rows = monitoring.accuracy_rows(published(actuals, "TITOS HANDMADE VODKA", scale=3.0, version="fallback:seasonal_naive"), actuals, arrived)
    health = monitoring.series_health(rows, actuals, {}, DAILY, MONITOR, SETTINGS)
    assert health["degraded"].item()
    assert "worse than seasonal naive" in health["reasons"].item()
    assert health["expected_mase"].item() is None


def test_an_interval_that_holds_too_few_actuals_is_degradation(actuals, history):
    """Exact points (MASE 0, far better than expected and than naive) with an interval that covers almost
    nothing: degraded on coverage alone, naming the periods covered and the test. A period forecast from
    several origins counts once. The same forecasts with a realistic spread are not flagged, and the rule
    can be turned off."""
    arrived = monitoring.arrived_through(history, MONITOR)
    forecasts = published(actuals, "BLACK VELVET")
    open_days = forecasts["yhat"] > 0
    # The interval sits just above the truth on open days (missed), at it on closed days (a zero is covered).
    narrow = forecasts.assign(yhat_lower=forecasts["yhat"] * 1.01 + open_days * 1.0, yhat_upper=forecasts["yhat"] * 1.1 + open_days * 1.0)
    rows = monitoring.accuracy_rows(narrow, actuals, arrived)
    expected = {("BLACK VELVET", "3"): {"mase": 0.4, "rmse": 500.0}}
    health = monitoring.series_health(rows, actuals, expected, DAILY, MONITOR, SETTINGS)
    row = health.iloc[0]
    assert row["degraded"] and row["mase"] == pytest.approx(0.0)
    window = rows[pd.to_datetime(rows["forecast_date"]) > pd.to_datetime(rows["forecast_date"]).max() - pd.Timedelta(days=SETTINGS.window_periods)]
    covered = int((window.groupby("forecast_date")["actual"].first() == 0).sum())  # closed days only
    assert f"80% interval held {covered} of {SETTINGS.window_periods} periods" in row["reasons"] and "binomial p" in row["reasons"]
    # The same window forecast twice (a second origin for every period): one draw per period, same verdict.
    again = monitoring.accuracy_rows(pd.concat([narrow, narrow.assign(logical_date=narrow["logical_date"] - pd.Timedelta(days=1))]), actuals, arrived)
    twice = monitoring.series_health(again, actuals, expected, DAILY, MONITOR, SETTINGS).iloc[0]
    assert twice["reasons"] == row["reasons"]
    # Realistic intervals (+-10 % around the truth) hold every actual: healthy.
    assert not monitoring.series_health(monitoring.accuracy_rows(forecasts, actuals, arrived), actuals, expected, DAILY, MONITOR, SETTINGS)["degraded"].item()
    off = monitoring.MonitorSettings(coverage_p_value=None)
    assert not monitoring.series_health(rows, actuals, expected, DAILY, MONITOR, off)["degraded"].item()


def test_one_bad_window_is_not_persistent_degradation(actuals, history):
    """Only the newest week is bad: the verdict needs `degradation_periods` bad windows in a row, and the
    older windows (mostly good days) are within the margin."""
    arrived = monitoring.arrived_through(history, MONITOR)
    good = published(actuals, "BLACK VELVET", origins=4)
    good.loc[good["forecast_date"] == good["forecast_date"].max(), ["yhat", "yhat_upper"]] *= 3  # one bad day
    rows = monitoring.accuracy_rows(good, actuals, arrived)
    settings = monitoring.MonitorSettings(window_periods=7, degradation_periods=3)
    health = monitoring.series_health(rows, actuals, {("BLACK VELVET", "3"): {"mase": 0.5, "rmse": 600.0}}, DAILY, MONITOR, settings)
    assert not health["degraded"].item()


def test_drift_flags_a_level_change_and_not_the_same_series(actuals):
    shifted = actuals["BLACK VELVET"].copy()
    shifted.iloc[-28:] *= 3  # a real product's sales tripling in the last four weeks
    result = monitoring.drift({"same": actuals["BLACK VELVET"], "shifted": shifted}, 365, SETTINGS).set_index("series_id")
    assert not result.loc["same", "drifted"]
    assert result.loc["shifted", "drifted"]
    assert result.loc["shifted", "drift_statistic"] >= SETTINGS.drift_min_statistic and "KS" in result.loc["shifted", "drift_reason"]


def test_drift_needs_enough_history():
    short = {"new": pd.Series([1.0] * 30, index=pd.date_range("2025-01-01", periods=30))}
    result = monitoring.drift(short, 365, SETTINGS)
    assert result["drift_statistic"].item() is None and not result["drifted"].item()


def test_retrain_requests_only_while_the_judged_version_is_champion():
    health = pd.DataFrame(
        {
            "series_id": ["A", "B", "C", "A"],
            "monitor_date": [MONITOR, MONITOR, MONITOR, MONITOR - dt.timedelta(days=1)],
            "model_version": ["3", "5", "2", "2"],
            "degraded": [True, False, True, True],
            "drifted": [False, True, False, False],
            "reasons": ["MASE up", "drift: KS", "MASE up", "older"],
        }
    )
    requests = monitoring.retrain_requests(health, {"A": "3", "B": "5", "C": "4"})
    assert set(requests) == {"A", "B"}  # C's judged version 2 is no longer champion (4 replaced it)
    assert requests["A"].startswith(f"monitor {MONITOR}: MASE up")


def test_health_table_is_replaced_by_key(tmp_path, actuals, history):
    import duckdb

    from include.forecasting.config import load_config

    names = {"accuracy": "forecast_accuracy", "health": "forecast_health", "actuals": "forecast_actuals"}
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_tables(con, names)
    rows = monitoring.accuracy_rows(published(actuals, "BLACK VELVET"), actuals, monitoring.arrived_through(history, MONITOR))
    assert replace_duckdb(con, names, "accuracy", rows) == 28
    assert replace_duckdb(con, names, "accuracy", rows) == 28  # a rerun replaces, never duplicates
    stored = read_table(con, "forecast_accuracy")
    assert len(stored) == 28
    assert detect_cadence(history, load_config().source.frequency).name == "daily"


def test_a_monitor_run_before_anything_was_published_writes_health_and_a_report(tmp_path, history):
    """The first scheduled monitor run can come before the first publish: no forecasts table yet."""
    import duckdb

    from include.forecasting import monitor_pipeline
    from include.forecasting.config import load_config

    config = load_config()
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    from include.forecasting.monitor_tables import forecasts_between

    forecasts = forecasts_between(con, "forecasts", MONITOR - dt.timedelta(days=60), MONITOR)
    assert forecasts.empty and "series_id" in forecasts
    result = monitor_pipeline.assess(config, forecasts, history, MONITOR, lambda name, version: None)
    assert result.accuracy.empty and len(result.health) == 5 and result.health["scored_periods"].eq(0).all()
    report = monitor_pipeline.write_report(tmp_path / "r.html", MONITOR, result, forecasts)
    assert report.read_text().count("<svg") == 5


def test_a_net_negative_actual_is_scored_as_no_sale_when_training_read_it_so(tmp_path, actuals, history):
    """With validation.negative_values "zero" the monitor scores a net-negative day as the 0 training read
    it as; by default it scores the value as delivered."""
    from conftest import write_config

    from include.forecasting import monitor_pipeline
    from include.forecasting.config import load_config

    series_id = "BLACK VELVET"
    forecasts = published(actuals, series_id)
    day = pd.Timestamp(forecasts["forecast_date"].max())
    net = history.copy()
    row = (net["series_id"] == series_id) & (net["sales_date"] == day)
    assert row.sum() == 1
    net.loc[row, "value"] = -40
    scored = {}
    for policy in ("refuse", "zero"):
        config = load_config(write_config(tmp_path, **{"validation.negative_values": policy}))
        result = monitor_pipeline.assess(config, forecasts, net, MONITOR, lambda name, version: None)
        on_day = result.accuracy[pd.to_datetime(result.accuracy["forecast_date"]) == day]
        assert len(on_day) == 1
        scored[policy] = float(on_day["actual"].iloc[0])
    assert scored == {"refuse": -40, "zero": 0}


def test_periods_that_have_not_arrived_are_not_zeros(history):
    """A monitor run long after the newest delivery (late data, or a historical panel): the actuals stop
    at the newest row instead of reading as weeks of zero sales, so nothing drifts because of it."""
    late = MONITOR + dt.timedelta(days=60)
    actuals = monitoring.actual_series(history, DAILY, late)
    assert max(y.index.max() for y in actuals.values()) == pd.Timestamp("2025-05-30")
    on_time = monitoring.actual_series(history, DAILY, MONITOR)
    pd.testing.assert_frame_equal(monitoring.drift(actuals, 365, SETTINGS), monitoring.drift(on_time, 365, SETTINGS))


def test_bigquery_replace_script_transpiles_and_replaces_by_key():
    """The BigQuery path's script (rows bound as one ARRAY<STRUCT> parameter), transpiled by sqlglot and
    run on DuckDB with the rows bound the same way: a second call replaces, never appends."""
    import duckdb
    import sqlglot

    from include.forecasting.monitor_tables import bigquery_replace_sql

    names = {"accuracy": "forecast_accuracy", "health": "forecast_health", "actuals": "forecast_actuals"}
    con = duckdb.connect()
    ensure_tables(con, names)
    script = bigquery_replace_sql("forecast_actuals", "actuals")
    assert "@rows" in script and "UNNEST(@rows) AS r" in script
    statements = sqlglot.transpile(script, read="bigquery", write="duckdb")

    def run(rows: list[dict]) -> None:
        for statement in statements:
            con.execute(statement.replace("@rows", "$rows"), {"rows": rows} if "UNNEST(" in statement else {})

    run([{"series_id": "A", "date": dt.date(2025, 5, 1), "actual": 1.0}, {"series_id": "A", "date": dt.date(2025, 5, 2), "actual": 2.0}])
    run([{"series_id": "A", "date": dt.date(2025, 5, 2), "actual": 5.0}])
    stored = read_table(con, "forecast_actuals").sort_values("date")
    assert stored["actual"].tolist() == [1.0, 5.0]


def test_a_large_panel_charts_the_flagged_and_worst_series_first():
    from include.forecasting.monitor_pipeline import MonitorResult, report_series

    n = 120
    ids = [f"S{i:03d}" for i in range(n)]
    health = pd.DataFrame(
        {
            "series_id": ids, "mase": [1.0 + i / n for i in range(n)], "expected_mase": [1.0] * n,
            "degraded": [i == 3 for i in range(n)], "drifted": [i == 5 for i in range(n)],
        }
    )
    actuals = pd.DataFrame({"series_id": ids, "date": [dt.date(2025, 5, 1)] * n, "actual": [1.0] * n})
    charted = report_series(MonitorResult(pd.DataFrame(), health, actuals, {}, "daily"), max_charts=10)
    assert len(charted) == 10 and {"S003", "S005", "S119", "S118"} <= set(charted)


def test_flagged_for_retraining_asks_the_registry_only_for_flagged_series_of_this_run():
    health = pd.DataFrame(
        {
            "series_id": ["A", "B", "C", "D"], "monitor_date": [MONITOR] * 4, "model_version": ["1", "1", "1", "1"],
            "degraded": [True, False, False, True], "drifted": [False, True, False, False], "reasons": ["MASE up", "KS", "", "MASE up"],
        }
    )
    asked = []

    def champion_of(series_id: str) -> str:
        asked.append(series_id)
        return "1"

    requests = monitoring.flagged_for_retraining(health, ["A", "B", "C"], ["degradation"], champion_of)
    assert set(requests) == {"A"} and asked == ["A"]  # B only drifted (not asked for), D not in this run
    assert set(monitoring.flagged_for_retraining(health, ["A", "B", "C"], ["degradation", "drift"], champion_of)) == {"A", "B"}
    assert monitoring.flagged_for_retraining(health, ["A"], [], champion_of) == {}


def test_the_realized_mase_scale_leaves_out_spikes_like_the_backtest(actuals, history):
    """A x1,000 typo in the history before the scored periods: with the spike rule, the realized MASE is
    the clean series' (the scale the recorded backtest used), without it a fraction of it."""
    arrived = monitoring.arrived_through(history, MONITOR)
    rows = monitoring.accuracy_rows(published(actuals, "HAWKEYE VODKA", scale=2.0), actuals, arrived)
    typo = dict(actuals)
    typo["HAWKEYE VODKA"] = actuals["HAWKEYE VODKA"].copy()
    typo["HAWKEYE VODKA"]["2025-02-12"] *= 1000
    rule = (10.0, 8.0)

    def mase(series: dict[str, pd.Series], spike_rule: tuple[float, ...]) -> float:
        return float(monitoring.series_health(rows, series, {}, DAILY, MONITOR, SETTINGS, spike_rule)["mase"].iloc[0])

    assert mase(actuals, rule) == mase(actuals, ())  # nothing flagged in the clean history
    # Only the two differences with the typo at an end are left out of hundreds: the scale barely moves.
    assert mase(typo, rule) == pytest.approx(mase(actuals, ()), rel=0.01)
    assert mase(typo, ()) < mase(actuals, ()) / 5


def test_a_month_still_running_is_not_an_actual(history):
    """Monthly data dated on the month's first day: mid-May 2025 the panel has May's row, which holds half
    the month. It is not May's actual yet (a forecast of May scored against it would read as a model
    twice too high); on 1 June it is."""
    from include.forecasting.frequency import from_name

    months = from_name("monthly (MS)")
    by_month = history.assign(sales_date=history["sales_date"].dt.to_period("M").dt.to_timestamp())
    by_month = by_month.groupby(["sales_date", "series_id"], as_index=False)["value"].sum()
    mid_may = by_month.assign(value=lambda f: f["value"].where(f["sales_date"] < "2025-05-01", f["value"] / 2))
    forecast = pd.DataFrame(
        {"series_id": "BLACK VELVET", "forecast_date": pd.to_datetime(["2025-04-01", "2025-05-01"]), "yhat": 1.0, "yhat_lower": 0.5,
         "yhat_upper": 2.0, "model_name": "p.bv", "model_version": "1", "logical_date": dt.date(2025, 3, 10)}
    )
    running = dt.date(2025, 5, 16)
    actuals = monitoring.actual_series(mid_may, months, running)
    assert actuals["BLACK VELVET"].index.max() == pd.Timestamp("2025-04-01")
    rows = monitoring.accuracy_rows(forecast, actuals, monitoring.arrived_through(mid_may, running, months))
    assert rows["forecast_date"].tolist() == [dt.date(2025, 4, 1)]
    ended = dt.date(2025, 6, 1)
    actuals = monitoring.actual_series(by_month, months, ended)
    rows = monitoring.accuracy_rows(forecast, actuals, monitoring.arrived_through(by_month, ended, months))
    assert rows["forecast_date"].tolist() == [dt.date(2025, 4, 1), dt.date(2025, 5, 1)]
    may = by_month[(by_month["series_id"] == "BLACK VELVET") & (by_month["sales_date"] == pd.Timestamp("2025-05-01"))]
    assert rows["actual"].iloc[1] == may["value"].iloc[0] > 0


def test_the_lookback_holds_enough_periods_for_a_verdict(history, tmp_path):
    """60 days of daily or weekly forecasts hold the 7 scored periods a verdict needs; 60 days of monthly
    ones hold two months, so on monthly data the monitor reads forecasts published over (7 + 1) x 30 days."""
    from conftest import write_config

    from include.forecasting.config import load_config
    from include.forecasting.monitor_pipeline import history_cadence, lookback

    config = load_config(write_config(tmp_path))
    assert lookback(config, MONITOR) == (MONITOR - dt.timedelta(days=60), MONITOR)
    assert lookback(config, MONITOR, history_cadence(config, history)) == (MONITOR - dt.timedelta(days=60), MONITOR)
    weeks = history.assign(sales_date=history["sales_date"].dt.to_period("W-SUN").dt.end_time.dt.normalize())
    weeks = weeks.groupby(["sales_date", "series_id"], as_index=False)["value"].sum()
    assert lookback(config, MONITOR, history_cadence(config, weeks))[0] == MONITOR - dt.timedelta(days=60)
    months = history.assign(sales_date=history["sales_date"].dt.to_period("M").dt.to_timestamp())
    months = months.groupby(["sales_date", "series_id"], as_index=False)["value"].sum()
    assert lookback(config, MONITOR, history_cadence(config, months)) == (MONITOR - dt.timedelta(days=240), MONITOR)
    assert history_cadence(config, history.iloc[:0]) is None


def test_rows_dated_ahead_of_the_panel_do_not_make_the_others_arrive(history, actuals):
    """Only TITOS's rows for the last three weeks (the other four products' rows stop on 2025-05-09, a
    delivery of one product): judged by the newest row, the others' three weeks would be scored as zeros
    and every perfect forecast of them would look broken. With validation's ragged-end rule the panel has
    arrived through 2025-05-09: their forecasts after it wait for their rows; on a clean panel nothing moves."""
    from include.forecasting.config import load_config

    config = load_config()
    rules = (config.anomaly, config.validation.max_staleness_periods)
    late = history[~((history.series_id != "TITOS HANDMADE VODKA") & (history.sales_date > "2025-05-09"))]
    assert monitoring.arrived_through(late, MONITOR, DAILY) == pd.Timestamp("2025-05-30")
    assert monitoring.arrived_through(late, MONITOR, DAILY, *rules) == pd.Timestamp("2025-05-09")
    assert monitoring.arrived_through(history, MONITOR, DAILY, *rules) == pd.Timestamp("2025-05-30")
    seen = monitoring.actual_series(late, DAILY, MONITOR, *rules)
    assert seen["BLACK VELVET"].index.max() == pd.Timestamp("2025-05-09")
    perfect = published(actuals, "BLACK VELVET", origins=4)  # the truth, published at each of the last 4 weeks
    rows = monitoring.accuracy_rows(perfect, seen, monitoring.arrived_through(late, MONITOR, DAILY, *rules))
    assert len(rows) and pd.to_datetime(rows["forecast_date"]).max() <= pd.Timestamp("2025-05-09")
    np.testing.assert_allclose(rows["actual"].to_numpy(), rows["yhat"].to_numpy())
    naive = monitoring.accuracy_rows(perfect, monitoring.actual_series(late, DAILY, MONITOR), monitoring.arrived_through(late, MONITOR, DAILY))
    assert (naive.loc[pd.to_datetime(naive["forecast_date"]) > pd.Timestamp("2025-05-09"), "actual"] == 0).all()
    # The monitor DAG's step: the same, and the perfect forecast stays healthy.
    from include.forecasting import monitor_pipeline

    result = monitor_pipeline.assess(config, perfect, late, MONITOR, lambda name, version: None)
    assert pd.to_datetime(result.accuracy["forecast_date"]).max() <= pd.Timestamp("2025-05-09")
    assert not result.health.set_index("series_id").loc["BLACK VELVET", "degraded"]

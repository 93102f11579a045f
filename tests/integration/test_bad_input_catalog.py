"""The bad-input catalog: each corruption and fault runs through the real DAG (dag.test() on a real Airflow
DB, DuckDB file, MLflow store and a Slack stand-in) after a clean baseline run. For each case: the run ends
failed or partial as designed, one alert names the cause, no champion or published row of an affected
series changes, and unaffected series are still published where the policy allows.

Slow (a DAG run per case): `make test-catalog`, which `.ci/run` calls; `make test` skips it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
import yaml
from conftest import RUN_DAY, SEED, slack_webhook_conn, write_config
from support.slack_standin import SlackStandIn
from support.stores import champions, forecasts, task_states

from include.forecasting.config import load_config
from include.forecasting.extract import UnparseableRowsError, load_seed_csv
from include.forecasting.publish import FALLBACK_VERSION
from scripts.demo import run_dag, summary

pytestmark = [pytest.mark.catalog, pytest.mark.timeout(900)]
DAY = dt.date.fromisoformat(RUN_DAY)
COLS = ["series_id", "forecast_date", "yhat", "yhat_lower", "yhat_upper", "model_version"]


@dataclass(frozen=True)
class Panel:
    """A real panel the catalog corrupts: its seed CSV, the logical date of the run that covers its
    newest period, and the config lines a user with that file changes."""

    name: str
    seed: Path
    day: dt.date
    overrides: tuple[tuple[str, Any], ...] = ()


IOWA = Panel("iowa", SEED, DAY)
# Weekly, kg with decimals, zero-heavy: half its items go weeks without a sale.
VEG_WEEKLY = Panel(
    "veg_weekly", SEED.parent / "veg_supermarket_weekly_kg.csv", dt.date(2023, 6, 26),
    (("source.columns", {"date": "date", "series": "series", "value": "value"}),),
)
# Daily kg, zero-heavy, with China's calendar as its users would set it.
VEG_DAILY = Panel(
    "veg_daily", SEED.parent / "veg_supermarket_daily_kg.csv", dt.date(2023, 7, 1),
    (("source.columns", {"date": "date", "series": "series", "value": "value"}), ("forecast.holidays", {"country": "CN"})),
)


@dataclass(frozen=True)
class Case:
    """One corruption: how it changes the seed, and what the run must do about it."""

    name: str
    corrupt: Callable[[pd.DataFrame], pd.DataFrame]
    # "blocked" (run failed at validation) | "partial" (affected series quarantined) | "notice" (every
    # series published, the alert a data notice)
    outcome: str
    affected: tuple[str, ...]  # series whose champion and published rows must not change
    alert: tuple[str, ...]  # words the one alert must contain
    panel: Panel = IOWA


def _rows(frame: pd.DataFrame, series: str, since: str) -> pd.Series:
    return (frame["item_name"] == series) & (frame["date"] >= since)


def _set_cell(series: str, day: str, column: str, value: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """A corruption that writes `value` into `column` of the series' first row on or after `day`."""

    def corrupt(f: pd.DataFrame) -> pd.DataFrame:
        f = f.copy()
        f.loc[_rows(f, series, day).idxmax(), column] = value
        return f

    return corrupt


def _dup_one_day(f: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([f, f[(f["item_name"] == "BLACK VELVET") & (f["date"] == "2025-05-28")]], ignore_index=True)


def _times_1000(series: str, day: str, columns: tuple[str, str] = ("item_name", "total_amount_sold"), typical: float | None = None) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """A corruption that multiplies the series' value on `day` by 1,000 (`columns`: series and value), or
    writes 1,000 x `typical` there (a day without a sale has no value to multiply)."""

    def corrupt(f: pd.DataFrame) -> pd.DataFrame:
        f = f.copy()
        row = f.index[(f[columns[0]] == series) & (f["date"] == day)][0]
        cell = f.loc[row, columns[1]]
        base = typical if typical is not None else int(cell) if cell.isdigit() else float(cell)
        f.loc[row, columns[1]] = str(base * 1000)
        return f

    return corrupt


def _outage(f: pd.DataFrame) -> pd.DataFrame:
    f = f.copy()
    f.loc[f["date"] >= "2025-05-24", "total_amount_sold"] = "0"
    return f


def _one_series_zero(f: pd.DataFrame) -> pd.DataFrame:
    f = f.copy()
    f.loc[_rows(f, "HAWKEYE VODKA", "2025-05-21"), "total_amount_sold"] = "0"
    return f


def _new_product(f: pd.DataFrame) -> pd.DataFrame:
    days = pd.date_range("2025-05-11", "2025-05-30").strftime("%Y-%m-%d")
    return pd.concat([f, pd.DataFrame({"date": days, "item_name": "NEW GIN", "total_amount_sold": "40"})], ignore_index=True)


def _new_product_negative(f: pd.DataFrame) -> pd.DataFrame:
    f = _new_product(f)
    f.loc[f.index[-3], "total_amount_sold"] = "-5"
    return f


def _weekly_totals(f: pd.DataFrame) -> pd.DataFrame:
    """HAWKEYE VODKA delivered as weekly totals (one row per week, dated on its Monday) among daily rows."""
    mine = _rows(f, "HAWKEYE VODKA", "")
    week = pd.to_datetime(f.loc[mine, "date"]).dt.to_period("W-SUN").dt.start_time.dt.strftime("%Y-%m-%d")
    totals = f.loc[mine].assign(date=week, total_amount_sold=pd.to_numeric(f.loc[mine, "total_amount_sold"])).groupby("date", as_index=False)["total_amount_sold"].sum()
    return pd.concat([f[~mine], totals.assign(item_name="HAWKEYE VODKA").astype({"total_amount_sold": str})], ignore_index=True)


def _stale(f: pd.DataFrame) -> pd.DataFrame:
    return f[~_rows(f, "FIVE O'CLOCK VODKA", "2025-05-20")].reset_index(drop=True)


def _weekly_zero(series: str | None, since: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Weeks from `since` on at 0 for one item (or for every item, `series` None)."""

    def corrupt(f: pd.DataFrame) -> pd.DataFrame:
        f = f.copy()
        f.loc[(f["date"] >= since) & ((f["series"] == series) if series else True), "value"] = "0"
        return f

    return corrupt


def _last_weeks(f: pd.DataFrame) -> pd.DataFrame:
    """Only the last two weeks of every item (a delivery that replaced the history instead of adding to it)."""
    return f[f["date"] >= "2023-06-18"].reset_index(drop=True)


def _partial_delivery(f: pd.DataFrame) -> pd.DataFrame:
    """Only one item's rows for the last three weeks (the other 19 items' rows stop on 2023-06-09)."""
    return f[~((f["series"] != "上海青") & (f["date"] > "2023-06-09"))].reset_index(drop=True)


CASES = [
    Case("one day of one product delivered twice", _dup_one_day, "partial", ("BLACK VELVET",), ("BLACK VELVET", "duplicated source rows", "2025-05-28")),
    Case("the whole file delivered twice", lambda f: pd.concat([f, f], ignore_index=True), "blocked", (), ("anomalous data", "panel-wide", "duplicated source rows")),
    Case("one value x1,000", _times_1000("FIREBALL CINNAMON WHISKEY", "2025-05-29"), "partial", ("FIREBALL CINNAMON WHISKEY",), ("FIREBALL CINNAMON WHISKEY", "spike", "2025-05-29")),
    # Too old for validation's recent-days spike check: training leaves it out, and the run says so once.
    Case("one value x1,000 a year back", _times_1000("TITOS HANDMADE VODKA", "2024-03-12"), "notice", (), ("TITOS HANDMADE VODKA", "spike left out of training", "4947000 on 2024-03-12")),
    Case("the last 7 days zero for every product", _outage, "blocked", (), ("panel-wide", "zero run")),
    Case("one product's last 10 days zero", _one_series_zero, "partial", ("HAWKEYE VODKA",), ("HAWKEYE VODKA", "zero run")),
    Case("a new product with 20 days of history", _new_product, "partial", (), ("NEW GIN", "enough history")),
    Case("a negative value", _set_cell("TITOS HANDMADE VODKA", "2025-05-27", "total_amount_sold", "-40"), "partial", ("TITOS HANDMADE VODKA",), ("TITOS HANDMADE VODKA", "2025-05-27", "not negative", "-40")),
    Case("an empty value", _set_cell("TITOS HANDMADE VODKA", "2025-05-27", "total_amount_sold", ""), "partial", ("TITOS HANDMADE VODKA",), ("TITOS HANDMADE VODKA", "2025-05-27", "numeric value")),
    # Older than the spike rule's recent days: only the value rule can catch it (it made every fit fail).
    Case("an infinite value a year back", _set_cell("TITOS HANDMADE VODKA", "2024-03-12", "total_amount_sold", "inf"), "partial", ("TITOS HANDMADE VODKA",), ("TITOS HANDMADE VODKA", "2024-03-12", "finite and not negative", "inf")),
    # A date that does not parse, in one series: loaded without a date (a warning names the CSV line) and
    # extracted whatever the window, so only that series stops.
    Case("an impossible date (2025-02-30)", _set_cell("TITOS HANDMADE VODKA", "2025-05-27", "date", "2025-02-30"), "partial", ("TITOS HANDMADE VODKA",), ("TITOS HANDMADE VODKA", "every row has a date", "a row without a date")),
    # Not a number in one series: loaded as missing (with a warning naming the CSV line), so only it stops.
    Case("a value that is text", _set_cell("TITOS HANDMADE VODKA", "2025-05-27", "total_amount_sold", "n/a"), "partial", ("TITOS HANDMADE VODKA",), ("TITOS HANDMADE VODKA", "2025-05-27", "numeric value")),
    Case("a negative value in a new product", _new_product_negative, "partial", (), ("NEW GIN", "2025-05-28", "not negative", "-5")),
    Case("a row without a series name", _set_cell("BLACK VELVET", "2025-05-26", "item_name", ""), "blocked", (), ("every row names its series", "2025-05-26")),
    # No row is no sale: a product whose rows stop while the others go on is a run of zeros on days it sells.
    # One product under two names: the variant would be a second, bogus series with a fallback of its own.
    Case("one row's product name typed in lower case", _set_cell("BLACK VELVET", "2025-05-27", "item_name", "black velvet"), "partial", (), ("black velvet", "one name per series", "BLACK VELVET")),
    # Weekly rows in a daily panel would read as one big day and six days without a sale.
    Case("one product's rows are weekly totals", _weekly_totals, "partial", ("HAWKEYE VODKA",), ("HAWKEYE VODKA", "one cadence per panel", "weekly (W-MON)")),
    Case("a series whose rows stop", _stale, "partial", ("FIVE O'CLOCK VODKA",), ("FIVE O'CLOCK VODKA", "zero run")),
    # Weekly and zero-heavy: most items are too often at 0 for their own zero run to count, so the
    # outage is found on the panel's total.
    Case("weekly: every item's last 3 weeks zero", _weekly_zero(None, "2023-06-11"), "blocked", (), ("panel-wide", "zero run", "every series is 0 in the last 3 periods"), VEG_WEEKLY),
    # An item that sold in 21 of the 26 weeks before the run: judged with the run's own zeros counted in,
    # it would pass for an item that often sells nothing.
    Case("weekly: one item's last 3 weeks zero", _weekly_zero("青茄子(1)", "2023-06-11"), "partial", ("青茄子(1)",), ("青茄子(1)", "zero run"), VEG_WEEKLY),
    # Two Sundays tell a week from a day no better than one: read as daily, two weekly totals would be two
    # big days with six days without a sale between, and any fallback daily forecasts of weekly totals.
    Case("weekly: only the last two weeks delivered", _last_weeks, "blocked", (), ("a cadence its dates show", "2 date(s), 2023-06-18 (Sun), 2023-06-25 (Sun)", "source.frequency"), VEG_WEEKLY),
    # 娃娃菜 has no champion (its candidates lose to naive): its published rows are the fallback's, which
    # must not be recomputed from the spike (seasonal naive would forecast 1,000 x its sales).
    Case("weekly: one value x1,000", _times_1000("娃娃菜", "2023-06-25", ("series", "value")), "partial", ("娃娃菜",), ("娃娃菜", "spike", "2023-06-25"), VEG_WEEKLY),
    # 菠菜 (spinach) sells 0.3-50 kg a day, and sold nothing in the 12 weeks before its last week: no recent
    # typical, and 8 robust deviations of its spread are ~3,000 x its typical 4.49 kg. Caught by
    # anomaly.spike_ratio_always on its older sales; no champion, and no fallback copied from the typo.
    # Judged by the panel's newest row the data is fresh, and each other item has a run of zeros: the
    # zero-run rule flags only those that sell nearly every day (too few for panel_share), so the others
    # would be published as zeros. Most items' rows ending on one day is the evidence.
    Case("daily: a delivery of only one item for three weeks", _partial_delivery, "blocked", (), ("ragged end", "19 of 20 series' rows end on 2023-06-09", "'上海青' to 2023-06-30"), VEG_DAILY),
    Case("daily: x1,000 typical in an item with widely spread sales", _times_1000("菠菜", "2023-06-30", ("series", "value"), 4.49), "partial", ("菠菜",), ("菠菜", "spike", "2023-06-30", "typical 4.49"), VEG_DAILY),
]


@pytest.fixture(scope="module")
def baselines(airflow_db, tmp_path_factory) -> Callable[[Panel], Path]:
    """Per panel, once: its own stores and one clean run (champions and published rows for its day).
    Returns the directory holding that panel's forecast.yaml."""
    done: dict[str, Path] = {}

    def get(panel: Panel) -> Path:
        if panel.name not in done:
            tmp = tmp_path_factory.mktemp(f"catalog_{panel.name}")
            path = write_config(tmp, panel.seed, **dict(panel.overrides))
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("FORECAST_CONFIG", str(path))
                _load(path, panel.seed)
                run = run_dag("sales_forecast", panel.day)
            assert run.state == "success", task_states(run)
            done[panel.name] = tmp
        return done[panel.name]

    return get


@pytest.fixture(scope="module")
def baseline(baselines) -> tuple[Path, dict[str, str], pd.DataFrame]:
    """The Iowa baseline: champions for all five series and their published rows for DAY."""
    tmp = baselines(IOWA)
    config = load_config(tmp / "forecast.yaml")
    return tmp, champions(config), forecasts(config, DAY)


def _load(config_path: Path, seed: Path) -> None:
    config = load_config(config_path)
    con = duckdb.connect(str(config.warehouse.path))
    try:
        load_seed_csv(con, config.source.model_copy(update={"seed_csv": seed}))
    finally:
        con.close()


def _seed(tmp: Path, name: str, frame: pd.DataFrame) -> Path:
    path = tmp / f"{name.replace(' ', '_').replace(',', '')}.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: Case, baselines, monkeypatch) -> None:
    tmp = baselines(case.panel)
    seed, day = case.panel.seed, case.panel.day
    path = tmp / "forecast.yaml"
    config = load_config(path)
    champions_before, rows_before = champions(config), forecasts(config, day)  # the state this case starts from
    monkeypatch.setenv("FORECAST_CONFIG", str(path))
    _load(path, _seed(tmp, case.name, case.corrupt(pd.read_csv(seed, dtype=str, keep_default_na=False))))
    try:
        with SlackStandIn() as slack:
            monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_webhook_conn(slack.webhook_url))
            run = run_dag("sales_forecast", day)
        states = task_states(run)
        after = forecasts(config, day)
        if case.outcome == "blocked":
            assert run.state == "failed" and states["validate_sales"] == "failed", states
            assert not any(k.startswith("train_series") and s == "success" for k, s in states.items())
            assert champions(config) == champions_before
            pd.testing.assert_frame_equal(after[COLS].reset_index(drop=True), rows_before[COLS].reset_index(drop=True))
        elif case.outcome == "notice":
            assert run.state == "success" and states["all_series_published"] == "success", states
            assert set(after[after["run_id"] == run.run_id]["series_id"]) >= {s for s, v in champions_before.items() if v}
            printed = summary(config, day, run.run_id, str(run.state))
            assert "Spikes left out of training (1 series" in printed and "4947000 on 2024-03-12" in printed, printed[:1500]
        else:
            assert run.state == "success" and states["all_series_published"] == "skipped", states
            now = champions(config)
            for series in case.affected:  # quarantined: champion and published rows as they were
                assert now[series] == champions_before[series]
                pd.testing.assert_frame_equal(
                    after[after.series_id == series][COLS].reset_index(drop=True), rows_before[rows_before.series_id == series][COLS].reset_index(drop=True)
                )
            # Unaffected series are published by this run.
            fresh = after[after["run_id"] == run.run_id]
            assert {s for s, v in champions_before.items() if v} - set(case.affected) <= set(fresh["series_id"])
            # What `make demo` prints for it: partial, the run-level rules passed, each quarantined series named.
            printed = summary(config, day, run.run_id, str(run.state))
            assert "PARTIAL (" in printed and "series quarantined (below)" in printed, printed[:600]
            for series in case.affected:
                assert f"  - {series}: " in printed, printed[:1200]
        # The one alert about the data; the promotion notice and the gate's warning (a zero-heavy panel has
        # series without a champion whose candidates lose to naive, on every run) are other matters.
        alerts = [r.body for r in slack.requests if not any(w in r.body["text"] for w in ("champions updated", "quality gate rejected"))]
        assert len(alerts) == 1, [a["text"][:200] for a in alerts]
        text = json.dumps(alerts[0], ensure_ascii=False)
        for word in case.alert:
            assert word in text, (word, text[:1500])
        if case.outcome == "notice":  # said once: a rerun on the same data reuses the versions, silently
            with SlackStandIn() as again:
                monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_webhook_conn(again.webhook_url))
                assert run_dag("sales_forecast", day).state == "success"
            assert again.requests == [], [r.body["text"][:200] for r in again.requests]
            # The RUNBOOK's fix, the typo corrected at the source: the clean history's backtest is on the
            # same MASE scale as the one the typo run recorded (the scale leaves spikes out), so the
            # gate does not take the corrected data for suspect.
            # A forced refit, as the next day's new data would (the clean data alone reuses the baseline's version).
            _load(path, seed)
            fixed = run_dag("sales_forecast", day, {"series": ["TITOS HANDMADE VODKA"], "force_retrain": True})
            printed = summary(config, day, fixed.run_id, str(fixed.state))
            assert fixed.state == "success" and "suspect" not in printed and "TITOS HANDMADE VODKA" in printed, printed[:2500]
        if case.name == "a new product with 20 days of history":
            assert set(after[after.series_id == "NEW GIN"]["model_version"]) == {FALLBACK_VERSION}
        if case.name == "a negative value in a new product":  # no fallback from rows known to be bad
            assert after[(after.series_id == "NEW GIN") & (after.run_id == run.run_id)].empty
            pd.testing.assert_frame_equal(  # what an earlier run published for it stays as it was
                after[after.series_id == "NEW GIN"][COLS].reset_index(drop=True), rows_before[rows_before.series_id == "NEW GIN"][COLS].reset_index(drop=True)
            )
        if case.name == "one row's product name typed in lower case":  # no second forecast of the same product
            assert "black velvet" not in set(after["series_id"])
        if case.name == "one product's rows are weekly totals":  # nothing from rows off the panel's cadence
            assert after[(after.series_id == "HAWKEYE VODKA") & (after.run_id == run.run_id)].empty
    finally:
        _load(path, seed)  # the next case starts from the clean panel again


def test_unparseable_dates_are_refused_at_load(baseline) -> None:
    """The last 30 rows with MM/DD/YYYY dates: refused when the seed loads, naming the lines; the
    warehouse keeps the clean panel, so nothing downstream can run on a silently shortened file."""
    tmp, _, _ = baseline
    frame = pd.read_csv(SEED, dtype=str)
    tail = frame.index[-30:]
    frame.loc[tail, "date"] = pd.to_datetime(frame.loc[tail, "date"]).dt.strftime("%m/%d/%Y")
    with pytest.raises(UnparseableRowsError, match=r"30 row\(s\) with date not YYYY-MM-DD, e.g. line 3576"):
        _load(tmp / "forecast.yaml", _seed(tmp, "us dates", frame))


def test_publish_failure_moves_the_champions_back(baseline, monkeypatch) -> None:
    """The warehouse refuses the write on every try (the forecasts table replaced by a view): after the
    last try this run's champion moves are undone, so registry and warehouse agree; one alert says so."""
    tmp, _, _ = baseline
    config = load_config(tmp / "forecast.yaml")
    champions_before, rows_before = champions(config), forecasts(config, DAY)
    # Same stores; a gate that passes any candidate, so this run's champions do move before publishing.
    data = yaml.safe_load((tmp / "forecast.yaml").read_text())
    data["gate"].update({"max_degradation_vs_champion": 10.0, "max_degradation_vs_recorded": 100.0})
    path = tmp / "forecast_lenient_gate.yaml"
    path.write_text(yaml.safe_dump(data))
    config = load_config(path)
    monkeypatch.setenv("FORECAST_CONFIG", str(path))
    con = duckdb.connect(str(config.warehouse.path))
    con.execute("ALTER TABLE forecasts RENAME TO forecasts_kept")
    con.execute("CREATE VIEW forecasts AS SELECT * FROM forecasts_kept")
    con.close()
    # A new logical date whose candidates pass the gate: champions move, then publishing fails.
    next_day = DAY + dt.timedelta(days=1)
    extra = pd.read_csv(SEED, dtype=str)
    extra = pd.concat([extra, extra[extra["date"] == "2025-05-23"].assign(date="2025-05-31")], ignore_index=True)
    _load(path, _seed(tmp, "next day", extra))
    try:
        with SlackStandIn() as slack:
            monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_webhook_conn(slack.webhook_url))
            run = run_dag("sales_forecast", next_day)
        states = task_states(run)
        assert run.state == "failed" and states["publish_forecasts"] == "failed", states
        assert champions(config) == champions_before  # moved back
        texts = [r.body["text"] for r in slack.requests if "champions updated" not in r.body["text"]]
        assert len(texts) == 1 and "champions moved back" in texts[0], texts
        moved = texts[0].split("unchanged warehouse: ")[1]
        assert "->" in moved, texts[0]  # at least one champion had moved and was moved back
    finally:
        con = duckdb.connect(str(config.warehouse.path))
        con.execute("DROP VIEW forecasts")
        con.execute("ALTER TABLE forecasts_kept RENAME TO forecasts")
        con.close()
        _load(path, SEED)
    pd.testing.assert_frame_equal(forecasts(config, DAY)[COLS].reset_index(drop=True), rows_before[COLS].reset_index(drop=True))


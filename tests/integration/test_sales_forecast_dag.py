"""End to end: the real sales_forecast DAG under dag.test() on a real Airflow DB, DuckDB file, MLflow
sqlite store and a Slack stand-in on 127.0.0.1 (real HTTP from the Slack provider's clients)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from conftest import RUN_DAY, SEED, slack_webhook_conn
from support.slack_standin import SlackStandIn
from support.stores import champions, forecasts, task_states, version_counts

from include.forecasting.keys import model_name
from include.forecasting.model_versions import logged_model_id
from include.forecasting.publish import FALLBACK_VERSION
from scripts.demo import run_dag, summary

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]
DAY = dt.date.fromisoformat(RUN_DAY)
SERIES = 5
HORIZON = 7


def corrupt_seed(tmp_path: Path) -> Path:
    """The real panel with realistic faults in three of its five series (panel-wide: the run is blocked, not
    three series quarantined): two negative counts, a blank value, and a duplicated row."""
    frame = pd.read_csv(SEED, dtype=str)
    frame.loc[10, "total_amount_sold"] = "-40"
    frame.loc[12, "total_amount_sold"] = "-3"
    frame.loc[20, "total_amount_sold"] = ""
    frame = pd.concat([frame, frame.iloc[[30]]], ignore_index=True)
    path = tmp_path / "corrupted.csv"
    frame.to_csv(path, index=False)
    return path


def test_run_rerun_and_corrupted_input(airflow_db, config_factory, tmp_path, monkeypatch):
    """Champions + forecasts for every series; a rerun changes nothing; bad data stops at validate."""
    config = config_factory()
    for name in ("MLFLOW_UI_URL", "MLFLOW_UI_HOST", "MLFLOW_UI_PORT"):  # the promote link's default below
        monkeypatch.delenv(name, raising=False)
    with SlackStandIn() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_webhook_conn(slack.webhook_url))

        # 1. First run: every series gets a champion and HORIZON forecast rows.
        run = run_dag("sales_forecast", DAY)
        assert run.state == "success", task_states(run)
        first_champions = champions(config)
        assert len(first_champions) == SERIES and all(first_champions.values())
        published = forecasts(config, DAY)
        assert len(published) == SERIES * HORIZON
        assert published.groupby("series_id")["model_version"].first().to_dict() == first_champions
        # Trained through the day before the logical date, forecasting from the logical date on.
        assert published["forecast_date"].min() == pd.Timestamp(DAY)
        assert set(published["as_of_date"]) == {pd.Timestamp(DAY - dt.timedelta(days=1))}
        assert (published["yhat_lower"] <= published["yhat"]).all() and (published["yhat"] <= published["yhat_upper"]).all()
        assert (published["yhat_lower_95"] <= published["yhat_lower"]).all()
        # One "champions updated" notice, nothing else.
        assert len(slack.requests) == 1 and "champions updated" in slack.texts()[0]
        # Each champion's run names its training data as an MLflow dataset: the snapshot it was cut from,
        # digested like the version's data_sha256 tag.
        from mlflow import MlflowClient

        client = MlflowClient(config.mlflow.tracking_uri)
        for series_id, number in first_champions.items():
            version = client.get_model_version(model_name(config.mlflow.model_prefix, series_id), number)
            (given,) = client.get_run(version.run_id).inputs.dataset_inputs
            assert given.dataset.digest == version.tags["data_sha256"][:16]
            assert json.loads(given.dataset.source)["uri"].endswith(f"snapshots/{version.tags['snapshot_sha256'][:20]}.parquet")
            # The gate's backtest metrics sit on the version's logged model, against that dataset.
            linked = {m.key: m for m in client.get_logged_model(logged_model_id(version)).metrics}
            assert linked["candidate_mase"].value == json.loads(version.tags["backtest"])["candidate"]["mase"]
            assert (linked["candidate_mase"].dataset_name, linked["candidate_mase"].dataset_digest) == (given.dataset.name, given.dataset.digest)

        # The promote task's "MLflow registry" link (an XCom Airflow's UI reads): the local MLflow UI.
        (promote,) = [ti for ti in run.get_task_instances() if ti.task_id == "promote_champion"]
        assert promote.xcom_pull(task_ids="promote_champion", key="_link_MlflowRegistryLink") == "http://127.0.0.1:5000/#/models"

        # 2. Rerun of the same date: same data + config + code -> no refit, no new version, same rows.
        versions_before = version_counts(config)
        run = run_dag("sales_forecast", DAY)
        assert run.state == "success", task_states(run)
        assert version_counts(config) == versions_before
        assert champions(config) == first_champions
        again = forecasts(config, DAY)
        cols = ["series_id", "forecast_date", "yhat", "yhat_lower", "yhat_upper", "model_version"]
        pd.testing.assert_frame_equal(again[cols].reset_index(drop=True), published[cols].reset_index(drop=True))
        assert len(slack.requests) == 1  # nothing changed, nothing said

        # 3. Corrupted source: the run fails at validate_sales, training never starts, nothing changes.
        config_factory(seed=corrupt_seed(tmp_path))
        run = run_dag("sales_forecast", DAY)
        states = task_states(run)
        assert run.state == "failed"
        assert states["validate_sales"] == "failed"
        assert states["extract_sales"] == "success"
        assert all(s in ("upstream_failed", "skipped") for k, s in states.items() if k.startswith(("train_series", "promote", "publish")))
        assert champions(config) == first_champions
        assert version_counts(config) == versions_before
        pd.testing.assert_frame_equal(forecasts(config, DAY)[cols], published[cols])
        # Exactly one alert, naming the failed expectations with what was observed.
        assert len(slack.requests) == 2
        alert = slack.requests[1].body
        text = json.dumps(alert["blocks"])
        assert "data validation failed" in alert["text"]
        # (The duplicated source row is summed by the SQL's GROUP BY, so it is not a duplicate key.)
        for expectation in ("expect_column_values_to_be_between", "expect_column_values_to_not_be_null"):
            assert expectation in text
        assert "-40" in text  # the observed bad value
        assert "bad rows in 3 of 5 series" in text and "anomaly.panel_share" in text  # why it blocks
        bad = pd.read_csv(SEED, dtype=str).loc[10]
        assert bad["item_name"] in text and bad["date"] in text  # ... with its series and date
        assert "validate_sales" in text and "runs/" in text  # task and a log link


def test_gate_rejection_keeps_champions_and_warns_once(airflow_db, config_factory, monkeypatch):
    """An impossible gate rejects every candidate: no champion moves, one warning with the metrics."""
    config = config_factory(**{"gate.min_improvement_vs_naive": 0.9})
    with SlackStandIn() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_webhook_conn(slack.webhook_url))
        run = run_dag("sales_forecast", DAY)
    assert run.state == "success", task_states(run)  # a rejection is a decision, not a failure
    assert all(v is None for v in champions(config).values())
    # No champion yet: every series gets the flagged seasonal-naive fallback, never nothing.
    published = forecasts(config, DAY)
    assert len(published) == 5 * 7 and set(published["model_version"]) == {FALLBACK_VERSION}
    assert len(slack.requests) == 1
    body = slack.requests[0].body
    assert "quality gate rejected" in body["text"]
    text = json.dumps(body["blocks"])
    assert "5 series kept their champion" in text
    assert "does not beat seasonal naive" in text and "MASE" in text and "limit" in text


def test_mlflow_down_fails_fast_before_training_with_one_alert(airflow_db, config_factory, monkeypatch):
    """plan_series opens the tracking store before the fan-out: MLflow down stops the run there, once."""
    config = config_factory()
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": 9}))
    with SlackStandIn() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_webhook_conn(slack.webhook_url))
        run = run_dag("sales_forecast", DAY)
    states = task_states(run)
    assert run.state == "failed"
    assert states["plan_series"] == "failed" and states["validate_sales"] == "success"
    assert not any(k.startswith("train_series[") for k in states)  # the fan-out never happened
    assert len(slack.requests) == 1, slack.texts()
    text = json.dumps(slack.requests[0].body)
    assert "plan_series" in text and "Try*\\n3 of 3" in text  # after its retries, once
    assert "MlflowException" in text or "ConnectionError" in text or "Connection refused" in text
    assert forecasts(config).empty and not champions(config)


def test_slug_collision_quarantines_one_series(airflow_db, config_factory, tmp_path, monkeypatch):
    """Two products whose names map to the same registry name: the second one is quarantined (it can
    never register), the other five are published, and one alert names it. A retry could not help, so
    no task fails or retries for it."""
    frame = pd.read_csv(SEED, dtype=str)
    twin = frame[frame["item_name"] == "FIVE O'CLOCK VODKA"].assign(item_name="FIVE O CLOCK VODKA")
    seed = tmp_path / "twins.csv"
    pd.concat([frame, twin], ignore_index=True).to_csv(seed, index=False)
    config = config_factory(seed=seed)
    with SlackStandIn() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_webhook_conn(slack.webhook_url))
        run = run_dag("sales_forecast", DAY)
    states = task_states(run)
    assert run.state == "success" and states["all_series_published"] == "skipped", states
    assert not any(s == "failed" for s in states.values())
    published = forecasts(config, DAY)
    versions = published.groupby("series_id")["model_version"].first().to_dict()
    # Six series published: five by their champions, the loser (no champion of its own) by the fallback.
    assert len(versions) == 6
    [loser] = [s for s, v in versions.items() if v == FALLBACK_VERSION]
    assert loser in {"FIVE O'CLOCK VODKA", "FIVE O CLOCK VODKA"} and sum(v.isdigit() for v in versions.values()) == 5
    report = [r.body for r in slack.requests if "partial run" in r.body["text"]]
    assert len(report) == 1
    text = json.dumps(report[0]["blocks"], ensure_ascii=False)
    assert loser in text and "slug collision" in text


def test_failed_mapped_tasks_give_one_aggregated_alert(airflow_db, config_factory, tmp_path, monkeypatch):
    """An artifact store nobody can write to (its path runs through a file): every training task fails
    after its retries; report_series waits for all of them and sends one message counting all five."""
    config = config_factory()
    from include.forecasting import registry

    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where a folder should be")
    client = registry.open_client(config.mlflow.tracking_uri)
    client.create_experiment(config.mlflow.experiment, artifact_location=(blocker / "artifacts").as_uri())
    with SlackStandIn() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_webhook_conn(slack.webhook_url))
        run = run_dag("sales_forecast", DAY)
    states = task_states(run)
    assert run.state == "failed"
    failed = sorted(k for k, s in states.items() if k.startswith("train_series[") and s == "failed")
    assert len(failed) == 5, states
    assert states["report_series"] == "failed" and states["all_series_published"] == "upstream_failed"
    assert len(slack.requests) == 1, slack.texts()
    text = json.dumps(slack.requests[0].body["blocks"])
    assert "5 mapped task(s) failed" in text and ("NotADirectoryError" in text or "FileExistsError" in text or "Not a directory" in text)
    assert forecasts(config).empty and all(v is None for v in champions(config).values())


def test_decimal_panel_before_2025_with_one_unfittable_series(airflow_db, config_factory, tmp_path, monkeypatch):
    """Anyone's data: litres with decimals, 2015-2017, with a three-week closure two years before the end (no
    row for any product: the history starts after it), plus a product that sold on only 10 of 80 days.
    Its fit fails; it is quarantined with a flagged fallback forecast; every other series is trained,
    promoted and published; one alert names it; the run is partial (green, all_series_published skipped)."""
    frame = pd.read_csv(SEED)
    # Eight years back: leap day to leap day, so no two dates merge (nine would fold 2024-02-29 into the
    # 28th, which extract rightly reports as a duplicated delivery).
    frame["date"] = (pd.to_datetime(frame["date"]) - pd.DateOffset(years=8)).dt.strftime("%Y-%m-%d")
    frame["total_amount_sold"] = (frame["total_amount_sold"] * 0.37).round(2)
    last = pd.to_datetime(frame["date"]).max()
    closed = pd.date_range(last - pd.Timedelta(days=700), last - pd.Timedelta(days=680)).strftime("%Y-%m-%d")
    frame = frame[~frame["date"].isin(closed)]
    days = pd.date_range(last - pd.Timedelta(days=79), last)
    sparse = pd.DataFrame({"date": days.strftime("%Y-%m-%d"), "item_name": "RARE BRANDY", "total_amount_sold": [2.5 if i % 8 == 0 else 0.0 for i in range(80)]})
    seed = tmp_path / "litres.csv"
    pd.concat([frame, sparse], ignore_index=True).to_csv(seed, index=False)
    config = config_factory(seed=seed)
    day = (last + pd.Timedelta(days=1)).date()
    with SlackStandIn() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_webhook_conn(slack.webhook_url))
        run = run_dag("sales_forecast", day)
    states = task_states(run)
    assert run.state == "success", states
    assert states["all_series_published"] == "skipped" and states["report_series"] == "success"
    published = forecasts(config, day)
    versions = published.groupby("series_id")["model_version"].first().to_dict()
    assert len(versions) == 6 and versions["RARE BRANDY"] == FALLBACK_VERSION
    assert all(v.isdigit() for s, v in versions.items() if s != "RARE BRANDY"), versions
    assert published["forecast_date"].min() == pd.Timestamp(day)
    assert (published["yhat"] % 1 != 0).any()  # decimals stay decimals
    report = [r.body for r in slack.requests if "partial run" in r.body["text"]]
    assert len(report) == 1, slack.texts()
    text = json.dumps(report[0]["blocks"])
    assert "RARE BRANDY" in text and "too little history" in text and "1 series quarantined" in text
    report = json.loads(next((config.storage_root / "validation").glob("*.json")).read_text())
    assert report["history_start"] == (last - pd.Timedelta(days=679)).strftime("%Y-%m-%d") and "so the periods before are not used" in report["notes"][0]


def test_weekly_panel_forecasts_its_own_weekday(airflow_db, config_factory, tmp_path, monkeypatch):
    """A real weekly panel (kg, weeks ending Sunday) keyed by store-style numbers, plus a series that sold
    the same 12.5 kg every week: weekly forecasts dated on Sundays, 7 weeks ahead; the ids stay integers
    in the warehouse; the constant series, whose MASE is undefined (seasonal naive is exact on its
    history), is rejected by the gate with that reason and gets the flagged fallback, without failing the
    gate task (its alert once could not format an undefined limit, which failed the whole run). A sixth
    series with one row dated on the Saturday is off the panel's cadence: quarantined naming that date,
    nothing published for it, the others go on."""
    raw = pd.read_csv(SEED.parent / "veg_supermarket_weekly_kg.csv")
    names = sorted(raw["series"].unique())[:4]
    ids = {name: str(101 + i) for i, name in enumerate(names)}
    frame = raw[raw["series"].isin(names)].assign(series=lambda f: f["series"].map(ids))
    constant = pd.DataFrame({"date": sorted(raw["date"].unique()), "series": "105", "value": 12.5})
    misdated = frame[frame["series"] == "101"].assign(series="106", date=lambda f: f["date"].replace("2022-05-15", "2022-05-14"))
    seed = tmp_path / "weekly_ids.csv"
    pd.concat([frame, constant, misdated], ignore_index=True).to_csv(seed, index=False)
    config = config_factory(seed=seed, **{"source.columns": {"date": "date", "series": "series", "value": "value"}})
    day = dt.date(2023, 6, 26)  # the Monday after the last week (ending Sun 2023-06-25)
    run = run_dag("sales_forecast", day)
    states = task_states(run)
    assert run.state == "success", states
    published = forecasts(config, day)
    versions = published.groupby("series_id")["model_version"].first().to_dict()
    assert set(versions) == {"101", "102", "103", "104", "105"} and versions["105"] == FALLBACK_VERSION
    assert all(versions[s].isdigit() for s in ids.values())
    assert (published["forecast_date"].dt.day_of_week == 6).all()
    assert published.groupby("series_id").size().eq(7).all()
    assert published["forecast_date"].min() == pd.Timestamp("2023-07-02")
    assert set(published["as_of_date"]) == {pd.Timestamp("2023-06-25")}
    assert set(published.loc[published["series_id"] == "105", "yhat"]) == {12.5}
    con = duckdb.connect(str(config.warehouse.path), read_only=True)
    try:
        assert con.execute("SELECT DISTINCT typeof(series_id) FROM forecasts").fetchall() == [("BIGINT",)]
    finally:
        con.close()
    decisions = {d["series_id"]: d for d in json.loads(next((config.storage_root / "gate").glob("*.json")).read_text())}
    assert decisions["105"]["reasons"][0].startswith("MASE undefined: seasonal naive is exact")
    assert states["all_series_published"] == "skipped" and "106" not in decisions
    outcome = json.loads(next((config.storage_root / "runs").glob("*.json")).read_text())
    assert outcome["quarantined"]["106"].startswith("bad rows (one cadence per panel): 2022-05-14 (Sat) not on the panel's weekly (W-SUN) grid")


def test_a_store_by_product_export_labelled_by_iso_week_with_a_net_negative_week(airflow_db, config_factory, tmp_path):
    """A BI export as users have it: one row per store, product and ISO week (`2023-W25`), sales net of
    returns with one week whose returns outweighed its sales. With `source.columns.series: [store, series]`
    and `validation.negative_values: zero` the real DAG publishes every store-product pair, weekly on the
    weeks' Mondays, and the negative week is read as no sale and named in the validation report."""
    raw = pd.read_csv(SEED.parent / "veg_supermarket_weekly_kg.csv")
    items = sorted(raw["series"].unique())[:2]
    one = raw[raw["series"].isin(items)]
    frame = pd.concat([one.assign(store="1"), one.assign(store="2", value=(one["value"] / 2).round(3))], ignore_index=True)
    iso = pd.to_datetime(frame["date"]).dt.isocalendar()
    frame["date"] = iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2)
    negative = frame.index[(frame["store"] == "2") & (frame["series"] == items[0])][60]
    frame.loc[negative, "value"] = -3.5
    seed = tmp_path / "stores_iso_weeks.csv"
    frame[["store", "series", "date", "value"]].to_csv(seed, index=False)
    config = config_factory(
        seed=seed, **{"source.columns": {"date": "date", "series": ["store", "series"], "value": "value"}, "validation.negative_values": "zero"}
    )
    last_monday = pd.Timestamp(raw["date"].max()) - pd.Timedelta(days=6)
    day = (last_monday + pd.Timedelta(days=1)).date()
    run = run_dag("sales_forecast", day)
    states = task_states(run)
    assert run.state == "success" and states["all_series_published"] == "success", states
    published = forecasts(config, day)
    assert set(published["series_id"]) == {f"{store} / {item}" for store in ("1", "2") for item in items}
    assert (published["forecast_date"].dt.day_of_week == 0).all() and published.groupby("series_id").size().eq(7).all()
    week = frame.loc[negative, "date"]
    monday = pd.to_datetime(f"{week}-1", format="%G-W%V-%u").date().isoformat()
    report = json.loads(next((config.storage_root / "validation").glob("*.json")).read_text())
    assert report["negatives_zeroed"] == [{"series_id": f"2 / {items[0]}", "date": monday, "value": -3.5}]
    assert f"2 / {items[0]} {monday}: -3.5" in summary(config, day, run.run_id, str(run.state))


def test_a_month_still_running_is_forecast_not_trained_on(airflow_db, config_factory, tmp_path):
    """Monthly sales dated on the month's first day, exported on 11 July: July's row holds ten days. The
    run for that day trains through June and forecasts July itself (a third of a month read as a month's
    sales would pull every forecast down), as the run after the month ends would."""
    raw = pd.read_csv(SEED.parent / "veg_supermarket_daily_kg.csv", parse_dates=["date"])
    items = ["净藕(1)", "紫茄子(2)", "西兰花"]  # three vegetables sold in every one of the 36 months
    months = raw[raw["series"].isin(items)].groupby(["series", pd.Grouper(key="date", freq="MS")], as_index=False)["value"].sum()
    june = months[months["date"] == "2023-06-01"]
    running = june.assign(date=pd.Timestamp("2023-07-01"), value=(june["value"] / 3).round(3))
    seed = tmp_path / "months_to_date.csv"
    pd.concat([months, running], ignore_index=True).assign(date=lambda f: f["date"].dt.strftime("%Y-%m-%d")).to_csv(seed, index=False)
    config = config_factory(seed=seed, **{"source.columns": {"date": "date", "series": "series", "value": "value"}})
    day = dt.date(2023, 7, 11)
    run = run_dag("sales_forecast", day)
    assert run.state == "success", task_states(run)
    published = forecasts(config, day)
    assert set(published["series_id"]) == set(items) and published.groupby("series_id").size().eq(HORIZON).all()
    assert published["forecast_date"].min() == pd.Timestamp("2023-07-01") and (published["forecast_date"].dt.day == 1).all()
    assert set(published["as_of_date"]) == {pd.Timestamp("2023-06-01")}
    report = json.loads(next((config.storage_root / "validation").glob("*.json")).read_text())
    assert report["cadence"] == "monthly (MS)" and not report["quarantined"], report
    running = "2023-07-01 is a period still running on 2023-07-11 (it ends 2023-08-01): its rows (3 series) are left out of this run, which forecasts it"
    assert report["notes"] == [running] and running in summary(config, day, run.run_id, str(run.state))


def test_an_iso_week_still_running_is_forecast_not_trained_on(airflow_db, config_factory, tmp_path):
    """Weekly sales labelled by ISO week (`2023-W26`, read as its Monday) with `source.week_dated_on:
    start`, exported on Thursday 29 June: week 26's rows hold Monday to Wednesday. The run for that day
    trains through week 25 and forecasts week 26 itself, as it does a month still running."""
    raw = pd.read_csv(SEED.parent / "veg_supermarket_weekly_kg.csv", parse_dates=["date"])  # weeks ending Sunday
    items = sorted(raw["series"].unique())[:3]
    weeks = raw[raw["series"].isin(items)].assign(date=lambda f: f["date"] - pd.Timedelta(days=6))  # their Mondays
    last = weeks[weeks["date"] == weeks["date"].max()]
    running = last.assign(date=last["date"] + pd.Timedelta(days=7), value=(last["value"] * 3 / 7).round(3))
    labelled = pd.concat([weeks, running], ignore_index=True)
    iso = labelled["date"].dt.isocalendar()
    seed = tmp_path / "iso_weeks_to_date.csv"
    labelled.assign(date=iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2)).to_csv(seed, index=False)
    config = config_factory(seed=seed, **{"source.columns": {"date": "date", "series": "series", "value": "value"}, "source.week_dated_on": "start"})
    day = dt.date(2023, 6, 29)
    running_monday = pd.Timestamp("2023-06-26")
    assert running["date"].eq(running_monday).all()
    run = run_dag("sales_forecast", day)
    assert run.state == "success", task_states(run)
    published = forecasts(config, day)
    assert set(published["series_id"]) == set(items) and published.groupby("series_id").size().eq(HORIZON).all()
    assert published["forecast_date"].min() == running_monday and (published["forecast_date"].dt.day_of_week == 0).all()
    assert set(published["as_of_date"]) == {running_monday - pd.Timedelta(days=7)}
    report = json.loads(next((config.storage_root / "validation").glob("*.json")).read_text())
    assert report["cadence"] == "weekly (W-MON, dated on the start)", report
    note = "2023-06-26 is a period still running on 2023-06-29 (it ends 2023-07-03): its rows (3 series) are left out of this run, which forecasts it"
    assert note in report["notes"], report["notes"]


def test_a_panel_of_young_series_publishes_every_fallback(airflow_db, config_factory, tmp_path, monkeypatch):
    """A weekly panel that began 40 weeks ago (the real vegetable panel's last 40 weeks, four items): no
    series has validation.min_rows_per_series (52 weeks). Every series is quarantined with that reason and
    still published with the flagged fallback (not blocked with nothing published); the run is partial, and
    the one alert names each series."""
    raw = pd.read_csv(SEED.parent / "veg_supermarket_weekly_kg.csv")
    weeks = sorted(raw["date"].unique())[-40:]
    frame = raw[raw["series"].isin(sorted(raw["series"].unique())[:4]) & raw["date"].isin(weeks)]
    seed = tmp_path / "young_weekly.csv"
    frame.to_csv(seed, index=False)
    config = config_factory(seed=seed, **{"source.columns": {"date": "date", "series": "series", "value": "value"}})
    day = (pd.Timestamp(weeks[-1]) + pd.Timedelta(days=1)).date()
    with SlackStandIn() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_webhook_conn(slack.webhook_url))
        run = run_dag("sales_forecast", day)
    states = task_states(run)
    assert run.state == "success", states
    assert states["train_series[0]"] == "success" and states["publish_forecasts"] == "success" and states["all_series_published"] == "skipped"
    published = forecasts(config, day)
    assert published["series_id"].nunique() == 4 and set(published["model_version"]) == {FALLBACK_VERSION}
    assert (published["forecast_date"].dt.day_of_week == 6).all() and published.groupby("series_id").size().eq(7).all()
    report = [r.body for r in slack.requests if "partial run" in r.body["text"]]
    assert len(report) == 1, slack.texts()
    assert "4 series quarantined" in json.dumps(report[0]["blocks"]) and "enough history: n_periods 40 (min 52" in json.dumps(report[0]["blocks"], ensure_ascii=False)
    assert "PARTIAL (4 series published (4 by the fallback), 4 quarantined)" in summary(config, day, run.run_id, str(run.state))


def test_worse_candidate_config_loses_to_the_champion(airflow_db, config_factory, monkeypatch):
    """The champion is scored as the model it is (its own orders, re-estimated per fold), so a candidate
    configuration that is worse (an AR(1) with no weekly seasonal part) is rejected against it, and the
    champions stay."""
    config = config_factory()
    assert run_dag("sales_forecast", DAY).state == "success"
    first = champions(config)
    worse = {"daily": {"candidate_orders": [[1, 0, 0]], "seasonal_order": [0, 0, 0]}}
    config = config_factory(**{"forecast.models": worse, "gate.max_degradation_vs_champion": 0.0})
    run = run_dag("sales_forecast", DAY)
    assert run.state == "success", task_states(run)
    gate_report = json.loads((config.storage_root / "gate" / f"{run.run_id.replace(':', '_')}.json").read_text())
    losers = [d for d in gate_report if any("degrades vs champion" in r for r in d["reasons"])]
    assert len(losers) >= 3, [(d["series_id"], d["reasons"]) for d in gate_report]
    assert all(d["candidate"]["mase"] > d["champion"]["mase"] for d in losers)
    now = champions(config)
    assert all(now[d["series_id"]] == first[d["series_id"]] for d in losers)


def test_trigger_params_narrow_the_run_and_force_a_refit_of_unchanged_data(airflow_db, config_factory):
    """The Trigger form's params: `series` (as a user types it) and `force_retrain` refit one series on
    the same data (reuse bypassed, the reason on the new version); the others keep their champion and are
    still published; a mistyped name fails at once, naming the closest series."""
    config = config_factory()
    assert run_dag("sales_forecast", DAY).state == "success"
    assert set(version_counts(config).values()) == {1}

    run = run_dag("sales_forecast", DAY, {"series": ["black  velvet"], "force_retrain": True})
    assert run.state == "success", task_states(run)
    counts = version_counts(config)
    assert counts.pop("sales_forecast.black_velvet") == 2 and set(counts.values()) == {1}
    from mlflow import MlflowClient

    newest = MlflowClient(config.mlflow.tracking_uri).get_model_version("sales_forecast.black_velvet", "2")
    assert newest.tags["retrain_reason"].startswith("forced from the trigger form")
    assert newest.tags["idempotency_key"] == MlflowClient(config.mlflow.tracking_uri).get_model_version("sales_forecast.black_velvet", "1").tags["idempotency_key"]
    assert forecasts(config, DAY)["series_id"].nunique() == SERIES

    run = run_dag("sales_forecast", DAY, {"series": ["BLACK VELVT"]})
    assert run.state == "failed"
    states = task_states(run)
    assert states["plan_series"] == "failed" and states.get("train_series", "upstream_failed") != "success"

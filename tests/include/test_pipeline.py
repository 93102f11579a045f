"""The pipeline steps' pure parts: planning the fan-out (chunks stay bounded however many series there are) and
the gate over every series."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from conftest import SEED, write_config

from include.forecasting.config import load_config
from include.forecasting.extract import SnapshotRef
from include.forecasting.pipeline import plan_chunks


def ref(series: list[str], config_sha: str) -> SnapshotRef:
    return SnapshotRef("p", "s", 0, series, None, None, "2025-01-01", "2025-05-31", config_sha)


@pytest.mark.parametrize(("n", "per_task", "max_chunks", "chunks", "largest"), [(5, 1, 32, 5, 1), (1000, 1, 32, 32, 32), (1000, 50, 32, 20, 50), (100_000, 1, 1000, 1000, 100)])
def test_chunks_are_bounded_ordered_and_complete(tmp_path, n, per_task, max_chunks, chunks, largest):
    config = load_config(write_config(tmp_path))
    config = config.model_copy(update={"forecast": config.forecast.model_copy(update={"series_per_task": per_task, "max_chunks": max_chunks})})
    series = [f"S{i:06d}" for i in range(n)]
    planned = plan_chunks(config, ref(series, config.sha256))
    assert len(planned) == chunks and max(map(len, planned)) == largest
    assert [s for chunk in planned for s in chunk] == series  # every series once, in the snapshot's order


def test_configured_series_filter_the_plan(tmp_path):
    config = load_config(write_config(tmp_path, series=["B", "D"]))
    assert plan_chunks(config, ref(["A", "B", "C", "D"], config.sha256)) == [["B"], ["D"]]


def test_quarantined_series_are_not_planned(tmp_path):
    config = load_config(write_config(tmp_path))
    checked = SnapshotRef.from_dict({**ref(["A", "B", "C"], config.sha256).to_dict(), "quarantined": {"B": "enough history: n_rows 20"}})
    assert plan_chunks(config, checked) == [["A"], ["C"]]


def test_a_long_hole_starts_the_history_of_the_snapshot_that_trains(tmp_path, iowa_frame):
    """Validation leaves out the periods before a 3-week hole (no row for any series); what trains is a
    snapshot of the rows after it, so training and backtests never see the hole's zeros."""
    import datetime as dt

    from include.forecasting.extract import read_snapshot, write_snapshot
    from include.forecasting.pipeline import validate_snapshot

    config = load_config(write_config(tmp_path))
    hole = iowa_frame[~iowa_frame.sales_date.between("2024-03-01", "2024-03-21")].reset_index(drop=True)
    extracted = write_snapshot(hole, config.storage_root, (dt.date(2023, 1, 1), dt.date(2025, 5, 31)), config.run_sha256)
    checked, report = validate_snapshot(config, extracted)
    assert report["history_start"] == "2024-03-22" and checked.sha256 != extracted.sha256
    assert checked.min_date == "2024-03-22" and checked.window_start == extracted.window_start and checked.cadence == "daily"
    kept = read_snapshot(checked)
    assert len(kept) == int((hole.sales_date >= "2024-03-22").sum()) and kept.sales_date.min() == pd.Timestamp("2024-03-22")
    unchanged, report = validate_snapshot(config, write_snapshot(iowa_frame, config.storage_root, (dt.date(2023, 1, 1), dt.date(2025, 5, 31)), config.run_sha256))
    assert report["history_start"] is None and unchanged.min_date == "2023-01-02"


def test_negative_values_read_as_no_sale_are_zero_in_the_snapshot_that_trains(tmp_path, iowa_frame):
    """With validation.negative_values "zero", training reads the validated frame: a snapshot of its own
    whose negative values are 0, every other row as extracted."""
    import datetime as dt

    from include.forecasting.extract import read_snapshot, write_snapshot
    from include.forecasting.pipeline import validate_snapshot

    config = load_config(write_config(tmp_path, **{"validation.negative_values": "zero"}))
    net = iowa_frame.astype({"value": "float64"})
    net.loc[[3, 40], "value"] = [-5.0, -1.25]
    extracted = write_snapshot(net, config.storage_root, (dt.date(2023, 1, 1), dt.date(2025, 5, 31)), config.run_sha256)
    checked, report = validate_snapshot(config, extracted)
    assert checked.sha256 != extracted.sha256 and len(report["negatives_zeroed"]) == 2 and checked.quarantined == {}
    kept = read_snapshot(checked)
    assert len(kept) == len(net) and (kept["value"] >= 0).all()
    assert kept["value"].sum() == pytest.approx(net["value"].clip(lower=0).sum())


def test_a_gate_failure_quarantines_that_series_only(tmp_path):
    """Metrics the gate cannot read for one series (a malformed record): that series gets a rejection with
    the cause as its error (so publishing quarantines it and its champion stays), the other is decided."""
    from include.forecasting.pipeline import decision_errors, gate_all

    config = load_config(write_config(tmp_path))

    def item(series: str, mase: object) -> dict:
        metrics = {"candidate": {"mase": mase, "folds": 4}, "naive": {"mase": 0.8, "folds": 4}}
        return {"series_id": series, "model_name": f"p.{series.lower()}", "version": None, "champion_version": None, "metrics": metrics}

    decisions = gate_all(config, [item("GOOD", 0.6), item("BROKEN", "not a number")])
    by_series = {d["series_id"]: d for d in decisions}
    assert by_series["GOOD"]["passed"] and not by_series["BROKEN"]["passed"]
    assert decision_errors(decisions) == {"BROKEN": "gate failed: ValueError: could not convert string to float: 'not a number'"}


def test_a_backtest_fold_that_rejects_the_models_order_falls_back_like_training(tmp_path, monkeypatch):
    """螺丝椒 (peppers, kg, shipped vegetables panel), 2023-02-02 to 2023-06-23: on one backtest fold the
    airline model warm-started from the fold before it forecasts an explosion. The fold is refitted through
    the same guarded search as training (cold, then the other candidates), so the series gets its backtest
    instead of 'no candidate order gave a stable fit'."""
    from conftest import ROOT

    from include.forecasting import training
    from include.forecasting.frequency import DAILY
    from include.forecasting.pipeline import _backtest_spec

    frame = pd.read_csv(ROOT / "include/data/veg_supermarket_daily_kg.csv", parse_dates=["date"])
    frame = frame[(frame["series"] == "螺丝椒") & frame["date"].between("2023-02-02", "2023-06-23")]
    y = frame.set_index("date")["value"].asfreq("D").fillna(0.0).rename("螺丝椒")
    settings = training.settings_for(load_config(write_config(tmp_path)).forecast, DAILY)
    spec = training.fit_series(y, settings).spec
    assert spec.order == (0, 1, 1)
    fits: list[training.FittedModel] = []
    real_fit = training.fit_series

    def recording(*args, **kwargs):
        fits.append(real_fit(*args, **kwargs))
        return fits[-1]

    monkeypatch.setattr(training, "fit_series", recording)  # to read each fold's tried candidates; the fits are real
    metrics = _backtest_spec(y, spec, settings, folds=4)
    assert metrics.folds == 4 and 0 < metrics.mase < 5
    rejected_warm = [c for f in fits for c in f.candidates if c.get("warm_start") and c["rejected"]]
    assert rejected_warm and all(f.spec.order == (0, 1, 1) and f.spec.seasonal_order == (0, 1, 1, 7) for f in fits)


def test_a_backtest_refits_on_the_calendar_the_model_was_trained_on(tmp_path, monkeypatch):
    """A model trained with extra holiday categories (US unofficial: Christmas Eve, New Year's Eve) is
    backtested on its own calendar, categories included, whatever the run's settings say: its folds leave
    out the days its training left out."""
    from conftest import ROOT

    from include.forecasting import training
    from include.forecasting.frequency import DAILY
    from include.forecasting.pipeline import _backtest_spec

    frame = pd.read_csv(ROOT / "include/data/iowa_sales.csv", parse_dates=["date"])
    y = frame[frame["item_name"] == "BLACK VELVET"].set_index("date")["total_amount_sold"].asfreq("D").fillna(0.0).rename("BLACK VELVET")
    settings = training.settings_for(load_config(write_config(tmp_path)).forecast, DAILY)
    wider = dataclasses.replace(settings, holidays=("US", "IA", "public,unofficial"))
    spec = training.fit_series(y, wider).spec
    calendars: list[tuple] = []
    real_fit = training.fit_series

    def recording(y, settings, *args, **kwargs):
        calendars.append(settings.holidays)
        return real_fit(y, settings, *args, **kwargs)

    monkeypatch.setattr(training, "fit_series", recording)  # the fits are real; only their settings are read
    assert _backtest_spec(y, spec, settings, folds=2).folds == 2
    assert calendars and set(calendars) == {("US", "IA", "public,unofficial")}


def test_a_spike_is_reported_by_the_first_fit_that_leaves_it_out():
    """The run report names a left-out spike once: a fit whose champion already left the same period out
    (trained on the same history) has nothing new to say; a spike on another date is new again."""
    from include.forecasting.pipeline import new_spikes, spikes_by_series
    from include.forecasting.training import ModelSpec

    def spec(spikes: dict[str, float]) -> ModelSpec:
        return ModelSpec((0, 1, 1), (0, 1, 1, 7), (), {}, {}, 0.0, spikes_left_out=spikes)

    first = spec({"2024-03-12": 41000.0})
    assert new_spikes(first, None) == {"2024-03-12": 41000.0}
    assert new_spikes(first, spec({"2024-03-12": 41000.0})) == {}
    assert new_spikes(spec({"2024-03-12": 41000.0, "2025-05-01": 9e5}), first) == {"2025-05-01": 9e5}
    assert new_spikes(spec({}), first) == {}
    # Known from the newest version though the champion (older) had not left it out: said already.
    assert new_spikes(first, spec({}), spec({"2024-03-12": 41000.0})) == {}
    assert new_spikes(first, None, None) == {"2024-03-12": 41000.0}
    # Chunks as train_series returns them; a chunk that failed for good has no value (None).
    chunks = [
        [{"series_id": "A", "new_spikes": {"2024-03-12": 41000.0}}, {"series_id": "B", "reused": True}],
        None,
        [{"series_id": "C", "new_spikes": {}}],
    ]
    assert spikes_by_series(chunks) == {"A": {"2024-03-12": 41000.0}}


def test_an_old_spike_leaves_the_backtest_mase_as_on_clean_data(tmp_path, iowa_frame):
    """A x1,000 typo weeks before the folds: training leaves it out, and so does the MASE scale, so the
    candidate's and the naive's backtest MASE are those of the clean series (the gate compares them with
    a champion's recorded MASE: a scale inflated twelvefold by the typo would make the next clean
    candidate look 'far worse' and be refused until the champion changed)."""
    import dataclasses

    from include.forecasting import evaluation, training
    from include.forecasting.frequency import DAILY
    from include.forecasting.pipeline import _backtest, _backtest_spec, spike_mask

    config = load_config(write_config(tmp_path))
    settings = training.settings_for(config.forecast, DAILY, config.anomaly)
    rows = iowa_frame[iowa_frame["series_id"] == "BLACK VELVET"]
    clean = rows.set_index("sales_date")["value"].astype(float).asfreq("D").fillna(0.0).rename("BLACK VELVET")
    typo = clean.copy()
    typo["2025-03-12"] *= 1000
    assert spike_mask(clean, settings).sum() == 0 and list(typo.index[spike_mask(typo, settings)]) == [pd.Timestamp("2025-03-12")]
    spec = training.fit_series(clean, settings).spec
    naive = evaluation.seasonal_naive(7)
    for score in (lambda y, mask: _backtest_spec(y, spec, settings, 4, mask), lambda y, mask: _backtest(y, naive, 4, 7, 7, mask)):
        on_clean, on_typo = score(clean, None).mase, score(typo, spike_mask(typo, settings)).mase
        assert on_typo == pytest.approx(on_clean, rel=0.05)
        assert score(typo, None).mase < on_clean / 5  # the unmasked scale would flatter every method
    assert spike_mask(clean, dataclasses.replace(settings, spike_rule=())) is None


def test_the_fallback_leaves_a_spike_out_like_training():
    """The fallback of a zero-heavy vegetable (菠菜, no champion on the shipped panel) after a x1,000 day:
    seasonal naive would forecast the spike again a week later and widen every interval by it; the
    spike takes the value of the same weekday a week before, as if it had not been delivered."""
    from include.forecasting import training
    from include.forecasting.frequency import DAILY
    from include.forecasting.pipeline import fallback_forecast

    raw = pd.read_csv(SEED.parent / "veg_supermarket_daily_kg.csv", parse_dates=["date"])
    y = raw[raw.series == "菠菜"].set_index("date")["value"].asfreq("D", fill_value=0.0).rename("菠菜")
    spiked = y.copy()
    spiked.iloc[-2] = 9000.0  # the day before the newest, still inside the last season
    settings = training.ModelSettings(cadence=DAILY, candidate_orders=((0, 1, 1),), seasonal_order=(0, 1, 1, 7), horizon=7)
    clean, fallback = fallback_forecast(y, settings), fallback_forecast(spiked, settings)
    assert fallback["yhat"].iloc[5] == y.iloc[-9]  # the same weekday a week before the spike
    assert fallback["yhat"].max() < 100 and fallback.filter(like="yhat_upper").max().max() < 100
    assert list(fallback.columns) == list(clean.columns)

"""Registry operations on a real MLflow sqlite store: register, reuse by key, promote, roll back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import read_seed, write_config

from include.forecasting import registry, training
from include.forecasting.config import load_config
from include.forecasting.frequency import DAILY


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from mlflow import MlflowClient

    tmp = tmp_path_factory.mktemp("reg")
    config = load_config(write_config(tmp))
    frame = read_seed()
    y = training.daily_series(frame, "HAWKEYE VODKA", pd.Timestamp("2025-05-31"))
    fitted = training.fit_series(y, training.settings_for(config.forecast, DAILY))
    client = MlflowClient(tracking_uri=config.mlflow.tracking_uri)
    exp = registry.ensure_experiment(config.mlflow.tracking_uri, config.mlflow.experiment, config.mlflow.artifact_root)
    name = registry.model_name(config.mlflow.model_prefix, "HAWKEYE VODKA")

    def register(logical_date: str, key: str) -> str:
        version = registry.log_candidate(
            client, exp, name, "HAWKEYE VODKA", fitted, y, fitted.forecast(7), {registry.TAG_KEY: key, "logical_date": logical_date, "data_sha256": registry.series_sha256(y)},
            {"order": list(fitted.spec.order)}, 7, (0.8, 0.95), source=str(tmp / "snapshots" / "abc.parquet"),
        )
        return str(version.version)

    return config, client, name, register


def test_logging_a_version_draws_no_progress_bar(setup, monkeypatch, capfd):
    """A task log gets no tqdm bar per artifact copied once the store is opened the project's way."""
    config, _, _, register = setup
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    registry.open_client(config.mlflow.tracking_uri)
    register("2025-05-20", "k-quiet")
    captured = capfd.readouterr()
    assert "Downloading artifacts" not in captured.err + captured.out


def test_names_and_keys():
    assert registry.model_name("p", "FIVE O'CLOCK VODKA") == "p.five_o_clock_vodka"
    assert registry.idempotency_key("a", "b", "c") != registry.idempotency_key("a", "b", "d")
    assert registry.code_version().startswith("0.1.0+")


def test_register_reuse_promote_rollback(setup):
    config, client, name, register = setup
    v1 = register("2025-05-29", "k1")
    assert str(registry.find_version_by_key(client, name, "k1").version) == v1
    assert registry.find_version_by_key(client, name, "other") is None
    version = client.get_model_version(name, v1)
    assert version.tags["series_id"] == "HAWKEYE VODKA" and registry.spec_of(version).order
    artifacts = [a.path for a in client.list_artifacts(version.run_id)]
    assert "forecast.png" in artifacts and "model_selection.json" in artifacts
    run = client.get_run(version.run_id)
    assert set(run.data.metrics) == {"aic", "fit_seconds", "n_periods"} and run.data.tags["idempotency_key"] == "k1"
    y = training.daily_series(read_seed(), "HAWKEYE VODKA", pd.Timestamp("2025-05-31"))
    assert run.data.metrics["n_periods"] == len(y)
    # The training history is the run's dataset input: the MLflow UI names the data a version learned from.
    (given,) = run.inputs.dataset_inputs
    assert {(t.key, t.value) for t in given.tags} == {("mlflow.data.context", "training")}
    assert given.dataset.name == name and given.dataset.digest == registry.series_sha256(y)[:16]
    assert given.dataset.source_type == "local" and given.dataset.source.endswith('abc.parquet"}')
    assert json.loads(given.dataset.profile)["num_rows"] == len(y)
    # Its logged model names the registered version (the MLflow UI's "Model versions" on the model page).
    logged = client.get_logged_model(registry.logged_model_id(version))
    assert json.loads(logged.tags["mlflow.modelVersions"]) == [{"name": name, "version": v1}]
    assert client.get_registered_model(name).description == "Sales forecast for HAWKEYE VODKA, daily data"
    registry.record_evaluation(client, version, {"candidate": {"mase": 0.5, "rmse": None}, "naive": {"mase": 0.7}, "champion": None, "champion_version": None})
    metrics = client.get_run(version.run_id).data.metrics
    assert metrics["candidate_mase"] == 0.5 and metrics["naive_mase"] == 0.7 and "candidate_rmse" not in metrics  # None skipped
    # ... and on the version's logged model, against its training dataset (the MLflow UI's model page).
    linked = {m.key: m for m in client.get_logged_model(registry.logged_model_id(version)).metrics}
    assert linked["candidate_mase"].value == 0.5 and linked["naive_mase"].value == 0.7
    assert (linked["candidate_mase"].dataset_name, linked["candidate_mase"].dataset_digest) == (name, given.dataset.digest)

    first = registry.promote(client, name, "HAWKEYE VODKA", v1, "champion", "2025-05-29", "test")
    assert first.changed and first.previous is None
    again = registry.promote(client, name, "HAWKEYE VODKA", v1, "champion", "2025-05-29", "test")
    assert not again.changed and "idempotent" in again.note

    v2 = register("2025-05-31", "k2")
    assert registry.promote(client, name, "HAWKEYE VODKA", v2, "champion", "2025-05-31", "test").changed
    # An older backfilled date never demotes a newer champion.
    v3 = register("2025-05-30", "k3")
    kept = registry.promote(client, name, "HAWKEYE VODKA", v3, "champion", "2025-05-30", "test")
    assert not kept.changed and "newer" in kept.note
    assert str(registry.get_alias_version(client, name, "champion").version) == v2

    back = registry.rollback(client, name, "HAWKEYE VODKA", "champion", "previous", "alice", "bad forecast")
    assert back.changed and back.version == v1 and back.previous == v2
    tags = client.get_model_version(name, v1).tags
    assert tags["rolled_back_by"] == "alice" and tags["rollback_reason"] == "bad forecast"
    with pytest.raises(LookupError, match="no previous champion"):
        registry.rollback(client, name, "HAWKEYE VODKA", "champion", "previous", "alice", "again")
    client.set_model_version_tag(name, v2, "gate_passed", "true")
    assert registry.rollback(client, name, "HAWKEYE VODKA", "champion", "last-passed", "bob", "x").version == v2
    assert registry.rollback(client, name, "HAWKEYE VODKA", "champion", v3, "bob", "x").version == v3
    with pytest.raises(ValueError, match="rollback target"):
        registry.rollback(client, name, "HAWKEYE VODKA", "champion", "latest", "bob", "x")

    overview = registry.registry_overview(client, config.mlflow.model_prefix, "champion")
    assert overview[0]["champion"] == v3 and overview[0]["series_id"] == "HAWKEYE VODKA"


def test_registered_model_loads_and_forecasts(setup):
    """A version is its spec + training history (small text files), and loading it from the registry
    reproduces the fitted model's forecast: the same filter with the same parameters."""
    import numpy as np

    config, client, name, register = setup
    v = register("2025-05-31", "k-load")
    frame = registry.verify_version(config.mlflow.tracking_uri, name, v, 7)
    assert len(frame) == 7 and frame["forecast_date"].iloc[0] == pd.Timestamp("2025-05-31")
    y = training.daily_series(read_seed(), "HAWKEYE VODKA", pd.Timestamp("2025-05-31"))
    expected = training.fit_series(y, training.settings_for(config.forecast, DAILY)).forecast(7)
    for column in expected.columns.drop("forecast_date"):
        np.testing.assert_allclose(frame[column].to_numpy(), expected[column].to_numpy(), rtol=1e-9, atol=1e-9)

    import mlflow

    local = Path(mlflow.artifacts.download_artifacts(client.get_model_version(name, v).source))
    files = {p.relative_to(local).as_posix(): p.stat().st_size for p in local.rglob("*") if p.is_file()}
    assert {"artifacts/spec.json", "artifacts/history.csv"} <= set(files) and "artifacts/results.pkl" not in files
    assert sum(files.values()) < 500_000, files  # a pickled statsmodels result alone was ~35 MB


def test_registered_model_forecasts_from_newer_data_it_is_given(setup):
    """`predict` with the series' newer periods (as `mlflow models serve` receives them: text dates,
    integer values) forecasts from them with the version's fixed parameters, exactly what the DAG's
    champion serves after its training; `params={"horizon": N}` sets the horizon. Bad rows are refused
    with the date and the rule."""
    import mlflow

    config, client, _, _ = setup
    frame = read_seed()
    y = training.daily_series(frame, "HAWKEYE VODKA", pd.Timestamp("2025-05-17"))
    full = training.daily_series(frame, "HAWKEYE VODKA", pd.Timestamp("2025-05-31"))
    fitted = training.fit_series(y, training.settings_for(config.forecast, DAILY))
    exp = registry.ensure_experiment(config.mlflow.tracking_uri, config.mlflow.experiment, config.mlflow.artifact_root)
    name = registry.model_name(config.mlflow.model_prefix, "HAWKEYE VODKA NEWER")
    version = registry.log_candidate(
        client, exp, name, "HAWKEYE VODKA NEWER", fitted, y, fitted.forecast(7), {registry.TAG_KEY: "k-newer", "logical_date": "2025-05-17"}, {}, 7, (0.8, 0.95),
    )
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version.version}")
    assert model.metadata.signature.params.to_dict() == [{"name": "horizon", "type": "long", "default": 7, "shape": None}]
    newer = full[full.index > y.index.max()]
    rows = pd.DataFrame({"date": newer.index.strftime("%Y-%m-%d"), "value": newer.to_numpy().astype(int)})
    expected = training.forecast_with_spec(full, fitted.spec, 14, (0.8, 0.95))
    served = model.predict(rows, params={"horizon": 14})
    assert served["forecast_date"].iloc[0] == pd.Timestamp("2025-05-31") and len(served) == 14
    pd.testing.assert_frame_equal(served.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False)
    # Without newer data it forecasts after its training data, as the fit did.
    trained = model.predict(pd.DataFrame({"horizon": [7]}))
    assert trained["forecast_date"].iloc[0] == pd.Timestamp("2025-05-17")
    np.testing.assert_allclose(trained["yhat"].to_numpy(), fitted.forecast(7)["yhat"].to_numpy(), rtol=1e-9)
    with pytest.raises(Exception, match="value on 2025-05-20 is -5: a value must be a finite number, not negative"):
        model.predict(pd.DataFrame({"date": ["2025-05-20"], "value": [-5]}))
    with pytest.raises(Exception, match="every row needs a date: row 1 has none"):
        model.predict(pd.DataFrame({"date": ["2025-05-20", None], "value": [5, 7]}))


def test_versions_logged_as_pickled_results_still_load(setup, tmp_path):
    """Rollback may target a version logged before the spec + history format (results.pkl)."""
    import json
    import pickle

    import mlflow

    from include.forecasting.pyfunc_model import SalesForecastModel

    config, client, _, _ = setup
    y = training.daily_series(read_seed(), "HAWKEYE VODKA", pd.Timestamp("2025-05-31"))
    fitted = training.fit_series(y, training.settings_for(config.forecast, DAILY))
    (tmp_path / "results.pkl").write_bytes(pickle.dumps(fitted.results))
    meta = {"spec": fitted.spec.to_dict(), "last_date": str(fitted.last_date.date()), "levels": [0.8, 0.95], "horizon": 7}
    (tmp_path / "spec.json").write_text(json.dumps(meta))
    mlflow.set_tracking_uri(config.mlflow.tracking_uri)
    with mlflow.start_run(experiment_id=registry.ensure_experiment(config.mlflow.tracking_uri, config.mlflow.experiment, config.mlflow.artifact_root)):
        info = mlflow.pyfunc.log_model(
            name="model", python_model=SalesForecastModel(),
            artifacts={"results": str(tmp_path / "results.pkl"), "spec": str(tmp_path / "spec.json")},
        )
    loaded = mlflow.pyfunc.load_model(info.model_uri).predict(pd.DataFrame({"horizon": [7]}))
    pd.testing.assert_frame_equal(loaded.reset_index(drop=True), fitted.forecast(7).reset_index(drop=True), check_dtype=False)


def test_production_version_is_the_model_that_served_the_date(setup):
    """Backfilled/rerun dates use the newest gate-passed version trained for them or earlier, never a
    model fitted on their future; the current date uses the champion (rollbacks included)."""
    config, client, _, register = setup
    name = registry.model_name(config.mlflow.model_prefix, "AS OF")
    client.create_registered_model(name)

    def version_for(logical_date: str, passed: bool) -> str:
        v = register(logical_date, f"asof-{logical_date}-{passed}")
        # log_candidate registered it under the fixture's model; re-register the same source under `name`.
        source = client.get_model_version(registry.model_name(config.mlflow.model_prefix, "HAWKEYE VODKA"), v)
        created = client.create_model_version(name, source.source, source.run_id, tags={"logical_date": logical_date}, model_id=getattr(source, "model_id", None))
        client.set_model_version_tag(name, created.version, "gate_passed", str(passed).lower())
        return str(created.version)

    assert registry.production_version(client, name, "champion", "2025-05-31") is None  # nothing promoted yet
    v29 = version_for("2025-05-29", True)
    v30 = version_for("2025-05-30", False)  # rejected by the gate
    v31 = version_for("2025-05-31", True)
    client.set_registered_model_alias(name, "champion", v31)
    as_of = {d: str(registry.production_version(client, name, "champion", d).version) for d in ("2025-05-29", "2025-05-30", "2025-05-31", "2025-06-01")}
    assert as_of == {"2025-05-29": v29, "2025-05-30": v29, "2025-05-31": v31, "2025-06-01": v31}
    assert registry.production_version(client, name, "champion", "2025-05-28") is None  # no model before it
    client.set_registered_model_alias(name, "champion", v29)  # a rollback: the champion serves again
    assert str(registry.production_version(client, name, "champion", "2025-06-01").version) == v29
    assert v30 not in as_of.values()


def test_overview_lists_every_model_past_one_page(tmp_path):
    """`make models` at scale: the store pages search results (100 by default); none may be dropped."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'many.db'}")
    for i in range(101):
        client.create_registered_model(f"many.s{i:03d}", tags={"series_id": f"S{i:03d}"})
    client.create_registered_model("other.s000")  # another prefix is not listed
    overview = registry.registry_overview(client, "many", "champion", last=1)
    assert [row["series_id"] for row in overview] == [f"S{i:03d}" for i in range(101)]


def _open_at_barrier(uri: str, barrier: Any, results: Any) -> None:
    """Child process: wait for the others, then open the store (the first touch creates its schema)."""
    try:
        barrier.wait()
        registry.open_client(uri)
        results.put("ok")
    except Exception as exc:  # reported to the parent, which asserts on it
        results.put(repr(exc)[:300])


def test_concurrent_first_opens_of_a_fresh_sqlite_store(tmp_path):
    """Four processes open one fresh store at once, like three backfill runs' first tasks do.

    Without the lock this failed 2 runs out of 2 (`table experiments already exists`, an alembic
    `CommandError`, ...) and left the store unusable; with it every process gets a working client.
    """
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no store cached from this process
    uri = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_open_at_barrier, args=(uri, barrier, results)) for _ in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=180)
    assert [results.get(timeout=5) for _ in procs] == ["ok"] * 4
    client = registry.open_client(uri)
    assert client.search_experiments()[0].name == "Default"  # the schema is complete and usable


def test_series_key_is_exact_to_the_unit():
    """Large values (money, units at scale) must not round into the same key: 1,234,567 vs 1,234,568."""
    index = pd.date_range("2025-01-01", periods=3)
    a = pd.Series([1234567.0, 2.0, 3.0], index=index, name="S")
    b = a.copy()
    b.iloc[0] = 1234568.0
    assert registry.series_sha256(a) != registry.series_sha256(b)
    assert registry.series_sha256(a) == registry.series_sha256(a.copy())
    assert registry.series_sha256(a) != registry.series_sha256(a.rename("T"))


def test_slugs_of_non_ascii_ids_do_not_collide():
    assert registry.slug("FIVE O'CLOCK VODKA") == "five_o_clock_vodka"  # ASCII ids keep their readable name
    a, b = registry.slug("净藕(1)"), registry.slug("青茄子(1)")
    assert a != b and a.startswith("1_") and b.startswith("1_")
    assert registry.slug("菠菜") == registry.slug("菠菜") and registry.slug("菠菜").isalnum()
    # A long id is cut and hashed: two that share their first 120 characters stay apart, and the model
    # name fits MLflow's 256-character column.
    base = "EXTRA LONG PRODUCT NAME " + "WITH MANY WORDS " * 18
    long_a, long_b = registry.slug(base + "RED"), registry.slug(base + "BLUE")
    assert long_a != long_b and long_a.startswith("extra_long_product_name_with_many_words") and len(long_a) <= 131
    assert len(registry.model_name("sales_forecast", base + "RED")) < 256


def test_a_noise_free_model_registers_and_loads(setup):
    """The model of a series that always sells one amount has no parameters and no finite AIC: it is
    registered (the AIC metric left out, never NaN), and the loaded version forecasts like the fit."""
    import numpy as np

    config, client, _, _ = setup
    days = pd.date_range("2024-06-01", periods=364, freq="D")
    y = pd.Series((np.random.default_rng(2).random(364) < 0.7) * 3.0, index=days, name="THREE A DAY")
    fitted = training.fit_series(y, training.settings_for(config.forecast, DAILY))
    assert fitted.spec.order == (0, 1, 0)
    exp = registry.ensure_experiment(config.mlflow.tracking_uri, config.mlflow.experiment, config.mlflow.artifact_root)
    name = registry.model_name(config.mlflow.model_prefix, "THREE A DAY")
    version = registry.log_candidate(client, exp, name, "THREE A DAY", fitted, y, fitted.forecast(7), {registry.TAG_KEY: "k-const"}, {}, 7, (0.8, 0.95))
    assert "aic" not in client.get_run(version.run_id).data.metrics
    frame = registry.verify_version(config.mlflow.tracking_uri, name, str(version.version), 7)
    expected = fitted.forecast(7)
    for column in expected.columns.drop("forecast_date"):
        np.testing.assert_allclose(frame[column].to_numpy(), expected[column].to_numpy(), rtol=1e-9, atol=1e-9)


def test_a_combined_weekly_model_registers_and_loads(setup):
    """A weekly series' model is the pool of two ARIMA members: the version's spec holds both, and the
    model loaded from the registry forecasts exactly like the fit, and from the weeks after its training
    (given as rows, in kg with decimals) exactly as the DAG's champion serves them."""
    import mlflow
    import numpy as np
    from conftest import ROOT

    from include.forecasting.frequency import weekly

    config, client, _, _ = setup
    frame = pd.read_csv(ROOT / "include/data/veg_supermarket_weekly_kg.csv", parse_dates=["date"])
    frame = frame.rename(columns={"date": "sales_date", "series": "series_id"})
    series_id = frame["series_id"].value_counts().index[0]
    cadence = weekly("SUN")
    full = training.period_series(frame, series_id, frame["sales_date"].max() + pd.Timedelta(days=1), cadence)
    y = full.iloc[:-4]
    fitted = training.fit_series(y, training.settings_for(config.forecast, cadence))
    assert len(fitted.spec.member_specs()) == 2
    exp = registry.ensure_experiment(config.mlflow.tracking_uri, config.mlflow.experiment, config.mlflow.artifact_root)
    name = registry.model_name(config.mlflow.model_prefix, series_id)
    version = registry.log_candidate(client, exp, name, series_id, fitted, y, fitted.forecast(7), {registry.TAG_KEY: "k-weekly"}, {}, 7, (0.8, 0.95))
    assert client.get_model_version(name, version.version).description.startswith("pool of SARIMA(0, 1, 1)")
    assert registry.spec_of(client.get_model_version(name, version.version)) == fitted.spec
    loaded = registry.verify_version(config.mlflow.tracking_uri, name, str(version.version), 7)
    expected = fitted.forecast(7)
    for column in expected.columns.drop("forecast_date"):
        np.testing.assert_allclose(loaded[column].to_numpy(), expected[column].to_numpy(), rtol=1e-9, atol=1e-9)
    newer = full.iloc[-4:]
    rows = pd.DataFrame({"date": newer.index.strftime("%Y-%m-%d"), "value": newer.to_numpy()})
    served = mlflow.pyfunc.load_model(f"models:/{name}/{version.version}").predict(rows)
    later = training.forecast_with_spec(full, fitted.spec, 7, (0.8, 0.95))
    assert served["forecast_date"].iloc[0] == full.index[-1] + pd.Timedelta(weeks=1)
    pd.testing.assert_frame_equal(served.reset_index(drop=True), later.reset_index(drop=True), check_dtype=False)


@pytest.mark.parametrize("series_id", ["BLACK VELVET", "上海青"])
def test_the_forecast_thumbnail_title_is_drawn_without_missing_glyphs(series_id):
    """The version's forecast.png is titled with the series id when some installed font can draw it
    (matplotlib's default for Latin names, a fallback font for others), else with the registered model's
    ASCII name: never boxes for a Chinese product name on a host without CJK fonts, and no warning."""
    import warnings

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from include.forecasting.model_versions import forecast_figure, title_fonts

    y = pd.Series(range(1, 31), index=pd.date_range("2025-01-01", periods=30), dtype=float)
    forecast = pd.DataFrame({"forecast_date": pd.date_range("2025-01-31", periods=7), "yhat": 30.0, "yhat_lower": 25.0, "yhat_upper": 35.0})
    fonts = title_fonts(f"{series_id}: SARIMA")
    fig = forecast_figure(y, forecast, f"{series_id}: SARIMA", "sales_forecast.x: SARIMA")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        FigureCanvasAgg(fig).draw()
    assert not [w for w in caught if "missing from font" in str(w.message)], [str(w.message) for w in caught]
    title = fig.axes[0].get_title()
    if series_id == "BLACK VELVET":
        assert fonts == [] and title == "BLACK VELVET: SARIMA"
    else:
        assert title == ("sales_forecast.x: SARIMA" if fonts is None else "上海青: SARIMA")


def test_a_weekly_series_registers_as_weekly(tmp_path):
    """The registered model says the panel's cadence, and the run counts weeks, not days."""
    from mlflow import MlflowClient

    from include.forecasting.frequency import weekly

    config = load_config(write_config(tmp_path))  # its own store: the module's overview tests count models
    client = MlflowClient(tracking_uri=config.mlflow.tracking_uri)
    frame = read_seed()
    days = training.daily_series(frame, "BLACK VELVET", pd.Timestamp("2025-06-02"))
    y = days.resample("W-SUN").sum()
    cadence = weekly("SUN")
    fitted = training.fit_series(y, training.settings_for(config.forecast, cadence))
    exp = registry.ensure_experiment(config.mlflow.tracking_uri, config.mlflow.experiment, config.mlflow.artifact_root)
    name = registry.model_name(config.mlflow.model_prefix, "BLACK VELVET weekly")
    version = registry.log_candidate(
        client, exp, name, "BLACK VELVET weekly", fitted, y, fitted.forecast(4), {registry.TAG_KEY: "w1", "logical_date": "2025-06-02"},
        {"order": list(fitted.spec.order)}, 4, (0.8, 0.95),
    )
    assert client.get_registered_model(name).description == "Sales forecast for BLACK VELVET weekly, weekly (W-SUN) data"
    assert client.get_run(version.run_id).data.metrics["n_periods"] == len(y)
    # Its year-ago term (Black Velvet's Decembers) is recorded on the version: the champion forecasting
    # from the same data gives the fit's numbers.
    spec = registry.spec_of(client.get_model_version(name, version.version))
    assert spec.year_ago == fitted.spec.year_ago and spec.year_ago["beta"] > 0
    np.testing.assert_allclose(training.forecast_with_spec(y, spec, 4, (0.8, 0.95))["yhat"], fitted.forecast(4)["yhat"], rtol=1e-9)

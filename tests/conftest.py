"""Shared fixtures. The Airflow environment is set here, before anything imports airflow: a throwaway
AIRFLOW_HOME with a migrated SQLite DB, this project's dags/ and plugins/, 1 s retry delay."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "include" / "data" / "iowa_sales.csv"
# Fixtures of real series (velvet, veg_weekly) for the modelling modules' tests in tests/include.
pytest_plugins = ["support.series"]
LAST_DAY = "2025-05-30"  # newest date in the shipped panel
RUN_DAY = "2025-05-31"  # the logical date whose run covers LAST_DAY

_HOME = Path(tempfile.mkdtemp(prefix="airflow_test_home_"))
# Importing airflow writes logs/ here even in a session that never migrates the DB (and so never reaches
# the airflow_db fixture's cleanup): removed at exit either way.
atexit.register(shutil.rmtree, _HOME, True)
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "FORECAST_RETRY_DELAY_S": "1",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "GX_ANALYTICS_ENABLED": "false",
        "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
        # A dead MLflow server must fail fast in tests, not after minutes of HTTP retries.
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    }
)
for _var in ("FORECAST_CONFIG", "AIRFLOW_CONN_SLACK_DEFAULT", "AIRFLOW_CONN_SLACK_API_DEFAULT", "AIRFLOW_CONN_MLFLOW_DEFAULT"):
    os.environ.pop(_var, None)


def pytest_addoption(parser: pytest.Parser) -> None:
    """--run-integration enables the PostgreSQL/Redis/Celery integration tests."""
    parser.addoption("--run-integration", action="store_true", help="run tests marked integration")
    parser.addoption("--run-catalog", action="store_true", help="run the bad-input catalog (tests marked catalog)")
    parser.addoption("--run-browser", action="store_true", help="run the headless-Chromium UI tests (tests marked browser)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Keep each phase's report on the item (`item.rep_call`), so a fixture's teardown can tell that the
    test failed and print what it needs to diagnose it (the stack fixtures print the services' logs)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip integration tests (they install and start services) and the slow bad-input catalog unless asked for."""
    suites = (
        ("integration", "--run-integration", "make test-integration"),
        ("catalog", "--run-catalog", "make test-catalog"),
        ("browser", "--run-browser", "make test-browser"),
    )
    for marker, option, target in suites:
        if config.getoption(option):
            continue
        skip = pytest.mark.skip(reason=f"needs {option} ({target})")
        for item in items:
            if item.get_closest_marker(marker):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the throwaway Airflow DB once and create the pools the DAG uses."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
    from airflow.models import Pool

    Pool.create_or_update_pool("training", 2, "tests", include_deferred=False)
    yield _HOME
    shutil.rmtree(_HOME, ignore_errors=True)


def write_config(tmp: Path, seed: Path = SEED, **overrides: Any) -> Path:
    """Copy the shipped config with every store under `tmp`; `overrides` are 'section.key' -> value."""
    data = yaml.safe_load((ROOT / "include" / "config" / "forecast.yaml").read_text())
    data["source"]["seed_csv"] = str(seed)
    data["mlflow"]["tracking_uri"] = f"sqlite:///{tmp / 'mlflow.db'}"
    data["mlflow"]["artifact_root"] = str(tmp / "mlruns")
    data["warehouse"]["path"] = str(tmp / "warehouse.duckdb")
    data["storage"]["root"] = str(tmp / "artifacts")
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        if key:
            data[section][key] = value
        else:
            data[section] = value
    path = tmp / "forecast.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def config_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Build a config under tmp_path, export it as FORECAST_CONFIG, load its seed into DuckDB."""

    def make(seed: Path = SEED, **overrides: Any) -> Any:
        path = write_config(tmp_path, seed, **overrides)
        monkeypatch.setenv("FORECAST_CONFIG", str(path))
        return load_seeded(path)

    return make


def load_seeded(config_path: Path) -> Any:
    """Load the config at `config_path` and its seed CSV into its DuckDB file; return the config."""
    import duckdb

    from include.forecasting.config import load_config
    from include.forecasting.extract import load_seed_csv

    config = load_config(config_path)
    con = duckdb.connect(str(config.warehouse.path))
    try:
        load_seed_csv(con, config.source)
    finally:
        con.close()
    return config


@pytest.fixture
def iowa_frame() -> Any:
    """The shipped Iowa panel, normalised like an extract result."""
    return read_seed()


def read_seed() -> Any:
    """The shipped panel read the way extract shapes it, through the shipped config's column mapping."""
    from include.forecasting.extract import read_sales_csv

    columns = yaml.safe_load((ROOT / "include" / "config" / "forecast.yaml").read_text())["source"]["columns"]
    return read_sales_csv(SEED, columns)


def slack_webhook_conn(url: str) -> str:
    """AIRFLOW_CONN_SLACK_DEFAULT value for a webhook at `url`."""
    return json.dumps({"conn_type": "slackwebhook", "password": url})


def slack_api_conn(base_url: str) -> str:
    """AIRFLOW_CONN_SLACK_API_DEFAULT value for a Web API stand-in."""
    return json.dumps({"conn_type": "slack", "password": "xoxb-test-token", "extra": {"base_url": base_url}})

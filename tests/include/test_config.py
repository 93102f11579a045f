"""Config loading: the shipped file is valid; every kind of mistake fails fast and names the key."""

from __future__ import annotations

import pytest
import yaml
from conftest import ROOT, write_config

from include.forecasting.config import ConfigError, load_config, parse_config


def test_shipped_config_is_valid_and_resolves_paths():
    config = load_config(ROOT / "include" / "config" / "forecast.yaml")
    assert config.source.kind == "duckdb" and config.series is None
    assert config.forecast.interval_levels == (0.8, 0.95)
    assert config.source.seed_csv == ROOT / "include" / "data" / "iowa_sales.csv"
    assert config.mlflow.tracking_uri == f"sqlite:///{ROOT / '.local' / 'mlflow' / 'mlflow.db'}"
    assert len(config.sha256) == 64


def _raw() -> dict:
    return yaml.safe_load((ROOT / "include" / "config" / "forecast.yaml").read_text())


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("forecast", "horizon_days", 0, "forecast.horizon_days must be a whole number >= 1"),
        ("forecast", "horizon_days", "7", "forecast.horizon_days"),
        ("forecast", "interval_levels", [80], "interval_levels"),
        ("forecast", "candidate_orders", [[1, 0]], "candidate_orders"),
        ("source", "kind", "postgres", "source.kind must be one of"),
        ("source", "table", "sales; DROP TABLE x", "source.table must be matching"),
        ("source", "columns", {"date": "d"}, "source.columns"),
        ("gate", "max_degradation_vs_champion", -1, "gate.max_degradation_vs_champion"),
        ("mlflow", "champion_alias", "Champion", "champion_alias"),
        ("forecast", "holidays", ["Boxing Day"], "forecast.holidays must be a list of holiday names"),
        ("forecast", "order_search", "grid", "forecast.order_search must be one of"),
        ("forecast", "max_chunks", 0, "forecast.max_chunks must be a whole number >= 1"),
    ],
)
def test_invalid_values_name_the_key(section, key, value, message):
    raw = _raw()
    raw[section][key] = value
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(";", ";")):
        parse_config(raw)


def test_unknown_and_missing_keys_are_errors():
    raw = _raw()
    raw["forecast"]["horizon"] = 7
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['horizon'\] in section 'forecast'"):
        parse_config(raw)
    raw = _raw()
    del raw["gate"]
    with pytest.raises(ConfigError, match="section 'gate' is missing"):
        parse_config(raw)
    raw = _raw()
    raw["series"] = ["A", "A"]
    with pytest.raises(ConfigError, match="twice"):
        parse_config(raw)


def test_backtest_must_fit_in_history():
    raw = _raw()
    raw["backtest"]["folds"] = 200
    with pytest.raises(ConfigError, match="shorter than forecast.history_days"):
        parse_config(raw)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_hash_follows_settings_not_formatting(tmp_path):
    a = load_config(write_config(tmp_path))
    (tmp_path / "forecast.yaml").write_text("# a comment\n" + (tmp_path / "forecast.yaml").read_text())
    assert load_config(tmp_path / "forecast.yaml").sha256 == a.sha256
    b = load_config(write_config(tmp_path, **{"forecast.horizon_days": 14}))
    assert b.sha256 != a.sha256


def test_env_var_selects_config(tmp_path, monkeypatch):
    path = write_config(tmp_path, **{"forecast.horizon_days": 3})
    monkeypatch.setenv("FORECAST_CONFIG", str(path))
    assert load_config().forecast.horizon_days == 3

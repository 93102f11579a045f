"""Config loading (pydantic models): the shipped file is valid; every kind of mistake fails fast and names
the key, the file and what is allowed; the model hash follows model settings only."""

from __future__ import annotations

import pytest
import yaml
from conftest import ROOT, write_config

from include.forecasting.config import ConfigError, load_config, parse_config


def test_shipped_config_is_valid_and_resolves_paths():
    config = load_config(ROOT / "include" / "config" / "forecast.yaml")
    assert config.source.kind == "duckdb" and config.series_ids is None and config.source.frequency == "auto"
    assert config.forecast.holidays is not None and config.forecast.holidays.country == "US"
    assert config.validation.whole_units is False
    assert config.forecast.interval_levels == (0.8, 0.95)
    assert config.source.seed_csv == ROOT / "include" / "data" / "iowa_sales.csv"
    assert config.mlflow.tracking_uri == f"sqlite:///{ROOT / '.local' / 'mlflow' / 'mlflow.db'}"
    assert len(config.sha256) == 64


def _raw() -> dict:
    return yaml.safe_load((ROOT / "include" / "config" / "forecast.yaml").read_text())


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("forecast", "horizon", 0, "forecast.horizon: Input should be greater than or equal to 1"),
        ("forecast", "horizon", "seven", "forecast.horizon"),
        ("forecast", "interval_levels", [80], "interval_levels"),
        ("forecast", "models", {"daily": {"candidate_orders": [[1, 0]], "seasonal_order": [0, 1, 1]}}, "forecast.models.daily.candidate_orders"),
        ("source", "kind", "postgres", "source.kind: Input should be 'duckdb' or 'bigquery'"),
        ("source", "frequency", "hourly", "source.frequency: Input should be 'auto', 'daily', 'weekly' or 'monthly'"),
        ("source", "table", "sales; DROP TABLE x", "source.table: String should match pattern"),
        ("source", "date_format", "DD/MM/YYYY", "source.date_format: String should match pattern '%'"),
        ("source", "thousands", ".", "source: thousands '.' is also the decimal mark .*for 1.234,5 set source.decimal: ','"),
        ("warehouse", "series_id_type", "uuid", "warehouse.series_id_type: Input should be 'auto', 'string' or 'integer'"),
        ("source", "columns", {"date": "d"}, "source.columns must map date, series and value"),
        ("gate", "max_degradation_vs_champion", -1, "gate.max_degradation_vs_champion"),
        ("monitor", "rmse_margin", -0.2, "monitor.rmse_margin: Input should be greater than or equal to 0"),
        ("monitor", "retrain_on", ["accuracy"], "monitor.retrain_on.0: Input should be 'degradation' or 'drift'"),
        ("warehouse", "health_table", "health; DROP", "warehouse.health_table: String should match pattern"),
        ("mlflow", "champion_alias", "Champion", "champion_alias"),
        ("forecast", "holidays", {"country": "XX"}, "forecast.holidays.country: country 'XX' is not in the holidays package"),
        ("forecast", "holidays", {"country": "US", "subdivision": "ZZ"}, "forecast.holidays.subdivision: subdivision 'ZZ' is not one of US's"),
        ("forecast", "order_search", "grid", "forecast.order_search: Input should be 'first_stable' or 'aic'"),
        ("forecast", "max_chunks", 0, "forecast.max_chunks"),
        ("validation", "whole_units", "maybe", "validation.whole_units"),
    ],
)
def test_invalid_values_name_the_key(section, key, value, message):
    raw = _raw()
    raw[section][key] = value
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(";", ";")) as error:
        parse_config(raw)
    assert "config error in" in str(error.value)  # and the file


def test_holiday_codes_are_read_whatever_their_case():
    """A user writes `de` or `ia`; the holidays package spells them DE and IA (and some subdivisions in
    mixed case, e.g. Germany's Augsburg)."""
    raw = _raw()
    raw["forecast"]["holidays"] = {"country": " de ", "subdivision": "augsburg"}
    assert parse_config(raw).forecast.holidays.model_dump() == {"country": "DE", "subdivision": "Augsburg", "categories": ("public",)}
    raw["forecast"]["holidays"] = {"country": "us", "subdivision": "ia"}
    assert parse_config(raw).forecast.holidays.model_dump() == {"country": "US", "subdivision": "IA", "categories": ("public",)}
    # A bare code is the country alone; a wrong one still names the rule.
    raw["forecast"]["holidays"] = "de"
    assert parse_config(raw).forecast.holidays.model_dump() == {"country": "DE", "subdivision": None, "categories": ("public",)}
    raw["forecast"]["holidays"] = "Germany"
    with pytest.raises(ConfigError, match=r"forecast.holidays.country: .*'GERMANY'"):
        parse_config(raw)


def test_holiday_categories_are_the_packages_own():
    """`categories` adds the holidays package's other categories; the default key is the one training
    always recorded, so existing models keep their training keys."""
    raw = _raw()
    raw["forecast"]["holidays"] = {"country": "US", "subdivision": "IA", "categories": ["Public", "unofficial", "public"]}
    holidays = parse_config(raw).forecast.holidays
    assert holidays.categories == ("public", "unofficial") and holidays.calendar() == ("US", "IA", "public,unofficial")
    raw["forecast"]["holidays"] = {"country": "CN", "categories": "half_day"}
    assert parse_config(raw).forecast.holidays.calendar() == ("CN", "", "half_day")
    raw["forecast"]["holidays"] = {"country": "US", "subdivision": "IA"}
    assert parse_config(raw).forecast.holidays.calendar() == ("US", "IA")
    raw["forecast"]["holidays"] = {"country": "DE", "categories": ["public", "unofficial"]}
    with pytest.raises(ConfigError, match=r"forecast.holidays.categories: .*\['unofficial'\] are not DE's: \['catholic', 'public', 'school'\]"):
        parse_config(raw)
    raw["forecast"]["holidays"] = {"country": "US", "categories": []}
    with pytest.raises(ConfigError, match=r"forecast.holidays.categories: .*at least one"):
        parse_config(raw)


def test_unknown_and_missing_keys_are_errors():
    raw = _raw()
    raw["forecast"]["horizon_weeks"] = 7
    with pytest.raises(ConfigError, match=r"forecast.horizon_weeks: unknown key"):
        parse_config(raw)
    raw = _raw()
    del raw["gate"]
    with pytest.raises(ConfigError, match="gate: Field required"):
        parse_config(raw)
    raw = _raw()
    raw["series"] = ["A", "A"]
    with pytest.raises(ConfigError, match="twice"):
        parse_config(raw)


def test_older_key_names_still_load():
    raw = _raw()
    raw["forecast"]["horizon_days"] = raw["forecast"].pop("horizon")
    raw["validation"]["max_gap_days"] = raw["validation"].pop("max_gap_periods")
    config = parse_config(raw)
    assert config.forecast.horizon == 7 and config.validation.max_gap_periods == 14


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
    b = load_config(write_config(tmp_path, **{"forecast.horizon": 14}))
    assert b.sha256 != a.sha256


def test_hash_ignores_paths_channels_and_chunking(tmp_path):
    """The training key's config part: moving the data file, renaming the Slack channel or re-chunking
    must not refit anything; the run hash (mid-run change detection) still sees them."""
    a = load_config(write_config(tmp_path))
    for override in ({"source.seed_csv": "/elsewhere/sales.csv"}, {"alerts.channel": "#other"}, {"forecast.max_chunks": 3}, {"storage.root": "/tmp/x"}):
        other = tmp_path / "other"
        other.mkdir(exist_ok=True)
        b = load_config(write_config(other, **override))
        assert b.sha256 == a.sha256, override
        assert b.run_sha256 != a.run_sha256 or "storage.root" in override, override
    c = load_config(write_config(tmp_path, **{"gate.max_degradation_vs_champion": 0.2}))
    assert c.sha256 != a.sha256


def test_env_var_selects_config(tmp_path, monkeypatch):
    path = write_config(tmp_path, **{"forecast.horizon": 3})
    monkeypatch.setenv("FORECAST_CONFIG", str(path))
    assert load_config().forecast.horizon == 3

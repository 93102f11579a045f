"""Load and validate the project's one configuration file (include/config/forecast.yaml).

The file is parsed into pydantic models: unknown keys are refused (`extra="forbid"`), numbers are checked
against their ranges and choices against their literals, and any error names the key, the file and what
is allowed, so a user editing the YAML learns what is wrong before any task touches data.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = PROJECT_ROOT / "include" / "config" / "forecast.yaml"
CONFIG_ENV = "FORECAST_CONFIG"

# Table ids cannot be bound query parameters, so they are checked against a strict pattern before
# they are written into SQL: project-id.dataset.table (BigQuery) or schema.table (DuckDB).
_TABLE_RE = r"^[A-Za-z0-9_\-]+(\.[A-Za-z_][A-Za-z0-9_]*){1,2}$"
_NAME_RE = r"^[A-Za-z0-9_\-]+$"
# Tables the project writes: table, dataset.table or project.dataset.table.
_OUT_TABLE_RE = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$"

Frequency = Literal["daily", "weekly", "monthly"]
Order = tuple[Annotated[int, Field(ge=0, le=5)], Annotated[int, Field(ge=0, le=2)], Annotated[int, Field(ge=0, le=5)]]


class ConfigError(ValueError):
    """The configuration file is missing, malformed or has an invalid value."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfig(_Section):
    """Where sales come from, and what cadence they have."""

    kind: Literal["duckdb", "bigquery"]
    table: str = Field(pattern=_TABLE_RE)
    billing_project: str | None = None
    seed_csv: Path | None = None
    # Which CSV / source columns hold the date, the series id and the value. The series may be a list of
    # columns ([store, item]): their cells joined by " / " are its id (store 1's and store 2's item are two
    # series).
    columns: dict[Literal["date", "series", "value"], Annotated[str, Field(min_length=1)] | list[Annotated[str, Field(min_length=1)]]]
    # The seed CSV's date format: null = ISO 8601 (2025-01-31, 2025-01-31 00:00:00, 2025-01-31T00:00:00Z,
    # 2025-01 for a month, 2025-W05 for an ISO week's Monday); else a strftime format such as "%d/%m/%Y" (day first and month first cannot
    # be told apart from the text, so they are never guessed).
    date_format: Annotated[str, Field(pattern=r"%")] | None = None
    # The seed CSV's decimal mark: "." (3.67), or "," (3,67; a "." is then a thousands separator, 1.234,5).
    decimal: Literal[".", ","] = "."
    # The seed CSV's thousands separator: null (none; with decimal "," a "." groups thousands), "," (1,234.5),
    # "." (1.234,5), " " (1 234,5; also the no-break spaces spreadsheets write) or "'" (1'234.50).
    thousands: Literal[",", ".", " ", "'"] | None = None
    # The seed CSV's empty value cells (empty, NA, null, nan): "refuse" loads them empty, for validation to
    # name as bad rows; "zero" reads them as no sale (a pivot table's export leaves a cell without a sale
    # empty), with a warning that counts them. A cell of other text is refused either way.
    empty_values: Literal["refuse", "zero"] = "refuse"
    # A wide seed CSV (a date column, then one column per series: a pivot table's export) lists its series'
    # columns here, or "all" (every column but the date); each becomes a series named by its header, read
    # into `columns.series` and `columns.value` (names for the long table, not headers of the file).
    # null: the file is long already.
    wide: Literal["all"] | list[Annotated[str, Field(min_length=1)]] | None = Field(default=None, min_length=1)
    # "auto" detects daily / weekly (any weekday) / monthly from the dates; a mixed panel is refused.
    frequency: Literal["auto", "daily", "weekly", "monthly"] = "auto"
    # Weekly data: the day of its week a row's date is, "end" (its last day: a week ending Sunday is dated
    # on the Sunday) or "start" (its first: ISO week labels, 2025-W05 read as its Monday; SQL's
    # DATE_TRUNC(..., WEEK)). A week dated on its start is whole only 7 days after its date.
    week_dated_on: Literal["end", "start"] = "end"
    # The source table's own grain: columns that identify one source row. A repeated key is a duplicated
    # delivery (the seed CSV: one row per date and series; BigQuery Iowa: invoice_and_item_number).
    unique_key: list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]] = Field(default_factory=lambda: ["date", "item_description"], min_length=1)

    @field_validator("columns")
    @classmethod
    def _one_date_and_value_column(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in ("date", "value"):
            if isinstance(value.get(key), list):
                raise ValueError(f"{key} is one column (got {value[key]}); only series may list several")
        series = value.get("series")
        if isinstance(series, list) and (not series or len(set(series)) != len(series)):
            raise ValueError(f"series lists its columns once each, at least one (got {series})")
        return value

    def csv_columns(self) -> list[str]:
        """Every column of the long table the mapping names: date, the series column(s), value."""
        return [name for value in self.columns.values() for name in (value if isinstance(value, list) else [value])]

    def file_columns(self) -> list[str]:
        """The seed CSV's headers the config names: `csv_columns`, or for a wide file its date and series
        columns (its date column alone for `wide: all`)."""
        if not self.wide:
            return self.csv_columns()
        return [str(self.columns["date"]), *([] if self.wide == "all" else self.wide)]

    @model_validator(mode="after")
    def _wide_names_its_long_columns(self) -> SourceConfig:
        if not self.wide:
            return self
        date, series, value = (self.columns.get(k) for k in ("date", "series", "value"))
        listed = [] if self.wide == "all" else self.wide  # "all" names no column to check here
        if isinstance(series, list):
            raise ValueError(f"wide: columns.series names the one column the series' headers are read into (got {series})")
        if len(set(listed)) != len(listed):
            raise ValueError(f"wide lists each series' column once (got {self.wide})")
        if date in listed:
            raise ValueError(f"wide lists the date column {date!r}; list only the series' columns")
        if clash := [c for c in (series, value) if c in listed]:
            raise ValueError(f"wide: columns.series and columns.value name the long table's columns, not series' columns (got {clash} in both)")
        if len({date, series, value}) < 3:
            raise ValueError(f"wide: columns.date, columns.series and columns.value are three different names (got {date!r}, {series!r}, {value!r})")
        return self

    @model_validator(mode="after")
    def _marks_differ(self) -> SourceConfig:
        if self.thousands == self.decimal:
            other = "," if self.decimal == "." else "."
            raise ValueError(
                f"thousands {self.thousands!r} is also the decimal mark (source.decimal): 1{self.decimal}234 could not be read; "
                f"for 1{self.thousands}234{other}5 set source.decimal: {other!r}"
            )
        return self


class ModelOrders(_Section):
    """SARIMA candidates for one data frequency: (p, d, q) candidates and the seasonal (P, D, Q);
    the seasonal period s follows the frequency (7 for daily, 12 for monthly; weekly has none)."""

    candidate_orders: list[Order] = Field(min_length=1)
    seasonal_order: tuple[Annotated[int, Field(ge=0, le=2)], Annotated[int, Field(ge=0, le=1)], Annotated[int, Field(ge=0, le=2)]]
    # Forecast with the equal-weight mixture (linear pool) of the first `combine` stable candidates (1: one model).
    combine: int = Field(default=1, ge=1, le=3)
    # Weekly data only: a year-ago term where a series' history shows a yearly pattern (README "Modelling").
    # null: on for weekly data; false turns it off. Daily data have holidays, monthly a seasonal order.
    year_ago: bool | None = None
    # Daily data only: each fit's coefficients take one step from the likelihood estimate towards those that
    # predict the history best 1..horizon days ahead (README "Modelling"). null: on for daily data; false
    # turns it off (a daily fit ~20 % faster, a run's backtest refits ~40 %; forecasts as before it).
    multi_step: bool | None = None


def _default_models() -> dict[str, ModelOrders]:
    return {
        "daily": ModelOrders(candidate_orders=[(0, 1, 1), (1, 0, 1), (1, 0, 0)], seasonal_order=(0, 1, 1)),
        "weekly": ModelOrders(candidate_orders=[(0, 1, 1), (1, 0, 0), (1, 1, 1), (1, 1, 0)], seasonal_order=(0, 0, 0), combine=2),
        "monthly": ModelOrders(candidate_orders=[(0, 1, 1), (1, 1, 0), (1, 0, 0)], seasonal_order=(0, 1, 1)),
    }


class HolidayConfig(_Section):
    """Holiday calendar from the `holidays` package (country code, optional subdivision and categories)."""

    country: str = Field(pattern=r"^[A-Z]{2,3}$")
    subdivision: str | None = None
    # The package's holiday categories: public (the default) and, per country, e.g. unofficial (US:
    # Christmas Eve, New Year's Eve, Halloween, Mother's Day), half_day, optional, bank.
    categories: tuple[str, ...] = ("public",)

    @field_validator("country", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        # ISO 3166 codes are upper case in the holidays package; "de" is what many users type.
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        import holidays

        if value not in holidays.list_supported_countries():
            raise ValueError(f"country {value!r} is not in the holidays package (e.g. US, GB, DE, CN, PL)")
        return value

    @field_validator("subdivision")
    @classmethod
    def _known_subdivision(cls, value: str | None, info: ValidationInfo) -> str | None:
        import holidays

        country = info.data.get("country")
        if value is None or country is None:  # no subdivision, or the country already failed
            return value
        supported = holidays.list_supported_countries()[country]
        # The package's own spelling ("IA", "ENG", "Augsburg"), whatever the case the user wrote.
        spelled = {s.casefold(): s for s in supported}
        if value.strip().casefold() not in spelled:
            raise ValueError(f"subdivision {value!r} is not one of {country}'s: {supported}")
        return spelled[value.strip().casefold()]

    @field_validator("categories", mode="before")
    @classmethod
    def _category_list(cls, value: Any) -> Any:
        if isinstance(value, str):  # `categories: unofficial` for one; "public" is not implied
            value = [value]
        return tuple(str(v).strip().lower() for v in value) if isinstance(value, (list, tuple)) else value

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        import holidays

        country = info.data.get("country")
        if country is None:  # the country already failed
            return value
        if not value:
            raise ValueError("categories: list at least one (public is the default); `holidays: null` turns holidays off")
        supported = holidays.country_holidays(country).supported_categories
        unknown = [c for c in value if c not in supported]
        if unknown:
            raise ValueError(f"categories {unknown} are not {country}'s: {sorted(supported)}")
        return tuple(dict.fromkeys(value))  # listed twice counts once, in the order given

    def calendar(self) -> tuple[str, ...]:
        """The calendar key training records: (country, subdivision or ""), and the categories joined by
        "," when they are not the default public holidays alone (so default keys stay as they were)."""
        key = (self.country, self.subdivision or "")
        return key if self.categories == ("public",) else (*key, ",".join(self.categories))


class ForecastConfig(_Section):
    """Model and horizon settings."""

    # Periods forecast after the data interval end: days for daily data, weeks for weekly, months for monthly.
    horizon: int = Field(ge=1, le=366, validation_alias=AliasChoices("horizon", "horizon_days"))
    history_days: int = Field(ge=28)
    interval_levels: tuple[float, ...] = Field(min_length=1)
    models: dict[Frequency, ModelOrders] = Field(default_factory=_default_models)
    order_search: Literal["first_stable", "aic"] = "first_stable"
    max_iter: int = Field(ge=5)
    # Zero periods: the recency-weighted share of zeros over the last `zero_window` periods (per weekday for
    # daily data) is the probability of no sale; at `closure_share` or more the period is "closed" (forecast exactly 0).
    zero_window: int = Field(default=12, ge=2, validation_alias=AliasChoices("zero_window", "closure_weeks"))
    # Recency weighting of that share: an observation `zero_halflife` periods older counts half as much.
    zero_halflife: float = Field(default=2.0, gt=0.0, le=52.0)
    closure_share: float = Field(ge=0.0, le=1.0)
    explosion_factor: float = Field(ge=1.0, le=1e6)
    warm_start: bool
    # null or {} = no holiday handling; a bare country code (`holidays: DE`) is {country: DE}.
    holidays: HolidayConfig | None = None
    series_per_task: int = Field(ge=1)
    max_chunks: int = Field(default=8, ge=1, le=1024)

    @field_validator("interval_levels")
    @classmethod
    def _levels(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not all(0 < v < 1 for v in value):
            raise ValueError("levels must lie in (0, 1), e.g. [0.8, 0.95]")
        return tuple(sorted(value))

    @field_validator("holidays", mode="before")
    @classmethod
    def _empty_holidays(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip():
            return {"country": value}  # `holidays: DE`, what a user with no subdivision writes
        return None if value in ({}, [], "", None) else value

    @field_validator("models", mode="before")
    @classmethod
    def _merge_models(cls, value: Any) -> Any:
        """A file that sets only `daily` keeps the shipped weekly / monthly defaults."""
        if isinstance(value, dict):
            return {**{k: v.model_dump() for k, v in _default_models().items()}, **value}
        return value

    @field_validator("models")
    @classmethod
    def _options_of_one_cadence(cls, value: dict[str, ModelOrders]) -> dict[str, ModelOrders]:
        """The year-ago term is for weekly models, the multi-step step for daily ones."""
        for frequency in ("daily", "monthly"):
            if frequency in value and value[frequency].year_ago:
                raise ValueError(
                    f"models.{frequency}.year_ago: the year-ago term is for weekly data only (daily models have "
                    "holidays and the weekday season, monthly ones a 12-month seasonal order); remove it or set false"
                )
        for frequency in ("weekly", "monthly"):
            if frequency in value and value[frequency].multi_step:
                raise ValueError(
                    f"models.{frequency}.multi_step: the multi-step step is for daily data only (it was measured on "
                    "daily panels; weekly orders have one coefficient each); remove it or set false"
                )
        return value


class BacktestConfig(_Section):
    """Rolling-origin backtest settings: `folds` folds of `horizon` periods each."""

    folds: int = Field(ge=1, le=52)


class GateConfig(_Section):
    """Quality gate thresholds."""

    min_improvement_vs_naive: float = Field(ge=0.0, le=0.99)
    max_degradation_vs_champion: float = Field(ge=0.0, le=10.0)
    # ... and at most the champion's recorded backtest MASE * (1 + this): new data that wrecks every
    # method's score at once (a corrupted delivery) cannot promote a model.
    max_degradation_vs_recorded: float = Field(default=1.0, ge=0.0, le=100.0)


class ValidationConfig(_Section):
    """Data validation settings (suites live in include/expectations/)."""

    suite: str = Field(pattern=_NAME_RE)
    series_suite: str = Field(pattern=_NAME_RE)
    # A series with fewer rows is quarantined (fallback forecast), not the whole run. One number for every
    # cadence, or one per cadence ({daily: 60, weekly: 52, monthly: 24}): 60 rows are two months of a daily
    # series but five years of a monthly one.
    min_rows_per_series: Annotated[int, Field(ge=1)] | dict[Frequency, Annotated[int, Field(ge=1)]]
    # Longest gap inside a series and newest row's age, in periods of the data's frequency.
    max_gap_periods: int = Field(ge=1, validation_alias=AliasChoices("max_gap_periods", "max_gap_days"))
    max_staleness_periods: int = Field(ge=0, validation_alias=AliasChoices("max_staleness_periods", "max_staleness_days"))
    # true: values must be whole units (bottles, items); false (default): non-negative decimals are valid
    # quantities (kg, litres, money).
    whole_units: bool = False
    # Rows breaking a rule marked `meta.per_series` in the row suite: quarantine their series, or block the
    # run. Panel-wide bad rows (>= anomaly.panel_share of the series, at least 2) always block.
    on_bad_rows: Literal["quarantine", "block"] = "quarantine"
    # A negative value: "refuse" (default) breaks the "not negative" row rule (its series is quarantined,
    # see on_bad_rows); "zero" reads it as no sale, for sources that net returns into the day's sales (a
    # day whose returns outweigh its sales); the run's validation report names each such row.
    negative_values: Literal["refuse", "zero"] = "refuse"

    def min_rows(self, cadence: str) -> int:
        """The fewest rows a series of this cadence (`daily` / `weekly` / `monthly`) needs; a cadence the
        mapping leaves out takes the largest number given."""
        if isinstance(self.min_rows_per_series, int):
            return self.min_rows_per_series
        return self.min_rows_per_series.get(cadence, max(self.min_rows_per_series.values()))  # type: ignore[call-overload]


class AnomalyConfig(_Section):
    """Checks of the newest periods of each series against its own history (include/forecasting/anomaly.py)."""

    # Days are turned into periods of the panel's cadence (at least 1; 2 for the zero run).
    recent_days: int = Field(default=7, ge=1, le=366)
    spike_ratio: float = Field(default=10.0, gt=1.0)
    spike_mad: float = Field(default=8.0, gt=0.0)
    # A period above this many times typical is a spike however widely the series' sales spread.
    spike_ratio_always: float = Field(default=100.0, gt=1.0)
    level_shift_ratio: float = Field(default=10.0, gt=1.0)
    zero_run_days: int = Field(default=7, ge=2)
    # A zero run longer than this is what the series now does (stopped selling): forecast again, not quarantined.
    zero_run_max_days: int = Field(default=28, ge=2)
    # A delivery (rows per date of the raw source) with more than this many times its recent typical number
    # of rows, or present but less than 1/this, is a panel-wide anomaly.
    volume_ratio: float = Field(default=3.0, gt=1.0)
    on_series: Literal["quarantine", "block", "ignore"] = "quarantine"
    on_panel: Literal["block", "quarantine"] = "block"
    panel_share: float = Field(default=0.5, gt=0.0, le=1.0)

    def spike_rule(self) -> tuple[float, float, float]:
        """(spike_ratio, spike_mad, spike_ratio_always): the spike rule's thresholds, as training, the
        MASE scale and the monitor use them."""
        return (self.spike_ratio, self.spike_mad, self.spike_ratio_always)


class MlflowConfig(_Section):
    """Experiment and registry naming."""

    tracking_uri: str = Field(min_length=1)
    artifact_root: Path
    experiment: str = Field(min_length=1)
    model_prefix: str = Field(pattern=r"^[A-Za-z0-9_\-.]+$")
    champion_alias: str = Field(pattern=r"^[a-z][a-z0-9_\-]*$")  # the MLflow UI wants lowercase


class WarehouseConfig(_Section):
    """Where forecasts are published."""

    kind: Literal["duckdb", "bigquery"]
    path: Path
    forecasts_table: str = Field(pattern=_OUT_TABLE_RE)
    # Written by the forecast_monitor DAG (BigQuery: dataset.table, like forecasts_table).
    accuracy_table: str = Field(default="forecast_accuracy", pattern=_OUT_TABLE_RE)
    health_table: str = Field(default="forecast_health", pattern=_OUT_TABLE_RE)
    actuals_table: str = Field(default="forecast_actuals", pattern=_OUT_TABLE_RE)
    # series_id's type in a forecasts table the embedded warehouse creates (an existing table keeps its own):
    # auto = integer when every series id is a whole number (store numbers), else string.
    series_id_type: Literal["auto", "string", "integer"] = "auto"


class MonitorConfig(_Section):
    """forecast_monitor thresholds (include/forecasting/monitoring.py); counts are periods of the cadence."""

    # Forecasts published within this many days before the monitor date are scored.
    lookback_days: int = Field(default=60, ge=1, le=3660)
    window_periods: int = Field(default=14, ge=1)
    min_scored: int = Field(default=7, ge=1)
    # Degraded = over the margin (or worse than seasonal naive) at each of the last N scored periods.
    degradation_periods: int = Field(default=3, ge=1)
    # Realized metric > the version's backtest metric x (1 + margin); null turns a metric off.
    mase_margin: float | None = Field(default=0.5, ge=0.0)
    rmse_margin: float | None = Field(default=0.5, ge=0.0)
    mape_margin: float | None = Field(default=None, ge=0.0)
    vs_naive: bool = True
    drift_recent_periods: int = Field(default=28, ge=4)
    drift_p_value: float = Field(default=0.01, gt=0.0, lt=1.0)
    drift_min_statistic: float = Field(default=0.3, gt=0.0, le=1.0)
    # ... or the published interval held fewer actuals than its level at p < this (one-sided binomial test,
    # one draw per forecast period); null turns it off.
    coverage_p_value: float | None = Field(default=0.01, gt=0.0, lt=1.0)
    # Degraded / drifted series are retrained at the next run even when their data key is unchanged.
    retrain_on: list[Literal["degradation", "drift"]] = Field(default_factory=lambda: ["degradation", "drift"])
    # Periods of actuals kept per series for the Forecasts page and the report charts.
    chart_periods: int = Field(default=90, ge=7, le=3660)

    def settings(self, coverage_level: float = 0.8) -> Any:
        """The pure module's settings object; `coverage_level` is the published interval's level (the first
        of forecast.interval_levels)."""
        from include.forecasting.monitoring import MonitorSettings

        return MonitorSettings(**self.model_dump(exclude={"lookback_days", "retrain_on", "chart_periods"}), coverage_level=coverage_level)


class StorageConfig(_Section):
    """Snapshots and reports."""

    root: Path


class AlertsConfig(_Section):
    """Slack alert settings (the connection itself is an Airflow connection)."""

    airflow_base_url: str = Field(min_length=1)
    notify_on_champion_change: bool
    channel: str = Field(min_length=1)

    @field_validator("airflow_base_url")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.rstrip("/")


class Config(_Section):
    """The whole validated configuration."""

    path: Path = DEFAULT_CONFIG
    source: SourceConfig
    series: Literal["all"] | list[Annotated[str, Field(min_length=1)]] = "all"
    forecast: ForecastConfig
    backtest: BacktestConfig
    gate: GateConfig
    validation: ValidationConfig
    anomaly: AnomalyConfig = Field(default_factory=AnomalyConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    mlflow: MlflowConfig
    warehouse: WarehouseConfig
    storage: StorageConfig
    alerts: AlertsConfig

    @field_validator("series")
    @classmethod
    def _series(cls, value: Any) -> Any:
        if isinstance(value, list):
            if not value:
                raise ValueError('"all" or a non-empty list of series ids')
            if len(set(value)) != len(value):
                raise ValueError(f"lists a series twice: {value}")
        return value

    @model_validator(mode="after")
    def _cross(self) -> Config:
        missing = {"date", "series", "value"} - set(self.source.columns)
        if missing:
            raise ValueError(f"source.columns must map date, series and value to column names; missing {sorted(missing)}")
        if self.source.kind == "duckdb" and self.source.table.count(".") > 1:
            raise ValueError(f"source.table for duckdb must be schema.table (got {self.source.table!r})")
        return self

    @property
    def series_ids(self) -> tuple[str, ...] | None:
        """The configured series list, or None for "all"."""
        return None if self.series == "all" else tuple(self.series)

    @property
    def storage_root(self) -> Path:
        """Where snapshots and reports are written."""
        return self.storage.root

    @property
    def sha256(self) -> str:
        """Hash of the settings that shape a model: part of the training key.

        Only what changes a fit or its evaluation: the data's cadence, the model settings, the backtest
        and the gate. Never paths, stores, chunking or alerting: moving the data file or renaming a Slack
        channel must not refit a single series.
        """
        relevant = {
            "frequency": self.source.frequency,
            "week_dated_on": self.source.week_dated_on,
            "forecast": self.forecast.model_dump(mode="json", exclude={"series_per_task", "max_chunks", "history_days"}),
            "backtest": self.backtest.model_dump(mode="json"),
            "gate": self.gate.model_dump(mode="json"),
        }
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()

    @property
    def run_sha256(self) -> str:
        """Hash of everything a run reads (data location and window included): extract records it, and later
        tasks refuse to go on if the file changed mid-run."""
        return hashlib.sha256(json.dumps(self.model_dump(mode="json", exclude={"path"}), sort_keys=True).encode()).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        """The validated config as plain data (for logging to MLflow)."""
        return self.model_dump(mode="json")


def resolve_path(value: str | Path, root: Path = PROJECT_ROOT) -> Path:
    """Resolve a config path: absolute as given, relative against the project root."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else (root / path).resolve()


def resolve_tracking_uri(uri: str, root: Path = PROJECT_ROOT) -> str:
    """Make a relative `sqlite:///relative.db` tracking URI absolute, so every process agrees on it."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(resolve_path(uri[len(prefix):], root))
    return uri


def config_path() -> Path:
    """The config file in force: $FORECAST_CONFIG or the shipped default."""
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG).expanduser().resolve()


def load_config(path: str | Path | None = None) -> Config:
    """Read, validate and return the configuration; raise ConfigError with a clear message if invalid."""
    path = Path(path).expanduser().resolve() if path else config_path()
    if not path.is_file():
        raise ConfigError(f"config file not found: {path} (set {CONFIG_ENV} or restore {DEFAULT_CONFIG})")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must be a mapping of sections")
    return parse_config(raw, path)


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in error["loc"] if not str(p).startswith("function-after"))
    message = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    shown = "" if isinstance(got, dict) or error["type"] == "missing" else f" (got {got!r})"
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    return f"{key or '(top level)'}: {message}{shown}"


def parse_config(raw: dict[str, Any], path: Path = DEFAULT_CONFIG, root: Path = PROJECT_ROOT) -> Config:
    """Validate a config mapping (as read from YAML) and build a Config with paths resolved."""
    data = json.loads(json.dumps(raw, default=str))  # a private copy; YAML dates become strings
    for section, key in (("source", "seed_csv"), ("mlflow", "artifact_root"), ("warehouse", "path"), ("storage", "root")):
        value = (data.get(section) or {}).get(key) if isinstance(data.get(section), dict) else None
        if isinstance(value, str) and value:
            data[section][key] = str(resolve_path(value, root))
    if isinstance(data.get("mlflow"), dict) and isinstance(data["mlflow"].get("tracking_uri"), str):
        data["mlflow"]["tracking_uri"] = resolve_tracking_uri(data["mlflow"]["tracking_uri"], root)
    try:
        return Config.model_validate({**data, "path": path})
    except ValidationError as exc:
        lines = [_describe(e) for e in exc.errors()]
        raise ConfigError(f"config error in {path}:\n  " + "\n  ".join(lines)) from None


__all__ = [
    "PROJECT_ROOT", "DEFAULT_CONFIG", "CONFIG_ENV", "ConfigError", "Config", "SourceConfig", "ForecastConfig",
    "BacktestConfig", "GateConfig", "ValidationConfig", "MlflowConfig", "WarehouseConfig", "AlertsConfig",
    "HolidayConfig", "ModelOrders", "load_config", "parse_config", "resolve_path", "resolve_tracking_uri", "config_path",
]

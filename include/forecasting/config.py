"""Load and validate the project's one configuration file (include/config/forecast.yaml).

Invalid config fails fast with a message naming the key, the value and the file, so a user editing the
YAML learns what is wrong before any task touches data.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = PROJECT_ROOT / "include" / "config" / "forecast.yaml"
CONFIG_ENV = "FORECAST_CONFIG"

# Names of pandas' USFederalHolidayCalendar rules: the holidays `forecast.holidays` may list.
HOLIDAY_NAMES = (
    "New Year's Day", "Birthday of Martin Luther King, Jr.", "Washington's Birthday", "Memorial Day",
    "Juneteenth National Independence Day", "Independence Day", "Labor Day", "Columbus Day", "Veterans Day",
    "Thanksgiving Day", "Christmas Day",
)

# Table ids cannot be bound query parameters, so they are checked against a strict pattern before
# they are written into SQL: project-id.dataset.table (BigQuery) or schema.table (DuckDB).
_TABLE_RE = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z_][A-Za-z0-9_]*){1,2}$")


class ConfigError(ValueError):
    """The configuration file is missing, malformed or has an invalid value."""


@dataclass(frozen=True)
class SourceConfig:
    """Where daily sales are read from."""

    kind: str
    table: str
    seed_csv: Path | None
    columns: dict[str, str]
    billing_project: str | None = None


@dataclass(frozen=True)
class ForecastConfig:
    """Model and horizon settings."""

    horizon_days: int
    history_days: int
    interval_levels: tuple[float, ...]
    candidate_orders: tuple[tuple[int, int, int], ...]
    seasonal_order: tuple[int, int, int, int]
    max_iter: int
    closure_weeks: int
    closure_share: float
    explosion_factor: float
    warm_start: bool
    series_per_task: int
    holidays: tuple[str, ...] = ()
    max_chunks: int = 8
    order_search: str = "first_stable"


@dataclass(frozen=True)
class BacktestConfig:
    """Rolling-origin backtest settings."""

    folds: int
    fold_days: int
    season_length: int


@dataclass(frozen=True)
class GateConfig:
    """Quality gate thresholds."""

    min_improvement_vs_naive: float
    max_degradation_vs_champion: float


@dataclass(frozen=True)
class ValidationConfig:
    """Data validation settings (suites live in include/expectations/)."""

    suite: str
    series_suite: str
    min_rows_per_series: int
    max_gap_days: int
    max_staleness_days: int


@dataclass(frozen=True)
class MlflowConfig:
    """Experiment and registry naming."""

    tracking_uri: str
    artifact_root: Path
    experiment: str
    model_prefix: str
    champion_alias: str


@dataclass(frozen=True)
class WarehouseConfig:
    """Where forecasts are published."""

    kind: str
    path: Path
    forecasts_table: str


@dataclass(frozen=True)
class AlertsConfig:
    """Slack alert settings (the connection itself is an Airflow connection)."""

    airflow_base_url: str
    notify_on_champion_change: bool
    channel: str


@dataclass(frozen=True)
class Config:
    """The whole validated configuration."""

    path: Path
    source: SourceConfig
    series: tuple[str, ...] | None  # None means "all"
    forecast: ForecastConfig
    backtest: BacktestConfig
    gate: GateConfig
    validation: ValidationConfig
    mlflow: MlflowConfig
    warehouse: WarehouseConfig
    storage_root: Path
    alerts: AlertsConfig
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def sha256(self) -> str:
        """Hash of the effective settings (not of comments/formatting): part of the idempotency key."""
        canonical = json.dumps(self.raw, sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def as_dict(self) -> dict[str, Any]:
        """The validated config as plain data (for logging to MLflow)."""
        return json.loads(json.dumps(asdict(self), default=str))


_SECTIONS: dict[str, set[str]] = {
    "source": {"kind", "table", "seed_csv", "columns", "billing_project"},
    "forecast": {
        "horizon_days", "history_days", "interval_levels", "candidate_orders", "seasonal_order",
        "max_iter", "closure_weeks", "closure_share", "explosion_factor", "warm_start", "series_per_task",
        "holidays", "max_chunks", "order_search",
    },
    "backtest": {"folds", "fold_days", "season_length"},
    "gate": {"min_improvement_vs_naive", "max_degradation_vs_champion"},
    "validation": {"suite", "series_suite", "min_rows_per_series", "max_gap_days", "max_staleness_days"},
    "mlflow": {"tracking_uri", "artifact_root", "experiment", "model_prefix", "champion_alias"},
    "warehouse": {"kind", "path", "forecasts_table"},
    "storage": {"root"},
    "alerts": {"airflow_base_url", "notify_on_champion_change", "channel"},
}
_TOP = set(_SECTIONS) | {"series"}


class _Reader:
    """Typed access to one config section with errors that name the key and the file."""

    def __init__(self, data: dict[str, Any], section: str, path: Path) -> None:
        self.data, self.section, self.path = data, section, path

    def _fail(self, key: str, expected: str, value: Any) -> ConfigError:
        return ConfigError(f"config error in {self.path}: {self.section}.{key} must be {expected} (got {value!r})")

    def get(self, key: str) -> Any:
        if key not in self.data:
            raise ConfigError(f"config error in {self.path}: missing key {self.section}.{key}")
        return self.data[key]

    def int(self, key: str, minimum: int = 1) -> int:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self._fail(key, f"a whole number >= {minimum}", value)
        return value

    def num(self, key: str, low: float, high: float) -> float:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise self._fail(key, f"a number in [{low}, {high}]", value)
        return float(value)

    def str(self, key: str, choices: tuple[str, ...] | None = None, pattern: re.Pattern[str] | None = None) -> str:
        value = self.get(key)
        if not isinstance(value, str) or not value.strip():
            raise self._fail(key, "a non-empty string", value)
        if choices and value not in choices:
            raise self._fail(key, f"one of {list(choices)}", value)
        if pattern and not pattern.match(value):
            raise self._fail(key, f"matching {pattern.pattern}", value)
        return value

    def bool(self, key: str) -> bool:
        value = self.get(key)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false", value)
        return value

    def path_(self, key: str, root: Path, optional: bool = False) -> Path | None:
        value = self.data.get(key) if optional else self.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value:
            raise self._fail(key, "a path", value)
        return resolve_path(value, root)

    def int_list(self, key: str, length: int, value: Any = None) -> tuple[int, ...]:
        value = self.get(key) if value is None else value
        if (
            not isinstance(value, list)
            or len(value) != length
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
        ):
            raise self._fail(key, f"a list of {length} non-negative whole numbers", value)
        return tuple(value)


def _holidays(f: _Reader) -> tuple[str, ...]:
    """forecast.holidays: a (possibly empty) list of US federal holiday names."""
    value = f.data.get("holidays", [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v in HOLIDAY_NAMES for v in value):
        raise f._fail("holidays", f"a list of holiday names from {list(HOLIDAY_NAMES)}", value)
    return tuple(value)


def resolve_path(value: str, root: Path = PROJECT_ROOT) -> Path:
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


def parse_config(raw: dict[str, Any], path: Path = DEFAULT_CONFIG, root: Path = PROJECT_ROOT) -> Config:
    """Validate a config mapping (as read from YAML) and build a Config."""
    unknown = set(raw) - _TOP
    if unknown:
        raise ConfigError(f"config error in {path}: unknown top-level key(s) {sorted(unknown)}; allowed {sorted(_TOP)}")
    sections: dict[str, _Reader] = {}
    for name, allowed in _SECTIONS.items():
        data = raw.get(name)
        if not isinstance(data, dict):
            raise ConfigError(f"config error in {path}: section {name!r} is missing or not a mapping")
        extra = set(data) - allowed
        if extra:
            raise ConfigError(f"config error in {path}: unknown key(s) {sorted(extra)} in section {name!r}")
        sections[name] = _Reader(data, name, path)

    s = sections["source"]
    columns = s.get("columns")
    if not isinstance(columns, dict) or set(columns) != {"date", "series", "value"} or not all(
        isinstance(v, str) and v for v in columns.values()
    ):
        raise s._fail("columns", "a mapping with exactly date, series, value -> column names", columns)
    source = SourceConfig(
        kind=s.str("kind", ("duckdb", "bigquery")),
        table=s.str("table", pattern=_TABLE_RE),
        seed_csv=s.path_("seed_csv", root, optional=True),
        columns=dict(columns),
        billing_project=s.data.get("billing_project"),
    )

    series_raw = raw.get("series", "all")
    if series_raw == "all":
        series = None
    elif isinstance(series_raw, list) and series_raw and all(isinstance(x, str) and x for x in series_raw):
        if len(set(series_raw)) != len(series_raw):
            raise ConfigError(f"config error in {path}: series lists a series twice: {series_raw}")
        series = tuple(series_raw)
    else:
        raise ConfigError(f"config error in {path}: series must be \"all\" or a non-empty list of names (got {series_raw!r})")

    f = sections["forecast"]
    levels = f.get("interval_levels")
    if (
        not isinstance(levels, list)
        or not levels
        or not all(isinstance(v, float) and 0 < v < 1 for v in levels)
    ):
        raise f._fail("interval_levels", "a list of levels in (0, 1), e.g. [0.8, 0.95]", levels)
    orders = f.get("candidate_orders")
    if not isinstance(orders, list) or not orders:
        raise f._fail("candidate_orders", "a non-empty list of [p, d, q]", orders)
    candidate_orders = tuple(f.int_list("candidate_orders", 3, o) for o in orders)
    seasonal = f.int_list("seasonal_order", 4)
    if seasonal[3] < 2:
        raise f._fail("seasonal_order", "[P, D, Q, s] with s >= 2", list(seasonal))
    forecast = ForecastConfig(
        horizon_days=f.int("horizon_days"),
        history_days=f.int("history_days", 28),
        interval_levels=tuple(sorted(levels)),
        candidate_orders=candidate_orders,  # type: ignore[arg-type]
        seasonal_order=seasonal,  # type: ignore[arg-type]
        max_iter=f.int("max_iter", 5),
        closure_weeks=f.int("closure_weeks", 2),
        closure_share=f.num("closure_share", 0.0, 1.0),
        explosion_factor=f.num("explosion_factor", 1.0, 1e6),
        warm_start=f.bool("warm_start"),
        series_per_task=f.int("series_per_task"),
        holidays=_holidays(f),
        max_chunks=f.int("max_chunks"),
        order_search=f.str("order_search", ("first_stable", "aic")),
    )
    b = sections["backtest"]
    backtest = BacktestConfig(folds=b.int("folds"), fold_days=b.int("fold_days"), season_length=b.int("season_length"))
    if backtest.folds * backtest.fold_days >= forecast.history_days:
        raise ConfigError(f"config error in {path}: backtest folds * fold_days must be shorter than forecast.history_days")
    g = sections["gate"]
    gate = GateConfig(
        min_improvement_vs_naive=g.num("min_improvement_vs_naive", 0.0, 0.99),
        max_degradation_vs_champion=g.num("max_degradation_vs_champion", 0.0, 10.0),
    )
    v = sections["validation"]
    name_re = re.compile(r"^[A-Za-z0-9_\-]+$")
    validation = ValidationConfig(
        suite=v.str("suite", pattern=name_re),
        series_suite=v.str("series_suite", pattern=name_re),
        min_rows_per_series=v.int("min_rows_per_series"),
        max_gap_days=v.int("max_gap_days"),
        max_staleness_days=v.int("max_staleness_days", 0),
    )
    m = sections["mlflow"]
    alias = m.str("champion_alias", pattern=re.compile(r"^[a-z][a-z0-9_\-]*$"))  # the MLflow UI wants lowercase
    mlflow_cfg = MlflowConfig(
        tracking_uri=resolve_tracking_uri(m.str("tracking_uri"), root),
        artifact_root=m.path_("artifact_root", root),  # type: ignore[arg-type]
        experiment=m.str("experiment"),
        model_prefix=m.str("model_prefix", pattern=re.compile(r"^[A-Za-z0-9_\-.]+$")),
        champion_alias=alias,
    )
    w = sections["warehouse"]
    warehouse = WarehouseConfig(
        kind=w.str("kind", ("duckdb", "bigquery")),
        path=w.path_("path", root),  # type: ignore[arg-type]
        forecasts_table=w.str("forecasts_table", pattern=re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$")),
    )
    a = sections["alerts"]
    alerts = AlertsConfig(
        airflow_base_url=a.str("airflow_base_url").rstrip("/"),
        notify_on_champion_change=a.bool("notify_on_champion_change"),
        channel=a.str("channel"),
    )
    storage_root = sections["storage"].path_("root", root)
    if source.kind == "duckdb" and source.table.count(".") > 1:
        raise ConfigError(f"config error in {path}: source.table for duckdb must be schema.table (got {source.table!r})")
    return Config(
        path=path, source=source, series=series, forecast=forecast, backtest=backtest, gate=gate,
        validation=validation, mlflow=mlflow_cfg, warehouse=warehouse, storage_root=storage_root,  # type: ignore[arg-type]
        alerts=alerts, raw=raw,
    )

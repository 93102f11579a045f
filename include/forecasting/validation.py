"""Validate an extracted snapshot with the Great Expectations suites in include/expectations/.

Two suites: `daily_sales` checks rows; `daily_sales_series` checks a per-series profile (row counts,
calendar gaps, freshness), because GX has no group-by expectation for pandas. Thresholds are GX suite
parameters bound from the config, so the JSON suites hold rules and the YAML holds numbers.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from include.forecasting.config import PROJECT_ROOT, Config

log = logging.getLogger(__name__)

EXPECTATIONS_DIR = PROJECT_ROOT / "include" / "expectations"


class DataValidationError(Exception):
    """The data failed one or more expectations; `report` holds what failed and why."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        super().__init__(report.message())


@dataclass
class FailedExpectation:
    """One failed expectation, reduced to what a person needs to act on it."""

    suite: str
    expectation: str
    column: str | None
    observed: Any
    unexpected_count: int | None = None
    unexpected_examples: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        """A one-line human description."""
        where = f" on column {self.column!r}" if self.column else ""
        parts = [f"{self.expectation}{where}"]
        if self.unexpected_count:
            parts.append(f"{self.unexpected_count} unexpected")
        if self.unexpected_examples:
            parts.append(f"e.g. {self.unexpected_examples[:3]}")
        if self.observed is not None:
            parts.append(f"observed {self.observed}")
        return ", ".join(parts)


@dataclass
class ValidationReport:
    """Outcome of validating one snapshot against both suites."""

    success: bool
    snapshot_sha256: str
    evaluated: int
    failures: list[FailedExpectation]
    results: dict[str, Any] = field(repr=False, default_factory=dict)  # full GX results, JSON-ready

    def message(self) -> str:
        """Multi-line message naming each failed expectation with observed values."""
        if self.success:
            return f"all {self.evaluated} expectations passed"
        lines = [f"{len(self.failures)} of {self.evaluated} expectations failed on snapshot {self.snapshot_sha256[:12]}:"]
        lines += [f"- [{f.suite}] {f.describe()}" for f in self.failures]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the full GX results)."""
        return {
            "success": self.success,
            "snapshot_sha256": self.snapshot_sha256,
            "evaluated": self.evaluated,
            "failures": [f.__dict__ for f in self.failures],
        }


def load_suite_definition(name: str, directory: Path = EXPECTATIONS_DIR) -> dict[str, Any]:
    """Read include/expectations/<name>.json."""
    path = directory / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"expectation suite {name!r} not found at {path}")
    return json.loads(path.read_text())


def series_profile(frame: pd.DataFrame, window_end: dt.date) -> pd.DataFrame:
    """One row per series: rows, longest calendar gap, days since the newest row (window_end exclusive)."""
    rows = []
    clean = frame.dropna(subset=["sales_date", "series_id"])
    for series_id, group in clean.groupby("series_id", sort=True):
        dates = pd.DatetimeIndex(group["sales_date"].drop_duplicates().sort_values())
        gaps = dates.to_series().diff().dt.days.dropna()
        rows.append(
            {
                "series_id": str(series_id),
                "n_rows": int(len(group)),
                "max_gap_days": int(gaps.max()) if len(gaps) else 0,
                # window_end is exclusive: data through window_end - 1 day is 0 days stale.
                "days_since_last_row": int((pd.Timestamp(window_end) - dates.max()).days - 1),
            }
        )
    return pd.DataFrame(rows, columns=["series_id", "n_rows", "max_gap_days", "days_since_last_row"])


def suite_parameters(config: Config, frame: pd.DataFrame, window_end: dt.date) -> dict[str, Any]:
    """Bind the suites' $PARAMETERs from the config and the run's data interval."""
    present = sorted(map(str, frame["series_id"].dropna().unique()))
    return {
        # With an explicit series list, only those may appear and all of them must; with "all",
        # every series in the window is known by definition.
        "known_series": list(config.series) if config.series else present,
        "expected_series": list(config.series) if config.series else [],
        "last_allowed_date": (pd.Timestamp(window_end) - pd.Timedelta(days=1)).to_pydatetime(),
        "min_rows_per_series": config.validation.min_rows_per_series,
        "max_gap_days": config.validation.max_gap_days,
        "max_staleness_days": config.validation.max_staleness_days,
    }


def _run_suite(context: Any, definition: dict[str, Any], frame: pd.DataFrame, params: dict[str, Any]) -> Any:
    import great_expectations as gx

    suite = context.suites.add(gx.ExpectationSuite(**definition))
    source = context.data_sources.add_pandas(f"src_{definition['name']}")
    asset = source.add_dataframe_asset(name=definition["name"])
    batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": frame})
    return batch.validate(suite, result_format="SUMMARY", expectation_parameters=params)


def _failures(suite: str, result: Any) -> list[FailedExpectation]:
    out = []
    for r in result.results:
        if r.success:
            continue
        config = r.expectation_config
        res = r.result or {}
        error = (r.exception_info or {}).get("exception_message") if isinstance(r.exception_info, dict) else None
        out.append(
            FailedExpectation(
                suite=suite,
                expectation=config.type,
                column=config.kwargs.get("column") or (",".join(config.kwargs.get("column_list", [])) or None),
                observed=_jsonable(res.get("observed_value", error)),
                unexpected_count=res.get("unexpected_count"),
                unexpected_examples=_jsonable(res.get("partial_unexpected_list") or [])[:5],
                kwargs=_jsonable({k: v for k, v in config.kwargs.items() if k not in ("batch_id",)}),
            )
        )
    return out


def _jsonable(value: Any) -> Any:
    """Plain JSON values; NaN/inf become strings, because XCom and Slack payloads must be strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return _jsonable(json.loads(json.dumps(value, default=str)))


def validate_frame(frame: pd.DataFrame, config: Config, window_end: dt.date, snapshot_sha256: str = "") -> ValidationReport:
    """Run both suites on the frame and return a report; never raises for failed expectations."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # keep task logs readable
    params = suite_parameters(config, frame, window_end)
    results: dict[str, Any] = {}
    failures: list[FailedExpectation] = []
    evaluated = 0
    inputs = [
        (config.validation.suite, frame),
        (config.validation.series_suite, series_profile(frame, window_end)),
    ]
    for suite_name, data in inputs:
        result = _run_suite(context, load_suite_definition(suite_name), data, params)
        results[suite_name] = result.to_json_dict()
        evaluated += len(result.results)
        failures += _failures(suite_name, result)
    report = ValidationReport(not failures, snapshot_sha256, evaluated, failures, results)
    log.info("validation of %s: %s", snapshot_sha256[:12], report.message())
    return report


def save_report(report: ValidationReport, root: Path) -> Path:
    """Write the full report (summary + GX results) to <root>/validation/<hash>.json."""
    target = root / "validation" / f"{report.snapshot_sha256[:20] or 'unknown'}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({**report.to_dict(), "gx_results": report.results}, indent=2, default=str))
    return target

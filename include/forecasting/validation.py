"""Validate an extracted snapshot with the Great Expectations suites in include/expectations/.

Three steps, each naming what failed:
1. The panel's cadence (frequency.panel_cadence): the one most series show. A series off it (a row dated
   on another weekday, weekly totals in a daily panel) is quarantined naming its dates, and gets no
   fallback; a panel with no such cadence, or misfits that are panel-wide, blocks the run, naming the
   series and the cadences found.
2. `daily_sales` checks rows. A failure blocks the run (no training), naming the rule, the config key that
   sets it where there is one, and example rows (series, date, value). Rules marked `meta.per_series` (a
   negative or empty value, a missing date, ...) are traced to the series whose rows break them: those
   series are quarantined with series, date and rule, and get no fallback (nothing is published from rows
   known to be bad), unless `validation.on_bad_rows` is "block" or the bad rows are panel-wide.
3. `daily_sales_series` checks a per-series profile (`series_profile`: periods of history, the longest hole
   in the data inside it and the data's staleness, in periods), because GX has no group-by expectation
   for pandas. A failing series is *quarantined* (not trained; its champion and
   published rows stay; a series with no champion gets a flagged fallback forecast), never the whole run,
   unless every series fails.
4. The anomaly rules (include/forecasting/anomaly.py) judge the newest periods of each series, and of the
   panel's total, against their own recent past. A flagged series is quarantined with no fallback (it
   would copy the suspect rows); panel-wide findings block the run.
Thresholds are GX suite parameters bound from the config, so the JSON suites hold rules and the YAML holds
numbers. An expectation whose `meta.only_if` names a `validation` flag runs only when that flag is true.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from include.forecasting.anomaly import is_panel_wide
from include.forecasting.config import PROJECT_ROOT, Config
from include.forecasting.frequency import Cadence, CadenceError, PanelCadence, panel_cadence

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
    rule: str | None = None  # what the expectation means, in words (the suite's meta.rule)
    config_key: str | None = None  # the config key that sets or switches the rule, if any
    rows: list[dict[str, Any]] = field(default_factory=list)  # offending rows: series_id, sales_date, value
    per_series: bool = False  # the suite marks the rule as one a series breaks on its own (meta.per_series)
    # Every series with an offending row -> {"n": its offending rows, "rows": the first 3}, when all of
    # them are known (a rule without rows, or a row without a series id, leaves this empty: such a
    # failure cannot be pinned on series).
    series: dict[str, dict[str, Any]] = field(default_factory=dict)

    def describe(self) -> str:
        """A one-line human description: rule, config key, offending rows."""
        where = f" on column {self.column!r}" if self.column else ""
        parts = [f"{self.expectation}{where}"]
        if self.rule:
            parts.append(f"rule: {self.rule}" + (f" (config {self.config_key})" if self.config_key else ""))
        if self.unexpected_count:
            parts.append(f"{self.unexpected_count} unexpected")
        if self.rows:
            parts.append("e.g. " + "; ".join(row_text(r) for r in self.rows[:3]))
        elif self.unexpected_examples:
            parts.append(f"e.g. {self.unexpected_examples[:3]}")
        if self.observed is not None:
            parts.append(f"observed {self.observed}")
        return ", ".join(parts)


def row_text(row: dict[str, Any]) -> str:
    """One offending row of a failure as messages print it ("series 'X' on 2025-05-03: value -5.0"; a row
    without a series name, a date or a value says so), or a series and the reason it is unusable."""
    if "sales_date" not in row:  # a per-series finding (the reason a series is unusable), not a row
        return f"series {row.get('series_id')!r}: {row.get('value')}"
    series = f"series {row['series_id']!r}" if _named(row.get("series_id")) else "a row without a series name"
    date = str(row["sales_date"])[:10] if _present(row["sales_date"]) else "no date"
    value = repr(row.get("value")) if _present(row.get("value")) else "empty"
    return f"{series} on {date}: value {value}"


def _present(cell: Any) -> bool:
    """Whether a cell of an offending row holds something (not null or NaN)."""
    return cell is not None and str(cell) not in ("", "NaT", "nan")


@dataclass
class ValidationReport:
    """Outcome of validating one snapshot against both suites."""

    success: bool
    snapshot_sha256: str
    evaluated: int
    failures: list[FailedExpectation]
    results: dict[str, Any] = field(repr=False, default_factory=dict)  # full GX results, JSON-ready
    cadence: str | None = None
    quarantined: dict[str, str] = field(default_factory=dict)  # series -> the per-series rule it failed
    bad_rows: list[str] = field(default_factory=list)  # quarantined for rows breaking a row rule or flagged as anomalous: no fallback
    # Set when the panel has a hole longer than validation.max_gap_periods: the first period used (ISO date)
    # and why; the periods before it were left out of everything validated and trained.
    history_start: str | None = None
    notes: list[str] = field(default_factory=list)
    # validation.negative_values "zero": the rows read as no sale ({series_id, date, value}); what trains is
    # the frame with those values at 0 (`negatives_as_no_sale`).
    negatives_zeroed: list[dict[str, Any]] = field(default_factory=list)

    def message(self) -> str:
        """Multi-line message naming each failed expectation with observed values."""
        if self.success:
            extra = f"; {len(self.quarantined)} series quarantined" if self.quarantined else ""
            return f"all {self.evaluated} run-level expectations passed ({self.cadence}){extra}" + "".join(f"; {n}" for n in self.notes)
        lines = [f"{len(self.failures)} of {self.evaluated} expectations failed on snapshot {self.snapshot_sha256[:12]}:"]
        lines += [f"- [{f.suite}] {f.describe()}" for f in self.failures]
        lines += [f"- note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the full GX results)."""
        return {
            "success": self.success,
            "snapshot_sha256": self.snapshot_sha256,
            "evaluated": self.evaluated,
            "failures": [_jsonable(f.__dict__) for f in self.failures],
            "cadence": self.cadence,
            "quarantined": self.quarantined,
            "bad_rows": self.bad_rows,
            "history_start": self.history_start,
            "notes": self.notes,
            "negatives_zeroed": self.negatives_zeroed,
        }


def load_suite_definition(name: str, directory: Path = EXPECTATIONS_DIR) -> dict[str, Any]:
    """Read include/expectations/<name>.json."""
    path = directory / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"expectation suite {name!r} not found at {path}")
    return json.loads(path.read_text())


def series_profile(frame: pd.DataFrame, window_end: dt.date, cadence: Cadence) -> pd.DataFrame:
    """One row per series, in periods of the cadence, as training sees the series: laid on the grid from
    its first row to the last period before `window_end`, a period without its row being a period without a
    sale (a slow mover reports only the days it sold; a product that stopped selling is a run of zeros,
    which the anomaly rules judge against its own history).

    - `n_periods`: periods of history (from its first row through the last period);
    - `periods_since_last_row`: periods from the panel's newest row to the last period (the data is stale).

    Holes where the panel has no row at all are `history_start`'s: the frame starts after the last long one.
    """
    clean = frame.dropna(subset=["sales_date", "series_id"])
    columns = ["series_id", "n_periods", "periods_since_last_row"]
    if clean.empty:
        return pd.DataFrame(columns=columns)
    from include.forecasting.training import period_label

    last_period = cadence.last_period_before(pd.Timestamp(window_end))
    labels = period_label(clean["sales_date"], cadence)
    panel = pd.DatetimeIndex(labels.unique()).sort_values()
    grid = cadence.grid(min(panel.min(), last_period), last_period)
    newest = panel[panel <= last_period].max() if (panel <= last_period).any() else panel.min()
    stale = int((grid > newest).sum())
    firsts = pd.Series(labels, index=clean.index).groupby(clean["series_id"].to_numpy(), sort=True).min()
    rows = [{"series_id": str(s), "n_periods": int((grid >= first).sum()), "periods_since_last_row": stale} for s, first in firsts.items()]
    return pd.DataFrame(rows, columns=columns)


# At most this many rows after a long hole are listed in its note by series and date.
_FEW_ROWS = 3


def history_start(frame: pd.DataFrame, window_end: dt.date, cadence: Cadence, max_gap: int) -> tuple[pd.Timestamp | None, str | None]:
    """The first period after the panel's last hole longer than `max_gap` periods, and a note naming the
    hole; (None, None) when there is none.

    A hole is a run of periods in which no series has a row: a closure (a lockdown, a renovation) or a
    delivery that never came. Nothing in the data tells its zeros from missing data, so the history before
    it is not used: every series starts after it, and one left with too little history is quarantined by
    `validation.min_rows_per_series` (a hole just before the end thus still stops the run, naming it).
    Holes after the panel's newest row are staleness (`max_staleness_periods`), not a gap.
    """
    from include.forecasting.training import period_label

    dates = frame["sales_date"].dropna()
    if dates.empty:
        return None, None
    last_period = cadence.last_period_before(pd.Timestamp(window_end))
    panel = pd.DatetimeIndex(period_label(dates, cadence).unique()).sort_values()
    panel = panel[panel <= last_period]
    if len(panel) < 2:
        return None, None
    grid = cadence.grid(panel.min(), panel.max())
    held = np.flatnonzero(grid.isin(panel))
    holes = np.diff(held) - 1
    long = np.flatnonzero(holes > max_gap)
    if not len(long):
        return None, None
    k = long[-1]
    start, first, last = grid[held[k + 1]], grid[held[k] + 1], grid[held[k + 1] - 1]
    note = (
        f"history from {start:%Y-%m-%d}: no series has a row from {first:%Y-%m-%d} to {last:%Y-%m-%d} "
        f"({holes[k]} periods, more than validation.max_gap_periods {max_gap}), so the periods before are not used"
    )
    after = frame[np.asarray(period_label(frame["sales_date"], cadence) >= start)]
    if len(after) <= _FEW_ROWS:
        # A reopening brings rows for many series; a row or two after a long hole is more likely mis-dated
        # (a year typed wrong), and the history it cuts off is the whole panel's: say which rows they are.
        rows = ", ".join(f"{r.series_id!r} on {r.sales_date:%Y-%m-%d}" for r in after.sort_values("sales_date").itertuples())
        note += f"; after the hole only {rows}: mis-dated?"
    return start, note


def rows_from(frame: pd.DataFrame, start: pd.Timestamp, cadence: Cadence) -> pd.DataFrame:
    """The rows of periods from `start` on (rows without a date stay, for the row rules to name)."""
    from include.forecasting.training import period_label

    labels = period_label(frame["sales_date"], cadence)
    return frame[np.asarray(labels >= start) | frame["sales_date"].isna().to_numpy()]


def suite_parameters(config: Config, frame: pd.DataFrame, window_end: dt.date, cadence: Cadence) -> dict[str, Any]:
    """Bind the suites' $PARAMETERs from the config, the panel's cadence and the run's data interval."""
    present = sorted(map(str, frame["series_id"].dropna().unique()))
    wanted = config.series_ids
    return {
        # With an explicit series list, only those may appear; with "all", every series in the window is
        # known by definition. A listed series with no rows is quarantined (see validate_frame).
        "known_series": list(wanted) if wanted else present,
        "last_allowed_date": (pd.Timestamp(window_end) - pd.Timedelta(days=1)).to_pydatetime(),
        "min_rows_per_series": config.validation.min_rows(cadence.name),
        "max_staleness_periods": config.validation.max_staleness_periods,
    }


def _active(definition: dict[str, Any], config: Config) -> dict[str, Any]:
    """The suite without expectations switched off by a `validation` flag (meta.only_if)."""
    keep = [e for e in definition["expectations"] if not (e.get("meta") or {}).get("only_if") or getattr(config.validation, e["meta"]["only_if"])]
    return {**definition, "expectations": keep}


def _run_suite(context: Any, definition: dict[str, Any], frame: pd.DataFrame, params: dict[str, Any]) -> Any:
    import great_expectations as gx

    suite = context.suites.add(gx.ExpectationSuite(**definition))
    source = context.data_sources.add_pandas(f"src_{definition['name']}")
    asset = source.add_dataframe_asset(name=definition["name"])
    batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": frame})
    # The index columns make every failure name its rows (series and date), not only the bad values.
    # COMPLETE: every offending row, so a per-series rule can be traced to all the series that break it.
    index = [c for c in ("series_id", "sales_date", "value") if c in frame.columns]
    result_format = {"result_format": "COMPLETE", "unexpected_index_column_names": index}
    return batch.validate(suite, result_format=result_format, expectation_parameters=params)


def _failures(suite: str, result: Any) -> list[FailedExpectation]:
    out = []
    for r in result.results:
        if r.success:
            continue
        config = r.expectation_config
        res = r.result or {}
        error = (r.exception_info or {}).get("exception_message") if isinstance(r.exception_info, dict) else None
        meta = config.meta or {}
        every = res.get("unexpected_index_list") or []
        traced = bool(every) and res.get("unexpected_count") == len(every) and all(isinstance(r, dict) and _named(r.get("series_id")) for r in every)
        out.append(
            FailedExpectation(
                suite=suite,
                expectation=config.type,
                column=config.kwargs.get("column") or (",".join(config.kwargs.get("column_list", [])) or None),
                observed=_jsonable(res.get("observed_value", error)),
                unexpected_count=res.get("unexpected_count"),
                unexpected_examples=_jsonable(res.get("partial_unexpected_list") or [])[:5],
                kwargs=_jsonable({k: v for k, v in config.kwargs.items() if k not in ("batch_id",)}),
                rule=meta.get("rule"),
                config_key=meta.get("config_key"),
                rows=_jsonable(every or res.get("partial_unexpected_index_list") or [])[:20],
                per_series=bool(meta.get("per_series")),
                series=_by_series(_jsonable(every)) if traced else {},
            )
        )
    return out


def _named(series_id: Any) -> bool:
    """Whether a row's series id is a name (not null, NaN or empty)."""
    return isinstance(series_id, str) and series_id != ""


def _by_series(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Offending rows grouped by series: how many, and the first 3."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = out.setdefault(str(row["series_id"]), {"n": 0, "rows": []})
        entry["n"] += 1
        if len(entry["rows"]) < 3:
            entry["rows"].append(row)
    return dict(sorted(out.items()))


def _jsonable(value: Any) -> Any:
    """Plain JSON values; NaN/inf become strings, because XCom and Slack payloads must be strict JSON."""
    if value is pd.NA or value is pd.NaT:  # a missing id or date of an offending row: null, not "<NA>"
        return None
    if isinstance(value, np.generic):  # numpy scalars (an int64 value) as the number, not its text
        value = value.item()
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    return _jsonable(json.loads(json.dumps(value, default=str)))


def negatives_as_no_sale(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The frame with every finite negative value set to 0 (no sale), and those rows as {series_id, date,
    value}: `validation.negative_values: zero`, for sources that net returns into the day's sales.
    NaN and infinite values are left for the row rules to name."""
    values = pd.to_numeric(frame["value"], errors="coerce")
    negative = (values < 0) & np.isfinite(values)
    if not negative.any():
        return frame, []
    rows = [
        {"series_id": str(r.series_id), "date": pd.Timestamp(r.sales_date).date().isoformat(), "value": float(r.value)}
        for r in frame.loc[negative, ["series_id", "sales_date", "value"]].itertuples(index=False)
    ]
    return frame.assign(value=frame["value"].mask(negative, 0)), rows


def negatives_as_configured(frame: pd.DataFrame, config: Config) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The frame as validation judges it and training reads it under `validation.negative_values`:
    "zero" reads negative values as no sale (`negatives_as_no_sale`), "refuse" leaves them for the row
    rules. The one place the policy is read (validation, and the monitor's actuals)."""
    return negatives_as_no_sale(frame) if config.validation.negative_values == "zero" else (frame, [])


def running_period_note(frame: pd.DataFrame, window_end: dt.date, cadence: Cadence) -> str | None:
    """The report's note on rows of a period still running at the run's date (a month dated on its first
    day, mid-month), which the run leaves out and forecasts (`Cadence.last_period_before`); None if none."""
    last = cadence.last_period_before(pd.Timestamp(window_end))
    running = frame[pd.to_datetime(frame["sales_date"]) > last]
    if running.empty:
        return None
    label = pd.Timestamp(running["sales_date"].min())
    return (
        f"{label:%Y-%m-%d} is a period still running on {window_end} (it ends {cadence.period_end(label):%Y-%m-%d}): "
        f"its rows ({running['series_id'].nunique()} series) are left out of this run, which forecasts it"
    )


def _zeroed_note(rows: list[dict[str, Any]]) -> str:
    """The report's note on the negative values read as no sale: how many, in how many series, examples."""
    examples = "; ".join(f"{r['series_id']} {r['date']}: {r['value']:g}" for r in rows[:5])
    more = f"; and {len(rows) - 5} more" if len(rows) > 5 else ""
    series = len({r["series_id"] for r in rows})
    return f"{len(rows)} negative value(s) in {series} series read as no sale (validation.negative_values: zero): {examples}{more}"


def validate_frame(
    frame: pd.DataFrame,
    config: Config,
    window_end: dt.date,
    snapshot_sha256: str = "",
    raw_duplicates: list[dict[str, Any]] | None = None,
    delivery_rows: list[dict[str, Any]] | None = None,
) -> ValidationReport:
    """Check the cadence, run both suites and the anomaly rules, and return a report; never raises for
    failed checks. `raw_duplicates` and `delivery_rows` come from extract's checks of the raw source
    (repeated keys; rows per date), made before aggregation."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX logs ~10 INFO lines per expectation ("_get_default_value called with key ..."): third-party
    # noise that buried the real failure in task logs. Its warnings and errors still show.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    frame, zeroed = negatives_as_configured(frame, config)
    try:
        found = panel_cadence(frame, config.source.frequency, config.source.week_dated_on)
        misfits = _cadence_misfits(found, int(frame["series_id"].nunique()), config)
    except CadenceError as exc:
        failure = FailedExpectation("cadence", "single_cadence", None, str(exc), rule=exc.rule, config_key="source.frequency")
        report = ValidationReport(False, snapshot_sha256, 1, [failure])
        log.info("validation of %s: %s", snapshot_sha256[:12], report.message())
        return report
    cadence = found.cadence
    # A misfit's rows cannot be laid on the panel's grid: the rules below judge the others.
    frame = frame[~frame["series_id"].isin(list(misfits))].reset_index(drop=True) if misfits else frame
    # Judged before `history_start`: a date typed years ahead leaves a hole before it, and the real rows
    # would be cut off as the history before that hole.
    ragged = _ragged_end(frame, window_end, cadence, config)
    start, note = history_start(frame, window_end, cadence, config.validation.max_gap_periods)
    if start is not None:
        log.warning("validation of %s: %s", snapshot_sha256[:12], note)
        frame = rows_from(frame, start, cadence)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # keep task logs readable
    params = suite_parameters(config, frame, window_end, cadence)
    results: dict[str, Any] = {}
    rows = _run_suite(context, _active(load_suite_definition(config.validation.suite), config), frame, params)
    results[config.validation.suite] = rows.to_json_dict()
    failures = _failures(config.validation.suite, rows)
    evaluated = len(rows.results)
    bad_rows, failures = _bad_row_quarantines(failures, int(frame["series_id"].nunique()), config)
    twins, twin_failure = _name_twins(frame, config)
    failures += [twin_failure] if twin_failure else []
    if ragged:
        failures.append(FailedExpectation("anomaly", "anomaly_policy", None, ragged, rule="no anomalous delivery", config_key="validation.max_staleness_periods / anomaly.on_panel"))
    profile = series_profile(frame, window_end, cadence)
    quarantined: dict[str, str] = {}
    young: set[str] = set()  # series whose only fault is too little history
    if not profile.empty:
        per_series = _run_suite(context, load_suite_definition(config.validation.series_suite), profile, params)
        results[config.validation.series_suite] = per_series.to_json_dict()
        evaluated += len(per_series.results)
        series_failures = _failures(config.validation.series_suite, per_series)
        quarantined, untraced = _quarantine(series_failures, profile, params)
        failures += untraced
        young = set(quarantined) - {s for f in series_failures if f.column != "n_periods" for s in f.series}
    bad_rows.update(misfits)
    for series_id, reason in twins.items():
        bad_rows[series_id] = "; ".join(filter(None, [bad_rows.get(series_id), reason]))
    for series_id, reason in bad_rows.items():
        quarantined[series_id] = "; ".join(filter(None, [reason, quarantined.get(series_id)]))
    for series_id in config.series_ids or ():
        if series_id not in set(profile["series_id"]) and series_id not in quarantined:
            quarantined[series_id] = "no rows in the history window"
    if not failures:
        flagged, blocking = _anomalies(frame, config, window_end, cadence, raw_duplicates or [], set(quarantined), delivery_rows or [])
        for series_id, reason in flagged.items():
            quarantined[series_id] = "; ".join(filter(None, [quarantined.get(series_id), reason]))
            # Suspect rows, like bad ones, give no fallback: seasonal naive would copy the spike, the doubled
            # delivery, the new unit or the outage's zeros into the published forecast.
            bad_rows.setdefault(series_id, reason)
        if blocking:
            failures.append(FailedExpectation("anomaly", "anomaly_policy", None, blocking, rule="no anomalous delivery", config_key="anomaly.on_panel / anomaly.on_series"))
    # Every series quarantined is a broken delivery (stale data, a hole just before the end) and blocks,
    # unless the panel is only young: then each series gets its fallback forecast (a champion keeps serving).
    only_young = start is None and bool(young) and set(quarantined) - set(bad_rows) <= young
    if not failures and profile.shape[0] and set(profile["series_id"]) <= set(quarantined) and not only_young:
        failures.append(
            FailedExpectation(
                config.validation.series_suite, "some_series_usable", "series_id", f"all {len(profile)} series quarantined",
                rule="at least one series passes the per-series rules", rows=[{"series_id": s, "value": r} for s, r in list(quarantined.items())[:5]],
            )
        )
    report = ValidationReport(
        not failures, snapshot_sha256, evaluated, failures, results, cadence.label, quarantined, sorted(bad_rows),
        history_start=None if start is None else start.date().isoformat(), notes=[note] if note else [],
        negatives_zeroed=zeroed,
    )
    if zeroed:
        report.notes.append(_zeroed_note(zeroed))
    running = running_period_note(frame, window_end, cadence)
    if running:
        report.notes.append(running)
    log.info("validation of %s: %s", snapshot_sha256[:12], report.message())
    for series_id, reason in quarantined.items():
        log.warning("series %r quarantined by validation: %s", series_id, reason)
    return report


def _anomalies(
    frame: pd.DataFrame,
    config: Config,
    window_end: dt.date,
    cadence: Cadence,
    duplicates: list[dict[str, Any]],
    skip: set[str],
    delivery_rows: list[dict[str, Any]],
) -> tuple[dict[str, str], str | None]:
    """Anomaly findings per series and per delivery (include/forecasting/anomaly.py) turned into
    quarantines or a block."""
    from include.forecasting import anomaly
    from include.forecasting.holiday_effects import holiday_names
    from include.forecasting.training import period_label, period_series

    findings = anomaly.duplicate_findings(duplicates)
    end = pd.Timestamp(window_end)
    clean = frame.dropna(subset=["sales_date", "series_id", "value"])
    judged = []
    for series_id, rows in clean.groupby("series_id", sort=True):
        if str(series_id) in skip:
            continue
        judged.append(period_series(rows, str(series_id), end, cadence))
        findings += anomaly.series_findings(judged[-1], cadence, config.anomaly)
    rows = pd.DataFrame(delivery_rows, columns=["sales_date", "n_rows"]).astype({"sales_date": "datetime64[ns]"})
    holidays = None
    if cadence.name == "daily" and config.forecast.holidays is not None:
        calendar = config.forecast.holidays.calendar()
        holidays = pd.DatetimeIndex(holiday_names(calendar, end - pd.Timedelta(days=120), end).index)
    panel = anomaly.delivery_findings(rows, cadence, config.anomaly, lambda d: period_label(d, cadence), holidays)
    if judged:  # the panel's total on the grid, each series counted from its first period
        panel += anomaly.panel_zero_run(pd.concat(judged, axis=1).fillna(0.0).sum(axis=1).sort_index(), cadence, config.anomaly)
    for f in findings + panel:
        log.warning("anomaly in %r: %s", f.series_id, f.text())
    return anomaly.apply_policy(findings, int(clean["series_id"].nunique()), config.anomaly, panel)


def _ragged_end(frame: pd.DataFrame, window_end: dt.date, cadence: Cadence, config: Config) -> str | None:
    """The run-blocking message of `anomaly.ragged_end` on the extracted rows (rows dated ahead of the rest
    of the panel), or None: none found, or `anomaly.on_panel` is "quarantine" (the per-series rules judge
    each series' zeros instead)."""
    from include.forecasting import anomaly

    clean = frame.dropna(subset=["sales_date", "series_id"])
    if clean.empty:
        return None
    newest, periods = anomaly.newest_rows(clean["sales_date"], clean["series_id"], cadence, cadence.last_period_before(pd.Timestamp(window_end)))
    found = anomaly.ragged_end(newest, periods, cadence, config.anomaly, config.validation.max_staleness_periods)
    for f in found:
        log.warning("anomaly in %r: %s", f.series_id, f.text())
    return anomaly.apply_policy([], int(clean["series_id"].nunique()), config.anomaly, found)[1]


def _some_names(series: Any) -> str:
    """The first three of these series ids, sorted and quoted, then "..." if there are more: a panel-wide
    refusal names examples, short enough for an alert line (clipped at 250 characters)."""
    ids = sorted(series)
    return ", ".join(repr(s) for s in ids[:3]) + (", ..." if len(ids) > 3 else "")


def _cadence_misfits(found: PanelCadence, n_series: int, config: Config) -> dict[str, str]:
    """Series off the panel's cadence -> the quarantine reason naming their dates; raises CadenceError
    (the run is blocked) when they are panel-wide (`anomaly.panel_share` of the series, and 2 or more: a
    panel of mixed cadences, not a few mis-dated series) or `validation.on_bad_rows` is "block"."""
    if not found.misfits:
        return {}
    if config.validation.on_bad_rows == "block" or is_panel_wide(len(found.misfits), n_series, config.anomaly.panel_share):
        names = _some_names(found.misfits)
        raise CadenceError(f"{found.refusal()} Off the panel's {found.cadence.label} cadence: {len(found.misfits)} of {n_series} series ({names}).")
    return {s: f"bad rows (one cadence per panel): {why} (config source.frequency)" for s, why in sorted(found.misfits.items())}


def _name_twins(frame: pd.DataFrame, config: Config) -> tuple[dict[str, str], FailedExpectation | None]:
    """Series ids that differ only in case, spacing or punctuation (`Black Velvet` beside `BLACK VELVET`)
    and never have a row on the same date: one product whose rows were split by a name typed another way
    (one registered model name, `keys.slug`). The id with the most rows keeps the name; each other is
    quarantined as bad rows (no fallback: it would publish a second forecast of the same product) with a
    reason naming both. Twins in `anomaly.panel_share` of the series (2 or more: a delivery whose names
    changed case) block the run. Two such ids with rows on the same dates are two products: the registry
    keeps the first and quarantines the other as a slug collision."""
    from include.forecasting.keys import slug

    rows = frame.dropna(subset=["series_id", "sales_date"])
    text = rows["series_id"].astype(str)
    every = sorted(text.unique())
    by_slug: dict[str, list[str]] = {}
    for series_id in every:
        by_slug.setdefault(slug(series_id), []).append(series_id)
    groups = [ids for ids in by_slug.values() if len(ids) > 1]
    # Dates only for the ids that share a name: a set per series of a large panel would cost seconds.
    shared = rows[text.isin([s for ids in groups for s in ids])]
    dates = {str(s): set(g["sales_date"]) for s, g in shared.groupby("series_id")}
    twins: dict[str, str] = {}
    for ids in groups:
        keeper = sorted(ids, key=lambda s: (-len(dates[s]), s))[0]  # most rows; a tie keeps the first name
        for other in ids:
            if other != keeper and not dates[other] & dates[keeper]:
                n = len(dates[other])
                twins[other] = (
                    f"bad rows (one name per series): {other!r} ({n} row{'s' * (n != 1)}, none on a date of the other) is "
                    f"{keeper!r} ({len(dates[keeper])} rows) written another way (case, spaces or punctuation): rename its rows at the source"
                )
    if not twins or not is_panel_wide(len(twins), len(every), config.anomaly.panel_share):
        return twins, None
    names = _some_names(twins)
    return {}, FailedExpectation(
        "names", "one_name_per_series", "series_id", f"{len(twins)} of {len(every)} series are another series' name written another way: {names}",
        rule="one name per series (ids that differ only in case, spaces or punctuation)", config_key="anomaly.panel_share",
    )


def _bad_row_quarantines(failures: list[FailedExpectation], n_series: int, config: Config) -> tuple[dict[str, str], list[FailedExpectation]]:
    """Split row-rule failures into series to quarantine (series -> which rule, dates and values) and
    failures that still block the run.

    A failure is pinned on series when its rule is marked `meta.per_series` and every offending row names
    its series. With `validation.on_bad_rows: block`, or when the pinned series are panel-wide (at least
    `anomaly.panel_share` of the series, and 2 or more: a broken delivery, not one bad series), or when
    any failure cannot be pinned, nothing is quarantined here and every failure blocks.
    """
    pinned = [f for f in failures if f.per_series and f.series]
    series = {s for f in pinned for s in f.series}
    panel_wide = is_panel_wide(len(series), n_series, config.anomaly.panel_share)
    if not pinned or len(pinned) < len(failures) or config.validation.on_bad_rows == "block" or panel_wide:
        if pinned and panel_wide and config.validation.on_bad_rows == "quarantine":
            # Short, key first: alert lines are clipped at 250 characters.
            names = _some_names(series)
            share = config.anomaly.panel_share
            failures = [
                *failures,
                FailedExpectation(
                    pinned[0].suite, "bad_rows_not_panel_wide", "series_id", f"bad rows in {len(series)} of {n_series} series (anomaly.panel_share {share:g}): {names}",
                    rule="panel-wide bad rows block the run", config_key="anomaly.panel_share",
                ),
            ]
        return {}, failures
    reasons: dict[str, list[str]] = {}
    for f in pinned:
        for series_id, found in f.series.items():
            # The offending cell, unless it is the series id itself (the key the reason is filed under).
            column = f.column if f.column and f.column != "series_id" else None
            shown = "; ".join(_bad_row_text(r, column) for r in found["rows"])
            more = f" and {found['n'] - len(found['rows'])} more" if found["n"] > len(found["rows"]) else ""
            reasons.setdefault(series_id, []).append(f"bad rows ({f.rule or f.expectation}): {shown}{more}")
    return {s: "; ".join(r) + " (fix the source rows; config validation.on_bad_rows)" for s, r in sorted(reasons.items())}, []


def _bad_row_text(row: dict[str, Any], column: str | None) -> str:
    """One offending row in a quarantine reason: its date and the offending cell, or "a row without a
    date" (a seed CSV's unreadable date: the load's warning names its line). An empty cell says so rather
    than showing the NaN it was loaded as: a seed CSV's text that is not a number ('12 kg') is loaded
    empty too, and the load's warning names its line and text."""
    if column == "sales_date":
        return "a row without a date"
    if not column:
        return str(row.get("sales_date", "?"))[:10]
    cell = row.get(column)
    return str(row.get("sales_date", "?"))[:10] + (f" {column} {cell!r}" if _present(cell) else f" {column} empty or not a number")


def _quarantine(failures: list[FailedExpectation], profile: pd.DataFrame, params: dict[str, Any]) -> tuple[dict[str, str], list[FailedExpectation]]:
    """series -> the per-series rules it failed, with its observed value and the limit; and the failures
    that name no series (they block the run: a rule nobody can be quarantined for must not pass).

    Every series a rule fails is quarantined, not only the examples a failure keeps for its message
    (`rows`, the first 20): stale data in a 1,000-series panel quarantines all 1,000, which blocks the run.
    """
    by_id = profile.set_index("series_id")
    out: dict[str, list[str]] = {}
    untraced = []
    for f in failures:
        if not f.series:
            untraced.append(f)
            continue
        column = f.column or ""
        limits = {k: v for k, v in f.kwargs.items() if k in ("min_value", "max_value")}
        limit = ", ".join(f"{k.split('_')[0]} {_param_value(v, params)}" for k, v in limits.items())
        for series_id, found in f.series.items():
            observed = by_id.loc[series_id, column] if column in by_id.columns and series_id in by_id.index else found["rows"][0].get("value")
            out.setdefault(series_id, []).append(f"{f.rule or f.expectation}: {column} {observed} ({limit}; config {f.config_key})")
    return {s: "; ".join(r) for s, r in sorted(out.items())}, untraced


def _param_value(value: Any, params: dict[str, Any]) -> Any:
    value = params.get(value["$PARAMETER"]) if isinstance(value, dict) and "$PARAMETER" in value else value
    # GX hands limits back as floats: "min 60", not "min 60.0", for a count.
    return int(value) if isinstance(value, float) and value.is_integer() else value


def save_report(report: ValidationReport, root: Path) -> Path:
    """Write the full report (summary + GX results) to <root>/validation/<hash>.json."""
    target = root / "validation" / f"{report.snapshot_sha256[:20] or 'unknown'}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({**report.to_dict(), "gx_results": report.results}, indent=2, default=str))
    return target

"""Slack message builders: pure functions from run facts + results to a Block Kit payload.

The notifier in plugins/ extracts `RunInfo` from the Airflow context and sends; everything that decides
what the on-call person reads lives here and is unit-tested on real validation and gate results.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

MAX_TEXT = 2900  # Slack section text limit is 3,000 characters
MAX_ITEMS = 10  # list at most this many failures / series, then "... and N more"
RUN_LEVEL = "(dag run)"  # RunInfo.task_id of an alert about a whole run (a timeout, a late run)


@dataclass(frozen=True)
class RunInfo:
    """What identifies the failed (or noteworthy) task instance."""

    dag_id: str
    task_id: str
    run_id: str
    logical_date: str
    try_number: int | None = None
    max_tries: int | None = None
    map_index: int = -1
    base_url: str = "http://127.0.0.1:8080"

    @property
    def run_url(self) -> str:
        """Link to the DAG run in the Airflow 3 UI (its grid of tasks)."""
        return f"{self.base_url}/dags/{quote(self.dag_id)}/runs/{quote(self.run_id, safe='')}"

    @property
    def log_url(self) -> str:
        """Link to the task instance's log in the Airflow 3 UI; the run's page for a run-level alert."""
        if self.task_id == RUN_LEVEL:
            return self.run_url
        url = f"{self.run_url}/tasks/{quote(self.task_id)}"
        return url + (f"/mapped/{self.map_index}" if self.map_index >= 0 else "")


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 20] + "\n… (truncated)"


def _bullets(lines: list[str]) -> str:
    # Clip each line so the lines shown plus the "and N more" count always fit in one section: 250
    # characters each for MAX_ITEMS lines, more for fewer (a single failure keeps its rule and config key
    # after a long observed message: a mixed cadence's series, a young panel's dates).
    limit = max(250, 2400 // max(1, min(len(lines), MAX_ITEMS)))
    shown = [line if len(line) <= limit else line[: limit - 3] + "…" for line in lines[:MAX_ITEMS]]
    more = len(lines) - len(shown)
    return "\n".join(f"• {line}" for line in shown) + (f"\n• … and {more} more" if more > 0 else "")


def _fields(info: RunInfo) -> dict[str, Any]:
    attempt = f"{info.try_number}" + (f" of {info.max_tries + 1}" if info.max_tries is not None else "")
    task = info.task_id + (f" [{info.map_index}]" if info.map_index >= 0 else "")
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": f"*DAG*\n{info.dag_id}"},
            {"type": "mrkdwn", "text": f"*Task*\n{task}"},
            {"type": "mrkdwn", "text": f"*Run*\n{info.run_id}"},
            {"type": "mrkdwn", "text": f"*Logical date*\n{info.logical_date}"},
            {"type": "mrkdwn", "text": f"*Try*\n{attempt if info.try_number is not None else '-'}"},
        ],
    }


def _payload(header: str, info: RunInfo, body: str) -> dict[str, Any]:
    body = _clip(body)
    where = info.dag_id if info.task_id == RUN_LEVEL else f"{info.dag_id}.{info.task_id}"
    button = "Open run" if info.task_id == RUN_LEVEL else "Open task log"
    return {
        "text": _clip(f"{header}: {where} ({info.logical_date})\n{body}", 3900),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": header[:150]}},
            _fields(info),
            {"type": "section", "text": {"type": "mrkdwn", "text": body}},
            {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": button}, "url": info.log_url}]},
        ],
    }


def describe_exception(exc: BaseException | None, redact: Any = None) -> str:
    """Exception type and first line of its message, passed through `redact` (Airflow's masker)."""
    if exc is None:
        return "unknown cause (no exception in the context)"

    def line(e: BaseException) -> str:
        first = (str(e).strip().splitlines() or [""])[0]
        return f"{type(e).__name__}: {first}" if first else type(e).__name__

    # The innermost cause is what to act on ("attempt to write a readonly database"), the outer one
    # says where it surfaced ("Query-invoked autoflush"): show both when they differ.
    inner, seen = exc, set()
    while (inner.__cause__ or inner.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        inner = inner.__cause__ or inner.__context__  # type: ignore[assignment]
    text = line(exc) if inner is exc else f"{line(exc)} (caused by {line(inner)})"
    return str(redact(text)) if redact else text


def validation_failure(info: RunInfo, report: dict[str, Any]) -> dict[str, Any]:
    """Data failed expectations: list each with column and observed value / unexpected count."""
    lines = []
    for f in report.get("failures", []):
        detail = []
        if f.get("unexpected_count"):
            detail.append(f"{f['unexpected_count']} unexpected")
        if f.get("rows"):
            detail.append("e.g. " + "; ".join(_example(r) for r in f["rows"][:3]))
        elif f.get("unexpected_examples"):
            detail.append(f"e.g. {f['unexpected_examples'][:3]}")
        if f.get("observed") is not None:
            detail.append(f"observed {f['observed']}")
        if f.get("rule"):
            detail.append(f"rule: {f['rule']}" + (f" (config `{f['config_key']}`)" if f.get("config_key") else ""))
        column = f" `{f['column']}`" if f.get("column") else ""
        lines.append(f"`{f['expectation']}`{column}: {', '.join(detail) or 'failed'}")
    lines += [f"note: {n}" for n in report.get("notes") or []]  # e.g. the hole that shortened every history
    body = (
        f"*Data validation failed*: {len(report.get('failures', []))} of {report.get('evaluated', '?')} expectations "
        f"(snapshot `{str(report.get('snapshot_sha256', ''))[:12]}`). Training did not run; champions and "
        f"published forecasts are unchanged.\n{_bullets(lines)}"
    )
    return _payload(":red_circle: Sales forecast: data validation failed", info, body)


def task_failure(info: RunInfo, cause: str) -> dict[str, Any]:
    """Any other exception: type and first line (already masked)."""
    body = f"*Cause*: `{cause}`\nChampions and published forecasts are unchanged unless the failed task was `publish_forecasts`."
    return _payload(":red_circle: Sales forecast task failed", info, body)


def _example(row: dict[str, Any]) -> str:
    """One offending row of a failed expectation ("SERIES on DATE: VALUE"), or a series and its reason."""
    where = "" if "sales_date" not in row else f" on {str(row['sales_date'])[:10]}" if row["sales_date"] is not None else " on no date"
    series = row.get("series_id")
    return f"{series if series not in (None, '') else '(no series name)'}{where}: {row.get('value')}"


def _num(value: Any, digits: int = 3) -> str:
    """A number for a message; "-" for an undefined one (None in JSON, NaN): a message never fails on it."""
    return f"{value:.{digits}f}" if isinstance(value, numbers.Real) and math.isfinite(value) else "-"


def _metric(m: dict[str, Any] | None) -> str:
    return "-" if not m else f"MASE {_num(m.get('mase'), 3)} / RMSE {_num(m.get('rmse'), 0)}"


def gate_rejection(info: RunInfo, decisions: list[dict[str, Any]]) -> dict[str, Any]:
    """Warning (not a failure): rejected series kept their champion; show metrics vs thresholds."""
    rejected = [d for d in decisions if not d["passed"]]
    lines = []
    for d in rejected:
        thresholds = d.get("thresholds", {})
        limits = ", ".join(f"{k.replace('_mase_limit', '')} limit {_num(v, 3)}" for k, v in thresholds.items() if k.endswith("_limit"))
        champion = f"champion v{d['champion_version']} {_metric(d.get('champion'))}" if d.get("champion_version") else "no champion yet"
        lines.append(
            f"*{d['series_id']}* candidate v{d.get('candidate_version') or '-'} {_metric(d.get('candidate'))}; "
            f"naive {_metric(d.get('naive'))}; {champion}" + (f" ({limits})" if limits else "") + f"\n    ↳ {'; '.join(d['reasons'])}"
        )
    passed = len(decisions) - len(rejected)
    body = f"*{len(rejected)} series kept their champion* ({passed} passed the gate).\n{_bullets(lines)}"
    return _payload(":warning: Sales forecast: quality gate rejected candidates", info, body)


def champion_change(info: RunInfo, promotions: list[dict[str, Any]], metrics: dict[str, float] | None = None) -> dict[str, Any]:
    """Short success notice: versions old -> new and the headline metric."""
    changed = [p for p in promotions if p["changed"]]
    lines = [
        f"*{p['series_id']}*: v{p['previous'] or '-'} → v{p['version']}"
        + (f" (MASE {_num(metrics[p['series_id']], 3)})" if metrics and p["series_id"] in metrics else "")
        for p in changed
    ]
    return _payload(":white_check_mark: Sales forecast: champions updated", info, f"{len(changed)} champion(s) changed.\n{_bullets(lines)}")


def spike_days(days: dict[str, float], limit: int | None = None) -> str:
    """A series' left-out spike periods as "value on date, ..." in date order (the Slack report and the
    `make demo` summary); with `limit`, the first `limit` and "and N more"."""
    shown = sorted(days.items())[:limit]
    more = len(days) - len(shown)
    return ", ".join(f"{v:.15g} on {d}" for d, v in shown) + (f" and {more} more" if more else "")


def series_report(
    info: RunInfo,
    quarantined: dict[str, str],
    failures: list[dict[str, Any]],
    published: int,
    fallback: list[str],
    spikes: dict[str, dict[str, float]] | None = None,
) -> dict[str, Any]:
    """One message per run for everything that did not publish normally: each quarantined series with its
    cause, failed mapped tasks, the series published with a flagged fallback forecast, and the spikes
    training newly left out (series, date, value: published, but the source may hold a typo)."""
    spikes = spikes or {}
    lines = [f"*{series}*: {reason}" for series, reason in sorted(quarantined.items())]
    lines += [f"`{f.get('task_id')}[{f.get('map_index')}]` {', '.join(f.get('series') or []) or '?'}: `{f.get('cause', '?')}`" for f in failures]
    lines += [f"*{series}*: spike left out of training: {spike_days(days, MAX_ITEMS)}" for series, days in sorted(spikes.items())]
    parts = []
    if quarantined or failures:
        parts.append(f"*{len(quarantined)} series quarantined*: champion and published forecasts kept as they were.")
    if failures:
        parts.append(f"*{len(failures)} mapped task(s) failed* after their retries.")
    if fallback:
        parts.append(f"{len(fallback)} series without a champion got a seasonal-naive fallback forecast: {', '.join(sorted(fallback)[:MAX_ITEMS])}.")
    if spikes:
        parts.append(
            f"*{len(spikes)} series with a spike* far above their usual level (rule: config anomaly.spike_ratio x typical and "
            "anomaly.spike_mad robust deviations, or anomaly.spike_ratio_always x typical): left out of training and published; "
            "check the source for a typo."
        )
    parts.append(f"{published} series published.")
    header = ":warning: Sales forecast: partial run" if quarantined or failures else ":mag: Sales forecast: data notice"
    return _payload(header, info, " ".join(parts) + "\n" + _bullets(lines))


def rollback_notice(info: RunInfo, results: list[dict[str, Any]], actor: str, reason: str) -> dict[str, Any]:
    """Notice that champions were rolled back, by whom and why."""
    lines = [
        f"*{r['series_id']}*: v{r['previous']} → v{r['version']} ({r['note']})" + (f"; {republished_text(r['republished'])}" if r.get("republished") else "")
        for r in results
    ]
    return _payload(":rewind: Sales forecast: champion rollback", info, f"By *{actor}*: {reason}\n{_bullets(lines)}")


def republished_text(done: dict[str, Any]) -> str:
    """What a rollback did to a series' newest published rows (an entry of warehouse.republish_served),
    in the Slack notice and the CLI's output alike."""
    if "error" in done:
        still = f"v{done['from']}" if done.get("from") else "the old version"
        return f"forecasts for {done['logical_date']} NOT republished, still {still}: {done['error']}"
    return f"forecasts for {done['logical_date']} republished with v{done['to']} (were v{done['from']})"


def monitor_warning(info: RunInfo, flagged: list[dict[str, Any]], page_url: str) -> dict[str, Any]:
    """Warning: series whose realized accuracy degraded or whose data drifted; each is retrained at the
    next sales_forecast run even if its data is unchanged."""
    lines = [
        f"*{f['series_id']}* v{f.get('model_version') or '-'}: realized MASE {_num(f.get('mase'))} vs backtest "
        f"{_num(f.get('expected_mase'))} (naive {_num(f.get('naive_mase'))}), RMSE {_num(f.get('rmse'), 1)} vs "
        f"{_num(f.get('expected_rmse'), 1)}, coverage {_num(f.get('coverage'), 2)}\n    ↳ {f.get('reasons') or '-'}"
        for f in flagged
    ]
    degraded = sum(1 for f in flagged if f.get("degraded"))
    drifted = sum(1 for f in flagged if f.get("drifted"))
    body = (
        f"*{degraded} series degraded, {drifted} drifted*; they are retrained at the next run (reason recorded on "
        f"the new version). <{page_url}|Forecasts page>\n{_bullets(lines)}"
    )
    return _payload(":chart_with_downwards_trend: Sales forecast: accuracy degraded / data drifted", info, body)


def health_report(info: RunInfo, summary: dict[str, Any], runs: dict[str, Any], page_url: str, report_path: str) -> dict[str, Any]:
    """The daily health report (one message a day): runs, series outcomes, realized accuracy, worst series,
    drift flags and links."""
    worst = [
        f"*{w['series_id']}*: MASE {_num(w.get('mase'))} (backtest {_num(w.get('expected_mase'))}, naive "
        f"{_num(w.get('naive_mase'))}), coverage {_num(w.get('coverage'), 2)}, bias {_num(w.get('bias'), 2)}"
        for w in summary.get("worst", [])
    ]
    fields = [
        ("sales_forecast runs", f"{runs.get('ok', 0)} ok / {runs.get('failed', 0)} failed"),
        ("Series", f"{runs.get('published', 0)} published / {runs.get('quarantined', 0)} quarantined / {runs.get('fallback', 0)} fallback"),
        ("Actuals through", str(summary.get("actuals_through") or "-")),
        ("Realized MASE (mean)", _num(summary.get("mean_mase"))),
        ("Interval coverage (mean)", _num(summary.get("mean_coverage"), 2)),
        ("Degraded", ", ".join(summary.get("degraded", [])[:MAX_ITEMS]) or "none"),
        ("Drifted", ", ".join(summary.get("drifted", [])[:MAX_ITEMS]) or "none"),
    ]
    ok = not summary.get("degraded") and not summary.get("drifted") and not runs.get("failed")
    header = (":large_green_circle: " if ok else ":large_orange_circle: ") + f"Sales forecast health {info.logical_date}"
    text = f"{header}\n" + "\n".join(f"{k}: {v}" for k, v in fields)
    return {
        "text": _clip(text, 3900),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": header[:150]}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": _clip(f"*{k}*\n{v}", 1900)} for k, v in fields]},
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip(f"*Worst series by realized error* ({summary.get('scored', 0)} scored)\n" + (_bullets(worst) or "none scored yet"))}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(f"Report with charts: `{report_path}`", 1900)}]},
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Forecasts page"}, "url": page_url},
                    {"type": "button", "text": {"type": "plain_text", "text": "Monitor run"}, "url": info.log_url},
                ],
            },
        ],
    }


def late_run(dag_run: dict[str, Any], deadline_time: Any, limit_minutes: float, timeout_minutes: float | None, base_url: str) -> dict[str, Any] | None:
    """The "run is late" warning of a run still unfinished `limit_minutes` after it was queued (its
    deadline alert), or None when there is nothing to say: the run already ended (a failure has its own
    alert; a success prunes its deadline) or it is a backfill run (a backfill queues its runs up front and
    works through them, so a late one is waiting its turn, not stuck).

    `dag_run` is Airflow's REST view of the run (`dag_run_id`, `logical_date`, `queued_at`, `state`,
    `run_type`, ...), as the deadline callback receives it.
    """
    state = str(dag_run.get("state") or "")
    run_type = str(dag_run.get("run_type") or "")
    if state not in ("queued", "running") or run_type == "backfill":
        return None
    info = RunInfo(
        dag_id=str(dag_run.get("dag_id") or "?"),
        task_id=RUN_LEVEL,
        run_id=str(dag_run.get("dag_run_id") or dag_run.get("run_id") or "?"),
        logical_date=str(dag_run.get("logical_date") or "-")[:10],
        base_url=base_url,
    )
    started = f"started {_utc(dag_run['start_date'])}" if dag_run.get("start_date") else "not started yet"
    body = (
        f"*Still {state}* {limit_minutes:g} min after it was queued ({_utc(dag_run.get('queued_at'))}; {started}; "
        f"deadline {_utc(deadline_time)}), {run_type or 'unknown'} run. Its forecasts are not published yet: the "
        "warehouse still serves the previous run's rows. Open the run's grid for the task that is slow, queued "
        "or retrying (RUNBOOK \"A late run\")."
        + (f" The run fails at its {timeout_minutes:g}-minute timeout if it has not finished by then." if timeout_minutes else "")
    )
    return _payload(":hourglass_flowing_sand: Sales forecast run is late", info, body)


def _utc(moment: Any) -> str:
    """A timestamp as Airflow hands it to a callback (ISO text or a datetime) as "YYYY-MM-DD HH:MM:SS UTC"."""
    if moment is None or moment == "":
        return "-"
    try:
        stamp = moment if isinstance(moment, dt.datetime) else dt.datetime.fromisoformat(str(moment))
    except ValueError:
        return str(moment)
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S UTC")

"""What the Forecasts page (an Airflow UI plugin) shows, from the warehouse tables and the gate reports.

Pure: frames and dicts in, JSON-ready dicts and HTML out. The plugin (plugins/forecast_ops/web/) reads
the tables through the warehouse hook and serves these behind Airflow's login.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from include.forecasting import charts


def _clean(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _clean(value.item())
    if isinstance(value, pd.Timestamp):
        return str(value.date())
    return value if isinstance(value, (int, float, str, bool)) else str(value)


def latest_gate(gate_dir: Path, run_id: str | None = None) -> tuple[str | None, dict[str, dict[str, Any]]]:
    """The gate decisions of one sales_forecast run (the newest report, or `run_id`'s), per series."""
    if run_id:
        path = gate_dir / f"{run_id.replace(':', '_')}.json"
        candidates = [path] if path.exists() else []
    else:
        candidates = sorted(gate_dir.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)[:1] if gate_dir.exists() else []
    if not candidates:
        return None, {}
    decisions = json.loads(candidates[0].read_text())
    return candidates[0].stem, {d["series_id"]: d for d in decisions}


def series_rows(
    published: pd.DataFrame,
    health: pd.DataFrame,
    gate: dict[str, dict[str, Any]],
    champions: dict[str, str | None],
    champion_urls: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One row per series: champion (registry) and where the MLflow UI shows it (`champion_urls`, if
    given), published version, last gate decision, realized accuracy."""
    latest_pub = published.sort_values("logical_date").groupby("series_id").tail(1).set_index("series_id") if len(published) else pd.DataFrame()
    # Per series the newest assessment that scored something (a monitor run with no arrived forecast
    # periods says nothing about accuracy), else the newest.
    latest_health = (
        health.assign(_scored=health["scored_periods"] > 0).sort_values(["_scored", "monitor_date"]).groupby("series_id").tail(1).set_index("series_id")
        if len(health)
        else pd.DataFrame()
    )
    names = sorted(set(latest_pub.index) | set(latest_health.index) | set(gate) | set(champions))
    rows = []
    for series_id in names:
        pub = latest_pub.loc[series_id] if series_id in latest_pub.index else None
        hl = latest_health.loc[series_id] if series_id in latest_health.index else None
        decision = gate.get(series_id) or {}
        rows.append(
            {
                "series_id": series_id,
                "champion_version": champions.get(series_id),
                "champion_url": (champion_urls or {}).get(series_id),
                "published_version": _clean(pub["model_version"]) if pub is not None else None,
                "published_logical_date": _clean(pd.Timestamp(pub["logical_date"])) if pub is not None else None,
                "gate": {
                    "passed": decision.get("passed"),
                    "reasons": decision.get("reasons", []),
                    "candidate_version": decision.get("candidate_version"),
                    "candidate_mase": _clean((decision.get("candidate") or {}).get("mase")),
                    "naive_mase": _clean((decision.get("naive") or {}).get("mase")),
                    "champion_mase": _clean((decision.get("champion") or {}).get("mase")),
                }
                if decision
                else None,
                "realized": {
                    k: _clean(hl[k])
                    for k in ("monitor_date", "scored_periods", "mase", "expected_mase", "naive_mase", "rmse", "coverage", "bias", "degraded", "drifted", "reasons")
                }
                if hl is not None
                else None,
            }
        )
    return rows


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.{digits}f}" if isinstance(value, float) else html.escape(str(value))


def models_url(ui_url: str) -> str:
    """The MLflow UI's page of the registered models (its route `#/models`; a model's own pages are
    under it, `model_version_url`)."""
    return f"{ui_url.rstrip('/')}/#/models"


def model_version_url(ui_url: str, model_name: str, version: str) -> str:
    """The MLflow UI's page of one registered model version (its route `#/models/<name>/versions/<v>`)."""
    return f"{models_url(ui_url)}/{quote(model_name, safe='')}/versions/{quote(str(version), safe='')}"


def _champion_cell(row: dict[str, Any]) -> str:
    if not row["champion_version"]:
        return "none"
    label = f"v{_fmt(row['champion_version'])}"
    url = row.get("champion_url")
    # A new tab: the MLflow UI is another app, and the Forecasts page keeps its selected series.
    return f'<a href="{html.escape(url)}" target="_blank" rel="noopener" title="this version in the MLflow UI">{label}</a>' if url else label


def page_html(rows: list[dict[str, Any]], selected: str | None, chart: dict[str, Any] | None, gate_run: str | None) -> str:
    """The page: a table of every series (links select one) and the selected series' chart."""
    header = ["Series", "Champion", "Published", "Gate", "Candidate MASE", "Naive MASE", "Realized MASE", "Backtest MASE", "Coverage", "Flags"]
    body = []
    for r in rows:
        gate = r["gate"] or {}
        real = r["realized"] or {}
        flags = ", ".join(f for f, on in (("degraded", real.get("degraded")), ("drifted", real.get("drifted"))) if on) or "-"
        verdict = "-" if not gate else ("passed" if gate.get("passed") else "rejected: " + "; ".join(gate.get("reasons", [])))
        cells = [
            f'<a href="?series={quote(r["series_id"])}">{html.escape(r["series_id"])}</a>',
            _champion_cell(r),
            f"{_fmt(r['published_version'])} ({_fmt(r['published_logical_date'])})" if r["published_version"] else "-",
            html.escape(verdict),
            _fmt(gate.get("candidate_mase")),
            _fmt(gate.get("naive_mase")),
            _fmt(real.get("mase")),
            _fmt(real.get("expected_mase")),
            _fmt(real.get("coverage"), 2),
            html.escape(flags),
        ]
        css = ' class="selected"' if r["series_id"] == selected else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    table = "<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr></thead><tbody>" + "".join(body) + "</tbody></table>"
    chart_html = charts.series_svg(chart) if chart else "<p>No series yet: run sales_forecast, then forecast_monitor.</p>"
    legend = "<p class='legend'>Black: actual sales. Blue: the newest published forecast and its interval. Grey dashed: earlier forecasts.</p>"
    gate_note = f"Gate decisions from run <code>{html.escape(gate_run)}</code>." if gate_run else "No gate report yet."
    style = (
        "body{font-family:sans-serif;margin:16px;color:#222}table{border-collapse:collapse;margin:12px 0}"
        "td,th{border:1px solid #ccc;padding:3px 6px;font-size:12px;text-align:left}tr.selected{background:#eef4fb}"
        ".legend{font-size:12px;color:#555}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Forecasts</title>"
        f"<style>{style}</style></head><body><h2>Forecasts</h2>"
        f"<p>{gate_note} JSON: <a href='api/series'>api/series</a>.</p>{chart_html}{legend}{table}</body></html>"
    )

"""Charts of a series: history and actuals, published forecasts with their interval (inline SVG).

Plain SVG strings, no plotting library: the Forecasts page (served by the Airflow API server) and the
daily HTML report draw the same chart without importing matplotlib into the web process, and a browser
test can find each element by its class (`actual`, `forecast`, `interval`, `past-forecast`).
"""

from __future__ import annotations

import datetime as dt
import html
import math
from typing import Any

import pandas as pd

WIDTH, HEIGHT = 760, 260
PAD_L, PAD_R, PAD_T, PAD_B = 56, 12, 24, 28


def chart_data(series_id: str, actuals: pd.DataFrame, forecasts: pd.DataFrame, max_runs: int = 4, last_periods: int = 63) -> dict[str, Any]:
    """JSON-ready chart data of one series: its last `last_periods` actuals (date, value) and the newest
    `max_runs` published forecasts (logical date, model version, points with interval), newest first."""
    if "series_id" not in actuals or "series_id" not in forecasts:  # nothing published / monitored yet
        return {"series_id": series_id, "actuals": [], "forecasts": []}
    mine = actuals[actuals["series_id"] == series_id].sort_values("date").tail(last_periods)
    points = [{"date": str(pd.Timestamp(d).date()), "value": float(v)} for d, v in zip(mine["date"], mine["actual"], strict=True)]
    runs = []
    published = forecasts[forecasts["series_id"] == series_id]
    for logical, rows in sorted(published.groupby("logical_date"), key=lambda item: item[0], reverse=True)[:max_runs]:
        rows = rows.sort_values("forecast_date")
        runs.append(
            {
                "logical_date": str(pd.Timestamp(logical).date()),
                "model_version": str(rows["model_version"].iloc[0]),
                "points": [
                    {"date": str(pd.Timestamp(r.forecast_date).date()), "yhat": float(r.yhat), "lower": float(r.yhat_lower), "upper": float(r.yhat_upper)}
                    for r in rows.itertuples(index=False)
                ],
            }
        )
    return {"series_id": series_id, "actuals": points, "forecasts": runs}


def series_svg(data: dict[str, Any], title: str | None = None) -> str:
    """The chart of `chart_data`: actuals (black), older forecasts (grey, dashed), the newest forecast
    (blue) with its interval (shaded)."""
    dates: list[dt.date] = [dt.date.fromisoformat(p["date"]) for p in data["actuals"]]
    values: list[float] = [p["value"] for p in data["actuals"]]
    for run in data["forecasts"]:
        for p in run["points"]:
            dates.append(dt.date.fromisoformat(p["date"]))
            values += [p["lower"], p["upper"], p["yhat"]]
    label = html.escape(title or data["series_id"])
    if not dates:
        return f'<svg class="series-chart" width="{WIDTH}" height="60" role="img"><text x="8" y="30">{label}: no data yet</text></svg>'
    first, last = min(dates), max(dates)
    span = max((last - first).days, 1)
    top = max(max(values), 1e-9) * 1.05
    inner_w, inner_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B

    def x(day: str) -> float:
        return PAD_L + inner_w * (dt.date.fromisoformat(day) - first).days / span

    def y(value: float) -> float:
        return PAD_T + inner_h * (1 - max(value, 0.0) / top)

    def path(points: list[tuple[float, float]]) -> str:
        return " ".join(f"{'M' if i == 0 else 'L'}{px:.1f},{py:.1f}" for i, (px, py) in enumerate(points))

    parts = [
        f'<svg class="series-chart" data-series="{html.escape(data["series_id"])}" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{label}</title>",
        f'<text x="{PAD_L}" y="16" font-size="13" font-family="sans-serif">{label}</text>',
        f'<line x1="{PAD_L}" y1="{PAD_T + inner_h}" x2="{WIDTH - PAD_R}" y2="{PAD_T + inner_h}" stroke="#999"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        value = top * frac
        parts.append(f'<text x="{PAD_L - 6}" y="{y(value) + 4:.1f}" font-size="10" text-anchor="end" font-family="sans-serif">{_short(value)}</text>')
    for day, anchor in ((first, "start"), (last, "end")):
        parts.append(f'<text x="{x(day.isoformat()):.1f}" y="{HEIGHT - 8}" font-size="10" text-anchor="{anchor}" font-family="sans-serif">{day.isoformat()}</text>')
    runs = data["forecasts"]
    for run in runs[1:][::-1]:
        pts = [(x(p["date"]), y(p["yhat"])) for p in run["points"]]
        parts.append(f'<path class="past-forecast" data-logical-date="{run["logical_date"]}" d="{path(pts)}" fill="none" stroke="#888" stroke-dasharray="4 3"/>')
    if runs:
        newest = runs[0]["points"]
        band = [(x(p["date"]), y(p["upper"])) for p in newest] + [(x(p["date"]), y(p["lower"])) for p in newest[::-1]]
        parts.append(f'<path class="interval" d="{path(band)} Z" fill="#1f77b4" fill-opacity="0.18" stroke="none"/>')
        parts.append(
            f'<path class="forecast" data-logical-date="{runs[0]["logical_date"]}" d="{path([(x(p["date"]), y(p["yhat"])) for p in newest])}" '
            'fill="none" stroke="#1f77b4" stroke-width="2"/>'
        )
    if data["actuals"]:
        parts.append(
            f'<path class="actual" d="{path([(x(p["date"]), y(p["value"])) for p in data["actuals"]])}" fill="none" stroke="#222" stroke-width="1.3"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _short(value: float) -> str:
    if value == 0 or not math.isfinite(value):
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude >= 6:
        return f"{value / 1e6:.1f}M"
    if magnitude >= 3:
        return f"{value / 1e3:.1f}k"
    return f"{value:.3g}"


def report_html(title: str, summary: dict[str, Any], health: pd.DataFrame, charts: list[dict[str, Any]]) -> str:
    """The daily health report as one self-contained HTML file: headline numbers, per-series health
    table, and a chart per series."""

    def cell(value: Any) -> str:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return "-"
        return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))

    columns = ["series_id", "model_version", "scored_periods", "mase", "expected_mase", "naive_mase", "coverage", "bias", "degraded", "drifted", "reasons"]
    rows = "".join(
        "<tr>" + "".join(f"<td>{cell(getattr(r, c))}</td>" for c in columns) + "</tr>" for r in health.itertuples(index=False)
    )
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Series: {summary.get('series', 0)}, scored: {summary.get('scored', 0)}, mean realized MASE: {cell(summary.get('mean_mase'))}, "
        f"mean coverage: {cell(summary.get('mean_coverage'))}. Degraded: {html.escape(', '.join(summary.get('degraded', [])) or 'none')}. "
        f"Drifted: {html.escape(', '.join(summary.get('drifted', [])) or 'none')}.</p>",
        "<table><thead><tr>" + "".join(f"<th>{c}</th>" for c in columns) + f"</tr></thead><tbody>{rows}</tbody></table>",
        *[series_svg(c) for c in charts],
    ]
    style = "body{font-family:sans-serif;margin:24px}table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:3px 6px;font-size:12px}svg{display:block;margin:12px 0}"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style></head><body>{''.join(body)}</body></html>"

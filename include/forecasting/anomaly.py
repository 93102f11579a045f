"""Plausible-looking bad data, caught per series against its own history before anything trains on it.

Rules (each robust: log scale, medians and MADs, per weekday for daily data), checked on the newest
`recent_periods` periods of the run's data against the periods before them:
- spike: a period far above the series' typical level for that weekday (x1,000 typo, a double delivery);
- level shift: the recent median far above or below the reference median (a unit change, a lost feed);
- zero run: the newest periods all zero where the series normally sells (an upstream outage, or a
  product that stopped selling: someone should look before it is forecast again);
- duplicated source rows: the source's own grain repeated (`source.unique_key`; found by extract);
- delivery volume (transaction-grain sources): rows per date far above or below recent deliveries;
- ragged end: most series' rows end on one period while a few series' rows go on well past it (a date
  typed a year or two ahead, a delivery of only some series).
A config policy decides what a finding does: quarantine that series (default) or block the run. When at
least `panel_share` of the series are flagged at once it is a panel-wide problem (an outage, a file
delivered twice), which blocks the run by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from include.forecasting.frequency import Cadence


@dataclass(frozen=True)
class Finding:
    """One anomaly in one series."""

    series_id: str
    rule: str
    detail: str
    config_key: str = "anomaly.*"

    def text(self) -> str:
        """`rule: detail (config key)`."""
        return f"{self.rule}: {self.detail} (config {self.config_key})"


def _groups(index: pd.DatetimeIndex, cadence: Cadence) -> np.ndarray:
    return index.day_of_week.to_numpy() if cadence.name == "daily" else np.zeros(len(index), dtype=int)


def _typical_span(cadence: Cadence) -> int:
    """Periods per group of the recent past that defines "typical": 12 of each weekday (12 weeks) for
    daily data, 26 periods otherwise."""
    return 12 if cadence.name == "daily" else 26


def _recent_past(cadence: Cadence) -> int:
    """Periods of the recent past a newest period is judged against: `_typical_span` of each weekday
    (84 days) for daily data, 26 periods otherwise."""
    return _typical_span(cadence) * (7 if cadence.name == "daily" else 1)


def _robust_mad(logged: np.ndarray, median: Any, axis: int | None = None) -> Any:
    """Scaled median absolute deviation of log values around `median`, at least 0.1."""
    return np.maximum(1.4826 * np.median(np.abs(logged - median), axis=axis), 0.1)


def _spike(value: Any, logged: Any, median: Any, mad: Any, ratio: float, mad_k: float, always: float = np.inf) -> Any:
    """The spike rule: `value` above `ratio` x the typical level (expm1 of the log median, at least 1) and
    either its log (`logged`) more than `mad_k` robust deviations above the median, or the value above
    `always` x the typical level. The second arm is for series whose sales spread widely (zero-heavy
    items, kilos of a vegetable: a robust deviation of ~1 on the log scale), where `mad_k` deviations
    reach ~3,000 x the typical level and a x1,000 typo would pass."""
    typical = np.maximum(np.expm1(median), 1.0)
    return (value > ratio * typical) & ((logged - median > mad_k * mad) | (value > always * typical))


def series_findings(y: pd.Series, cadence: Cadence, rules: Any) -> list[Finding]:
    """Anomalies in the newest `rules.recent_days` (as periods) of one series (on its cadence's grid)."""
    r = max(1, -(-rules.recent_days // cadence.period_days))
    series_id = str(y.name)
    recent, reference = y.iloc[-r:], y.iloc[:-r]
    reference = reference.iloc[-_recent_past(cadence) :]
    # Too little recent history to say what is typical (a young series: min_rows_per_series speaks for it;
    # an item back from weeks without a sale): only the spike check below runs, on the series' older sales.
    thin = len(reference) < 2 * r or (reference > 0).sum() < max(8, r)
    out: list[Finding] = []
    ref_groups, rec_groups = _groups(reference.index, cadence), _groups(recent.index, cadence)
    logged = np.log1p(reference.to_numpy(dtype=float))
    history, history_groups = np.log1p(y.to_numpy(dtype=float)), _groups(y.index, cadence)
    span, full_rule, stale_rule = _typical_span(cadence), rules.spike_rule(), (rules.spike_ratio_always, np.inf, rules.spike_ratio_always)
    for i, (date, value, g) in enumerate(zip(recent.index, recent.to_numpy(dtype=float), rec_groups, strict=True)):
        values = logged[(ref_groups == g) & (logged > 0)]
        rule = full_rule
        if len(values) < 4:
            # Too few recent sales of this weekday (or period) to say what is typical (a zero-heavy item, one
            # back from a break): its last `span` sales before this date, however far back, as training's
            # spike rule (`spike_periods`) judges them. That level may be stale (an item relaunched at 20-60x
            # its old sales), so only the spike_ratio_always arm quarantines here: a x1,000 typo. A smaller
            # surge is still left out of training and named in the run's data notice.
            before, groups = history[: len(y) - r + i], history_groups[: len(y) - r + i]
            values = before[(groups == g) & (before > 0)][-span:]
            if len(values) < span:
                continue
            rule = stale_rule
        median = float(np.median(values))
        typical = float(np.expm1(median))
        if _spike(value, np.log1p(value), median, float(_robust_mad(values, median)), *rule):
            out.append(Finding(series_id, "spike", f"{value:g} on {date:%Y-%m-%d}, typical {typical:.4g} ({value / max(typical, 1e-9):.0f}x)"))
    if thin:
        return out
    positive_recent = recent[recent > 0]
    positive_ref = reference[reference > 0]
    if len(positive_recent) >= max(2, r // 2) and len(positive_ref) >= 8:
        ratio = float(positive_recent.median() / positive_ref.median())
        if ratio > rules.level_shift_ratio or ratio < 1 / rules.level_shift_ratio:
            out.append(Finding(series_id, "level shift", f"median of the last {r} periods {positive_recent.median():.4g} vs {positive_ref.median():.4g} before ({ratio:.2g}x)"))
    run = zero_run_finding(y, cadence, rules)
    return out + ([run] if run else [])


def zero_run_finding(y: pd.Series, cadence: Cadence, rules: Any) -> Finding | None:
    """The trailing run of zeros of `y`, if it is an anomaly: at least `zero_run_days` (as periods, 2 or
    more) and at most `zero_run_max_days` long, with 2 or more of its periods ones the series normally
    sells on (weekdays, or periods, it sold on in >= 80 % of the recent past); closed days alone (a
    weekend) are no outage.

    "Normally" is judged on the recent past before the run began: counted in, a run dilutes its own
    reference (on weekly data a run's zeros in the 26-week reference took an item that sold in 21 of the
    26 weeks before the run, 81 %, to 19 of 26, below the bar). A run longer than `zero_run_max_days` is
    taken as what the series now does (a product that stopped selling, or a stock-out that lasts): it is
    forecast again rather than kept in quarantine, with forecasts that go stale, for as long as it lasts.
    """
    run = _zero_run(y, cadence, rules)
    if run is None:
        return None
    span, open_zeros = run
    return Finding(str(y.name), "zero run", f"the last {span} periods are all 0 ({open_zeros} of them normally selling), through {y.index[-1]:%Y-%m-%d}")


def _zero_run(y: pd.Series, cadence: Cadence, rules: Any) -> tuple[int, int] | None:
    """(length, periods normally selling) of the trailing zero run that `zero_run_finding` flags, or None."""
    values = y.to_numpy(dtype=float)
    selling = np.flatnonzero(values != 0)
    span = len(values) - (int(selling[-1]) + 1 if len(selling) else 0)
    shortest = max(2, -(-rules.zero_run_days // cadence.period_days))
    longest = max(shortest, -(-rules.zero_run_max_days // cadence.period_days))
    if not shortest <= span <= longest:
        return None
    before = y.iloc[: len(y) - span].iloc[-_recent_past(cadence) :]
    if (before > 0).sum() < 8:
        return None  # too little selling before the run to call any period normal
    groups = _groups(before.index, cadence)
    sells = before.to_numpy(dtype=float) > 0
    normally = [int(g) for g in np.unique(groups) if sells[groups == g].mean() >= 0.8]
    open_zeros = int(np.isin(_groups(y.index[-span:], cadence), normally).sum())
    return (span, open_zeros) if open_zeros >= 2 else None


def panel_zero_run(totals: pd.Series, cadence: Cadence, rules: Any) -> list[Finding]:
    """The zero-run rule on the panel's total (`totals`, summed over the series on the cadence's grid):
    every series at 0 over the newest periods of a panel that normally sells on them (a feed that
    delivered zeros, an outage). On a panel where many series are often at 0 (seasonal or zero-heavy
    items) too few series count as normally selling for the per-series findings to reach `panel_share`;
    the total sells every period all the same. A panel-wide finding."""
    run = _zero_run(totals, cadence, rules)
    if run is None:
        return []
    span, open_zeros = run
    detail = f"every series is 0 in the last {span} periods, through {totals.index[-1]:%Y-%m-%d} ({open_zeros} of them periods the panel normally sells on)"
    return [Finding("(panel)", "zero run", detail, "anomaly.zero_run_days")]


def ragged_end(newest: pd.Series, row_periods: pd.DatetimeIndex, cadence: Cadence, rules: Any, staleness: int) -> list[Finding]:
    """Rows dated ahead of the rest of the panel: most series' rows end on one period while a few series'
    rows go on past it by more than `staleness` periods (`validation.max_staleness_periods`).

    `newest` maps each series to the grid date of its newest row (any value, 0 included); `row_periods`
    are the grid dates holding any row. The run judges freshness by the panel's newest row, and a series
    without rows after its last one has a run of zeros: one row whose year was mistyped forward (2025 for
    2023), or a delivery of only some series, made every other series look as if it had stopped selling.
    The zero-run rule quarantines only the series that normally sell on those periods, and none after
    `anomaly.zero_run_max_days`, so a zero-heavy panel was published as zeros. Here the end most series
    share is the evidence: the period that most series' rows end on (the newest such period on a tie),
    held by at least `panel_share` of the series that still had rows within the recent past before it
    (`_recent_past`; series that stopped long before do not count). Rows a few series go on delivering
    for longer than `zero_run_max_days`, on most periods, are what the panel now is (the other stores
    closed) and pass, as the zero-run rule lets such a run pass; sparse rows far ahead (a typo) never do.
    A panel-wide finding."""
    found = _ragged(newest, row_periods, cadence, rules, staleness)
    return [] if found is None else [Finding("(panel)", "ragged end", found[1], "validation.max_staleness_periods")]


def newest_rows(dates: pd.Series, series: pd.Series, cadence: Cadence, last_period: pd.Timestamp) -> tuple[pd.Series, pd.DatetimeIndex]:
    """`ragged_end`'s inputs from rows (`dates` and `series` aligned): each series' newest row as a grid
    date of `cadence`, up to `last_period`, and the grid dates holding any row."""
    from include.forecasting.training import period_label  # training imports statsmodels: only when used

    labels = pd.Series(period_label(dates, cadence), index=dates.index)
    inside = labels <= last_period
    newest = labels[inside].groupby(series[inside].astype(str).to_numpy()).max()
    return newest, pd.DatetimeIndex(labels[inside].unique())


def shared_end(newest: pd.Series, row_periods: pd.DatetimeIndex, cadence: Cadence, rules: Any, staleness: int) -> pd.Timestamp | None:
    """The period most series' rows end on where `ragged_end` finds rows dated ahead of it (None where it
    finds none): the panel's data has arrived through that period, not through its newest row."""
    found = _ragged(newest, row_periods, cadence, rules, staleness)
    return None if found is None else found[0]


def _ragged(newest: pd.Series, row_periods: pd.DatetimeIndex, cadence: Cadence, rules: Any, staleness: int) -> tuple[pd.Timestamp, str] | None:
    """(the period most series' rows end on, the finding's text) for `ragged_end`, or None."""
    if len(newest) < 2:
        return None
    end = newest.max()
    counts = newest.value_counts()
    top = int(counts.max())
    bulk = max(counts.index[counts == top])
    if bulk == end:
        return None
    grid = cadence.grid(newest.min(), end)
    position = pd.Series(grid.get_indexer(pd.DatetimeIndex(newest.to_numpy())), index=newest.index)
    at_bulk = int(grid.get_loc(bulk))
    gap = len(grid) - 1 - at_bulk
    active = position >= at_bulk - _recent_past(cadence)
    if gap <= staleness or top < max(2, rules.panel_share * int(active.sum())):
        return None
    rows_after = int((grid.get_indexer(row_periods) > at_bulk).sum())
    longest = -(-rules.zero_run_max_days // cadence.period_days)
    if gap > longest and rows_after > gap / 2:
        return None
    ahead = newest[position > at_bulk + staleness].sort_values(ascending=False)
    shown = ", ".join(f"{s!r} to {d:%Y-%m-%d}" for s, d in list(ahead.items())[:3]) + (", ..." if len(ahead) > 3 else "")
    detail = (
        f"{top} of {int(active.sum())} series' rows end on {bulk:%Y-%m-%d}, but {len(ahead)} series {'has' if len(ahead) == 1 else 'have'} rows after it "
        f"({shown}; {rows_after} of the {gap} periods after it {'holds' if rows_after == 1 else 'hold'} a row): rows dated ahead of the rest of the panel "
        "(a mistyped date, or a delivery of only some series). Fix those rows, or run for logical date "
        f"{cadence.period_end(bulk):%Y-%m-%d} to forecast from the rows through {bulk:%Y-%m-%d}"
    )
    return bulk, detail


def spike_periods(y: pd.Series, cadence: Cadence, ratio: float, mad_k: float, always: float = np.inf) -> pd.DatetimeIndex:
    """Every period of the history that the spike rule would flag against the selling periods before it.

    The rule of `series_findings` (above `ratio` x its group's typical level and more than `mad_k` robust
    deviations above it on the log scale, or above `always` x that level), judged at each period against the last `span` selling periods of
    its weekday (daily) or the last `span` selling periods (other cadences) before it, so that a spike
    older than `recent_days` is still found. Periods without that much history before them are not judged.
    Training leaves these periods out, as it does holidays.
    """
    span = _typical_span(cadence)
    values = y.to_numpy(dtype=float)
    groups = _groups(y.index, cadence)
    flagged: list[np.ndarray] = []
    for g in np.unique(groups):
        where = np.flatnonzero((groups == g) & (values > 0))
        if len(where) <= span:
            continue
        logged = np.log1p(values[where])
        windows = np.lib.stride_tricks.sliding_window_view(logged[:-1], span)  # row i: the span before i + span
        median = np.median(windows, axis=1)
        current = logged[span:]
        hit = _spike(np.expm1(current), current, median, _robust_mad(windows, median[:, None], axis=1), ratio, mad_k, always)
        flagged.append(where[span:][hit])
    return y.index[np.sort(np.concatenate(flagged))] if flagged else y.index[:0]


def spike_mask(y: pd.Series, cadence: Cadence, rule: tuple[float, ...]) -> np.ndarray | None:
    """`spike_periods` of `y` under `rule` (ratio, robust deviations[, ratio flagged whatever the spread]) as
    a boolean mask over `y`, for the MASE scale; None without a rule."""
    return np.asarray(y.index.isin(spike_periods(y, cadence, *rule))) if rule else None


def duplicate_findings(duplicates: list[dict[str, Any]]) -> list[Finding]:
    """Findings from extract's duplicated source keys (rows that repeat the source's own grain), one per series."""
    out = []
    for row in sorted(duplicates, key=lambda r: str(r["series_id"])):
        when = row["first_date"] if row["first_date"] == row["last_date"] else f"{row['first_date']} .. {row['last_date']}"
        out.append(
            Finding(
                str(row["series_id"]), "duplicated source rows",
                f"{row['n_keys']} key(s) of source.unique_key delivered more than once ({when}, up to x{row['max_rows']})",
            )
        )
    return out


def _recent_vs_reference(values: pd.Series, cadence: Cadence, r: int) -> list[tuple[pd.Timestamp, float, float]]:
    """(date, value, typical) for the newest `r` periods: typical is the median of the same weekday
    (daily) or of all periods over the recent past, zeros left out. Weekdays or periods that are empty in
    more than a fifth of the recent past (a mostly closed Sunday) have no typical size and are skipped."""
    recent, reference = values.iloc[-r:], values.iloc[:-r]
    reference = reference.iloc[-_recent_past(cadence) :]
    out = []
    ref_groups = _groups(reference.index, cadence)
    for date, value, g in zip(recent.index, recent.to_numpy(dtype=float), _groups(recent.index, cadence), strict=True):
        same = reference.to_numpy(dtype=float)[(ref_groups == g)]
        typical = same[same > 0]
        if len(typical) >= 4 and len(typical) >= 0.8 * len(same):
            out.append((date, value, float(np.median(typical))))
    return out


def delivery_findings(
    rows_per_date: pd.DataFrame, cadence: Cadence, rules: Any, label: Any, holidays: pd.DatetimeIndex | None = None
) -> list[Finding]:
    """Per-delivery volume: rows per date of the raw source (extract's delivery_volume.sql), newest
    `recent_days` against recent deliveries. A delivery with far more rows than usual (loaded twice, or
    appended to) or present but far fewer (stores or products missing) is a panel-wide finding; an empty
    period is left to the zero-run and freshness rules, and `holidays` are skipped (a holiday is what a
    small delivery looks like). Sales totals are not compared here: real events (a snowstorm, the days
    before Spring Festival) move them 3-10x, and the per-series rules already judge each series'."""
    r = max(1, -(-rules.recent_days // cadence.period_days))
    ratio = rules.volume_ratio
    out = []
    if rows_per_date.empty:
        return out
    rows = rows_per_date.assign(period=label(rows_per_date["sales_date"])).groupby("period")["n_rows"].sum().astype(float)
    rows = rows.reindex(cadence.grid(rows.index.min(), rows.index.max()), fill_value=0.0)
    for date, value, typical in _recent_vs_reference(rows, cadence, r):
        if holidays is not None and date in holidays:
            continue
        if value > ratio * typical or 0 < value < typical / ratio:
            out.append(Finding("(panel)", "delivery volume", f"source rows on {date:%Y-%m-%d}: {value:.0f} vs typical {typical:.0f} ({value / typical:.2g}x)", "anomaly.volume_ratio"))
    return out


def is_panel_wide(n_flagged: int, n_series: int, panel_share: float) -> bool:
    """Whether this many flagged series are the delivery's fault rather than the series' own: at least
    `panel_share` of the panel, and 2 or more (one series is never panel-wide)."""
    return n_flagged >= max(2, panel_share * n_series)


def apply_policy(findings: list[Finding], n_series: int, rules: Any, panel: list[Finding] | None = None) -> tuple[dict[str, str], str | None]:
    """Turn findings into (series -> quarantine reason, run-blocking message or None) by the config policy.
    `panel` findings (delivery volume, the panel's zero run) are panel-wide by nature."""
    if panel and rules.on_panel == "block":
        return {}, "anomalous delivery (panel-wide): " + "; ".join(f.text() for f in panel[:5])
    if not findings or rules.on_series == "ignore":
        return {}, None
    reasons: dict[str, list[str]] = {}
    for f in findings:
        reasons.setdefault(f.series_id, []).append(f.text())
    flagged = {s: "; ".join(r) for s, r in sorted(reasons.items())}
    panel_wide = is_panel_wide(len(flagged), n_series, rules.panel_share)
    if (panel_wide and rules.on_panel == "block") or rules.on_series == "block":
        scope = f"panel-wide: {len(flagged)} of {n_series} series" if panel_wide else f"{len(flagged)} series"
        shown = "; ".join(f"{s}: {r}" for s, r in list(flagged.items())[:5])
        return {}, f"anomalous data ({scope}): {shown}"
    return flagged, None

"""The cadence of a sales panel: detected from its dates (daily, weekly on any weekday, monthly), or set in
the config. Everything period-based follows it: the calendar grid a series is laid on, the seasonal period,
the horizon and fold length (in periods), the naive benchmark and MASE scale, zero-period logic, holidays.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pandas as pd

WEEKDAY_CODES = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


class CadenceError(ValueError):
    """A panel whose dates have no single daily / weekly / monthly cadence."""


@dataclass(frozen=True)
class Cadence:
    """One panel cadence.

    `pandas_freq` lays a series on its grid ("D", "W-FRI", "MS"/"ME"); `season` is the SARIMA seasonal
    period (0 = none); `naive_lag` is the seasonal-naive lag, also the MASE scale's (M4's convention: 7 for
    daily, 1 for weekly, 12 for monthly); `period_days` is the nominal length used to express day-based
    thresholds in periods.
    """

    name: str  # "daily" | "weekly" | "monthly"
    pandas_freq: str
    season: int
    naive_lag: int
    period_days: int

    @property
    def label(self) -> str:
        """Human name, e.g. `weekly (W-FRI)`."""
        return self.name if self.name == "daily" else f"{self.name} ({self.pandas_freq})"

    def offset(self) -> pd.DateOffset:
        """One period as a pandas offset."""
        return pd.tseries.frequencies.to_offset(self.pandas_freq)

    def grid(self, first: pd.Timestamp, last: pd.Timestamp) -> pd.DatetimeIndex:
        """Every period date from `first` through `last` (both on the grid)."""
        return pd.date_range(first, last, freq=self.pandas_freq, name="date")

    def last_period_before(self, end_exclusive: pd.Timestamp) -> pd.Timestamp:
        """The newest grid date strictly before `end_exclusive`."""
        end = pd.Timestamp(end_exclusive) - pd.Timedelta(days=1)
        return self.offset().rollback(end) if self.name != "daily" else end

    def future(self, last: pd.Timestamp, horizon: int) -> pd.DatetimeIndex:
        """The `horizon` period dates after `last`."""
        return pd.date_range(pd.Timestamp(last) + self.offset(), periods=horizon, freq=self.pandas_freq)


DAILY = Cadence("daily", "D", 7, 7, 1)


def weekly(anchor: str) -> Cadence:
    """Weekly cadence anchored on a weekday code (MON..SUN)."""
    return Cadence("weekly", f"W-{anchor}", 0, 1, 7)


def monthly(end: bool) -> Cadence:
    """Monthly cadence dated on the first or the last day of the month."""
    return Cadence("monthly", "ME" if end else "MS", 12, 12, 30)


def _days(dates: pd.Series | pd.DatetimeIndex) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(pd.Series(dates).dropna().unique())).sort_values().normalize()


def series_cadence(dates: pd.Series | pd.DatetimeIndex) -> Cadence | str | None:
    """The cadence one series' dates show on their own; a description string if they show none; None if
    there are too few dates.

    Two consecutive dates are daily data (days without a row are days without a sale). Weekly: every date
    on one weekday, mostly a week apart. Monthly: every date on the 1st (or every one a month end), mostly
    a month apart. A series that shows none of these may still fit its panel's cadence (`fits`).
    """
    days = _days(dates)
    if len(days) < 3:
        return None
    gaps = pd.Series(days).diff().dt.days.dropna().astype(int)
    if gaps.min() == 1:
        return DAILY
    if days.dayofweek.nunique() == 1 and gaps.median() == 7:
        return weekly(WEEKDAY_CODES[days[0].dayofweek])
    if gaps.min() >= 28 and gaps.median() <= 31:
        if (days.day == 1).all():
            return monthly(False)
        if days.is_month_end.all():
            return monthly(True)
        if days.day.nunique() == 1:
            # Monthly rows on another day of the month (the 15th): no grid here; say what would be one.
            return f"monthly on day {days[0].day} of the month (monthly rows are dated on the 1st or the last day: re-date them)"
    common = ", ".join(f"{g} days x{n}" for g, n in Counter(gaps.tolist()).most_common(4))
    return f"irregular (gaps between dates: {common})"


def fits(dates: pd.Series | pd.DatetimeIndex, cadence: Cadence) -> bool:
    """Whether every date lies on the cadence's grid: any date for daily, the anchor weekday for weekly, the
    1st or the month end for monthly. A slow mover's rows (every few days, every few weeks, a product out
    of stock for half a year) fit their panel's cadence though they show none on their own."""
    days = _days(dates)
    if cadence.name == "daily":
        return True
    if cadence.name == "weekly":
        return bool((days.dayofweek == WEEKDAY_CODES.index(cadence.pandas_freq.split("-")[1])).all())
    return bool(days.is_month_end.all() if cadence.pandas_freq == "ME" else (days.day == 1).all())


def detect_cadence(frame: pd.DataFrame, override: str = "auto") -> Cadence:
    """The panel's cadence from its dates (`sales_date`, `series_id` columns), or the configured override.

    The series whose dates show a cadence on their own (`series_cadence`) must agree on one; every other
    series must fit it (`fits`). Raises CadenceError naming the series and the cadences found otherwise.
    Series with fewer than 3 dates take the panel's cadence.
    """
    found: dict[str, list[str]] = {}
    cadences: dict[str, Cadence] = {}
    loose: dict[str, pd.Series] = {}  # series that show no cadence on their own -> their dates
    for series_id, group in frame.dropna(subset=["sales_date", "series_id"]).groupby("series_id", sort=True):
        c = series_cadence(group["sales_date"])
        if c is None:
            continue
        if isinstance(c, Cadence):
            found.setdefault(c.label, []).append(str(series_id))
            cadences[c.label] = c
        else:
            found.setdefault(c, []).append(str(series_id))
            loose[str(series_id)] = group["sales_date"]
    if override == "daily":
        return DAILY
    if override != "auto":
        matching = {k: c for k, c in cadences.items() if c.name == override}
        if len(cadences) > len(matching) or len(matching) > 1:
            raise CadenceError(_mixed_message(found, f"source.frequency is {override!r} but the series are"))
        panel = next(iter(matching.values())) if matching else (weekly("SUN") if override == "weekly" else monthly(False))
        if not matching and loose:
            # Nothing anchors the panel: take the grid the loose series share, if they share one.
            first = _days(next(iter(loose.values())))[0]
            panel = weekly(WEEKDAY_CODES[first.dayofweek]) if override == "weekly" else monthly(first.is_month_end and first.day != 1)
        _check_fit(found, loose, panel, f"source.frequency is {override!r} but the series are")
        return panel
    if not found:
        return DAILY  # nothing to tell from (every series has < 3 dates): validation will quarantine them
    if len(cadences) != 1:
        raise CadenceError(_mixed_message(found, "the panel has no single cadence:"))
    panel = next(iter(cadences.values()))
    _check_fit(found, loose, panel, "the panel has no single cadence:")
    return panel


def _check_fit(found: dict[str, list[str]], loose: dict[str, pd.Series], panel: Cadence, lead: str) -> None:
    """Raise naming the loose series that do not fit the panel's cadence."""
    misfits = {s for s, dates in loose.items() if not fits(dates, panel)}
    if misfits:
        shown = {k: [s for s in v if s in misfits or k == panel.label] for k, v in found.items()}
        raise CadenceError(_mixed_message({k: v for k, v in shown.items() if v}, lead))


def _mixed_message(found: dict[str, list[str]], lead: str) -> str:
    parts = []
    for key, series in sorted(found.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(repr(s) for s in series[:5]) + (f" and {len(series) - 5} more" if len(series) > 5 else "")
        parts.append(f"{key}: {shown}")
    return (
        f"{lead} " + "; ".join(parts)
        + ". Give every series one cadence (daily, weekly on one weekday, or monthly), or set source.frequency."
    )


def from_name(name: str, anchor: str = "SUN") -> Cadence:
    """A cadence from its config / tag name (`daily`, `weekly (W-FRI)`, `monthly (MS)`)."""
    if name == "daily":
        return DAILY
    if name.startswith("weekly"):
        return weekly(name.split("W-")[-1].rstrip(")") if "W-" in name else anchor)
    if name.startswith("monthly"):
        return monthly("ME" in name)
    raise ValueError(f"unknown cadence {name!r}")

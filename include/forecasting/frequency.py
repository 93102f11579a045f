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


def series_cadence(dates: pd.Series | pd.DatetimeIndex) -> Cadence | str | None:
    """The cadence of one series' dates; a description string if irregular; None if too few dates."""
    days = pd.DatetimeIndex(pd.to_datetime(pd.Series(dates).dropna().unique())).sort_values().normalize()
    if len(days) < 3:
        return None
    gaps = pd.Series(days).diff().dt.days.dropna().astype(int)
    if gaps.min() == 1:
        # Two consecutive dates: day-level data. Days without a row are days without a sale, so a slow
        # mover selling on a third of the days (gaps of 1-6 days) is as daily as a product that sells every day.
        return DAILY
    if gaps.min() >= 7 and (gaps % 7 == 0).all() and days.dayofweek.nunique() == 1:
        return weekly(WEEKDAY_CODES[days[0].dayofweek])
    if gaps.min() >= 28 and gaps.max() <= 31 * 3:
        if (days.day == 1).all():
            return monthly(False)
        if days.is_month_end.all():
            return monthly(True)
    common = ", ".join(f"{g} days x{n}" for g, n in Counter(gaps.tolist()).most_common(4))
    return f"irregular (gaps between dates: {common})"


def detect_cadence(frame: pd.DataFrame, override: str = "auto") -> Cadence:
    """The panel's cadence from its dates (`sales_date`, `series_id` columns), or the configured override.

    Raises CadenceError naming the series and the cadences found when series disagree or one is
    irregular. Series with fewer than 3 dates take the panel's cadence. In a daily panel, a series whose
    dates fit no cadence on their own (a slow mover selling every few days, never two days running) is
    daily too: any date lies on the daily grid, and the days between its rows are days without a sale.
    """
    found: dict[str, list[str]] = {}
    cadences: dict[str, Cadence] = {}
    for series_id, group in frame.dropna(subset=["sales_date", "series_id"]).groupby("series_id", sort=True):
        c = series_cadence(group["sales_date"])
        if c is None:
            continue
        key = c.label if isinstance(c, Cadence) else c
        found.setdefault(key, []).append(str(series_id))
        if isinstance(c, Cadence):
            cadences[key] = c
    if override == "daily":
        return DAILY
    if override != "auto":
        others = [k for k in found if not k.startswith(override)]
        matching = {k: c for k, c in cadences.items() if c.name == override}
        if others or len(matching) > 1:
            raise CadenceError(_mixed_message(found, f"source.frequency is {override!r} but the series are"))
        if matching:
            return next(iter(matching.values()))
        return weekly("SUN") if override == "weekly" else monthly(False)
    if not found:
        return DAILY  # nothing to tell from (every series has < 3 dates): validation will quarantine them
    if list(cadences) == [DAILY.label]:
        return DAILY
    if len(found) > 1 or not cadences:
        raise CadenceError(_mixed_message(found, "the panel has no single cadence:"))
    return next(iter(cadences.values()))


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

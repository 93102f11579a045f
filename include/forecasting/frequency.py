"""The cadence of a sales panel: detected from its dates (daily, weekly on any weekday, monthly), or set in
the config. Everything period-based follows it: the calendar grid a series is laid on, the seasonal period,
the horizon and fold length (in periods), the naive benchmark and MASE scale, zero-period logic, holidays.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

WEEKDAY_CODES = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


class CadenceError(ValueError):
    """A panel whose dates have no single daily / weekly / monthly cadence; `rule` names what it breaks."""

    def __init__(self, message: str, rule: str = "one cadence per panel") -> None:
        super().__init__(message)
        self.rule = rule


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
    # Weekly only: each week is dated on its first day (`source.week_dated_on: start`: an ISO week label,
    # SQL's DATE_TRUNC(..., WEEK)) instead of its last, so it is whole only 7 days after its date.
    dated_on_start: bool = False

    @property
    def label(self) -> str:
        """Human name, e.g. `weekly (W-FRI)`, `weekly (W-MON, dated on the start)`."""
        if self.name == "daily":
            return self.name
        return f"{self.name} ({self.pandas_freq}{_START_LABEL if self.dated_on_start else ''})"

    def offset(self) -> pd.DateOffset:
        """One period as a pandas offset."""
        return pd.tseries.frequencies.to_offset(self.pandas_freq)

    def grid(self, first: pd.Timestamp, last: pd.Timestamp) -> pd.DatetimeIndex:
        """Every period date from `first` through `last` (both on the grid)."""
        return pd.date_range(first, last, freq=self.pandas_freq, name="date")

    def period_end(self, label: pd.Timestamp) -> pd.Timestamp:
        """The first day after the period dated `label`. A day, a week dated on its last day and a month
        dated on its last day end the day after their date; a week dated on its first day runs 7 days
        from it, a month dated on its first day (MS) to the next month's first day."""
        label = pd.Timestamp(label).normalize()
        if self.pandas_freq == "MS":
            return label + pd.offsets.MonthBegin(1)
        return label + pd.Timedelta(days=7 if self.dated_on_start else 1)

    def last_period_before(self, end_exclusive: pd.Timestamp) -> pd.Timestamp:
        """The newest grid date whose whole period lies before `end_exclusive`.

        Only a period dated on its first day (a month on the 1st, a week under `week_dated_on: start`)
        can be dated before `end_exclusive` and still be running: on 16 October, October's row
        (2025-10-01) holds half a month. Read as a month's sales it would pull the forecast down by half,
        and each day's run would refit on a new partial total. So it is left out until it ends, and the
        run forecasts it instead.
        """
        end = pd.Timestamp(end_exclusive) - pd.Timedelta(days=1)
        if self.name == "daily":
            return end
        last = self.offset().rollback(end)
        if self.period_end(last) > pd.Timestamp(end_exclusive):
            last -= self.offset()
        return last

    def future(self, last: pd.Timestamp, horizon: int) -> pd.DatetimeIndex:
        """The `horizon` period dates after `last`."""
        return pd.date_range(pd.Timestamp(last) + self.offset(), periods=horizon, freq=self.pandas_freq)


DAILY = Cadence("daily", "D", 7, 7, 1)
_START_LABEL = ", dated on the start"


def weekly(anchor: str, dated_on_start: bool = False) -> Cadence:
    """Weekly cadence anchored on a weekday code (MON..SUN), each week dated on its last day or its first."""
    return Cadence("weekly", f"W-{anchor}", 0, 1, 7, dated_on_start)


def as_dated(cadence: Cadence, week_dated_on: str) -> Cadence:
    """`cadence` with its weeks dated as configured (`source.week_dated_on`: "end" or "start"); other
    cadences as they are (a month's date already says which: the 1st or the last day)."""
    if cadence.name != "weekly":
        return cadence
    return replace(cadence, dated_on_start=week_dated_on == "start")


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
    return f"irregular (gaps between dates: {common}{_unsupported_cadence(days, gaps)})"


def _unsupported_cadence(days: pd.DatetimeIndex, gaps: pd.Series) -> str:
    """A note naming a regular cadence the project does not take (fortnightly, quarterly, yearly rows), so
    the refusal says what the dates are rather than only that they are irregular."""
    for name, low, high in (("fortnightly", 14, 14), ("quarterly", 89, 92), ("yearly", 365, 366)):
        if low <= gaps.median() <= high and gaps.min() >= low and (name != "fortnightly" or days.dayofweek.nunique() == 1):
            return f"; these are {name} rows, and a panel is daily, weekly or monthly"
    return ""


def fits(dates: pd.Series | pd.DatetimeIndex, cadence: Cadence) -> bool:
    """Whether every date lies on the cadence's grid: any date for daily, the anchor weekday for weekly, the
    1st or the month end for monthly. A slow mover's rows (every few days, every few weeks, a product out
    of stock for half a year) fit their panel's cadence though they show none on their own."""
    return bool(_on_grid(_days(dates), cadence).all())


@dataclass(frozen=True)
class PanelCadence:
    """A panel's cadence and the series whose dates are off it.

    `misfits` maps a series to what its dates show against the panel's cadence (the off-grid dates, or a
    cadence of its own); `groups` maps each cadence or description found to its series (for a refusal).
    """

    cadence: Cadence
    misfits: dict[str, str]
    groups: dict[str, list[str]]

    def refusal(self, lead: str = "the panel has no single cadence:") -> str:
        """The message that refuses the panel, naming the series per cadence found."""
        return _mixed_message(self.groups, lead)


def panel_cadence(frame: pd.DataFrame, override: str = "auto", week_dated_on: str = "end") -> PanelCadence:
    """The panel's cadence from its dates (`sales_date`, `series_id` columns), or the configured override,
    and the series off it.

    The panel's cadence is the one most series show on their own (`series_cadence`); a series showing
    another, or one that shows none and whose dates do not lie on the panel's grid (`fits`), is a misfit:
    what to do with it (quarantine it, or refuse the panel when misfits are panel-wide) is the caller's
    policy. Raises CadenceError naming the series and the cadences found when there is no panel cadence
    to speak of: two cadences shown by equally many series, or no series showing any. Series with fewer
    than 3 dates take the panel's cadence; where every series has fewer, the panel's dates together tell
    it (`_from_panel_dates`), or it is refused. `override` "daily" takes every series as daily.
    `week_dated_on` ("end" or "start") says which day of its week a weekly panel's date is (`as_dated`).
    """
    found: dict[str, list[str]] = {}
    cadences: dict[str, Cadence] = {}
    shown: dict[str, tuple[Cadence | str, pd.DatetimeIndex]] = {}
    for series_id, group in frame.dropna(subset=["sales_date", "series_id"]).groupby("series_id", sort=True):
        c = series_cadence(group["sales_date"])
        if c is None:
            continue
        key = c.label if isinstance(c, Cadence) else c
        found.setdefault(key, []).append(str(series_id))
        if isinstance(c, Cadence):
            cadences[key] = c
        shown[str(series_id)] = (c, _days(group["sales_date"]))
    if override == "daily":
        return PanelCadence(DAILY, {}, found)
    lead = f"source.frequency is {override!r} but the series are" if override != "auto" else "the panel has no single cadence:"
    candidates = {k: c for k, c in cadences.items() if override in ("auto", c.name)}
    ranked = sorted(candidates, key=lambda k: -len(found[k]))
    if len(ranked) > 1 and len(found[ranked[0]]) == len(found[ranked[1]]):
        raise CadenceError(_mixed_message(found, lead))
    if ranked:
        panel = candidates[ranked[0]]
    elif override == "auto":
        if not shown:
            # Every series has fewer than 3 dates (a panel's first days or weeks): the panel's dates together
            # may show its cadence. Taken as daily, two weekly dates would be a week of six days without a sale,
            # and the fallback would publish daily forecasts of weekly totals.
            return PanelCadence(as_dated(_from_panel_dates(frame), week_dated_on), {}, found)
        shared = _shared_grid([days for _, days in shown.values()])
        if shared is None:
            raise CadenceError(_mixed_message(found, lead))
        panel = shared
    else:
        # Nothing anchors the panel: take the grid of the first loose series (the others must share it), or,
        # where every series has fewer than 3 dates, of the panel's first date.
        loose = [days for own, days in shown.values() if not isinstance(own, Cadence)]
        grid = loose[0] if loose else _days(frame["sales_date"])
        if len(grid):
            first = grid[0]
            panel = weekly(WEEKDAY_CODES[first.dayofweek]) if override == "weekly" else monthly(bool(first.is_month_end and first.day != 1))
        else:  # no date at all: validation says so
            panel = weekly("SUN") if override == "weekly" else monthly(False)
    misfits = {s: _misfit(own, days, panel) for s, (own, days) in shown.items() if _is_misfit(own, days, panel)}
    if override != "auto" and len(misfits) == len(shown) and shown:
        raise CadenceError(_mixed_message(found, lead))  # not one series on the configured cadence
    return PanelCadence(as_dated(panel, week_dated_on), misfits, found)


def _from_panel_dates(frame: pd.DataFrame) -> Cadence:
    """The cadence the panel's dates show together (`series_cadence` of their union), for a panel in
    which every series has fewer than 3 dates; raises CadenceError naming the dates where they show none
    (fewer than 3 dates in all, or no regular spacing): the fix is `source.frequency`, or more history.
    A panel with no date at all is daily: validation's rule that the history window has rows says why."""
    days = _days(frame["sales_date"])
    if not len(days):
        return DAILY
    shown = series_cadence(days)
    if isinstance(shown, Cadence):
        return shown
    listed = _listed(days, 5)
    what = "too few to tell daily, weekly and monthly data apart" if shown is None else shown
    raise CadenceError(
        f"the panel's cadence cannot be told from its dates: every series has fewer than 3, and together they are "
        f"{len(days)} date(s), {listed}: {what}. Set source.frequency (daily, weekly or monthly), or run once the "
        "data holds 3 periods.",
        rule="a cadence its dates show",
    )


def _shared_grid(dates: list[pd.DatetimeIndex]) -> Cadence | None:
    """For a panel in which no series shows a cadence on its own (a zero-heavy panel whose rows are only
    the periods with a sale: every third Friday, a few months a year): the weekly or monthly grid that
    most series' dates lie on, when those series' dates together hold two consecutive periods somewhere
    (every series every other Friday is fortnightly data, not weekly). None if there is no such grid."""
    grids: dict[str, tuple[Cadence, list[pd.DatetimeIndex]]] = {}
    for days in dates:
        if days.dayofweek.nunique() == 1:
            grid = weekly(WEEKDAY_CODES[days[0].dayofweek])
        elif (days.day == 1).all() or days.is_month_end.all():
            grid = monthly(bool(days.is_month_end.all()))
        else:
            continue
        grids.setdefault(grid.label, (grid, []))[1].append(days)
    ranked = sorted(grids.values(), key=lambda g: -len(g[1]))
    if not ranked or (len(ranked) > 1 and len(ranked[0][1]) == len(ranked[1][1])):
        return None
    grid, members = ranked[0]
    together = members[0].append(members[1:]).unique().sort_values()
    gaps = pd.Series(together).diff().dt.days.dropna()
    consecutive = 7 if grid.name == "weekly" else 31
    return grid if len(gaps) and gaps.min() <= consecutive else None


def detect_cadence(frame: pd.DataFrame, override: str = "auto", week_dated_on: str = "end") -> Cadence:
    """The panel's cadence (`panel_cadence`), whatever its misfits: for readers of a panel that validation
    has already judged (the monitor, a rollback's republish, the benchmark)."""
    return panel_cadence(frame, override, week_dated_on).cadence


def _is_misfit(own: Cadence | str, days: pd.DatetimeIndex, panel: Cadence) -> bool:
    if isinstance(own, Cadence):
        return own.label != panel.label
    return not fits(days, panel)


def _misfit(own: Cadence | str, days: pd.DatetimeIndex, panel: Cadence) -> str:
    """What a misfit's dates show against the panel's cadence, with the dates to fix."""
    label = own.label if isinstance(own, Cadence) else own.split(" (")[0]
    off = days[~_on_grid(days, panel)]
    if panel.name == "daily" or not len(off):
        unit = {"daily": "days", "weekly": "weeks"}.get(panel.name, "months")
        # Every date lies on the grid (any date does on a daily one): the rows are wrong as periods, those
        # between them reading as periods without a sale (a weekly total would be one big day and six zeros).
        # Which it is, the data cannot tell: a product that sells on Mondays only is daily data.
        fix = f"weekly totals? give them a panel of their own; sales on one weekday only? set source.frequency: {panel.name}"
        return f"its rows are {label} ({days[0]:%Y-%m-%d} to {days[-1]:%Y-%m-%d}): read as {unit}, those between would be {unit} without a sale ({fix})"
    listed = _listed(off, 3)
    return f"{listed} not on the panel's {panel.label} grid (its rows are {label}): re-date them at the source"


def _listed(days: pd.DatetimeIndex, shown: int) -> str:
    """The first `shown` dates with their weekdays ("2022-05-14 (Sat), ..."), then how many more."""
    return ", ".join(f"{d:%Y-%m-%d} ({d:%a})" for d in days[:shown]) + (f" and {len(days) - shown} more" if len(days) > shown else "")


def _on_grid(days: pd.DatetimeIndex, cadence: Cadence) -> np.ndarray:
    """Per date, whether it lies on the cadence's grid (any date for daily)."""
    if cadence.name == "weekly":
        return np.asarray(days.dayofweek == WEEKDAY_CODES.index(cadence.pandas_freq.split("-")[1]))
    if cadence.name == "monthly":
        return np.asarray(days.is_month_end if cadence.pandas_freq == "ME" else days.day == 1)
    return np.ones(len(days), dtype=bool)


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
    """A cadence from its config / tag name (`daily`, `weekly (W-FRI)`, `weekly (W-MON, dated on the
    start)`, `monthly (MS)`)."""
    if name == "daily":
        return DAILY
    if name.startswith("weekly"):
        start = name.endswith(f"{_START_LABEL})")
        name = name.replace(_START_LABEL, "")
        return weekly(name.split("W-")[-1].rstrip(")") if "W-" in name else anchor, start)
    if name.startswith("monthly"):
        return monthly("ME" in name)
    raise ValueError(f"unknown cadence {name!r}")

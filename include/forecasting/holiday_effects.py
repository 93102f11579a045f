"""Holidays of daily models: the `holidays` package's calendar, and each series' learned ratio per holiday.

In training a holiday is missing (it must not teach the model a fake Monday); in the forecast each holiday
is the model's forecast x the series' own median ratio for *that* holiday (sales on it / the same weekday
a week before and after), once the ratio holds (`holiday_effect_holds`: seen at least twice, always on the
same side of 1); a ratio that does not hold only widens the interval (README, Modelling: "Holidays").
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pandas as pd


@functools.lru_cache(maxsize=16)
def _calendar(country: str, subdivision: str | None, first_year: int, last_year: int, categories: str = "public") -> dict[pd.Timestamp, str]:
    """Date -> holiday name from the `holidays` package, built once per process and range (`categories`:
    the package's categories joined by ","; a day in two of them keeps the package's joined name)."""
    import holidays

    found = holidays.country_holidays(
        country, subdiv=subdivision or None, years=range(first_year, last_year + 1), categories=tuple(categories.split(","))
    )
    return {pd.Timestamp(d): name for d, name in sorted(found.items())}


def is_package_calendar(calendar: tuple[str, ...]) -> bool:
    """Whether a recorded calendar key is the `holidays` package's (country, subdivision[, categories]),
    not a legacy tuple of US federal holiday names."""
    return len(calendar) in (2, 3) and len(calendar[0]) in (2, 3) and calendar[0].isupper()


def holiday_names(calendar: tuple[str, ...], start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    """Holiday dates between start and end (inclusive) -> name, for a spec's calendar.

    `calendar` is (country, subdivision[, categories]); a legacy spec holds US federal holiday names
    instead, served from pandas' calendar under one name ("holiday") to match its flat effect.
    """
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    if not calendar:
        return pd.Series(dtype=object)
    if is_package_calendar(calendar):
        found = _calendar(calendar[0], calendar[1] or None, start.year, end.year, *calendar[2:])
        return pd.Series({d: n for d, n in found.items() if start <= d <= end}, dtype=object)
    from pandas.tseries.holiday import USFederalHolidayCalendar

    legacy = USFederalHolidayCalendar().holidays(start, end, return_name=True)
    return pd.Series({d: "holiday" for d, n in legacy.items() if n in calendar}, dtype=object)


def holiday_effect(y: pd.Series, names: pd.Series) -> dict[str, dict[str, float]]:
    """Per holiday name: median, lowest and highest ratio of its sales to the same weekday a week
    before and after (neighbours that are holidays or zero are skipped). Holidays never seen -> absent."""
    week = pd.Timedelta(days=7)
    ratios: dict[str, list[float]] = {}
    for day, name in names.items():
        if day not in y.index:
            continue
        neighbours = [y[d] for d in (day - week, day + week) if d in y.index and d not in names.index and y[d] > 0]
        if neighbours:
            ratios.setdefault(str(name), []).append(float(y[day]) / float(np.mean(neighbours)))
    out = {}
    for name, values in ratios.items():
        clipped = np.clip(values, 0.0, 3.0)  # one odd day must not triple a forecast
        out[name] = {"factor": float(np.median(clipped)), "low": float(clipped.min()), "high": float(clipped.max()), "n": float(len(values))}
    return out


def holiday_effect_holds(effect: dict[str, float]) -> bool:
    """Whether a learned holiday ratio is evidence enough to scale a forecast: seen at least twice, every
    time on the same side of 1 (all lower or all higher than the neighbouring weeks).

    One observation cannot tell a holiday effect from an odd day, and a ratio that went both ways has no
    direction to apply. Such a holiday is forecast like any other day (it is still left out of training).
    """
    n = effect.get("n", 2.0)  # a legacy flat effect has no count: it was always applied
    return n >= 2 and (effect["high"] < 1.0 or effect["low"] > 1.0)


def apply_holiday_effect(out: pd.DataFrame, effect: dict[str, Any], calendar: tuple[str, ...]) -> pd.DataFrame:
    """Scale a forecast frame's holiday rows: point x median ratio, lower x lowest, upper x highest.

    A holiday whose ratio does not hold (`holiday_effect_holds`: seen once, or both ways) keeps the
    ordinary day's point, but its interval reaches halfway (on the log scale) towards the ratios seen:
    lower x sqrt(lowest) where that is below 1, upper x sqrt(highest) where above. One sighting is not
    evidence enough to move the point (docs/DEVELOPING.md), but it is a warning that the day may be far
    from an ordinary one: with the ordinary day's interval, a once-seen Christmas closure fell outside it.
    """
    if not effect or out.empty:
        return out
    dates = pd.DatetimeIndex(out["forecast_date"])
    names = holiday_names(calendar, dates[0], dates[-1])
    if names.empty:
        return out
    if "factor" in effect:  # a legacy flat effect: one ratio for every listed holiday
        effect = {"holiday": effect}
    out = out.copy()
    for column in [c for c in out.columns if c.startswith("yhat")]:
        key = "low" if "lower" in column else "high" if "upper" in column else "factor"
        values = out[column].to_numpy(dtype=float, copy=True)
        for day, name in names.items():
            if name in effect:
                values[dates == day] *= _holiday_scale(effect[name], key)
        out[column] = values
    return out


def _holiday_scale(effect: dict[str, float], key: str) -> float:
    """What a holiday multiplies its forecast's `key` column by ("factor" the point, "low" / "high" the
    bounds): the learned ratio where it holds; else 1 for the point and, for a bound, halfway on the log
    scale to the ratio seen beyond it (see `apply_holiday_effect`)."""
    if holiday_effect_holds(effect):
        return effect[key]
    if key == "low":
        return math.sqrt(min(effect["low"], 1.0))
    if key == "high":
        return math.sqrt(max(effect["high"], 1.0))
    return 1.0

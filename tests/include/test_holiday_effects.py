"""holiday_effects: the learned ratio per holiday, when it holds, and how it scales a forecast."""

from __future__ import annotations

import pandas as pd
import pytest

from include.forecasting import holiday_effects


def test_holiday_effect_needs_usable_neighbours():
    days = pd.date_range("2025-05-12", "2025-06-08", freq="D")
    y = pd.Series(100.0, index=days)
    y[pd.Timestamp("2025-05-26")] = 30.0
    effect = holiday_effects.holiday_effect(y, pd.Series({pd.Timestamp("2025-05-26"): "Memorial Day"}))
    assert effect == {"Memorial Day": {"factor": 0.3, "low": 0.3, "high": 0.3, "n": 1.0}}
    assert holiday_effects.holiday_effect(y, pd.Series(dtype=object)) == {}


def test_a_holiday_effect_needs_two_sightings_in_one_direction():
    """One odd day is not a holiday effect; a ratio that went both ways has no direction to apply. Such a
    holiday keeps the ordinary day's point, its interval reaching halfway (log scale) to the ratios seen."""
    day = pd.Timestamp("2025-05-26")
    frame = pd.DataFrame({"forecast_date": pd.date_range("2025-05-24", periods=7), "yhat": 100.0, "yhat_lower": 80.0, "yhat_upper": 120.0})

    def on_the_day(effect: dict) -> pd.Series:
        out = holiday_effects.apply_holiday_effect(frame, {"Memorial Day": effect}, ("US", "IA"))
        return out.set_index("forecast_date").loc[day]

    once = {"factor": 0.1, "low": 0.1, "high": 0.1, "n": 1.0}
    both_ways = {"factor": 1.0, "low": 0.5, "high": 1.5, "n": 2.0}
    twice_low = {"factor": 0.2, "low": 0.1, "high": 0.3, "n": 2.0}
    assert not holiday_effects.holiday_effect_holds(once) and not holiday_effects.holiday_effect_holds(both_ways)
    assert holiday_effects.holiday_effect_holds(twice_low) and holiday_effects.holiday_effect_holds({"factor": 2, "low": 1.5, "high": 2.5, "n": 3.0})
    assert on_the_day(once).tolist() == pytest.approx([100.0, 80.0 * 0.1**0.5, 120.0])
    assert on_the_day(both_ways).tolist() == pytest.approx([100.0, 80.0 * 0.5**0.5, 120.0 * 1.5**0.5])
    assert on_the_day(twice_low).tolist() == pytest.approx([20.0, 8.0, 36.0])
    surge_once = {"factor": 2.25, "low": 2.25, "high": 2.25, "n": 1.0}
    assert on_the_day(surge_once).tolist() == pytest.approx([100.0, 80.0, 180.0])
    other_days = holiday_effects.apply_holiday_effect(frame, {"Memorial Day": once}, ("US", "IA"))
    pd.testing.assert_frame_equal(other_days[other_days.forecast_date != day], frame[frame.forecast_date != day])

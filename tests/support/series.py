"""Real series shared by the tests of include/forecasting's modelling modules (training, zeros,
state_space): fixtures registered for every test by `pytest_plugins` in tests/conftest.py, and
`logs_with_holes`."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, read_seed

from include.forecasting import state_space, training
from include.forecasting.frequency import Cadence, weekly

END = pd.Timestamp("2025-05-31")


@pytest.fixture(scope="module")
def velvet() -> pd.Series:
    """BLACK VELVET's daily bottles from the shipped Iowa panel, through 2025-05-30 (its Saturdays closed)."""
    return training.daily_series(read_seed(), "BLACK VELVET", END)


@pytest.fixture(scope="module")
def veg_weekly() -> tuple[list[pd.Series], Cadence]:
    """Three real weekly series (kg, weeks ending Sunday) from the shipped vegetables panel."""
    frame = pd.read_csv(ROOT / "include/data/veg_supermarket_weekly_kg.csv", parse_dates=["date"])
    frame = frame.rename(columns={"date": "sales_date", "series": "series_id"})
    cadence = weekly("SUN")
    end = frame["sales_date"].max() + pd.Timedelta(days=1)
    ids = frame.groupby("series_id")["value"].count().sort_values(ascending=False).index[:3]
    return [training.period_series(frame, sid, end, cadence) for sid in ids], cadence


def logs_with_holes(ys: list[pd.Series]) -> Iterator[np.ndarray]:
    """Each series on the model's log scale as it is, then with periods missing at the start, inside and
    at the end."""
    for y in ys:
        for holes in ([], [0, 1, 5, 6, 7, 50, len(y) - 2, len(y) - 1]):
            endog = state_space.to_model_scale(y)
            endog[holes] = np.nan
            yield endog

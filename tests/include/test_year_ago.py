"""year_ago: the weekly year-ago term's pairing of a week with the years before it."""

from __future__ import annotations

import numpy as np

from include.forecasting import year_ago


def test_the_year_ago_term_pairs_a_week_with_the_mean_of_its_two_years_before():
    """Where both are known, a week is paired with the mean of its deviations one and two years before
    (a one-off week in one year comes back at half its size); with one of them, that one; with none, NaN.
    Past the history's end (the weeks ahead) the same."""
    lag = 3  # three periods a "year", to write the case out
    deviation = np.array([0.4, np.nan, 0.1, 0.2, 0.3, np.nan, 0.8])
    before = year_ago._years_before(deviation, lag, len(deviation) + 2)
    # Period 6: periods 3 and 0 (both known); 7: period 4 (period 1 sold nothing); 8 (ahead): period 2.
    np.testing.assert_allclose(before, [np.nan, np.nan, np.nan, 0.4, np.nan, 0.1, 0.3, 0.3, 0.1], equal_nan=True)

"""Gate decisions: beat seasonal naive, do not degrade vs the champion beyond tolerance."""

from __future__ import annotations

from include.forecasting.config import GateConfig
from include.forecasting.gate import decide, summarise

GATE = GateConfig(min_improvement_vs_naive=0.0, max_degradation_vs_champion=0.05)


def m(mase: float) -> dict:
    return {"mase": mase, "rmse": 1.0, "smape": 0.1, "mape": 0.1, "coverage_80": 0.8, "folds": 4}


def test_first_model_only_needs_to_beat_naive():
    assert decide("A", "p.a", "1", m(0.6), m(0.7), None, None, GATE).passed
    rejected = decide("A", "p.a", "1", m(0.7), m(0.7), None, None, GATE)
    assert not rejected.passed and "does not beat seasonal naive" in rejected.reasons[0]


def test_degradation_tolerance_vs_champion():
    assert decide("A", "p.a", "2", m(0.63), m(0.8), "1", m(0.60), GATE).passed  # +5 % allowed
    worse = decide("A", "p.a", "2", m(0.64), m(0.8), "1", m(0.60), GATE)
    assert not worse.passed and "degrades vs champion v1" in worse.reasons[0]
    assert worse.thresholds["champion_mase_limit"] == 0.63


def test_min_improvement_and_failed_training():
    strict = GateConfig(min_improvement_vs_naive=0.1, max_degradation_vs_champion=0.0)
    assert not decide("A", "p.a", "1", m(0.65), m(0.7), None, None, strict).passed
    failed = decide("A", "p.a", None, None, None, "1", None, GATE, error="no candidate order gave a stable fit")
    assert not failed.passed and "no candidate" in failed.reasons[0]
    assert summarise([failed, decide("B", "p.b", "1", m(0.5), m(0.7), None, None, GATE)]) == {"passed": ["B"], "rejected": ["A"], "total": 2}


def test_same_version_as_champion_is_not_compared_with_itself():
    assert decide("A", "p.a", "3", m(0.6), m(0.7), "3", None, GATE).passed


def test_corrupted_data_cannot_fool_the_gate():
    """A x1,000 value wrecks every score on the new data: candidate 96.2 still beats naive 97 and the
    re-scored champion 98, but not the champion's recorded 0.6 (limit 1.2 with the default tolerance)."""
    suspect = decide("A", "p.a", "2", m(96.2), m(97.0), "1", m(98.0), GATE, champion_recorded=m(0.6))
    assert not suspect.passed and "recorded backtest 0.600" in suspect.reasons[0] and suspect.thresholds["recorded_mase_limit"] == 1.2
    # The champion's own re-score on the same folds is in the reason: here just as far off (the data).
    assert suspect.reasons[-1].endswith("suspect the new data (champion v1 scores 98.000 on the same folds)")
    assert decide("A", "p.a", "2", m(96.2), m(97.0), "1", None, GATE, champion_recorded=m(0.6)).reasons[-1].endswith("suspect the new data")
    assert decide("A", "p.a", "2", m(0.61), m(0.8), "1", m(0.62), GATE, champion_recorded=m(0.6)).passed


def test_undefined_metrics_are_rejected_not_crashed():
    undefined = {"mase": None, "rmse": None, "smape": None, "mape": None, "coverage_80": None, "folds": 4}
    decision = decide("A", "p.a", "1", undefined, m(0.7), None, None, GATE)
    assert not decision.passed and "does not beat seasonal naive" in decision.reasons[0]
    import json

    flat_history = decide("A", "p.a", "1", m(0.5), undefined, None, None, GATE)  # naive MASE undefined: NaN limit
    assert not flat_history.passed and flat_history.reasons[0].startswith("MASE undefined: seasonal naive is exact on the training history")
    json.dumps(flat_history.to_dict(), allow_nan=False)


def test_a_naive_forecast_exact_on_every_fold_is_named_as_such():
    """A product that sold nothing through the backtest folds: naive and candidate both score MASE 0. The
    rejection says why nothing can beat naive there, not "0.000 does not beat 0.000"."""
    decision = decide("A", "p.a", "1", m(0.0), m(0.0), None, None, GATE)
    assert not decision.passed
    assert decision.reasons == ["MASE 0.000: seasonal naive is exact on every backtest fold (MASE 0; e.g. no sales in them), nothing to beat"]
    assert "does not beat" in decide("A", "p.a", "1", m(0.2), m(0.1), None, None, GATE).reasons[0]

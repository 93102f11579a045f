"""The quality gate: per series, promote a candidate only if it beats seasonal naive, does not degrade
against the current champion (scored as the model it is, on the same folds) by more than the configured
tolerance, and is not far worse than the champion's *recorded* backtest.

The last rule is what corrupted data cannot fool: the naive benchmark and the champion's re-scoring both
run on the same (possibly corrupted) new data, so a spike that wrecks every method's error passes the first
two comparisons; the champion's recorded score was measured on earlier data."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from include.forecasting.config import GateConfig


@dataclass
class GateDecision:
    """Outcome of the gate for one series, with everything an alert needs to explain it."""

    series_id: str
    model_name: str
    passed: bool
    reasons: list[str]
    candidate_version: str | None
    champion_version: str | None
    candidate: dict[str, Any] | None
    naive: dict[str, Any] | None
    champion: dict[str, Any] | None
    thresholds: dict[str, float] = field(default_factory=dict)
    error: str | None = None  # why there was no candidate to judge (the series is quarantined)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (XCom, reports, alerts): undefined numbers (NaN limits) become None."""
        return _strict(asdict(self))


def decide(
    series_id: str,
    model_name: str,
    candidate_version: str | None,
    candidate: dict[str, Any] | None,
    naive: dict[str, Any] | None,
    champion_version: str | None,
    champion: dict[str, Any] | None,
    gate: GateConfig,
    error: str | None = None,
    champion_recorded: dict[str, Any] | None = None,
) -> GateDecision:
    """Apply the thresholds to one series' backtest metrics (MASE decides; the rest is reported)."""
    reasons: list[str] = []
    naive_limit = champion_limit = recorded_limit = None
    if error or candidate is None or naive is None:
        reasons.append(f"no candidate to judge: {error or 'training produced no metrics'}")
    else:
        c_mase, n_mase = _number(candidate.get("mase")), _number(naive.get("mase"))
        naive_limit = n_mase * (1 - gate.min_improvement_vs_naive)
        if not math.isfinite(n_mase):
            # Every fold's MASE scale is 0: seasonal naive is exact on the history (a constant series).
            reasons.append("MASE undefined: seasonal naive is exact on the training history (its error, the MASE scale, is 0)")
        elif n_mase == 0 and not c_mase < naive_limit:
            # Naive made no error on any fold (a product that has not sold through the backtest periods, or
            # sold exactly what it did a season before): nothing can beat it, and "0.000 does not beat 0.000"
            # reads like a bug. Still a rejection: the fallback (seasonal naive) is as good on this evidence.
            reasons.append(
                f"MASE {c_mase:.3f}: seasonal naive is exact on every backtest fold (MASE 0; e.g. no sales in them), nothing to beat"
            )
        elif not (math.isfinite(c_mase) and c_mase < naive_limit):
            reasons.append(f"MASE {c_mase:.3f} does not beat seasonal naive {n_mase:.3f} (limit < {naive_limit:.3f})")
        if champion is not None and champion_version != candidate_version:
            champion_limit = _number(champion.get("mase")) * (1 + gate.max_degradation_vs_champion)
            if not c_mase <= champion_limit:
                reasons.append(
                    f"MASE {c_mase:.3f} degrades vs champion v{champion_version} {_number(champion.get('mase')):.3f} "
                    f"(limit <= {champion_limit:.3f})"
                )
        if champion_recorded and champion_version != candidate_version and math.isfinite(_number(champion_recorded.get("mase"))):
            recorded_limit = champion_recorded["mase"] * (1 + gate.max_degradation_vs_recorded)
            if not c_mase <= recorded_limit:
                # The champion's re-score on the same folds tells the reader which it is: far off too (the
                # new data, or folds much harder than those it was recorded on), or not (the candidate).
                rescored = _number(champion.get("mase")) if champion is not None else float("nan")
                same_folds = f" (champion v{champion_version} scores {rescored:.3f} on the same folds)" if math.isfinite(rescored) else ""
                reasons.append(
                    f"MASE {c_mase:.3f} is far worse than champion v{champion_version}'s recorded backtest "
                    f"{champion_recorded['mase']:.3f} (limit <= {recorded_limit:.3f}): suspect the new data{same_folds}"
                )
    thresholds = {
        "min_improvement_vs_naive": gate.min_improvement_vs_naive,
        "max_degradation_vs_champion": gate.max_degradation_vs_champion,
    }
    if naive_limit is not None:
        thresholds["naive_mase_limit"] = naive_limit
    if champion_limit is not None:
        thresholds["champion_mase_limit"] = champion_limit
    if recorded_limit is not None:
        thresholds["recorded_mase_limit"] = recorded_limit
    return GateDecision(
        series_id=series_id,
        model_name=model_name,
        passed=not reasons,
        reasons=reasons or ["passed"],
        candidate_version=candidate_version,
        champion_version=champion_version,
        candidate=candidate,
        naive=naive,
        champion=champion,
        thresholds=thresholds,
        error=error or (None if candidate is not None and naive is not None else "training produced no metrics"),
    )


def _strict(value: Any) -> Any:
    """The value with every non-finite float replaced by None (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strict(v) for v in value]
    return value


def _number(value: Any) -> float:
    """A metric as a float; an undefined one (None in JSON) as NaN, which no comparison passes."""
    return float("nan") if value is None else float(value)


def summarise(decisions: list[GateDecision]) -> dict[str, Any]:
    """Counts and names of passed / rejected series."""
    return {
        "passed": sorted(d.series_id for d in decisions if d.passed),
        "rejected": sorted(d.series_id for d in decisions if not d.passed),
        "total": len(decisions),
    }

"""statsforecast fits for the benchmark, run in the bench-only venv (.venv-bench).

statsforecast 2.1 requires pandas<3 while the project pins pandas 3, so it cannot share the project's
environment. bench/run.py hands this worker the exact training arrays of every fold and reads back each
model's forecasts and the time each fit took (measured here, around fit + predict only, after one
untimed warm-up fit per model).

Models: AutoARIMA, AutoETS and AutoTheta with the panel's season length (the quality bar is the best of
the three), and ARIMA with one fixed order (a like-for-like timing against the project's fixed-order fit).

Usage: .venv-bench/bin/python bench/statsforecast_worker.py IN.json OUT.json
IN:  {"season_length": 7, "horizon": 7, "level": 80, "models": ["AutoARIMA", ...],
      "fixed_order": [0, 1, 1], "fixed_seasonal": [0, 1, 1], "tasks": [{"key": "...", "y": [...]}, ...]}
OUT: {"versions": {...}, "results": {model: {key: {"mean": [...], "lo": [...], "hi": [...], "seconds": s, "cpu_seconds": s}}}}
(seconds: wall time of fit + predict; cpu_seconds: the process's CPU time over the same call)
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from importlib.metadata import version

import numpy as np


def build(name: str, spec: dict) -> object:
    """One statsforecast model by name, configured for the panel."""
    from statsforecast.models import ARIMA, AutoARIMA, AutoETS, AutoTheta

    m = int(spec["season_length"])
    if name == "AutoARIMA":
        return AutoARIMA(season_length=m)
    if name == "AutoETS":
        # ETS allows seasonal periods up to 24; a longer season (52 weekly) gets a non-seasonal ETS.
        return AutoETS(season_length=m if m <= 24 else 1)
    if name == "AutoTheta":
        return AutoTheta(season_length=m)
    if name == "ARIMA_fixed":
        return ARIMA(order=tuple(spec["fixed_order"]), seasonal_order=tuple(spec["fixed_seasonal"]), season_length=max(m, 1))
    raise ValueError(name)


def main(source: str, target: str) -> int:
    """Fit every model on every task and write the forecasts with their fit times."""
    spec = json.loads(open(source).read())
    level = int(spec.get("level", 80))
    h = int(spec["horizon"])
    results: dict[str, dict] = {}
    for name in spec["models"]:
        results[name] = {}
        # One untimed fit first: it imports statsforecast (~6 s, which the first timed fit of the first
        # model used to carry) and warms any lazily compiled code, as the project's side does too.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                build(name, spec).fit(np.asarray(spec["tasks"][0]["y"], dtype=float)).predict(h=h, level=[level])
            except Exception:  # the timed loop below reports a fit that fails
                pass
        for task in spec["tasks"]:
            y = np.asarray(task["y"], dtype=float)
            started, cpu_started = time.perf_counter(), time.process_time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    out = build(name, spec).fit(y).predict(h=h, level=[level])
                    mean, lo, hi = (np.asarray(out[k], dtype=float) for k in ("mean", f"lo-{level}", f"hi-{level}"))
                except Exception as exc:  # a model that cannot fit a fold scores as the last value, and says so
                    mean = lo = hi = np.full(h, y[-1])
                    print(f"{name} {task['key']}: {type(exc).__name__}: {exc}", file=sys.stderr)
            seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
            results[name][task["key"]] = {"mean": mean.tolist(), "lo": lo.tolist(), "hi": hi.tolist(), "seconds": seconds, "cpu_seconds": cpu_seconds}
        print(f"{name}: {len(spec['tasks'])} fits", file=sys.stderr, flush=True)
    payload = {"versions": {p: version(p) for p in ("statsforecast", "numpy", "pandas")}, "results": results}
    with open(target, "w") as handle:
        json.dump(payload, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))

"""AutoARIMA fits for the benchmark, run in the bench-only venv (.venv-bench).

statsforecast 2.1 requires pandas<3 while the project pins pandas 3, so AutoARIMA cannot share the
project's environment. bench/run.py hands this worker the exact training arrays of every fold and reads
back the forecasts and the time each fit took (measured here, around fit + predict only).

Usage: .venv-bench/bin/python bench/autoarima_worker.py IN.json OUT.json
IN:  {"season_length": 7, "horizon": 7, "level": 80, "tasks": [{"key": "...", "y": [...]}, ...]}
OUT: {"versions": {...}, "results": {key: {"mean": [...], "lo": [...], "hi": [...], "seconds": s}}}
"""

from __future__ import annotations

import json
import sys
import time
from importlib.metadata import version

import numpy as np


def main(source: str, target: str) -> int:
    """Fit AutoARIMA on every task and write the forecasts with their fit times."""
    from statsforecast.models import AutoARIMA

    spec = json.loads(open(source).read())
    level = int(spec.get("level", 80))
    results = {}
    for task in spec["tasks"]:
        y = np.asarray(task["y"], dtype=float)
        started = time.perf_counter()
        out = AutoARIMA(season_length=int(spec["season_length"])).fit(y).predict(h=int(spec["horizon"]), level=[level])
        seconds = time.perf_counter() - started
        results[task["key"]] = {
            "mean": np.asarray(out["mean"]).tolist(),
            "lo": np.asarray(out[f"lo-{level}"]).tolist(),
            "hi": np.asarray(out[f"hi-{level}"]).tolist(),
            "seconds": seconds,
        }
    payload = {"versions": {p: version(p) for p in ("statsforecast", "numpy", "pandas")}, "results": results}
    with open(target, "w") as handle:
        json.dump(payload, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))

"""The MLflow pyfunc wrapper around a fitted per-series model, so a registered version can be loaded
anywhere with `mlflow.pyfunc.load_model("models:/<name>@champion")` and asked for a forecast.

A version stores what defines the model, not a pickled statsmodels object: `spec.json` (orders, fitted
parameters, closed weekdays, interval z, holiday effect) and `history.csv` (the daily series it was fitted
on). Loading filters that history with the fixed parameters (one Kalman pass, a few ms), which gives the
same forecast as the fitted object. A pickled results object was 35 MB per version (the filter's output
for every day) and tied to the statsmodels version that wrote it; these two files are ~20 KB of text.
Versions written before this format (a `results` pickle artifact) still load.

The model is logged from code (MLflow 3's models-from-code): log_candidate passes this file's path, and
MLflow runs the file to get the model from `set_model` below, so no pickled Python object is stored
with a version (logging an instance cloudpickles it, with a warning per version).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import mlflow.models
import mlflow.pyfunc
import pandas as pd


class SalesForecastModel(mlflow.pyfunc.PythonModel):
    """predict(DataFrame with an optional `horizon` column) -> forecast per period with intervals."""

    def load_context(self, context: Any) -> None:
        """Rebuild the model from the version's spec and training history."""
        from include.forecasting.training import ModelSpec

        meta = json.loads(Path(context.artifacts["spec"]).read_text())
        self.spec = ModelSpec.from_dict(meta["spec"])
        self.last_date = pd.Timestamp(meta["last_date"])
        self.levels = tuple(meta["levels"])
        self.default_horizon = int(meta["horizon"])
        self.results = None
        self.history = None
        if "history" in context.artifacts:
            history = pd.read_csv(context.artifacts["history"], parse_dates=["date"])
            freq = self.spec.frequency.pandas_freq
            self.history = history.set_index("date")["value"].asfreq(freq).rename(meta.get("series_id", "series"))
        else:  # a version logged before the spec + history format
            with open(context.artifacts["results"], "rb") as fh:
                self.results = pickle.load(fh)  # noqa: S301 - our own artifact, written by log_candidate

    # `model_input: pd.DataFrame` is a hint MLflow accepts without deriving a schema from it (the input is
    # an optional `horizon` column); without a hint MLflow warns on every load of the model file.
    def predict(self, context: Any, model_input: pd.DataFrame = None, params: dict[str, Any] | None = None) -> pd.DataFrame:  # noqa: RUF013
        """Forecast the days after the training data; horizon from input column `horizon` or the default."""
        from include.forecasting.training import forecast_frame, forecast_with_spec

        horizon = self.default_horizon
        if model_input is not None and len(model_input) and "horizon" in model_input:
            horizon = int(model_input["horizon"].iloc[0])
        if self.history is not None:
            return forecast_with_spec(self.history, self.spec, horizon, self.levels)
        return forecast_frame(self.results, self.spec, self.last_date, horizon, self.levels)


# Models-from-code: what MLflow runs when it logs or loads a version.
mlflow.models.set_model(SalesForecastModel())

"""The MLflow pyfunc wrapper around a fitted per-series model, so a registered version can be loaded
anywhere with `mlflow.pyfunc.load_model("models:/<name>@champion")` and asked for a forecast."""

from __future__ import annotations

import json
import pickle
from typing import Any

import mlflow.pyfunc
import pandas as pd


class SalesForecastModel(mlflow.pyfunc.PythonModel):
    """predict(DataFrame with an optional `horizon` column) -> daily forecast with intervals."""

    def load_context(self, context: Any) -> None:
        """Load the pickled statsmodels results and the model spec from the version's artifacts."""
        from include.forecasting.training import ModelSpec

        with open(context.artifacts["results"], "rb") as fh:
            self.results = pickle.load(fh)  # noqa: S301 - our own artifact, written by log_candidate
        meta = json.loads(open(context.artifacts["spec"]).read())
        self.spec = ModelSpec.from_dict(meta["spec"])
        self.last_date = pd.Timestamp(meta["last_date"])
        self.levels = tuple(meta["levels"])
        self.default_horizon = int(meta["horizon"])

    # No type hints on predict: MLflow would try to derive a model signature from them.
    def predict(self, context, model_input=None, params=None):  # noqa: ANN001, ANN201
        """Forecast the days after the training data; horizon from input column `horizon` or the default."""
        from include.forecasting.training import forecast_frame

        horizon = self.default_horizon
        if model_input is not None and len(model_input) and "horizon" in model_input:
            horizon = int(model_input["horizon"].iloc[0])
        return forecast_frame(self.results, self.spec, self.last_date, horizon, self.levels)

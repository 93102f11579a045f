"""The MLflow pyfunc wrapper around a fitted per-series model, so a registered version can be loaded
anywhere with `mlflow.pyfunc.load_model("models:/<name>@champion")` and asked for a forecast.

A version stores what defines the model, not a pickled statsmodels object: `spec.json` (orders, fitted
parameters, closed weekdays, interval z, holiday effect) and `history.csv` (the daily series it was fitted
on). Loading filters that history with the fixed parameters (one Kalman pass, a few ms), which gives the
same forecast as the fitted object; given the series' newer periods, it filters them too and forecasts
from their end, as the DAG's champion serves the runs after its training. A pickled results object was
35 MB per version (the filter's output for every day) and tied to the statsmodels version that wrote it;
these two files are ~20 KB of text.
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
    """predict(DataFrame, params) -> forecast per period with intervals.

    The input may hold the series' newer periods (columns `date`, `value`): the forecast then starts after
    them, from the stored history with those periods laid over it (`training.history_with`), with the
    version's fixed parameters, as the DAG's champion serves runs after its training. Without them it
    starts after the training data. The horizon is an input column `horizon` (the only input of versions
    logged before), else `params={"horizon": N}`, else the version's default.
    """

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

    # `model_input: pd.DataFrame` is a hint MLflow accepts without deriving a schema from it (the signature
    # is explicit); without a hint MLflow warns on every load of the model file.
    def predict(self, context: Any, model_input: pd.DataFrame = None, params: dict[str, Any] | None = None) -> pd.DataFrame:  # noqa: RUF013
        """Forecast the periods after the training data, or after the newer periods given as `date`, `value`."""
        from include.forecasting.training import forecast_frame, forecast_with_spec, history_with

        horizon = self.default_horizon
        if params and params.get("horizon") is not None:  # MLflow passes the signature's default when not given
            horizon = int(params["horizon"])
        given = model_input if model_input is not None else pd.DataFrame()
        if "horizon" in given and given["horizon"].notna().any():  # an input column: as callers before params
            horizon = int(given["horizon"].dropna().iloc[0])
        if horizon < 1:
            raise ValueError(f"horizon must be at least 1 period (got {horizon})")
        # Rows with neither a date nor a value carry only the horizon; a row with one but not the other is
        # refused by history_with, never dropped.
        newer = given.dropna(subset=["date", "value"], how="all") if {"date", "value"} <= set(given.columns) else pd.DataFrame()
        if self.history is not None:
            y = history_with(self.history, newer, self.spec.frequency) if len(newer) else self.history
            return forecast_with_spec(y, self.spec, horizon, self.levels)
        if len(newer):
            raise ValueError("this version predates forecasting from newer data (no stored history): roll forward to a newer version")
        return forecast_frame(self.results, self.spec, self.last_date, horizon, self.levels)


# Models-from-code: what MLflow runs when it logs or loads a version.
mlflow.models.set_model(SalesForecastModel())

"""Model versions: log one fit as an MLflow run with a registered version (spec + history + code, logged
from code), record its evaluation, read its spec back, and verify a version by loading and forecasting."""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import math
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from include.forecasting.config import PROJECT_ROOT
from include.forecasting.evaluation import interval_suffix
from include.forecasting.keys import series_sha256, slug

log = logging.getLogger(__name__)


class SlugCollisionError(ValueError):
    """Two series map to the same registered-model name; the first one registered owns it."""

def _not_found(exc: Exception) -> bool:
    return "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or "not found" in str(exc).lower()

def spec_of(version: Any | None) -> Any | None:
    """The ModelSpec recorded on a version (None for None)."""
    from include.forecasting.training import ModelSpec

    if version is None or "spec" not in version.tags:
        return None
    return ModelSpec.from_dict(json.loads(version.tags["spec"]))

def _self_contained_code() -> Path:
    """A temp copy of include/forecasting (as package include.forecasting) shipped with each model."""
    root = Path(tempfile.mkdtemp(prefix="forecast_code_"))
    package = root / "include"
    (package / "forecasting").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for source in (PROJECT_ROOT / "include" / "forecasting").glob("*.py"):
        shutil.copy2(source, package / "forecasting" / source.name)
    return package

@functools.cache
def _charmap(path: str) -> frozenset[int]:
    """The code points a font file has glyphs for."""
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(path).get_charmap())


@functools.cache
def _font_with(missing: frozenset[int]) -> str | None:
    """The family name of an installed font with glyphs for all of `missing`, or None (fonts are scanned
    once per process, only when a title needs one)."""
    from matplotlib import font_manager

    for entry in font_manager.fontManager.ttflist:
        if "last resort" in entry.name.lower():
            continue  # Unicode's Last Resort font maps every code point to a box naming its script
        try:
            if missing <= _charmap(entry.fname):
                return str(entry.name)
        except (OSError, RuntimeError):  # an unreadable font file is skipped
            continue
    return None


def title_fonts(text: str) -> list[str] | None:
    """Font families that render every character of `text`: [] when matplotlib's default font has them
    all, [default, a font that has the rest] (matplotlib falls back glyph by glyph), or None when no
    installed font does (a Chinese product name on a host without CJK fonts would be drawn as boxes)."""
    from matplotlib import font_manager

    default = font_manager.findfont(font_manager.FontProperties())
    missing = frozenset(ord(c) for c in text) - _charmap(default)
    if not missing:
        return []
    other = _font_with(missing)
    return None if other is None else [font_manager.FontProperties(fname=default).get_name(), other]


def forecast_figure(y: pd.Series, forecast: pd.DataFrame, title: str, ascii_title: str | None = None) -> Any:
    """History (last 120 days) with the forecast and its first prediction interval. A title no installed
    font can draw is replaced by `ascii_title` (the registered model's name) when given.

    Built on a bare Figure with fixed margins and a month locator: pyplot's tight_layout and automatic
    date ticks drew the figure twice and cost ~0.1 s per version (a tenth of a 1,000-series run).
    """
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.5), dpi=72)  # a thumbnail in the MLflow UI
    ax = fig.add_axes((0.08, 0.12, 0.9, 0.78))
    recent = y.iloc[-120:]
    ax.plot(recent.index, recent.values, lw=1, color="#444", label="actual")
    ax.plot(forecast["forecast_date"], forecast["yhat"], color="#d62728", label="forecast (median)")
    ax.fill_between(forecast["forecast_date"], forecast["yhat_lower"], forecast["yhat_upper"], color="#d62728", alpha=0.2, label="80 % interval")
    ax.xaxis.set_major_locator(mdates.MonthLocator())
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
    fonts = title_fonts(title)
    if fonts is None and ascii_title is not None:
        ax.set_title(ascii_title)
    else:
        ax.set_title(title, **({"fontfamily": fonts} if fonts else {}))
    ax.set_ylabel("quantity per period")
    ax.legend(loc="upper left", fontsize=8)
    return fig

def _signature(levels: tuple[float, ...], horizon: int) -> Any:
    """The pyfunc model's signature. Input: the series' newer periods (`date`, `value`; optional) and an
    optional `horizon` column; param `horizon` (default: the configured one); output: the forecast frame."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema

    outputs = [ColSpec("datetime", "forecast_date"), ColSpec("double", "yhat"), ColSpec("double", "yhat_lower"), ColSpec("double", "yhat_upper")]
    for level in levels[1:]:
        suffix = interval_suffix(level, levels)
        outputs += [ColSpec("double", f"yhat_lower{suffix}"), ColSpec("double", f"yhat_upper{suffix}")]
    # `date` and `value` of any type, which history_with parses and checks: a date as ISO text (JSON to
    # `mlflow models serve`) or a pandas datetime, a value as an integer (bottles) or a decimal (kg); the
    # schema's "double" would refuse integers (MLflow does not convert int64 to float64).
    inputs = Schema([ColSpec(AnyType(), "date", required=False), ColSpec(AnyType(), "value", required=False), ColSpec("long", "horizon", required=False)])
    return ModelSignature(inputs=inputs, outputs=Schema(outputs), params=ParamSchema([ParamSpec("horizon", "long", horizon)]))


def log_candidate(
    client: Any,
    experiment_id: str,
    name: str,
    series_id: str,
    fitted: Any,
    y: pd.Series,
    forecast: pd.DataFrame,
    tags: dict[str, str],
    params: dict[str, Any],
    horizon: int,
    levels: tuple[float, ...],
    source: str | None = None,
) -> Any:
    """Log one fit as an MLflow run (params, metrics, plot, pyfunc model, training data) and register a version.

    The series' training history is the run's "training" dataset input (MLflow's Datasets: the run page
    and the logged model show it), named like the registered model, its digest the first 16 characters of
    the version's `data_sha256` tag, its source `source` (the snapshot it was cut from), so the MLflow UI
    tells which data a version learned from without reading tags.

    The version is created with all its tags in one call, so a version without its idempotency key
    can never exist (a crash leaves at most an unregistered run). The model is stored as its spec and
    training history (see pyfunc_model), not as a pickled statsmodels object.
    """
    import mlflow
    from mlflow.entities import Param, RunTag

    from include.forecasting import pyfunc_model

    if y.index.max() != fitted.last_date:  # the stored history must be what the model was fitted on
        raise ValueError(f"{series_id}: history ends {y.index.max().date()}, the fit on {fitted.last_date.date()}")
    _ensure_registered_model(client, name, series_id, fitted.spec.cadence)  # first: a name collision must not leave a run behind
    workdir = Path(tempfile.mkdtemp(prefix="forecast_model_"))
    meta = {
        "series_id": series_id, "spec": fitted.spec.to_dict(), "last_date": str(fitted.last_date.date()),
        "levels": list(levels), "horizon": horizon,
    }
    (workdir / "spec.json").write_text(json.dumps(meta, indent=2))
    y.rename("value").rename_axis("date").to_csv(workdir / "history.csv", date_format="%Y-%m-%d")
    code = _self_contained_code()
    try:
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"{slug(series_id)}-{tags.get('logical_date', '')}") as run:
            # One store call for tags, params and metrics (each fluent call is its own transaction).
            client.log_batch(
                run.info.run_id,
                # n_periods: days, weeks or months of history (the cadence is the `cadence` param).
                metrics=_metric_batch({"aic": fitted.spec.aic, "fit_seconds": fitted.fit_seconds, "n_periods": len(y)}),
                params=[Param(k, json.dumps(v) if isinstance(v, (list, dict, tuple)) else str(v)) for k, v in params.items()],
                tags=[RunTag(k, str(v)) for k, v in {**tags, "series_id": series_id}.items()],
            )
            # The pipeline tags the series' hash already; a caller without that tag gets it computed.
            data_sha = tags.get("data_sha256") or series_sha256(y)
            mlflow.log_input(_training_dataset(y, name, source, data_sha), context="training")
            mlflow.log_dict({"candidates": fitted.candidates, **meta}, "model_selection.json")
            mlflow.log_figure(forecast_figure(y, forecast, f"{series_id}: {fitted.spec.label}", f"{name}: {fitted.spec.label}"), "forecast.png")
            # A signature without an input example makes MLflow warn on every log; an example would make it
            # load and call the model once more per fit. The signature is explicit, so the warning is noise.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*input example was not provided.*", category=UserWarning)
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=pyfunc_model.__file__,  # models-from-code: nothing pickled
                    artifacts={"spec": str(workdir / "spec.json"), "history": str(workdir / "history.csv")},
                    code_paths=[str(code)],
                    # Explicit requirements: inference would import and scan the whole environment.
                    pip_requirements=list(_model_requirements()),
                    # Input: newer periods and the horizon, both optional; output: the forecast frame. Shown
                    # in the MLflow UI and checked by MLflow when the version is loaded and called.
                    signature=_signature(levels, horizon),
                )
        _ensure_registered_model(client, name, series_id, fitted.spec.cadence)
        version = client.create_model_version(
            name=name,
            source=info.model_uri,
            # MLflow 3: a `models:/m-...` source must name its logged model, or a tracking server
            # answers 400 INVALID_PARAMETER_VALUE (the local sqlite store does not check).
            model_id=info.model_id,
            run_id=run.info.run_id,
            tags={**tags, "series_id": series_id, "spec": json.dumps(fitted.spec.to_dict())},
            description=f"{fitted.spec.label} on log sales for {series_id}",
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(code.parent, ignore_errors=True)
    _link_logged_model(client, info.model_id, name, str(version.version))
    log.info("registered %s v%s (run %s)", name, version.version, run.info.run_id)
    return version


def _link_logged_model(client: Any, model_id: str, name: str, version: str) -> None:
    """Record the registered version on its logged model (the `mlflow.modelVersions` tag the MLflow UI's
    model page lists), as `mlflow.register_model` and a tracking server's create-version handler do; a
    local store's `create_model_version` does not. Merged, so a server's own entry is not repeated. A
    failure here only costs the UI that link: the version and its run are complete, so it is logged."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

    try:
        listed = json.loads(client.get_logged_model(model_id).tags.get(MLFLOW_MODEL_VERSIONS) or "[]")
        if not any((str(e.get("name")), str(e.get("version"))) == (name, version) for e in listed):
            client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps([*listed, {"name": name, "version": version}])})
    except MlflowException as exc:
        log.warning("%s v%s: not linked on its logged model %s in the MLflow UI: %s", name, version, model_id, exc)

def _dataset_digest(data_sha: str) -> str:
    """A training dataset's MLflow digest: the start of the version's `data_sha256` tag (MLflow stores at
    most 36 characters of a digest), the same on the run's input and on the metrics linked to it."""
    return data_sha[:16]


def _training_dataset(y: pd.Series, name: str, source: str | None, data_sha: str) -> Any:
    """The history a fit learned from as an MLflow dataset: columns date and value, digest from its
    `data_sha256` (`_dataset_digest`)."""
    import mlflow.data

    frame = pd.DataFrame({"date": pd.DatetimeIndex(y.index), "value": y.to_numpy(dtype=float)})
    with warnings.catch_warnings():
        # MLflow registers its local-file dataset source for both the "" and "file" schemes, so every local
        # path "can be interpreted in multiple ways" (the same class twice): noise in every task log.
        warnings.filterwarnings("ignore", message=".*can be interpreted in multiple ways.*", category=UserWarning)
        return mlflow.data.from_pandas(frame, source=source, targets="value", name=name, digest=_dataset_digest(data_sha))


@functools.lru_cache(maxsize=1)
def _model_requirements() -> tuple[str, ...]:
    """Pinned requirements of a logged model (read once per process: metadata lookups cost ~10 ms)."""
    from importlib.metadata import version as dist_version

    return tuple(f"{p}=={dist_version(p)}" for p in ("statsmodels", "pandas", "numpy", "scipy", "mlflow"))

def _ensure_registered_model(client: Any, name: str, series_id: str, cadence: str) -> None:
    """Create the series' registered model on its first version (described with the panel's cadence,
    e.g. "weekly (W-FRI)"); raise SlugCollisionError if the name already belongs to another series."""
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if not _not_found(exc):
            raise
        try:
            client.create_registered_model(name, tags={"series_id": series_id}, description=f"Sales forecast for {series_id}, {cadence} data")
        except MlflowException as create_exc:  # created concurrently
            if "already exists" not in str(create_exc).lower():
                raise
        return
    owner = model.tags.get("series_id")
    if owner is not None and owner != series_id:
        raise SlugCollisionError(f"registered model {name} belongs to series {owner!r}, not {series_id!r} (slug collision)")

def _metric_batch(values: dict[str, float], **link: str | None) -> list[Any]:
    """MLflow Metric entities for one `log_batch` call, stamped now, at step 0; a value that is not a finite
    number (the AIC of a noise-free model) is left out rather than logged as NaN. `link`: Metric's
    model_id / dataset_name / dataset_digest (MLflow 3 shows such metrics on the logged model's page)."""
    from mlflow.entities import Metric

    now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    return [Metric(key, float(value), now, 0, **link) for key, value in values.items() if value is not None and math.isfinite(float(value))]

def logged_model_id(version: Any) -> str | None:
    """The MLflow 3 logged model a registered version points at: its `model_id`, or, where the store does
    not return one (the sqlite registry leaves it empty), the id in its `models:/m-...` source."""
    found = getattr(version, "model_id", None)
    if found:
        return str(found)
    source = str(getattr(version, "source", "") or "")
    if source.startswith("models:/m-") and "/" not in source[len("models:/") :]:
        return source[len("models:/") :]
    return None


def record_evaluation(client: Any, version: Any, metrics: dict[str, Any]) -> None:
    """Attach backtest metrics to the candidate's run (as MLflow metrics) and version (as a tag).

    The metrics are linked to the version's logged model and to the run's training dataset (the backtest
    refits on folds of that history), so the logged model's page in the MLflow UI lists them too.
    """
    values = {
        f"{method}_{metric}": value
        for method, values in metrics.items()
        if isinstance(values, dict)  # not champion_version, nor missing champion metrics
        for metric, value in values.items()
        if isinstance(value, (int, float)) and value == value  # skip None and NaN
    }
    data_sha = (version.tags or {}).get("data_sha256")
    link = {"model_id": logged_model_id(version), "dataset_name": version.name if data_sha else None, "dataset_digest": _dataset_digest(data_sha) if data_sha else None}
    client.log_batch(version.run_id, metrics=_metric_batch(values, **link))  # one store transaction, not one per metric
    client.set_model_version_tag(version.name, version.version, "backtest", json.dumps(metrics))

def verify_version(tracking_uri: str, name: str, version: str, horizon: int) -> pd.DataFrame:
    """Load a registered version as pyfunc and forecast; raise if the forecast is unusable."""
    import mlflow.pyfunc
    import numpy as np

    mlflow.set_tracking_uri(tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    frame = model.predict(pd.DataFrame({"horizon": [horizon]}))
    values = frame[[c for c in frame.columns if c.startswith("yhat")]].to_numpy(dtype=float)
    if len(frame) != horizon or not np.isfinite(values).all() or (values < 0).any():
        raise ValueError(f"{name} v{version} produced an unusable forecast: {frame.head()}")
    return frame

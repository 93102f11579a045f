"""MLflow tracking and registry operations: log candidates, find reusable versions, promote and roll back
the `champion` alias. Takes an `MlflowClient`; never imports Airflow (the hook in plugins/ builds the client).

Registry layout: one registered model per series, `<prefix>.<series slug>`, tagged with the raw series id.
Every version carries tags written at creation (so they exist iff the version exists):
  idempotency_key  sha256(series data + config + code version): a rerun with the same inputs reuses it
  logical_date     the run that trained it: an older backfill never demotes a newer champion
  spec             JSON ModelSpec (order, params, closure, interval z) to refit, warm-start or explain
Promotion moves the alias in one call (atomic per series) after tagging the version with the previous
champion, so rollback to "previous" needs no external state.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import hashlib
import json
import logging
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from include.forecasting import __version__
from include.forecasting.config import PROJECT_ROOT

log = logging.getLogger(__name__)

# Libraries whose version can change a fit's numbers: part of the code version.
_NUMERIC_LIBS = ("statsmodels", "numpy", "scipy", "pandas", "holidays")
TAG_KEY = "idempotency_key"


@dataclass
class PromotionResult:
    """What a promotion (or rollback) did for one series."""

    series_id: str
    model_name: str
    version: str
    previous: str | None
    changed: bool
    note: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def slug(series_id: str) -> str:
    """Registry-safe lowercase name for a series id (`FIVE O'CLOCK VODKA` -> `five_o_clock_vodka`).

    An id with characters beyond ASCII (`青茄子(1)`, `Café Crème`) keeps its ASCII part and gets a short
    hash of the whole id, or two such ids would collapse to the same name (`1` for `净藕(1)` and `青茄子(1)`).
    """
    text = re.sub(r"[^a-z0-9]+", "_", series_id.lower()).strip("_")
    if series_id.isascii() and text:
        return text
    digest = hashlib.sha256(series_id.encode()).hexdigest()[:10]
    return f"{text}_{digest}" if text else digest


def model_name(prefix: str, series_id: str) -> str:
    """Registered model name for a series."""
    return f"{prefix}.{slug(series_id)}"


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus a hash of the whole modelling package and the numeric libraries' versions:
    a change in any module of include/forecasting, or a new statsmodels / numpy / scipy / pandas /
    holidays, changes the key (and so refits)."""
    from importlib.metadata import version as dist_version

    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for lib in _NUMERIC_LIBS:
        digest.update(f"{lib}=={dist_version(lib)}".encode())
    return f"{__version__}+{digest.hexdigest()[:12]}"


def series_sha256(y: pd.Series) -> str:
    """Hash of one series' training data: its id, dates and exact values (float64 bytes, no rounding).

    The id is part of it: two products with identical history must not share an idempotency key, or
    one would silently reuse the other's model version.
    """
    digest = hashlib.sha256(f"{y.name}\n".encode())
    digest.update(pd.DatetimeIndex(y.index).strftime("%Y-%m-%d").str.cat(sep=",").encode())
    digest.update(y.to_numpy(dtype="float64").tobytes())
    return digest.hexdigest()


def idempotency_key(data_sha: str, config_sha: str, code: str) -> str:
    """The key that identifies 'the same training' across reruns, clears and backfills."""
    return hashlib.sha256(f"{data_sha}|{config_sha}|{code}".encode()).hexdigest()


@contextmanager
def _sqlite_schema_lock(tracking_uri: str) -> Iterator[None]:
    """Hold an exclusive file lock beside a sqlite tracking database (no-op for other stores)."""
    if not tracking_uri.startswith("sqlite:"):
        yield
        return
    from sqlalchemy.engine import make_url

    database = Path(make_url(tracking_uri).database or "")
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + ".schema-lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        yield


def open_client(tracking_uri: str) -> Any:
    """An MlflowClient whose tracking and registry stores exist; also points MLflow's fluent API (the
    runs log_candidate starts) at the same URI.

    MLflow creates a sqlite store's schema (its alembic migrations) in whichever process first touches
    a fresh file. Concurrent first users corrupt it for good (`table _alembic_tmp_runs already exists`,
    seen with three backfill runs starting together), so that first touch is serialised across
    processes by a file lock. Later opens find every table and only pay for the lock.
    """
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    with _sqlite_schema_lock(tracking_uri):
        client = MlflowClient(tracking_uri=tracking_uri)  # builds the tracking store
        client.search_registered_models(max_results=1)  # the registry store is built lazily
    return client


def ensure_experiment(tracking_uri: str, experiment: str, artifact_root: Path) -> str:
    """Create (if needed) and return the experiment id; artifacts go under artifact_root for file stores."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    found = mlflow.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    location = None
    if tracking_uri.startswith("sqlite:") or tracking_uri.startswith("file:"):
        artifact_root.mkdir(parents=True, exist_ok=True)
        location = artifact_root.resolve().as_uri()
    try:
        return mlflow.create_experiment(experiment, artifact_location=location)
    except Exception:  # a concurrent task created it first
        found = mlflow.get_experiment_by_name(experiment)
        if found is None:
            raise
        return found.experiment_id


def _not_found(exc: Exception) -> bool:
    return "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or "not found" in str(exc).lower()


def get_alias_version(client: Any, name: str, alias: str) -> Any | None:
    """The model version behind an alias, or None if the model or alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if _not_found(exc) or "alias" in str(exc).lower():
            return None
        raise


def versions(client: Any, name: str) -> list[Any]:
    """All versions of a registered model, newest first (empty if it does not exist)."""
    found = client.search_model_versions(f"name = '{name}'")
    return sorted(found, key=lambda v: int(v.version), reverse=True)


def production_version(client: Any, name: str, alias: str, as_of: str) -> Any | None:
    """The version that serves logical date `as_of` (YYYY-MM-DD), deterministically.

    Normally the alias's version. When that was trained for a later date (this is a backfill or a
    rerun of an older date), the newest gate-passed version trained for `as_of` or earlier: an older
    date never uses a model fitted on its future, and its result does not depend on which newer runs
    happened to finish first.
    """
    current = get_alias_version(client, name, alias)
    if current is None or current.tags.get("logical_date", "") <= as_of:
        return current
    eligible = [
        v for v in versions(client, name)
        if v.tags.get("gate_passed") == "true" and v.tags.get("withdrawn") != "true" and v.tags.get("logical_date", "") <= as_of
    ]
    return max(eligible, key=lambda v: (v.tags["logical_date"], int(v.version)), default=None)


def find_version_by_key(client: Any, name: str, key: str) -> Any | None:
    """The version already trained for this idempotency key, if any (so reruns do not refit)."""
    for version in versions(client, name):
        if version.tags.get(TAG_KEY) == key:
            return version
    return None


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


def forecast_figure(y: pd.Series, forecast: pd.DataFrame, title: str) -> Any:
    """History (last 120 days) with the forecast and its first prediction interval.

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
    ax.set_title(title)
    ax.set_ylabel("quantity per period")
    ax.legend(loc="upper left", fontsize=8)
    return fig


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
) -> Any:
    """Log one fit as an MLflow run (params, metrics, plot, pyfunc model) and register a version.

    The version is created with all its tags in one call, so a version without its idempotency key
    can never exist (a crash leaves at most an unregistered run). The model is stored as its spec and
    training history (see pyfunc_model), not as a pickled statsmodels object.
    """
    import mlflow
    from mlflow.entities import Param, RunTag

    from include.forecasting import pyfunc_model

    if y.index.max() != fitted.last_date:  # the stored history must be what the model was fitted on
        raise ValueError(f"{series_id}: history ends {y.index.max().date()}, the fit on {fitted.last_date.date()}")
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
                metrics=_metric_batch({"aic": fitted.spec.aic, "fit_seconds": fitted.fit_seconds, "n_days": len(y)}),
                params=[Param(k, json.dumps(v) if isinstance(v, (list, dict, tuple)) else str(v)) for k, v in params.items()],
                tags=[RunTag(k, str(v)) for k, v in {**tags, "series_id": series_id}.items()],
            )
            mlflow.log_dict({"candidates": fitted.candidates, **meta}, "model_selection.json")
            mlflow.log_figure(forecast_figure(y, forecast, f"{series_id}: order {fitted.spec.order}"), "forecast.png")
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=pyfunc_model.__file__,  # models-from-code: nothing pickled
                artifacts={"spec": str(workdir / "spec.json"), "history": str(workdir / "history.csv")},
                code_paths=[str(code)],
                # Explicit requirements: inference would import and scan the whole environment.
                pip_requirements=list(_model_requirements()),
            )
        _ensure_registered_model(client, name, series_id)
        version = client.create_model_version(
            name=name,
            source=info.model_uri,
            # MLflow 3: a `models:/m-...` source must name its logged model, or a tracking server
            # answers 400 INVALID_PARAMETER_VALUE (the local sqlite store does not check).
            model_id=info.model_id,
            run_id=run.info.run_id,
            tags={**tags, "series_id": series_id, "spec": json.dumps(fitted.spec.to_dict())},
            description=f"SARIMA{fitted.spec.order}x{fitted.spec.seasonal_order} on log sales for {series_id}",
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(code.parent, ignore_errors=True)
    log.info("registered %s v%s (run %s)", name, version.version, run.info.run_id)
    return version


@functools.lru_cache(maxsize=1)
def _model_requirements() -> tuple[str, ...]:
    """Pinned requirements of a logged model (read once per process: metadata lookups cost ~10 ms)."""
    from importlib.metadata import version as dist_version

    return tuple(f"{p}=={dist_version(p)}" for p in ("statsmodels", "pandas", "numpy", "scipy", "mlflow"))


def _ensure_registered_model(client: Any, name: str, series_id: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if not _not_found(exc):
            raise
        try:
            client.create_registered_model(name, tags={"series_id": series_id}, description=f"Daily sales forecast for {series_id}")
        except MlflowException as create_exc:  # created concurrently
            if "already exists" not in str(create_exc).lower():
                raise
        return
    owner = model.tags.get("series_id")
    if owner is not None and owner != series_id:
        raise ValueError(f"registered model {name} belongs to series {owner!r}, not {series_id!r} (slug collision)")


def _metric_batch(values: dict[str, float]) -> list[Any]:
    """MLflow Metric entities for one `log_batch` call, stamped now, at step 0."""
    from mlflow.entities import Metric

    now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    return [Metric(key, float(value), now, 0) for key, value in values.items()]


def record_evaluation(client: Any, version: Any, metrics: dict[str, Any]) -> None:
    """Attach backtest metrics to the candidate's run (as MLflow metrics) and version (as a tag)."""
    values = {
        f"{method}_{metric}": value
        for method, values in metrics.items()
        if isinstance(values, dict)  # not champion_version, nor missing champion metrics
        for metric, value in values.items()
        if isinstance(value, (int, float)) and value == value  # skip None and NaN
    }
    client.log_batch(version.run_id, metrics=_metric_batch(values))  # one store transaction, not one per metric
    client.set_model_version_tag(version.name, version.version, "backtest", json.dumps(metrics))


def promote(
    client: Any,
    name: str,
    series_id: str,
    version: str,
    alias: str,
    logical_date: str,
    actor: str,
    reason: str = "passed the quality gate",
) -> PromotionResult:
    """Move `alias` to `version` unless it is already there or a newer-dated champion holds it."""
    current = get_alias_version(client, name, alias)
    if current is not None and str(current.version) == str(version):
        return PromotionResult(series_id, name, str(version), current.tags.get("previous_champion"), False, "already champion (idempotent rerun)")
    if current is not None and current.tags.get("logical_date", "") > logical_date:
        return PromotionResult(
            series_id, name, str(version), str(current.version), False,
            f"kept v{current.version}: it was trained for {current.tags.get('logical_date')}, newer than {logical_date}",
        )
    previous = str(current.version) if current is not None else ""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for key, value in {"previous_champion": previous, "promoted_at": now, "promoted_by": actor, "promotion_reason": reason, "withdrawn": "false"}.items():
        client.set_model_version_tag(name, str(version), key, value)
    client.set_registered_model_alias(name, alias, str(version))  # the single, atomic switch
    return PromotionResult(series_id, name, str(version), previous or None, True, reason)


def rollback(
    client: Any,
    name: str,
    series_id: str,
    alias: str,
    target: str,
    actor: str,
    reason: str,
) -> PromotionResult:
    """Move `alias` back: target "previous" (the version the champion replaced), "last-passed"
    (newest other version that passed the gate), or an explicit version number."""
    current = get_alias_version(client, name, alias)
    if current is None:
        raise LookupError(f"{name} has no {alias!r} alias to roll back")
    if target == "previous":
        wanted = current.tags.get("previous_champion") or ""
        if not wanted:
            raise LookupError(f"{name} v{current.version} has no previous champion recorded")
    elif target == "last-passed":
        candidates = [v for v in versions(client, name) if v.tags.get("gate_passed") == "true" and str(v.version) != str(current.version)]
        if not candidates:
            raise LookupError(f"{name} has no other version that passed the gate")
        wanted = str(candidates[0].version)
    elif target.isdigit():
        wanted = target
    else:
        raise ValueError(f"rollback target must be 'previous', 'last-passed' or a version number (got {target!r})")
    if str(wanted) == str(current.version):
        return PromotionResult(series_id, name, wanted, str(current.version), False, "already champion")
    client.get_model_version(name, wanted)  # raises if the version does not exist
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for key, value in {"rolled_back_at": now, "rolled_back_by": actor, "rollback_reason": reason, "rolled_back_from": str(current.version), "withdrawn": "false"}.items():
        client.set_model_version_tag(name, wanted, key, value)
    # The version rolled back from is withdrawn: no older date or backfill serves it again unless it is
    # explicitly rolled forward (which clears the tag above).
    client.set_model_version_tag(name, str(current.version), "withdrawn", "true")
    client.set_registered_model_alias(name, alias, wanted)
    return PromotionResult(series_id, name, wanted, str(current.version), True, f"rolled back from v{current.version}: {reason}")


def revert_promotions(client: Any, alias: str, promotions: list[dict[str, Any]], reason: str) -> list[dict[str, Any]]:
    """Undo this run's alias moves (publishing failed for good): each changed series' alias goes back to
    the version it replaced (or is removed if there was none), and the reverted version is withdrawn.
    Only an alias still on this run's version is touched. Returns what was moved back."""
    reverted = []
    for p in promotions:
        if not p.get("changed"):
            continue
        current = get_alias_version(client, p["model_name"], alias)
        if current is None or str(current.version) != str(p["version"]):
            continue
        if p.get("previous"):
            client.set_registered_model_alias(p["model_name"], alias, str(p["previous"]))
        else:
            client.delete_registered_model_alias(p["model_name"], alias)
        client.set_model_version_tag(p["model_name"], str(p["version"]), "withdrawn", "true")
        client.set_model_version_tag(p["model_name"], str(p["version"]), "withdrawn_reason", reason)
        reverted.append({"series_id": p["series_id"], "from": str(p["version"]), "to": p.get("previous")})
    return reverted


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


def registered_models(client: Any, prefix: str) -> list[Any]:
    """Every registered model named `<prefix>.*`, all pages (a store returns at most 1,000 per page)."""
    found: list[Any] = []
    token = None
    while True:
        page = client.search_registered_models(f"name LIKE '{prefix}.%'", max_results=1000, page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            return sorted(found, key=lambda m: m.name)


def registry_overview(client: Any, prefix: str, alias: str, last: int = 3) -> list[dict[str, Any]]:
    """Per series: champion, previous champion, and the last candidates with their backtest MASE."""
    out = []
    for model in registered_models(client, prefix):
        champion = get_alias_version(client, model.name, alias)
        rows = []
        for v in versions(client, model.name)[:last]:
            metrics = json.loads(v.tags.get("backtest", "{}"))
            rows.append(
                {
                    "version": str(v.version),
                    "logical_date": v.tags.get("logical_date"),
                    "mase": (metrics.get("candidate") or {}).get("mase"),
                    "naive_mase": (metrics.get("naive") or {}).get("mase"),
                    "gate_passed": v.tags.get("gate_passed") == "true",
                }
            )
        out.append(
            {
                "model": model.name,
                "series_id": model.tags.get("series_id"),
                "champion": str(champion.version) if champion else None,
                "previous": champion.tags.get("previous_champion") if champion else None,
                "candidates": rows,
            }
        )
    return out

"""Opening the MLflow store: a client whose tracking and registry stores exist, created once under a file
lock for sqlite, and the experiment."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def _sqlite_schema_lock(tracking_uri: str) -> Iterator[None]:
    """Hold an exclusive file lock beside a sqlite tracking database (no-op for other stores)."""
    if not tracking_uri.startswith("sqlite:"):
        yield
        return
    from sqlalchemy.engine import make_url

    database_name = make_url(tracking_uri).database or ""
    if database_name.startswith("file:"):  # SQLite URI filename (e.g. `file:/abs/mlflow.db?mode=ro&uri=true`)
        database_name = database_name[len("file:") :].split("?")[0]
    database = Path(database_name)
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

    # MLflow draws a tqdm bar for every artifact it copies (each logged model, each load): in a task log
    # that is a line of carriage-return updates per series. Off unless the deployment sets the variable.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
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

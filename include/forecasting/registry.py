"""MLflow tracking and registry operations, one module per responsibility; this module gathers them so
callers write `registry.<name>`. Takes an `MlflowClient`; never imports Airflow (the hook in plugins/
builds the client).

- `keys`: registered-model names (slugs), the code version and the training key;
- `store`: opening the tracking store (schema creation under a file lock) and the experiment;
- `model_versions`: logging a fit as a run + registered version, its evaluation, its spec, verification;
- `promotion`: the champion alias (promote, roll back, undo) and the version that serves a date;
- `overview`: champions and candidates per series, and series lookup by name.

Registry layout: one registered model per series, `<prefix>.<series slug>`, tagged with the raw series id.
Every version carries tags written at creation (so they exist iff the version exists):
  idempotency_key  the training key: a rerun with the same inputs reuses the version
  logical_date     the run that trained it: an older backfill never demotes a newer champion
  spec             JSON ModelSpec (orders, params, cadence, zero shares, holiday effects)
Promotion moves the alias in one call (atomic per series) after tagging the version with the previous
champion, so rollback to "previous" needs no external state.
"""

from __future__ import annotations

from include.forecasting.keys import TAG_KEY, code_version, idempotency_key, model_name, series_sha256, slug
from include.forecasting.model_versions import (
    SlugCollisionError,
    forecast_figure,
    log_candidate,
    logged_model_id,
    record_evaluation,
    spec_of,
    verify_version,
)
from include.forecasting.overview import match_series, registered_models, registry_overview
from include.forecasting.promotion import (
    PromotionResult,
    find_version_by_key,
    get_alias_version,
    production_version,
    promote,
    revert_promotions,
    rollback,
    versions,
)
from include.forecasting.store import ensure_experiment, open_client

__all__ = [
    "TAG_KEY", "PromotionResult", "SlugCollisionError", "code_version", "ensure_experiment", "find_version_by_key",
    "forecast_figure", "get_alias_version", "idempotency_key", "log_candidate", "logged_model_id", "match_series", "model_name",
    "open_client", "production_version", "promote", "record_evaluation", "registered_models", "registry_overview",
    "revert_promotions", "rollback", "series_sha256", "slug", "spec_of", "verify_version", "versions",
]

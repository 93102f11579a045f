"""PromoteChampionOperator: move the MLflow `champion` alias to the versions that passed the gate."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator, BaseOperatorLink

from forecast_ops.hooks.mlflow_registry import MlflowRegistryHook


class MlflowRegistryLink(BaseOperatorLink):
    """"MLflow registry" on the promote task in the Airflow UI: the MLflow UI's registered models, where the
    champion alias each series now carries is shown (`MlflowRegistryHook.ui_url`). Airflow stores the link
    as an XCom when the task finishes, so the UI shows it without loading this class."""

    name = "MLflow registry"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        """The registered models page of the store the operator promoted in."""
        from include.forecasting.forecasts_page import models_url

        return models_url(operator.hook.ui_url)


class PromoteChampionOperator(BaseOperator):
    """Promote gate-passing model versions by alias, atomically per series, idempotently on rerun.

    :param decisions: gate decisions (list of dicts from `gate_models`); only `passed` ones move. (templated)
    :param logical_date: the run's logical date (YYYY-MM-DD); a champion trained for a newer date is
        never replaced by an older backfill. (templated)
    :param alias: the alias to move (default: the config's `mlflow.champion_alias`).
    :param mlflow_conn_id: Airflow connection of the MLflow server.
    :param fallback_tracking_uri: tracking URI when that connection does not exist (default: the
        config's `mlflow.tracking_uri`). (templated)

    Returns the list of promotion results (changed or not, previous version, why).
    """

    template_fields: Sequence[str] = ("decisions", "logical_date", "fallback_tracking_uri")
    operator_extra_links = (MlflowRegistryLink(),)

    def __init__(
        self,
        *,
        decisions: Any,
        logical_date: str = "{{ ds }}",
        alias: str | None = None,
        mlflow_conn_id: str = MlflowRegistryHook.default_conn_name,
        fallback_tracking_uri: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.decisions = decisions
        self.logical_date = logical_date
        self.alias = alias
        self.mlflow_conn_id = mlflow_conn_id
        self.fallback_tracking_uri = fallback_tracking_uri

    @cached_property
    def hook(self) -> MlflowRegistryHook:
        """The registry hook (built on first use, never at parse time)."""
        return MlflowRegistryHook(mlflow_conn_id=self.mlflow_conn_id, fallback_uri=self.fallback_tracking_uri or self._config.mlflow.tracking_uri)

    @cached_property
    def _config(self) -> Any:
        from include.forecasting.config import load_config

        return load_config()

    def execute(self, context: Any) -> list[dict[str, Any]]:
        """Promote each passing series; log and return what changed."""
        from include.forecasting.registry import promote

        alias = self.alias or self._config.mlflow.champion_alias
        actor = f"airflow:{context['dag'].dag_id}/{context['run_id']}"
        results = [
            promote(self.hook.client, d["model_name"], d["series_id"], d["candidate_version"], alias, self.logical_date, actor).to_dict()
            for d in self.decisions
            if d["passed"]
        ]
        for r in results:
            self.log.info("%s: v%s %s (previous %s) - %s", r["series_id"], r["version"], "promoted" if r["changed"] else "unchanged", r["previous"], r["note"])
        return results

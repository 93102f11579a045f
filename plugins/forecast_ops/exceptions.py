"""Failures a retry cannot fix: they fail the task at once (no retries) and carry their full result."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException


class ValidationFailedException(AirflowFailException):
    """The extracted data failed its expectations; `report` says which and with what observed values."""

    def __init__(self, message: str, report: dict[str, Any]) -> None:
        super().__init__(message)
        self.report = report


class ConfigInvalidException(AirflowFailException):
    """The configuration file is invalid; the message names the key and the file."""


class RunFailedException(AirflowFailException):
    """report_series saw failed upstream tasks: it has already sent the one aggregated alert."""


class PublishRevertedException(AirflowFailException):
    """Publishing failed on its last try; this run's alias moves were undone (the message says which)."""


def load_task_config() -> Any:
    """The validated config, loaded inside a task (never at parse time). An invalid file fails the task at
    once (ConfigInvalidException, no retry): a retry reads the same file."""
    from include.forecasting.config import ConfigError, load_config

    try:
        return load_config()
    except ConfigError as exc:
        raise ConfigInvalidException(str(exc)) from exc

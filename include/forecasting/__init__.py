"""Airflow-free core of the sales_forecast project: config, extract, validation, training,
evaluation, gate, registry and publish. Nothing here imports Airflow, so it is unit-tested directly."""

__version__ = "0.1.0"

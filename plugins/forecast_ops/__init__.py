"""Airflow glue for the sales_forecast project: thin hooks, operators and notifiers over the pure
modules in include/forecasting. Importing this package is cheap (no mlflow/pandas at import time)."""

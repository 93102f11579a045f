"""The Forecasts page: a FastAPI app served by the Airflow API server (see forecasts_plugin.py)."""

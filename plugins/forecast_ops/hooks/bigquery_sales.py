"""BigQuerySalesHook: runs the project's SQL on BigQuery with bound query parameters.

A thin wrapper around the official `google.cloud.bigquery.Client`, configured from the Airflow
connection `google_cloud_default` with the same extras the Google provider reads (`project`,
`key_path`, `keyfile_dict`), so an existing connection works unchanged. We do not depend on
apache-airflow-providers-google itself: it adds ~1.2 GB of unrelated packages (see README).
Extra `api_endpoint` points the client at another endpoint (an emulator, or the tests' loopback
stand-in); `anonymous: true` skips credentials for such an endpoint.
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook


class BigQuerySalesHook(BaseHook):
    """Query BigQuery with typed parameters and replace forecast rows transactionally."""

    conn_name_attr = "gcp_conn_id"
    default_conn_name = "google_cloud_default"
    conn_type = "google_cloud_platform"
    hook_name = "BigQuery (sales forecast)"

    def __init__(self, *, gcp_conn_id: str = default_conn_name, billing_project: str | None = None, location: str | None = None) -> None:
        super().__init__()
        self.gcp_conn_id = gcp_conn_id
        self.billing_project = billing_project
        self.location = location

    @staticmethod
    def _extra(extras: dict[str, Any], key: str) -> Any:
        # Older provider versions prefix extras with extra__google_cloud_platform__.
        return extras.get(key, extras.get(f"extra__google_cloud_platform__{key}"))

    @cached_property
    def client(self) -> Any:
        """The bigquery.Client built from the connection (credentials never come from code)."""
        from google.api_core.client_options import ClientOptions
        from google.cloud import bigquery

        conn = self.get_connection(self.gcp_conn_id)
        extras = conn.extra_dejson
        project = self.billing_project or self._extra(extras, "project")
        endpoint = self._extra(extras, "api_endpoint")
        credentials = None
        if str(self._extra(extras, "anonymous")).lower() == "true":
            from google.auth.credentials import AnonymousCredentials

            credentials = AnonymousCredentials()
        elif self._extra(extras, "keyfile_dict"):
            from google.oauth2 import service_account

            info = self._extra(extras, "keyfile_dict")
            credentials = service_account.Credentials.from_service_account_info(json.loads(info) if isinstance(info, str) else info)
        elif self._extra(extras, "key_path"):
            from google.oauth2 import service_account

            credentials = service_account.Credentials.from_service_account_file(self._extra(extras, "key_path"))
        options = ClientOptions(api_endpoint=endpoint) if endpoint else None
        return bigquery.Client(project=project, credentials=credentials, client_options=options, location=self.location)

    def get_conn(self) -> Any:
        """Airflow's hook protocol: the client."""
        return self.client

    def query_frame(self, sql: str, params: dict[str, Any]) -> Any:
        """Run `sql` with named parameters bound as typed BigQuery parameters; return a DataFrame."""
        from google.cloud import bigquery

        from include.forecasting.extract import bigquery_query_parameters

        job_config = bigquery.QueryJobConfig(query_parameters=bigquery_query_parameters(params))
        job = self.client.query(sql, job_config=job_config)
        self.log.info("BigQuery job %s", job.job_id)
        # Through Arrow: `RowIterator.to_dataframe` is pending deprecation (the client points to
        # pandas-gbq, one more dependency for the same REST reads); `to_arrow` is not. DATE comes back
        # as datetime.date objects, as `to_dataframe`'s dbdate column boxed them.
        return job.result().to_arrow(create_bqstorage_client=False).to_pandas()

    def replace_forecasts(self, sql: str, rows: Any, logical_date: dt.date, types: dict[str, str]) -> int:
        """Run the transactional replace script (include/sql/publish_forecasts.bigquery.sql) with the rows
        bound as an ARRAY<STRUCT> parameter, each field typed as the table declares it (`types`:
        `publish.bigquery_forecast_types`), and this date and these series as DATE and ARRAY<STRING>."""
        from google.cloud import bigquery

        if rows.empty:
            return 0  # nothing to replace; an empty STRUCT array has no type to bind
        params = [
            bigquery.ScalarQueryParameter("logical_date", "DATE", logical_date),
            bigquery.ArrayQueryParameter("series", "STRING", sorted(str(s) for s in rows["series_id"].unique())),
            self._rows_parameter(rows, types),
        ]
        self.client.query(sql, job_config=bigquery.QueryJobConfig(query_parameters=params)).result()
        return len(rows)

    def replace_rows(self, sql: str, rows: Any, types: dict[str, str]) -> int:
        """Run a replace-by-key script (include/sql/replace_rows.bigquery.sql) with the rows bound as an
        ARRAY<STRUCT> parameter, each field typed as the table declares it (`types`:
        `monitor_tables.bigquery_types`)."""
        from google.cloud import bigquery

        if rows.empty:
            return 0
        params = [self._rows_parameter(rows, types)]
        self.client.query(sql, job_config=bigquery.QueryJobConfig(query_parameters=params)).result()
        return len(rows)

    @staticmethod
    def _rows_parameter(rows: Any, types: dict[str, str]) -> Any:
        """@rows: one STRUCT per row, its fields typed by the table's DDL (`bigquery_rows.typed_rows`)."""
        from google.cloud import bigquery

        from include.forecasting.bigquery_rows import typed_rows

        structs = [
            bigquery.StructQueryParameter(None, *(bigquery.ScalarQueryParameter(name, kind, value) for name, kind, value in fields))
            for fields in typed_rows(rows, types)
        ]
        return bigquery.ArrayQueryParameter("rows", "STRUCT", structs)

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
        return job.result().to_dataframe(create_bqstorage_client=False)

    def replace_forecasts(self, sql: str, rows: Any, logical_date: dt.date) -> int:
        """Run the transactional replace script with the rows bound as an ARRAY<STRUCT> parameter."""
        from google.cloud import bigquery

        struct_rows = []
        for record in rows.to_dict("records"):
            fields = []
            for name, value in record.items():
                if name in ("forecast_date", "logical_date"):
                    fields.append(bigquery.ScalarQueryParameter(name, "DATE", value))
                elif name == "published_at":
                    fields.append(bigquery.ScalarQueryParameter(name, "TIMESTAMP", value.to_pydatetime() if hasattr(value, "to_pydatetime") else value))
                elif isinstance(value, float):
                    fields.append(bigquery.ScalarQueryParameter(name, "FLOAT64", None if value != value else value))
                else:
                    fields.append(bigquery.ScalarQueryParameter(name, "STRING", None if value is None else str(value)))
            struct_rows.append(bigquery.StructQueryParameter(None, *fields))
        params = [
            bigquery.ScalarQueryParameter("logical_date", "DATE", logical_date),
            bigquery.ArrayQueryParameter("series", "STRING", sorted(rows["series_id"].unique().tolist())),
            bigquery.ArrayQueryParameter("rows", "STRUCT", struct_rows),
        ]
        self.client.query(sql, job_config=bigquery.QueryJobConfig(query_parameters=params)).result()
        return len(rows)

    def replace_rows(self, sql: str, rows: Any) -> int:
        """Run a replace-by-key script (include/sql/replace_rows.bigquery.sql) with the rows bound as an
        ARRAY<STRUCT> parameter typed from the frame's columns."""
        import datetime as dt

        from google.cloud import bigquery

        def typed(name: str, value: Any) -> Any:
            if isinstance(value, bool):
                return bigquery.ScalarQueryParameter(name, "BOOL", value)
            if isinstance(value, int):
                return bigquery.ScalarQueryParameter(name, "INT64", value)
            if isinstance(value, float):
                return bigquery.ScalarQueryParameter(name, "FLOAT64", None if value != value else value)
            if isinstance(value, dt.date):
                return bigquery.ScalarQueryParameter(name, "DATE", value if not isinstance(value, dt.datetime) else value.date())
            return bigquery.ScalarQueryParameter(name, "STRING", None if value is None else str(value))

        struct_rows = [bigquery.StructQueryParameter(None, *(typed(k, v) for k, v in record.items())) for record in rows.to_dict("records")]
        params = [bigquery.ArrayQueryParameter("rows", "STRUCT", struct_rows)]
        self.client.query(sql, job_config=bigquery.QueryJobConfig(query_parameters=params)).result()
        return len(rows)

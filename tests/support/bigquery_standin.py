"""A BigQuery stand-in: an HTTP server on 127.0.0.1 that answers the REST calls the official
`google-cloud-bigquery` client makes for a query job, and runs the job on DuckDB.

The client is pointed at it through the connection extra `api_endpoint` (`BigQuerySalesHook`), so the
project's BigQuery path runs as written: the client builds the job, serialises the typed query parameters
and reads the rows back over HTTP. The stand-in answers `jobs.insert` (POST .../jobs: the job runs at once),
`jobs.getQueryResults` (GET .../queries/ID) and `jobs.get` (GET .../jobs/ID). The job's SQL, in BigQuery's
dialect, is transpiled by sqlglot to DuckDB's and run on the DuckDB connection it was given, a script's
statements in order, rolled back if one fails (a BigQuery script's transaction is).

Where DuckDB is lenient and BigQuery is not, the stand-in refuses as BigQuery would, with its error shape
(`invalidQuery`, HTTP 400 on the results call, the client raises `BadRequest`):
- a parameter value that is not its declared type's canonical form (a DATE "2025-06-01T00:00:00", an INT64
  "3.0", a FLOAT64 "abc");
- an INSERT ... SELECT ... FROM UNNEST(@rows) whose struct field has a type the target column does not
  take (a FLOAT64 field into a STRING column, a STRING into a DATE: BigQuery coerces INT64 to FLOAT64 and
  a DATE to DATETIME, nothing else);
- a comparison of a column with a parameter of another type (`logical_date = @d` with @d an INT64; a
  STRING parameter may stand for a DATE or TIMESTAMP, as BigQuery's parameter coercion allows);
- a table named in double quotes (a string literal to BigQuery, whose identifiers take backticks).
What BigQuery does and this does not: storage, quotas, DML limits, partitioning, billing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pandas as pd
import sqlglot
from sqlglot import exp

# The production source (README "BigQuery in production"), as `load_public_sales` builds it.
PUBLIC_SALES = "bigquery-public-data.iowa_liquor_sales.sales"

# DuckDB's column types as BigQuery names them (the tables are created from BigQuery DDL, transpiled).
_BQ_TYPES = {
    "VARCHAR": "STRING", "BIGINT": "INT64", "INTEGER": "INT64", "HUGEINT": "INT64", "SMALLINT": "INT64",
    "DOUBLE": "FLOAT64", "FLOAT": "FLOAT64", "DATE": "DATE", "TIMESTAMP WITH TIME ZONE": "TIMESTAMP",
    "TIMESTAMP": "DATETIME", "BOOLEAN": "BOOL",
}
# What a value of one type may stand in for without a cast (BigQuery's "coerce to" column).
_COERCES = {"INT64": {"NUMERIC", "BIGNUMERIC", "FLOAT64"}, "NUMERIC": {"BIGNUMERIC", "FLOAT64"}, "DATE": {"DATETIME"}}
# ... and a query parameter, besides (BigQuery's parameter coercion).
_PARAMETER_COERCES = {"STRING": {"DATE", "DATETIME", "TIME", "TIMESTAMP"}}
# The schema type names the REST API answers with (legacy names, as the real service does).
_SCHEMA_NAMES = {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN"}


class BigQueryError(Exception):
    """A job error, answered in BigQuery's shape (reason `invalidQuery`)."""


@dataclass
class Job:
    """One query job as received and as run."""

    job_id: str
    project: str
    query: str
    parameters: dict[str, tuple[Any, Any]]  # name -> (type descriptor, decoded value)
    configuration: dict[str, Any]
    schema: list[dict[str, str]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    statement_type: str = "SELECT"


def _scalar(kind: str, value: Any, name: str) -> Any:
    """A scalar parameter value decoded from the wire, refused unless in its type's canonical form."""
    if value is None:
        return None
    try:
        if kind == "STRING":
            return str(value)
        if kind == "INT64":
            if not re.fullmatch(r"-?\d+", value):
                raise ValueError
            return int(value)
        if kind in ("FLOAT64", "NUMERIC", "BIGNUMERIC"):
            return float(value)
        if kind == "BOOL":
            if value.lower() not in ("true", "false"):
                raise ValueError
            return value.lower() == "true"
        if kind == "DATE":
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                raise ValueError
            return dt.date.fromisoformat(value)
        if kind in ("TIMESTAMP", "DATETIME"):
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([+-]\d{2}:\d{2}|Z| UTC)?", value):
                raise ValueError
            moment = dt.datetime.fromisoformat(value.replace(" UTC", "+00:00").replace("Z", "+00:00"))
            if kind == "TIMESTAMP" and moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)  # BigQuery reads a zoneless timestamp as UTC
            return moment
    except ValueError:
        pass
    raise BigQueryError(f"Invalid {kind} value {value!r} for query parameter @{name}")


def decode_parameter(parameter: dict[str, Any]) -> tuple[str, dict[str, Any], Any]:
    """(name, type descriptor, Python value) of one `queryParameters` entry."""
    name, descriptor = parameter["name"], parameter["parameterType"]
    return name, descriptor, _value(descriptor, parameter.get("parameterValue") or {}, name)


def _value(descriptor: dict[str, Any], value: dict[str, Any], name: str) -> Any:
    kind = descriptor["type"]
    if kind == "ARRAY":
        return [_value(descriptor["arrayType"], item, name) for item in value.get("arrayValues") or []]
    if kind == "STRUCT":
        fields = value.get("structValues") or {}
        return {f["name"]: _value(f["type"], fields.get(f["name"]) or {}, name) for f in descriptor["structTypes"]}
    return _scalar(kind, value.get("value"), name)


class BigQueryStandIn:
    """Context-managed loopback server over a DuckDB connection; `jobs` lists the jobs in order.

    `endpoint` is what the connection extra `api_endpoint` takes. The caller creates the tables (from
    BigQuery DDL through `create`), so they carry the types BigQuery's would."""

    def __init__(self, con: Any, project: str = "standin-project") -> None:
        self.con = con
        self.project = project
        self.jobs: list[Job] = []
        self._lock = threading.Lock()  # one DuckDB connection: jobs run one at a time, as they arrive
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                return

            def _answer(self, status: int, payload: dict[str, Any]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                match = re.fullmatch(r"/bigquery/v2/projects/([^/]+)/jobs", urlparse(self.path).path)
                if not match or "query" not in (body.get("configuration") or {}):
                    self._answer(404, _error(404, f"not served by the stand-in: POST {self.path}"))
                    return
                self._answer(200, stand_in._resource(stand_in.run(match.group(1), body)))

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                url = urlparse(self.path)
                match = re.fullmatch(r"/bigquery/v2/projects/([^/]+)/(queries|jobs)/([^/]+)", url.path)
                job = next((j for j in stand_in.jobs if match and j.job_id == match.group(3)), None)
                if job is None:
                    self._answer(404, _error(404, f"Not found: Job {self.path}"))
                elif match.group(2) == "jobs":
                    self._answer(200, stand_in._resource(job))
                elif job.error:
                    self._answer(400, _error(400, job.error))
                else:
                    self._answer(200, stand_in._results(job, parse_qs(url.query)))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        """The base URL for the client's `api_endpoint`."""
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> BigQueryStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def connection(self) -> str:
        """The `google_cloud_default` connection (AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT) that points
        `BigQuerySalesHook` at the stand-in: extras `project`, `api_endpoint`, `anonymous`."""
        return json.dumps({"conn_type": "google_cloud_platform", "extra": {"project": self.project, "api_endpoint": self.endpoint, "anonymous": True}})

    def create(self, ddl: str) -> None:
        """Run BigQuery DDL (CREATE TABLE ...) on the DuckDB connection, creating the schema (dataset) and,
        for a three-part name, the catalog (project) it names."""
        for statement in sqlglot.parse(ddl, read="bigquery"):
            table = statement.find(exp.Table)
            if table is not None and table.catalog:
                attached = {row[0] for row in self.con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}
                if table.catalog not in attached:
                    self.con.execute(f"ATTACH ':memory:' AS \"{table.catalog}\"")
            if table is not None and table.db:
                prefix = f'"{table.catalog}".' if table.catalog else ""
                self.con.execute(f'CREATE SCHEMA IF NOT EXISTS {prefix}"{table.db}"')
            self.con.execute(statement.sql(dialect="duckdb"))

    # -- running a job ---------------------------------------------------------------------------------

    def run(self, project: str, body: dict[str, Any]) -> Job:
        """Run one `jobs.insert` body's query; the job records its rows or its error."""
        config = body["configuration"]
        reference = body.get("jobReference") or {}
        query = config["query"]
        job = Job(reference.get("jobId") or str(uuid.uuid4()), project, query["query"], {}, config)
        with self._lock:
            self.jobs.append(job)
            try:
                if query.get("useLegacySql", True):
                    raise BigQueryError("legacy SQL: the project's queries are GoogleSQL (useLegacySql false)")
                for parameter in query.get("queryParameters") or []:
                    name, descriptor, value = decode_parameter(parameter)
                    job.parameters[name] = (descriptor, value)
                self._execute(job)
            except (BigQueryError, sqlglot.errors.SqlglotError) as exc:
                job.error = str(exc)
            except Exception as exc:  # a DuckDB error: BigQuery's would be an invalidQuery too
                job.error = f"{type(exc).__name__}: {exc}"
        return job

    def _execute(self, job: Job) -> None:
        # A double-quoted name is a string literal to BigQuery (identifiers take backticks), where sqlglot
        # and DuckDB read it as a name.
        quoted = re.search(r"\b(FROM|JOIN|INTO|UPDATE|TABLE)\s+(\"[^\"]*\")", job.query, re.IGNORECASE)
        if quoted:
            raise BigQueryError(f"Syntax error: Unexpected string literal {quoted.group(2)} after {quoted.group(1).upper()}")
        statements = [s for s in sqlglot.parse(job.query, read="bigquery") if s is not None]
        job.statement_type = "SCRIPT" if len(statements) > 1 else type(statements[0]).__name__.upper()
        in_transaction = False
        try:
            for statement in statements:
                self._check_types(statement, job.parameters)
                sql = statement.sql(dialect="duckdb")
                # BigQuery's FROM UNNEST(array of structs) without an alias exposes the fields as columns;
                # DuckDB's gives one struct column unless told to unnest it recursively. (With an alias,
                # sqlglot writes `AS _t0(r)`: r is the struct, r.field works as it is.)
                sql = re.sub(r"FROM UNNEST\(\$(\w+)\)(?=\s*(WHERE\b|\)|$|;))", r"FROM (SELECT UNNEST($\1, max_depth := 2))", sql)
                used = {name: value for name, (_, value) in job.parameters.items() if re.search(rf"\${name}\b", sql)}
                if isinstance(statement, exp.Transaction):
                    in_transaction = True
                elif isinstance(statement, exp.Commit):
                    in_transaction = False
                result = self.con.execute(sql, used)
                if isinstance(statement, (exp.Select, exp.Union)):
                    job.schema, job.rows = self._fetch(result)
        except Exception:
            if in_transaction:
                self.con.execute("ROLLBACK")
            raise

    def _fetch(self, result: Any) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
        names = [d[0] for d in result.description]
        kinds = [_BQ_TYPES.get(str(d[1]).upper(), "NUMERIC" if str(d[1]).upper().startswith("DECIMAL") else "STRING") for d in result.description]
        schema = [{"name": n, "type": _SCHEMA_NAMES.get(k, k), "mode": "NULLABLE"} for n, k in zip(names, kinds, strict=True)]
        rows = [{"f": [{"v": _cell(v, k)} for v, k in zip(row, kinds, strict=True)]} for row in result.fetchall()]
        return schema, rows

    # -- BigQuery's type rules that DuckDB does not enforce --------------------------------------------

    def _column_types(self, table: exp.Table) -> dict[str, str]:
        query = "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $t"
        params: dict[str, Any] = {"t": table.name}
        if table.db:
            query += " AND table_schema = $s"
            params["s"] = table.db
        if table.catalog:
            query += " AND table_catalog = $c"
            params["c"] = table.catalog
        return {name: _BQ_TYPES.get(str(kind).upper(), str(kind).upper()) for name, kind in self.con.execute(query, params).fetchall()}

    def _check_types(self, statement: exp.Expression, parameters: dict[str, tuple[Any, Any]]) -> None:
        columns: dict[str, str] = {}
        for table in statement.find_all(exp.Table):
            if table.name:
                columns.update(self._column_types(table))
        if isinstance(statement, exp.Insert):
            self._check_insert(statement, parameters)

        def type_of(node: exp.Expression) -> str | None:
            if isinstance(node, exp.Column):
                return columns.get(node.name)
            if isinstance(node, (exp.Date, exp.TsOrDsToDate)) or (isinstance(node, exp.Anonymous) and node.name.upper() == "DATE"):
                return "DATE"
            return None

        def parameter_type(node: exp.Expression) -> tuple[str, str] | None:
            if isinstance(node, (exp.Parameter, exp.Placeholder)) and _name(node) in parameters:
                return _name(node), parameters[_name(node)][0]["type"]
            return None

        pairs: list[tuple[exp.Expression, exp.Expression]] = []
        for node in statement.find_all(exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE):
            pairs += [(node.left, node.right), (node.right, node.left)]
        for node in statement.find_all(exp.Between):
            pairs += [(node.this, node.args["low"]), (node.this, node.args["high"])]
        for node in statement.find_all(exp.In):
            unnest = node.args.get("unnest")
            if unnest is not None and unnest.expressions:
                target = parameter_type(unnest.expressions[0])
                if target and target[1] == "ARRAY":
                    element = parameters[target[0]][0]["arrayType"]["type"]
                    self._comparable(type_of(node.this), element, target[0])
        for column_side, parameter_side in pairs:
            found = parameter_type(parameter_side)
            if found:
                self._comparable(type_of(column_side), found[1], found[0])

    @staticmethod
    def _comparable(column_type: str | None, parameter_type: str, name: str) -> None:
        if column_type is None or column_type == parameter_type:
            return
        if column_type in _COERCES.get(parameter_type, set()) | _PARAMETER_COERCES.get(parameter_type, set()):
            return
        if parameter_type in _COERCES.get(column_type, set()):
            return  # the column is coerced to the parameter's type (an INT64 column against a FLOAT64)
        raise BigQueryError(f"No matching signature for operator = for argument types: {column_type}, {parameter_type} (query parameter @{name})")

    def _check_insert(self, statement: exp.Insert, parameters: dict[str, tuple[Any, Any]]) -> None:
        target = statement.this
        table = target.this if isinstance(target, exp.Schema) else target
        names = [c.name for c in target.expressions] if isinstance(target, exp.Schema) else []
        select = statement.expression
        unnest = select.find(exp.Unnest) if select is not None else None
        found = [e for e in (unnest.expressions if unnest is not None else []) if isinstance(e, (exp.Parameter, exp.Placeholder))]
        if not names or not found or _name(found[0]) not in parameters:
            return
        descriptor = parameters[_name(found[0])][0]
        fields = {f["name"]: f["type"]["type"] for f in descriptor.get("arrayType", {}).get("structTypes", [])}
        declared = self._column_types(table)
        for position, (column, value) in enumerate(zip(names, select.expressions, strict=False), start=1):
            field_type = fields.get(value.alias_or_name)
            column_type = declared.get(column)
            if field_type is None or column_type is None or field_type == column_type or column_type in _COERCES.get(field_type, set()):
                continue
            raise BigQueryError(
                f"Query column {position} has type {field_type} which cannot be inserted into column {column}, which has type {column_type}"
            )

    # -- answers -----------------------------------------------------------------------------------------

    def _reference(self, job: Job) -> dict[str, str]:
        return {"projectId": job.project, "jobId": job.job_id, "location": "US"}

    def _resource(self, job: Job) -> dict[str, Any]:
        status: dict[str, Any] = {"state": "DONE"}
        if job.error:
            status["errorResult"] = {"reason": "invalidQuery", "location": "query", "message": job.error}
            status["errors"] = [status["errorResult"]]
        return {
            "kind": "bigquery#job", "id": f"{job.project}:US.{job.job_id}", "jobReference": self._reference(job),
            "configuration": job.configuration, "status": status,
            "statistics": {"query": {"statementType": job.statement_type, "totalBytesProcessed": "0"}},
        }

    def _results(self, job: Job, query: dict[str, list[str]]) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "kind": "bigquery#getQueryResultsResponse", "jobReference": self._reference(job), "jobComplete": True,
            "schema": {"fields": job.schema}, "totalRows": str(len(job.rows)),
        }
        if query.get("maxResults") != ["0"]:
            answer["rows"] = job.rows  # one page: the project's results are small
        return answer


def _name(node: exp.Expression) -> str:
    """A query parameter's name (`@name` parses as a Parameter holding a Var)."""
    return node.this.name if isinstance(node.this, exp.Expression) else str(node.this or node.name)


def _cell(value: Any, kind: str) -> str | None:
    """One result cell as the REST API writes it (TIMESTAMP as microseconds: the client asks useInt64Timestamp)."""
    if value is None:
        return None
    if kind == "TIMESTAMP":
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return str(int(moment.timestamp() * 1_000_000))
    if kind == "BOOL":
        return "true" if value else "false"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return repr(value) if isinstance(value, float) else str(value)


def _error(code: int, message: str) -> dict[str, Any]:
    reason = "notFound" if code == 404 else "invalidQuery"
    return {"error": {"code": code, "message": message, "errors": [{"reason": reason, "message": message, "domain": "global"}], "status": "INVALID_ARGUMENT"}}


def load_public_sales(bq: BigQueryStandIn, rows: pd.DataFrame) -> None:
    """`PUBLIC_SALES` in the columns the project reads, with BigQuery's types, one row per invoice line
    (numbered INV-000000, ...), holding `rows` (date, item_description, bottles_sold)."""
    bq.create(f"CREATE TABLE `{PUBLIC_SALES}` (invoice_and_item_number STRING, date DATE, item_description STRING, bottles_sold INT64)")
    numbered = pd.DataFrame(
        {
            "invoice_and_item_number": [f"INV-{i:06d}" for i in range(len(rows))],
            "date": pd.to_datetime(rows["date"]).dt.date.to_numpy(),
            "item_description": rows["item_description"].to_numpy(),
            "bottles_sold": rows["bottles_sold"].astype("int64").to_numpy(),
        }
    )
    bq.con.register("public_sales_rows", numbered)
    bq.con.execute('INSERT INTO "bigquery-public-data".iowa_liquor_sales.sales SELECT * FROM public_sales_rows')
    bq.con.unregister("public_sales_rows")

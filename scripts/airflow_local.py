"""Local Airflow for users without the Astro CLI: initialise the Airflow home, apply
airflow_settings.yaml, load the seed data into DuckDB, and start Airflow's services (what `airflow
standalone` starts, supervised) or the MLflow UI.

Usage: python scripts/airflow_local.py setup | standalone | mlflow-ui
Environment: AIRFLOW_HOME etc. come from the Makefile; `.env` (git-ignored) is read for secrets.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("airflow_local")

# Per connection type, the field without which the connection is pointless (then it is skipped).
_REQUIRED = {"http": "conn_host", "slackwebhook": "conn_password", "slack": "conn_password", "google_cloud_platform": "project"}


def load_dotenv(path: Path = ROOT / ".env") -> None:
    """Read KEY=VALUE lines from .env into the environment (existing variables win)."""
    if not path.is_file():
        return
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            os.environ.setdefault(key.strip(), value.strip().strip('"').strip("'"))


def expand(value: Any) -> Any:
    """Replace ${VAR} with the environment's value ('' if unset), recursively."""
    if isinstance(value, str):
        return re.sub(r"\$\{(\w+)\}", lambda m: os.environ.get(m.group(1), ""), value)
    if isinstance(value, dict):
        return {k: expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v) for v in value]
    return value


def read_settings(path: Path = ROOT / "airflow_settings.yaml") -> dict[str, Any]:
    """airflow_settings.yaml with ${VAR}s expanded and placeholder-only connections dropped."""
    data = expand(yaml.safe_load(path.read_text()) or {}).get("airflow", {})
    kept = []
    for conn in data.get("connections") or []:
        required = _REQUIRED.get(conn.get("conn_type", ""), "conn_host")
        value = conn.get(required) if required.startswith("conn_") else (conn.get("conn_extra") or {}).get(required)
        if value:
            kept.append(conn)
    data["connections"] = kept
    return data


def apply_settings(settings: dict[str, Any]) -> None:
    """Create or update pools, variables and connections in the Airflow metadata DB."""
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session

    for pool in settings.get("pools") or []:
        Pool.create_or_update_pool(pool["pool_name"], int(pool["pool_slot"]), pool.get("pool_description", ""), include_deferred=False)
        log.info("pool %s = %s slots", pool["pool_name"], pool["pool_slot"])
    for var in settings.get("variables") or []:
        Variable.set(var["variable_name"], var["variable_value"])
    with create_session() as session:
        for c in settings.get("connections") or []:
            extra = {k: v for k, v in (c.get("conn_extra") or {}).items() if v not in ("", None)}
            port = c.get("conn_port")
            conn = Connection(
                conn_id=c["conn_id"], conn_type=c["conn_type"], host=c.get("conn_host") or None, schema=c.get("conn_schema") or None,
                login=c.get("conn_login") or None, password=c.get("conn_password") or None,
                port=int(port) if port not in (None, "") else None, extra=json.dumps(extra) if extra else None,
            )
            session.query(Connection).filter(Connection.conn_id == conn.conn_id).delete()
            session.add(conn)
            log.info("connection %s (%s)", conn.conn_id, conn.conn_type)


def load_seed() -> None:
    """Load the configured seed CSV into the embedded DuckDB source table (idempotent)."""
    import duckdb

    from include.forecasting.config import load_config
    from include.forecasting.extract import load_seed_csv

    config = load_config()
    if config.source.kind != "duckdb":
        log.info("source is %s: no seed to load", config.source.kind)
        return
    config.warehouse.path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(config.warehouse.path))
    try:
        rows = load_seed_csv(con, config.source, config.anomaly.panel_share)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        # The file or its mapping in the config is wrong: what to fix, without a traceback (the table keeps
        # what it held; loading is one transaction).
        raise SystemExit(f"seed CSV not loaded: {exc.args[0] if exc.args else exc}\n(config: {config.path})") from None
    finally:
        con.close()
    log.info("loaded %d seed rows from %s into %s:%s", rows, config.source.seed_csv, config.warehouse.path, config.source.table)


def strengthen_jwt_secret(cfg: Path) -> bool:
    """Replace a short generated `[api_auth] jwt_secret` with a 64-byte one, once.

    Airflow generates 16 random bytes; its tokens are signed with HS512, for which PyJWT wants a key of at
    least 64 bytes and warns (InsecureKeyLengthWarning) on every token otherwise: 9 times per minute in
    `make airflow`'s output. Returns whether the file was changed."""
    import secrets

    text = cfg.read_text()
    match = re.search(r"^jwt_secret = (.*)$", text, flags=re.MULTILINE)
    if match is None or len(match.group(1).strip()) >= 64:
        return False
    cfg.write_text(text[: match.start(1)] + secrets.token_urlsafe(64) + text[match.end(1) :])
    return True


def setup() -> None:
    """Migrate the Airflow DB, apply settings, load seed data. Safe to run again."""
    Path(os.environ["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, stdout=subprocess.DEVNULL)
    cfg = Path(os.environ["AIRFLOW_HOME"]) / "airflow.cfg"
    if cfg.is_file() and strengthen_jwt_secret(cfg):
        log.info("jwt_secret in %s: replaced the generated 16-byte key with a 64-byte one", cfg)
    apply_settings(read_settings())
    load_seed()


def endpoint(kind: str) -> tuple[str, str]:
    """Host and port for `airflow` or `mlflow`: AIRFLOW_HOST/AIRFLOW_PORT, MLFLOW_UI_HOST/MLFLOW_UI_PORT,
    else 127.0.0.1 and 8080 / 5000. (MLFLOW_HOST/MLFLOW_PORT in .env name a tracking *server* for the
    `mlflow_default` connection, so the local UI has its own names.)"""
    default = {"airflow": "8080", "mlflow": "5000"}[kind]
    prefix = {"airflow": "AIRFLOW", "mlflow": "MLFLOW_UI"}[kind]
    return os.environ.get(f"{prefix}_HOST", "127.0.0.1"), os.environ.get(f"{prefix}_PORT", default)


def trigger_hint() -> str:
    """Which logical date to pick in the Trigger dialog for the data in the embedded warehouse."""
    try:
        sys.path.insert(0, str(ROOT))
        from include.forecasting.config import load_config
        from scripts.demo import data_span, logical_date_after

        config = load_config()
        if config.source.kind != "duckdb":
            return "Trigger dialog: pick the day after the newest sales in your source as the logical date."
        last = data_span(config)[1]
        first_run = logical_date_after(config, last, dt.date.today()) if last is not None else None
    except Exception as exc:  # noqa: BLE001 - a hint must not stop the UI from starting
        return f"(could not read the newest data date: {exc})"
    if last is None:
        return "The embedded source table is empty: run `make demo` (or load your CSV) first."
    stale = (dt.date.today() - last).days > 1
    return (
        f"Newest data: {last}. Trigger dialog: logical date {first_run} (the run uses data before it)."
        + (" This data is historical: pause sales_forecast again after your runs (toggle in the UI), or its daily 03:00 run fails as stale." if stale else "")
    )


# What `airflow standalone` starts. Each runs as its own supervised process instead: standalone neither
# restarts a component that exits (on SQLite the scheduler can die on a backfill's "database is locked"
# cleanup, README "Concurrency rules") nor stops its children on SIGTERM.
SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")


def standalone() -> None:
    """Run Airflow's services on AIRFLOW_HOST:AIRFLOW_PORT (127.0.0.1:8080) as `airflow standalone` would,
    each restarted if it exits (`scripts.airflow_stack.Processes`); logs in .local/logs/airflow/ (or
    $AIRFLOW_LOCAL_LOGS).
    Ctrl-C or SIGTERM stops them all; a service that keeps exiting stops the others and is reported."""
    import signal
    import time

    from airflow.configuration import conf
    from forecast_ops.metadata_db import sqlite_connect_env

    from scripts.airflow_stack import Processes

    home = Path(os.environ["AIRFLOW_HOME"])
    host, port = endpoint("airflow")
    # The scheduler, dag-processor, api-server and tasks all write one SQLite file.
    db_env = sqlite_connect_env(conf.get("database", "sql_alchemy_conn"))
    # Task processes reach the API server here; unset, Airflow assumes localhost:8080 whatever the port.
    reach = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    env = {
        **os.environ, **db_env, "AIRFLOW__API__HOST": host, "AIRFLOW__API__PORT": port,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{reach}:{port}/execution/",
        # What `airflow standalone` forces: a local executor and the simple auth manager (user admin).
        "AIRFLOW__CORE__EXECUTOR": os.environ.get("AIRFLOW__CORE__EXECUTOR", "LocalExecutor"),
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        # The run deadline (README "Slack alerts"): a run unfinished an hour after it was queued is reported late.
        "FORECAST_RUN_DEADLINE_MINUTES": os.environ.get("FORECAST_RUN_DEADLINE_MINUTES") or "60",
    }
    logs = Path(os.environ.get("AIRFLOW_LOCAL_LOGS", ROOT / ".local" / "logs" / "airflow"))
    procs = Processes(logs)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # SIGTERM ends the services the way Ctrl-C does

    signal.signal(signal.SIGTERM, stop)
    code = 0
    try:
        for name in SERVICES:
            procs.start(name, [str(Path(sys.executable).parent / "airflow"), name], env=env, restart=True)
        print(f"Airflow UI: http://{host}:{port}  user admin, password in {home / 'simple_auth_manager_passwords.json.generated'}")
        print(f"Forecasts page: http://{host}:{port}/forecasts/  (also \"Forecasts\" in the UI's navigation)")
        print(f"Service logs: {logs}/<service>.log ({', '.join(SERVICES)}); a service that exits is restarted. Ctrl-C stops.")
        print(trigger_hint(), flush=True)
        while True:
            procs.check_alive()  # raises once a service has used up its restarts
            time.sleep(2)
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:
        print(f"stopping Airflow: {exc}", file=sys.stderr)
        code = 1
    finally:
        procs.stop()
    if code:
        sys.exit(code)


def mlflow_ui() -> None:
    """Serve the MLflow UI over the configured embedded store on MLFLOW_UI_HOST:MLFLOW_UI_PORT (127.0.0.1:5000)."""
    from include.forecasting.config import load_config

    config = load_config()
    host, port = endpoint("mlflow")
    # MLflow 3's UI opens in its GenAI mode; this link opens the experiments in "Model training" mode,
    # with the Model registry in the sidebar.
    print(f"MLflow UI: http://{host}:{port}/#/experiments?workflowType=machine_learning  (store {config.mlflow.tracking_uri})")
    os.execvp("mlflow", ["mlflow", "ui", "--host", host, "--port", port, "--backend-store-uri", config.mlflow.tracking_uri])


def main() -> None:
    """Dispatch the sub-command."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    load_dotenv()
    commands = {"setup": setup, "standalone": standalone, "mlflow-ui": mlflow_ui, "seed": load_seed}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: {sys.argv[0]} {' | '.join(commands)}")
    from include.forecasting.config import ConfigError

    try:
        commands[sys.argv[1]]()
    except ConfigError as exc:  # names each bad key and value already: no traceback to read through
        sys.exit(str(exc))


if __name__ == "__main__":
    main()

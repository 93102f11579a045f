"""Connection arguments for Airflow's metadata database when it is SQLite (the embedded default).

SQLite (even in the WAL mode Airflow sets) allows one writer at a time, and Python's sqlite3 gives up
after waiting 5 s for the write lock. With the scheduler, dag-processor, api-server, task processes and a
CLI such as `airflow backfill create` all writing one file on a loaded 2-core machine, a writer can wait
longer than that: CI saw `database is locked` from `airflow backfill create`. A longer busy timeout turns
that rare failure into a short stall. Airflow reads the dict through `[database] sql_alchemy_connect_args`
(an import path), so it lives in an importable module; PostgreSQL deployments do not use it.
"""

from __future__ import annotations

# Seconds a connection waits for SQLite's write lock before raising "database is locked".
SQLITE_BUSY_TIMEOUT_S = 60

SQLITE_CONNECT_ARGS: dict[str, object] = {"timeout": SQLITE_BUSY_TIMEOUT_S}


def sqlite_connect_env(sql_alchemy_conn: str) -> dict[str, str]:
    """Environment variables that give Airflow's SQLite engines (sync and async) the longer busy
    timeout; empty for any other database, whose drivers take different arguments."""
    if not sql_alchemy_conn.startswith("sqlite"):
        return {}
    path = f"{__name__}.SQLITE_CONNECT_ARGS"
    return {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": path,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": path,
    }

"""The SQLite busy timeout really reaches Airflow's metadata engines (sync and async)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from forecast_ops.metadata_db import SQLITE_BUSY_TIMEOUT_S, sqlite_connect_env

# Runs in a fresh interpreter: airflow.settings builds its engines once, at import.
PROBE = """
import asyncio, json
from airflow import settings

with settings.engine.connect() as c:
    sync = c.exec_driver_sql("PRAGMA busy_timeout").scalar()

async def busy_timeout_async():
    async with settings.async_engine.connect() as c:
        value = (await c.exec_driver_sql("PRAGMA busy_timeout")).scalar()
    await settings.async_engine.dispose()
    return value

print(json.dumps({"sync": sync, "async": asyncio.run(busy_timeout_async())}))
"""


def _busy_timeouts(tmp_path: Path, extra_env: dict[str, str]) -> dict[str, int]:
    conn = f"sqlite:///{tmp_path / 'airflow.db'}"
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": conn, **extra_env}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True, timeout=120)
    return json.loads(next(line for line in out.stdout.splitlines() if line.startswith("{")))


def test_sqlite_engines_get_the_longer_busy_timeout(tmp_path: Path) -> None:
    conn = f"sqlite:///{tmp_path / 'airflow.db'}"
    assert _busy_timeouts(tmp_path, {}) == {"sync": 5000, "async": 5000}  # Python's default: the CI failure
    expected = SQLITE_BUSY_TIMEOUT_S * 1000
    assert _busy_timeouts(tmp_path, sqlite_connect_env(conn)) == {"sync": expected, "async": expected}


def test_other_databases_are_left_alone() -> None:
    assert sqlite_connect_env("postgresql+psycopg2://airflow@127.0.0.1/airflow") == {}

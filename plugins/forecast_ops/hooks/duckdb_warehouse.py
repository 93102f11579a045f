"""DuckDBWarehouseHook: the embedded warehouse file (source table and published forecasts)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from airflow.sdk import BaseHook


class DuckDBWarehouseHook(BaseHook):
    """Opens the DuckDB file named in the config.

    DuckDB allows one writing process per file, so two tasks of concurrent runs (e.g. a backfill) may
    meet a lock; the hook retries the open for `lock_timeout` seconds instead of failing at once.
    """

    hook_name = "DuckDB warehouse"

    def __init__(self, *, path: str | Path, lock_timeout: float = 120.0) -> None:
        super().__init__()
        self.path = Path(path)
        self.lock_timeout = lock_timeout

    @contextmanager
    def connection(self, read_only: bool = False) -> Iterator[Any]:
        """Yield an open connection and close it afterwards."""
        import duckdb

        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.2
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only and self.path.exists())
                break
            except duckdb.IOException as exc:  # "Could not set lock on file"
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                self.log.info("warehouse %s is locked by another task; retrying in %.1fs", self.path, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        try:
            yield con
        finally:
            con.close()

    def get_conn(self) -> Any:
        """A new read-write connection (the caller closes it)."""
        import duckdb

        return duckdb.connect(str(self.path))

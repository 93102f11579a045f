"""Real Airflow services on 127.0.0.1 for tests and benchmarks: api-server, scheduler, dag-processor
(and Celery workers), plus PostgreSQL, Redis and an MLflow server when the distributed topology is wanted.

Every process is started in its own session (setsid) and stopped by process group, so nothing is left
behind (`airflow standalone` orphans its children on SIGTERM). Logs go to files under the stack's home.

Used by tests/integration (scheduler backfill, CeleryExecutor) and bench/scale.py; runnable by hand:
  python scripts/airflow_stack.py services   # install (apt) + start PostgreSQL, Redis; print URLs; Ctrl-C stops
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
log = logging.getLogger("airflow_stack")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Any, timeout: float, what: str, interval: float = 0.5) -> Any:
    """Call `check()` until it returns a truthy value; raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # the service is not up yet
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s (last error: {last})")


# Restarts of one supervised service within RESTART_WINDOW seconds before it is left down and reported
# as failing (systemd's StartLimitBurst / StartLimitIntervalSec): a service that keeps dying at start is
# given up on, one that dies now and then in a long `make airflow` session is not.
MAX_RESTARTS = 3
RESTART_WINDOW = 600.0


class Processes:
    """Child processes started in their own sessions; `stop()` ends each whole process group.

    A process started with `restart=True` is supervised: when it exits on its own, a background thread
    starts it again (and logs why it ended), as systemd's `Restart=on-failure` or compose's restart policy
    would. Airflow's scheduler can exit on a metadata race: on SQLite, a backfill whose creation hits
    "database is locked" is cleaned up by the API server, deleting runs the scheduler has already picked
    up, and the scheduler dies on the vanished row (`ObjectDeletedError`). Restarted, it carries on."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.restarts: list[tuple[str, int]] = []  # (name, exit code) of every supervised restart
        self._restart_times: list[tuple[str, float]] = []  # (name, time.monotonic()) of each of them
        self._given_up: set[str] = set()  # supervised services left down: they stay down
        self._retired: list[tuple[str, subprocess.Popen[bytes]]] = []  # replaced leaders: their groups may linger
        self._specs: dict[str, tuple[list[str], dict[str, str] | None]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, user: str | None = None, restart: bool = False
    ) -> subprocess.Popen[bytes]:
        """Start `argv` in a new session with stdout/stderr to <log_dir>/<name>.log (`restart`: supervised)."""
        if user is not None:
            argv = ["runuser", "-u", user, "--", *argv]
        proc = self._spawn(name, argv, env)
        with self._lock:
            self.started.append((name, proc))
            if restart:
                self._specs[name] = (argv, env)
                if self._supervisor is None:
                    self._stopping.clear()
                    self._supervisor = threading.Thread(target=self._supervise, name="process-supervisor", daemon=True)
                    self._supervisor.start()
        log.info("started %s (pid %d)", name, proc.pid)
        return proc

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None) -> subprocess.Popen[bytes]:
        handle = open(self.log_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(argv, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, cwd=str(ROOT))
        handle.close()
        return proc

    def _restarted(self, name: str) -> int:
        """Restarts of `name` within the last RESTART_WINDOW seconds."""
        since = time.monotonic() - RESTART_WINDOW
        return sum(n == name and t >= since for n, t in self._restart_times)

    def _supervise(self, interval: float = 1.0) -> None:
        """Restart supervised processes that exited, until `stop()`; one that has needed `MAX_RESTARTS`
        restarts within `RESTART_WINDOW` seconds stays down (it keeps failing: `check_alive` reports it)."""
        while not self._stopping.wait(interval):
            with self._lock:
                for i, (name, proc) in enumerate(self.started):
                    if name not in self._specs or name in self._given_up or proc.poll() is None or self._stopping.is_set():
                        continue
                    if self._restarted(name) >= MAX_RESTARTS:
                        self._given_up.add(name)
                        log.error("%s exited with %s after %d restarts in %.0f s; leaving it down", name, proc.returncode, MAX_RESTARTS, RESTART_WINDOW)
                        continue
                    log.warning("%s exited with %s; restarting it. Its log ends:\n%s", name, proc.returncode, self.tail(name, 15))
                    argv, env = self._specs[name]
                    self._retired.append((name, proc))
                    self.started[i] = (name, self._spawn(name, argv, env))
                    # Recorded last: whoever sees the restart (without the lock) also sees the new process.
                    self._restart_times.append((name, time.monotonic()))
                    self.restarts.append((name, int(proc.returncode)))

    def check_alive(self) -> None:
        """Raise if a started process has already exited (its log tail says why); a supervised one that
        exited is being restarted instead, unless it has used up its `MAX_RESTARTS` (within the window)."""
        with self._lock:
            current = list(self.started)
        for name, proc in current:
            if proc.poll() is not None and (name not in self._specs or name in self._given_up or self._restarted(name) >= MAX_RESTARTS):
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 40) -> str:
        """The last lines of a process's log."""
        path = self.log_dir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop_one(self, name: str, timeout: float = 20.0) -> None:
        """Stop one named process group (if it was started and is still tracked)."""
        with self._lock:
            mine = [(n, p) for n, p in self.started if n == name]
            self.started = [(n, p) for n, p in self.started if n != name]
            self._specs.pop(name, None)
        self._stop(mine, timeout)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every process group (newest first), then SIGKILL what is still there."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()
            self._supervisor = None
        with self._lock:
            started, self.started = self._retired + self.started, []
            self._retired = []
            self._specs.clear()
        self._stop(started, timeout)

    def _stop(self, processes: list[tuple[str, subprocess.Popen[bytes]]], timeout: float) -> None:
        for name, proc in reversed(processes):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop on SIGTERM: killing its group", name)
            try:  # children of the leader (task runners, gunicorn workers) may outlive it
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=5)
            # Killed children are reaped by init shortly after: return only once the group is empty.
            try:
                wait_for(lambda pgid=proc.pid: _group_gone(pgid), 15, f"process group of {name} to exit", 0.1)
            except TimeoutError:
                log.warning("process group %d (%s) still has members after SIGKILL", proc.pid, name)


def _group_gone(pgid: int) -> bool:
    """True when no process of group `pgid` exists any more."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def ensure_os_packages(binaries: dict[str, str]) -> None:
    """Install the Debian packages whose binaries are missing ({binary: package}); needs root + apt."""
    missing = sorted({pkg for binary, pkg in binaries.items() if not _find_binary(binary)})
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError(f"missing {missing}: install them (apt-get install {' '.join(missing)}) or run as root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], check=True, env=env, stdout=subprocess.DEVNULL)


def _find_binary(name: str) -> str | None:
    """A binary's path: PostgreSQL's server binaries live under /usr/lib/postgresql/<v>/bin on Debian,
    not on PATH; anything else is looked up on PATH."""
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    return shutil.which(name)


@contextmanager
def postgres(procs: Processes, databases: tuple[str, ...]) -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1; yields the server URL `postgresql://airflow:airflow@host:port`.

    Its data directory is a fresh /tmp/forecast_pg_* (as root, owned by the `postgres` user, which must
    be able to reach it), removed afterwards; stop the server (procs.stop()) before leaving the block.
    """
    import tempfile

    ensure_os_packages({"initdb": "postgresql", "pg_ctl": "postgresql"})
    base = Path(tempfile.mkdtemp(prefix="forecast_pg_"))
    try:
        yield from _postgres(base, procs, databases)
    finally:
        procs.stop_one("postgres")
        shutil.rmtree(base, ignore_errors=True)


def _postgres(base: Path, procs: Processes, databases: tuple[str, ...]) -> Iterator[str]:
    data = base / "pgdata"
    sock = base / "pgsock"
    sock.mkdir(parents=True, exist_ok=True)
    user = "postgres" if os.geteuid() == 0 else None  # the server refuses to run as root
    if user:
        shutil.chown(base, user)
        shutil.chown(sock, user)
    port = free_port()
    pwfile = base / "pw"
    pwfile.write_text("airflow\n")
    if user:
        shutil.chown(pwfile, user)
    initdb = [_find_binary("initdb"), "-D", str(data), "-U", "airflow", "--pwfile", str(pwfile), "-A", "scram-sha-256", "--no-sync"]
    subprocess.run(["runuser", "-u", user, "--", *initdb] if user else initdb, check=True, stdout=subprocess.DEVNULL)
    procs.start("postgres", [_find_binary("postgres"), "-D", str(data), "-p", str(port), "-k", str(sock), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"], user=user)
    url = f"postgresql://airflow:airflow@127.0.0.1:{port}"

    def ready() -> bool:
        import psycopg2

        psycopg2.connect(f"{url}/postgres").close()
        return True

    wait_for(ready, 60, "PostgreSQL")
    import psycopg2

    con = psycopg2.connect(f"{url}/postgres")
    con.autocommit = True
    with con.cursor() as cur:
        for name in databases:
            cur.execute(f'CREATE DATABASE "{name}"')
    con.close()
    yield url


@contextmanager
def redis(procs: Processes) -> Iterator[str]:
    """A Redis server on 127.0.0.1 without persistence; yields its URL."""
    ensure_os_packages({"redis-server": "redis-server"})
    port = free_port()
    procs.start("redis", [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])

    def ready() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")

    wait_for(ready, 30, "Redis")
    yield f"redis://127.0.0.1:{port}/0"


def mlflow_server(procs: Processes, backend_uri: str, artifacts: Path) -> str:
    """Start `mlflow server` (tracking + registry + artifact proxy) on 127.0.0.1; return its URL."""
    port = free_port()
    artifacts.mkdir(parents=True, exist_ok=True)
    procs.start(
        "mlflow",
        [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--backend-store-uri", backend_uri,
         "--artifacts-destination", str(artifacts), "--serve-artifacts", "--workers", "1"],
        env={**os.environ, "MLFLOW_ENABLE_ASYNC_LOGGING": "false"},
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: urllib.request.urlopen(f"{url}/health", timeout=2).status == 200, 120, "MLflow server", 1.0)
    return url


def _rolled_back(status: int, body: bytes) -> bool:
    """Whether an API error left nothing behind, so repeating the call is safe: SQLite's "database is
    locked" (503 from the backfill handler, which cleans up; 500 elsewhere), or any database error in the
    audit-log insert that Airflow runs before the handler (`INSERT INTO log`, named in the body when
    `[api] expose_stacktrace` is on): its transaction rolled back before the call did anything."""
    if status not in (500, 503):
        return False
    if b"database is locked" in body.lower():
        return True
    try:
        detail = json.loads(body)["detail"]
    except (ValueError, KeyError, TypeError):
        return False
    return status == 500 and isinstance(detail, dict) and str(detail.get("statement", "")).startswith("INSERT INTO log ")


class AirflowStack:
    """Airflow 3 services (api-server, scheduler, dag-processor, optional Celery worker) on one AIRFLOW_HOME.

    `env` is the environment every service shares (executor, DB URL, connections, FORECAST_CONFIG).
    """

    def __init__(self, home: Path, env: dict[str, str], procs: Processes, celery_workers: int = 0) -> None:
        self.home = home
        self.procs = procs
        self.port = free_port()
        self.celery_workers = celery_workers
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.port}",
            # A 500 names its cause (e.g. "database is locked") in its body, not only in the server log.
            "AIRFLOW__API__EXPOSE_STACKTRACE": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            # One secret for every service, so tokens issued by the API server verify in the workers.
            # 64 bytes: HS512 keys shorter than that make PyJWT warn on every token.
            "AIRFLOW__API_AUTH__JWT_SECRET": os.urandom(64).hex(),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
            "GX_ANALYTICS_ENABLED": "false",
            "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
            # Process-parallel tasks: one BLAS thread each (README "Scaling out"), unless the caller set it.
            "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1"),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            **env,
        }
        self._token: str | None = None

    @classmethod
    def embedded(cls, home: Path, config_path: Path, procs: Processes, parallelism: int, **env: str) -> AirflowStack:
        """The embedded default (`make airflow`): LocalExecutor, SQLite metadata under `home`, the
        config's own MLflow store, no Slack. `env` adds or overrides variables."""
        from forecast_ops.metadata_db import sqlite_connect_env

        conn = f"sqlite:///{home / 'airflow.db'}"
        base = {
            "FORECAST_CONFIG": str(config_path),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(parallelism),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": conn,
            **sqlite_connect_env(conn),
            # Set empty so connections inherited from the caller's environment cannot leak in.
            "AIRFLOW_CONN_SLACK_DEFAULT": "",
            "AIRFLOW_CONN_SLACK_API_DEFAULT": "",
            "AIRFLOW_CONN_MLFLOW_DEFAULT": "",
        }
        return cls(home, {**base, **env}, procs)

    @property
    def url(self) -> str:
        """Base URL of the API server."""
        return f"http://127.0.0.1:{self.port}"

    def airflow(self, *args: str, check: bool = True, attempts: int = 6) -> subprocess.CompletedProcess[str]:
        """Run an `airflow` CLI command against this stack.

        On SQLite a command whose transaction reads and then writes can fail at once with "database is
        locked" when a service wrote in between (the busy timeout does not apply to that upgrade): seen
        with `backfill create` while the scheduler and dag-processor were busy. Its transaction rolled
        back, so the command is tried again, up to `attempts` times (2, 4, 6, ... s apart: ~30 s in all,
        the length of a run's burst of task writes; three tries, ~6 s, once all met the same run)."""
        for attempt in range(1, attempts + 1):
            result = subprocess.run([str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True, cwd=str(ROOT))
            if result.returncode == 0 or "database is locked" not in result.stderr + result.stdout or attempt == attempts:
                break
            log.warning("airflow %s: database is locked (try %d of %d); retrying", args[0], attempt, attempts)
            time.sleep(2.0 * attempt)
        if check and result.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
        return result

    def start(self, pools: dict[str, int] | None = None) -> None:
        """Migrate the DB, create pools, start the services and wait for the API."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate")
        for name, slots in (pools or {}).items():
            self.airflow("pools", "set", name, str(slots), "sales_forecast stack")
        # Supervised, as a deployment's process manager would keep them (see `Processes`).
        self.procs.start("api-server", [str(BIN / "airflow"), "api-server", "--port", str(self.port)], env=self.env, restart=True)
        self.procs.start("scheduler", [str(BIN / "airflow"), "scheduler"], env=self.env, restart=True)
        self.procs.start("dag-processor", [str(BIN / "airflow"), "dag-processor"], env=self.env, restart=True)
        for i in range(self.celery_workers):
            worker = [str(BIN / "airflow"), "celery", "worker", "--concurrency", "2", "--celery-hostname", f"worker{i}@%h"]
            self.procs.start(f"celery-worker-{i}", worker, env=self.env, restart=True)

        def api_up() -> bool:
            self.procs.check_alive()
            return urllib.request.urlopen(f"{self.url}/api/v2/version", timeout=2).status == 200

        wait_for(api_up, 180, "Airflow API server", 1.0)

    def token(self) -> str:
        """A JWT from the simple auth manager (user admin, password from the generated file)."""
        if self._token is None:
            passwords = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())
            body = json.dumps({"username": "admin", "password": passwords["admin"]}).encode()
            request = urllib.request.Request(f"{self.url}/auth/token", body, {"Content-Type": "application/json"})
            self._token = json.loads(urllib.request.urlopen(request, timeout=10).read())["access_token"]
        return self._token

    def api(self, method: str, path: str, body: Any = None, attempts: int = 4) -> Any:
        """Call the REST API (`/api/v2/...`) and return the decoded JSON.

        On SQLite a transaction can fail at once with "database is locked" when another process wrote
        since it began reading (the busy timeout does not cover that). The API server answers 503 when that
        happens inside the backfill handler (CI saw it on `POST /api/v2/backfills` while three runs were
        writing; Airflow deletes the half-created backfill) and a generic 500 "Database error" when it
        happens elsewhere. CI also saw a 500 from the audit-log insert that precedes every write (on the
        retry, right after the scheduler restarted; Airflow logs the statement, not the driver's message).
        In these cases the transaction rolled back before the call did anything (`_rolled_back`), so the
        call is tried again, up to `attempts` times, as a user would press again. The stack sets
        `[api] expose_stacktrace` so a 500's body names its cause and statement; any other error is
        raised with that cause and the api-server's log entry for it."""
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(1, attempts + 1):
            headers = {"Authorization": f"Bearer {self.token()}", "Content-Type": "application/json"}
            request = urllib.request.Request(f"{self.url}{path}", data, headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    raw = response.read()
                return json.loads(raw) if raw else None
            except urllib.error.HTTPError as exc:
                raw_detail = exc.read()
                detail = raw_detail[:500]
                if _rolled_back(exc.code, raw_detail) and attempt < attempts:
                    log.warning("%s %s: %d, rolled back (try %d of %d); retrying: %r", method, path, exc.code, attempt, attempts, detail[:200])
                    time.sleep(3.0 * attempt)
                    continue
                raise RuntimeError(f"{method} {path} -> {exc.code}: {detail!r}{self._server_error(raw_detail)}") from exc
        raise AssertionError("unreachable")  # the loop returns or raises

    def _server_error(self, detail: bytes, lines: int = 60) -> str:
        """For a database error (500): its cause from the body, and the statement and traceback the
        api-server logged under the error's lookup ID, so a failure says what went wrong."""
        try:
            body = json.loads(detail)["detail"]
            cause = f"\ncause: {body['reason']}: {body['orig_error']}" if isinstance(body, dict) else ""
        except (ValueError, KeyError, TypeError):
            cause = ""
        match = re.search(rb"(?:look for ID|Error with id) (\w+)", detail)
        path = self.procs.log_dir / "api-server.log"
        if match is None or not path.exists():
            return cause
        text = path.read_text(errors="replace").splitlines()
        start = next((i for i, line in enumerate(text) if f"Error with id {match.group(1).decode()}" in line), None)
        return cause if start is None else f"{cause}\napi-server log:\n" + "\n".join(text[start : start + lines])

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Wait until the dag-processor has serialised `dag_id`, then unpause it."""

        def parsed() -> bool:
            self.procs.check_alive()
            return bool(self.api("GET", f"/api/v2/dags/{dag_id}"))

        wait_for(parsed, timeout, f"DAG {dag_id} parsed", 2.0)
        self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, logical_date: str, conf: dict[str, Any] | None = None) -> str:
        """Create a DAG run for `logical_date` (YYYY-MM-DD, midnight UTC); return its run id."""
        body = {"logical_date": f"{logical_date}T00:00:00Z", "conf": conf or {}}
        return str(self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)["dag_run_id"])

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """All DAG runs of `dag_id` (run id, logical date, state, run type)."""
        return list(self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100&order_by=logical_date")["dag_runs"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> dict[str, Any]:
        """Wait until one DAG run has finished (success or failed); return it (raises on timeout)."""
        from urllib.parse import quote

        def finished() -> dict[str, Any] | None:
            self.procs.check_alive()
            run = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")
            return run if run["state"] in ("success", "failed") else None

        return wait_for(finished, timeout, f"run {run_id} of {dag_id}", 3.0)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Task instances of one run (with start/end dates, state, map index)."""
        from urllib.parse import quote

        path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances?limit=1000"
        return list(self.api("GET", path)["task_instances"])


def main() -> int:
    """`services`: start PostgreSQL and Redis on 127.0.0.1 until Ctrl-C (for trying the topology by hand)."""
    import tempfile

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if sys.argv[1:] != ["services"]:
        sys.exit(f"usage: {sys.argv[0]} services")
    base = Path(tempfile.mkdtemp(prefix="forecast_services_"))
    procs = Processes(base / "logs")
    try:
        with postgres(procs, ("airflow", "mlflow")) as pg, redis(procs) as broker:
            print(f"PostgreSQL {pg}/airflow and /mlflow, Redis {broker}; logs in {base / 'logs'}. Ctrl-C stops.")
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        procs.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

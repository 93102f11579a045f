"""scripts/airflow_stack.py: the process supervisor the test and benchmark stacks run Airflow under."""

from __future__ import annotations

import sys
import time

import pytest

from scripts.airflow_stack import MAX_RESTARTS, Processes, wait_for

# A service that dies on its own after a moment, the way the scheduler does on a vanished DAG run row.
DIES = [sys.executable, "-c", "import sys, time; print('serving', flush=True); time.sleep(0.3); sys.exit(3)"]
SERVES = [sys.executable, "-c", "import time; print('serving', flush=True); time.sleep(60)"]


def _until_check_alive_raises(procs: Processes, timeout: float = 30) -> None:
    """Poll `check_alive` until it raises (`wait_for` would take the error for a service not up yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check_alive()
        time.sleep(0.1)
    raise AssertionError("check_alive never raised")


def test_a_supervised_process_that_exits_is_started_again(tmp_path):
    procs = Processes(tmp_path / "logs")
    try:
        first = procs.start("scheduler", DIES, restart=True)
        restarted = wait_for(lambda: [n for n, _ in procs.restarts] or None, 30, "a restart", 0.1)
        assert restarted[0] == "scheduler" and procs.restarts[0] == ("scheduler", 3)
        assert procs.started[0][1].pid != first.pid
        procs.check_alive()  # restarted, not dead: waits go on
        # Every start appends to the one log, so what ended it is still there to read.
        wait_for(lambda: (tmp_path / "logs" / "scheduler.log").read_text().count("serving") >= 2, 30, "the second start's output", 0.1)
        # A service that keeps dying is reported rather than restarted for ever.
        with pytest.raises(RuntimeError, match="scheduler exited with 3"):
            _until_check_alive_raises(procs)
        assert procs.restarts == [("scheduler", 3)] * MAX_RESTARTS
        time.sleep(1.5)  # longer than the supervisor's poll: left down
        assert len(procs.restarts) == MAX_RESTARTS and procs.started[0][1].poll() is not None
    finally:
        procs.stop()


def test_stop_ends_supervision_and_an_unsupervised_exit_is_an_error(tmp_path):
    procs = Processes(tmp_path / "logs")
    try:
        served = procs.start("api-server", SERVES, restart=True)
        procs.start("once", DIES)
        with pytest.raises(RuntimeError, match="once exited with 3"):
            _until_check_alive_raises(procs)
        assert procs.restarts == []
    finally:
        procs.stop()
    time.sleep(1.5)  # longer than the supervisor's poll: a stopped service must stay stopped
    assert served.poll() is not None and procs.started == [] and procs.restarts == []


def test_stop_also_ends_what_a_restarted_service_left_behind(tmp_path):
    """A service that dies leaves its children running (a LocalExecutor's task processes): after it is
    restarted, `stop()` still ends the old process group, not only the new one."""
    import os

    leaves_a_child = [
        sys.executable, "-c",
        "import subprocess, sys; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); sys.exit(3)",
    ]
    procs = Processes(tmp_path / "logs")
    try:
        first = procs.start("scheduler", leaves_a_child, restart=True)
        wait_for(lambda: procs.restarts or None, 30, "a restart", 0.1)
        os.killpg(first.pid, 0)  # the old group is still there: its child lives on
        groups = [first.pid, procs.started[0][1].pid]
    finally:
        procs.stop()
    for pgid in groups:
        with pytest.raises(ProcessLookupError):
            os.killpg(pgid, 0)


def test_restarts_are_counted_within_a_window(tmp_path, monkeypatch):
    """A service that dies now and then over a long session is restarted every time: only
    `MAX_RESTARTS` within `RESTART_WINDOW` seconds give up on it (here a 1.5 s window, deaths 0.3 s
    apart plus the supervisor's 1 s poll: never three in one window)."""
    from scripts import airflow_stack

    monkeypatch.setattr(airflow_stack, "RESTART_WINDOW", 1.5)
    procs = Processes(tmp_path / "logs")
    try:
        procs.start("scheduler", DIES, restart=True)
        wait_for(lambda: len(procs.restarts) > MAX_RESTARTS + 1 or None, 60, "more restarts than the budget", 0.2)
        procs.check_alive()  # still supervised: no error
    finally:
        procs.stop()


class _AirflowApiStandIn:
    """An HTTP server on 127.0.0.1 answering each request with the next canned (status, JSON body)."""

    def __init__(self, answers: list[tuple[int, dict]]) -> None:
        import http.server
        import json
        import threading

        self.requests: list[str] = []
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                stand_in.requests.append(self.path)
                status, body = answers.pop(0)
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]


AUDIT_LOG_INSERT = "INSERT INTO log (dttm, dag_id, event) VALUES (?, ?, ?)"
BACKFILL_INSERT = "INSERT INTO backfill_dag_run (backfill_id, dag_run_id) VALUES (?, ?)"


def _database_error(orig_error: str, error_id: str, statement: str = BACKFILL_INSERT) -> dict:
    """The body Airflow's API server sends for a SQLAlchemy error with `[api] expose_stacktrace` on."""
    return {
        "detail": {
            "reason": "Database error",
            "statement": statement,
            "orig_error": orig_error,
            "message": f"Error with id {error_id}, statement: INSERT INTO log ...",
        }
    }


@pytest.fixture
def api_stack(tmp_path, monkeypatch):
    """An AirflowStack pointed at a stand-in API server, with a token and no waits between tries."""
    from scripts import airflow_stack
    from scripts.airflow_stack import AirflowStack

    monkeypatch.setattr(airflow_stack.time, "sleep", lambda _s: None)

    servers = []

    def make(answers: list[tuple[int, dict]]) -> tuple[AirflowStack, _AirflowApiStandIn]:
        stand_in = _AirflowApiStandIn(answers)
        servers.append(stand_in.server)
        stack = AirflowStack(tmp_path / "airflow", {}, Processes(tmp_path / "logs"))
        stack.port, stack._token = stand_in.port, "token"
        return stack, stand_in

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_call_that_lost_the_sqlite_write_lock_is_tried_again(api_stack):
    """503 from the backfill handler, then a 500 whose cause is "database is locked": each transaction
    rolled back, so the call is repeated until it goes through."""
    stack, stand_in = api_stack(
        [
            (503, {"detail": "Database is locked. Backfill creation is not supported on SQLite under concurrent access."}),
            (500, _database_error("database is locked", "AbC123")),
            (200, {"id": 2}),
        ]
    )
    assert stack.api("POST", "/api/v2/backfills", {"dag_id": "sales_forecast"}) == {"id": 2}
    assert stand_in.requests == ["/api/v2/backfills"] * 3


def test_a_call_whose_audit_log_insert_failed_is_tried_again(api_stack):
    """Airflow writes the audit-log row before the handler runs: whatever the database said, nothing was done."""
    stack, stand_in = api_stack([(500, _database_error("disk I/O error", "Au1", AUDIT_LOG_INSERT)), (200, {"id": 3})])
    assert stack.api("POST", "/api/v2/backfills", {"dag_id": "sales_forecast"}) == {"id": 3}
    assert len(stand_in.requests) == 2


def test_any_other_database_error_is_raised_at_once_with_its_cause_and_server_log(api_stack, tmp_path):
    stack, stand_in = api_stack([(500, _database_error("FOREIGN KEY constraint failed", "XyZ789"))])
    (tmp_path / "logs" / "api-server.log").write_text(
        "request finished\n[error] Error with id XyZ789, statement: INSERT INTO log\n  File \"decorators.py\", line 241, in log_action\n"
    )
    with pytest.raises(RuntimeError) as raised:
        stack.api("POST", "/api/v2/backfills", {"dag_id": "sales_forecast"})
    message = str(raised.value)
    assert "-> 500" in message
    assert "cause: Database error: FOREIGN KEY constraint failed" in message
    assert "api-server log:\n[error] Error with id XyZ789" in message and "in log_action" in message
    assert stand_in.requests == ["/api/v2/backfills"]  # not repeated


def test_a_call_still_locked_after_every_try_is_raised(api_stack):
    stack, stand_in = api_stack([(500, _database_error("database is locked", f"id{n}")) for n in range(3)])
    with pytest.raises(RuntimeError, match="database is locked"):
        stack.api("POST", "/api/v2/backfills", {"dag_id": "sales_forecast"}, attempts=3)
    assert len(stand_in.requests) == 3

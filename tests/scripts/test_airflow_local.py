"""scripts/airflow_local.py: the local Airflow setup's own fixes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import ROOT, write_config

from scripts.airflow_local import strengthen_jwt_secret


def test_short_generated_jwt_secret_is_replaced_once(tmp_path):
    cfg = tmp_path / "airflow.cfg"
    cfg.write_text("[api_auth]\n# a comment\njwt_secret = 4OAvpip3erYQV4vHUuJ1wQ==\njwt_algorithm = \n")
    assert strengthen_jwt_secret(cfg) is True
    lines = cfg.read_text().splitlines()
    secret = next(line for line in lines if line.startswith("jwt_secret = ")).split(" = ", 1)[1]
    assert len(secret) >= 64 and "jwt_algorithm = " in lines and "# a comment" in lines
    assert strengthen_jwt_secret(cfg) is False  # idempotent: a running stack keeps verifying its tokens
    assert secret in cfg.read_text()


def test_a_bad_seed_or_config_stops_setup_with_the_reason_not_a_traceback(tmp_path):
    """`make demo`'s first step on a user's own file: a header without rows, or a config value out of
    range, ends with exit code 1 and the message naming the file or key, without a Python traceback."""
    seed = tmp_path / "sales.csv"
    seed.write_text("date,item_name,total_amount_sold\n")
    config = write_config(tmp_path, seed)

    def seed_command(path):
        env = {**os.environ, "FORECAST_CONFIG": str(path)}
        return subprocess.run([sys.executable, "scripts/airflow_local.py", "seed"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    done = seed_command(config)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"seed CSV not loaded: seed CSV {seed} has a header but no rows" in done.stderr
    bad = yaml.safe_load(config.read_text())
    bad["forecast"]["horizon"] = -1
    config.write_text(yaml.safe_dump(bad))
    done = seed_command(config)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "forecast.horizon: Input should be greater than or equal to 1 (got -1)" in done.stderr


def test_make_airflow_restarts_a_service_that_dies_and_stops_them_all(tmp_path):
    """`make airflow`'s services (what `airflow standalone` starts) run supervised: the scheduler killed
    outright is started again, and SIGTERM to the launcher ends every service's process group (airflow
    standalone leaves its children running on SIGTERM)."""
    import signal
    import urllib.request

    import psutil

    from scripts.airflow_stack import BIN, free_port, wait_for

    port = free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "FORECAST_CONFIG": str(write_config(tmp_path)),
        "AIRFLOW_PORT": str(port),
        "AIRFLOW_LOCAL_LOGS": str(tmp_path / "logs"),
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
    }
    env.pop("FORECAST_RUN_DEADLINE_MINUTES", None)  # `make airflow` sets its own
    script = [sys.executable, "scripts/airflow_local.py"]
    subprocess.run([*script, "setup"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    launcher = subprocess.Popen([*script, "standalone"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    groups: set[int] = set()
    try:
        wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/version", timeout=2).status == 200, 240, "the API server", 1.0)

        def services() -> dict[str, int]:
            found = {}
            for child in psutil.Process(launcher.pid).children():
                # Airflow retitles some of its processes ("airflow api_server -- host:...").
                words = " ".join(child.cmdline()).replace("_", "-").split()
                for name in ("api-server", "scheduler", "dag-processor", "triggerer"):
                    if name in words:
                        found[name] = child.pid
            groups.update(found.values())
            return found

        first = wait_for(lambda: services() if len(services()) == 4 else None, 60, "four services", 0.5)
        # The services run with the run deadline on (README "Slack alerts"): the dag-processor stored
        # sales_forecast's deadline alert with the metadata.
        assert psutil.Process(first["dag-processor"]).environ().get("FORECAST_RUN_DEADLINE_MINUTES") == "60"
        wait_for(lambda: _deadline_alerts(tmp_path / "airflow" / "airflow.db") or None, 180, "sales_forecast's deadline alert in the metadata DB", 2.0)
        assert _deadline_alerts(tmp_path / "airflow" / "airflow.db") == ["sales_forecast run late"]
        os.killpg(first["scheduler"], signal.SIGKILL)
        wait_for(lambda: services().get("scheduler") not in (None, first["scheduler"]), 60, "a new scheduler", 0.5)
        assert services()["api-server"] == first["api-server"]  # the others were left alone
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(timeout=120)
    finally:
        if launcher.poll() is None:  # a failed check: stop it as a user would, then make sure
            launcher.send_signal(signal.SIGTERM)
            try:
                launcher.wait(timeout=60)
            except subprocess.TimeoutExpired:
                launcher.kill()
            for pgid in groups:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    output = launcher.stdout.read().decode()
    assert launcher.returncode == 0, output[-3000:]
    assert "scheduler exited with -9; restarting it" in output and f"http://127.0.0.1:{port}" in output, output[-3000:]
    for pgid in groups:  # every service's whole process group is gone
        assert not [p for p in psutil.process_iter(["pid"]) if _pgid(p.info["pid"]) == pgid], pgid


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _deadline_alerts(db: Path) -> list[str]:
    """Names of the deadline alerts the dag-processor stored (none before it has parsed the DAGs)."""
    import sqlite3

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return sorted({row[0] for row in con.execute("SELECT name FROM deadline_alert")})
    except sqlite3.OperationalError:  # locked by a writer, or not migrated yet
        return []
    finally:
        con.close()

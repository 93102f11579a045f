"""scripts/airflow_local.py: the local Airflow setup's own fixes."""

from __future__ import annotations

import os
import subprocess
import sys

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

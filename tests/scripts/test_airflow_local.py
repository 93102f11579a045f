"""scripts/airflow_local.py: the local Airflow setup's own fixes."""

from __future__ import annotations

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

"""scripts/models.py (make models / rollback / serve-model) on a real MLflow sqlite store: a command that
cannot do what was asked says what is missing and what to do, and changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT, write_config

from include.forecasting import registry
from include.forecasting.config import load_config


def test_the_registry_commands_name_what_is_missing(tmp_path):
    config_path = write_config(tmp_path)
    config = load_config(config_path)
    client = registry.open_client(config.mlflow.tracking_uri)
    client.create_registered_model(registry.model_name(config.mlflow.model_prefix, "NEW GIN"), tags={"series_id": "NEW GIN"})
    env = {**os.environ, "FORECAST_CONFIG": str(config_path)}

    def models(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "scripts/models.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    missing = models("serve", "--series", "OLD RUM")
    assert missing.returncode == 2 and "no registered model for series 'OLD RUM'" in missing.stderr and "'NEW GIN'" in missing.stderr
    young = models("serve", "--series", "new gin")
    assert young.returncode == 2 and "NEW GIN has no champion yet: pass VERSION=<n>" in young.stderr
    unnamed = models("serve", "--series", "")  # `make serve-model` without SERIES=
    assert unnamed.returncode == 2 and 'name the series: make serve-model SERIES="..."' in unnamed.stderr
    # A bare `make rollback` moves no champion: every series is SERIES=all, said on purpose.
    bare = models("rollback", "--series", "")
    assert bare.returncode == 2 and 'make rollback SERIES="...", or SERIES=all for every series' in bare.stderr
    assert "rolled back" not in bare.stdout + bare.stderr

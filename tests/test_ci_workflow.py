"""The GitHub Actions workflow: valid against the workflow schema, and it runs `.ci/run` and nothing else.

No GitHub runner is reachable here, so the file is checked against the github-workflows JSON schema
(vendored by check-jsonschema) and for what DEVELOPING promises about CI: the same entry point as a
clean-clone run, in the environment that entry point is developed in, within its 90 minutes.
"""

from __future__ import annotations

import json
from importlib.resources import files

import jsonschema
import yaml
from conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def _workflow() -> dict:
    # PyYAML reads the bare key `on` as True (YAML 1.1); GitHub reads it as the string.
    loaded = yaml.safe_load(WORKFLOW.read_text())
    return {("on" if key is True else key): value for key, value in loaded.items()}


def test_valid_against_the_github_workflow_schema() -> None:
    schema = json.loads(files("check_jsonschema.builtin_schemas.vendor").joinpath("github-workflows.json").read_text())
    jsonschema.validate(_workflow(), schema)


def test_runs_the_ci_entry_point_and_nothing_else() -> None:
    (job,) = _workflow()["jobs"].values()
    commands = [step["run"] for step in job["steps"] if "run" in step]
    assert commands == ["bash .ci/run"]
    assert [step["env"] for step in job["steps"] if "run" in step] == [{"CI": "true"}]
    # Debian with Python 3.11 as root: .ci/run apt-installs chromium, PostgreSQL and Redis.
    assert job["container"]["image"].startswith("python:3.11-") and "bookworm" in job["container"]["image"]
    assert job["timeout-minutes"] <= 90
    # .ci/run on a clean clone: the entry point calls the README's test command first.
    assert (ROOT / ".ci" / "run").read_text().count("make test\n") == 1

"""The pins: requirements*.txt name the direct dependencies (each with its reason), constraints*.txt
(`make lock`) every package of the venv they make. The two must agree, and the venv the tests run in must
be the locked one, or "passes on a clean clone" would speak of another set of packages."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;#]+)")


def _pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a requirements or constraints file, names canonical, following `-r`."""
    pins: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("-r "):
            pins.update(_pins(path.parent / line[3:].strip()))
        elif match := PIN.match(line):
            pins[canonicalize_name(match[1])] = match[2]
        elif line and not line.startswith("#"):
            raise AssertionError(f"{path.name}: {line!r} is not a pin (name==version) nor -r FILE")
    return pins


@pytest.mark.parametrize(("requirements", "constraints"), [("requirements-dev.txt", "constraints.txt"), ("requirements-bench.txt", "constraints-bench.txt")])
def test_every_pin_is_locked_at_its_version(requirements: str, constraints: str) -> None:
    pins, locked = _pins(ROOT / requirements), _pins(ROOT / constraints)
    assert len(locked) > len(pins), f"{constraints} holds only the direct pins: run `make lock`"
    differ = {name: (version, locked.get(name)) for name, version in pins.items() if locked.get(name) != version}
    assert not differ, f"{requirements} and {constraints} disagree (pin, lock): {differ}; run `make lock`"


def test_the_test_venv_is_the_locked_set() -> None:
    locked = _pins(ROOT / "constraints.txt")
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    differ = {name: (version, installed.get(name)) for name, version in locked.items() if installed.get(name) != version}
    assert not differ, f"the venv differs from constraints.txt (locked, installed): {differ}; run `make install-dev`"

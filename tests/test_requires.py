"""``requires.require``: a missing test dependency skips on a developer's machine and fails under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent

_PROBES = {
    # A module whose every test needs the dependency: require() at import time.
    "test_at_import.py": """
from requires import require

missing = require("irv2_no_such_module", "needed at import")


def test_never_runs():
    pass
""",
    # One test that needs it, beside one whose dependency is there.
    "test_in_a_test.py": """
import json

from requires import require


def test_present():
    assert require("json", "the standard library") is json


def test_missing():
    require("irv2_no_such_module", "needed in a test")
""",
}


@pytest.fixture
def probe(tmp_path):
    for name, source in _PROBES.items():
        (tmp_path / name).write_text(source)

    def run(ci: str | None, *options: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "CI"}
        if ci is not None:
            env["CI"] = ci
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rsfE", f"--rootdir={tmp_path}"]
        command += ["-o", f"pythonpath={TESTS}", *options, str(tmp_path)]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    return run


@pytest.mark.parametrize("ci", [None, "1"])
def test_missing_module_skips_outside_ci(probe, ci):
    result = probe(ci)  # only the exact value CI=true, as .ci/run sets it, turns skips into failures
    assert result.returncode == 0, result.stdout
    assert "1 passed, 2 skipped" in result.stdout
    assert "needed at import" in result.stdout and "needed in a test" in result.stdout


def test_missing_module_fails_the_run_under_ci(probe):
    result = probe("true")
    assert result.returncode == 2, result.stdout  # the import-time failure is a collection error
    assert "Interrupted: 1 error during collection" in result.stdout
    result = probe("true", "--continue-on-collection-errors")
    assert result.returncode == 1, result.stdout
    assert "1 failed, 1 passed, 1 error" in result.stdout
    assert "needed at import" in result.stdout and "needed in a test" in result.stdout
    assert "CI=true" in result.stdout and "skipped" not in result.stdout

"""Optional test dependencies: a skip on a developer's machine, a failure in CI.

A developer may leave out an extra (Ray, ONNX Runtime, a browser) and still run the rest of the suite. CI
installs every test dependency, so there a missing one means a broken install step, and a silent skip would
hide the tests it carries: with ``CI=true`` (as ``.ci/run`` sets it) every such skip fails the run instead.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def unavailable(reason: str) -> NoReturn:
    """Skip the calling test (or module, at import time) because ``reason``; under ``CI=true``, fail it."""
    if in_ci():
        why = "CI=true: CI installs every test dependency, so a skip would hide a broken install"
        pytest.fail(f"{reason} ({why})", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require(module: str, reason: str) -> ModuleType:
    """``import module``, or ``unavailable(...)`` naming it and ``reason`` when it is not installed.

    Use it where ``pytest.importorskip`` would go: at module level for a module whose every test needs it,
    or inside a fixture or test.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        problem = f"{module} cannot be imported ({exc}): {reason}"
    unavailable(problem)  # outside the except block, so the report is one line, not a chained traceback


def require_tensorflow_hub(monkeypatch: pytest.MonkeyPatch, module: str, reason: str) -> ModuleType:
    """``require(module, reason)`` for ``tensorflow_hub`` or one of its modules. tensorflow_hub 0.15 imports its
    Estimator support with the package, and TF 2.21 has no Estimator: a stand-in ``tensorflow_hub.estimator``
    stays in ``sys.modules`` for the calling test."""
    estimator = ModuleType("tensorflow_hub.estimator")
    estimator.LatestModuleExporter = estimator.register_module_for_export = None
    monkeypatch.setitem(sys.modules, "tensorflow_hub.estimator", estimator)
    return require(module, reason)

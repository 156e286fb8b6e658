"""Helpers shared by the export tests (a module with its own name: several test folders have a conftest)."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np

# What every export must reproduce: max |export - irv2| / max |irv2|, per output.
TOLERANCE = 1e-4
FLOWERS = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return float(np.abs(np.asarray(actual, np.float64) - expected).max() / np.abs(expected).max())


def run_python(code: str, *args, env: dict[str, str]) -> subprocess.CompletedProcess:
    """A Python snippet in a fresh interpreter (for TensorFlow settings that are fixed at import)."""
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env, timeout=600
    )


def expected_outputs(module, images: np.ndarray) -> dict[str, np.ndarray]:
    """What irv2's own Module API gives for ``images``: ``{"logits": ..., "features": ...}``.

    Remembered per module and batch: several runtimes are compared on the same photos, and each forward pass
    of the full network costs seconds on a small CPU.
    """
    key = (id(module), images.shape, hashlib.sha1(np.ascontiguousarray(images).tobytes()).hexdigest())
    if key not in _EXPECTED:
        outputs = {"features": module(images, signature="image_feature_vector")}
        if module.num_classes:
            outputs["logits"] = module(images, signature="image_classification")
        _EXPECTED[key] = outputs
    return _EXPECTED[key]


_EXPECTED: dict[tuple, dict[str, np.ndarray]] = {}


def assert_matches_module(actual: dict[str, np.ndarray], module, images: np.ndarray) -> dict[str, float]:
    """Every output of an export within TOLERANCE of the module; returns the errors (for the docs' table)."""
    expected = expected_outputs(module, images)
    assert set(actual) == set(expected)
    errors = {}
    for name, value in expected.items():
        if len(images) > 1:
            # Photos that the network could not tell apart would make the comparison prove little.
            assert relative_error(value[1], value[0]) > 100 * TOLERANCE, f"{name}: the photos give the same output"
        errors[name] = relative_error(np.asarray(actual[name]), value)
        assert errors[name] <= TOLERANCE, f"{name}: {errors[name]:.2g} from irv2"
    return errors


def export_hub_module(folder, name: str, tf_files: dict, cli_env: dict[str, str]):
    """``irv2 export`` of the TF-written TF-Hub module to ``folder/name`` (its suffix picks the format), as a user
    runs it: (path, finished process)."""
    from cli_runner import run_irv2

    out = folder / name
    return out, run_irv2("export", "--weights", tf_files["hub_classification"], "-o", out, env=cli_env)


def assert_exported(result: subprocess.CompletedProcess, path, format: str) -> None:
    """The export command succeeded, printed the path alone on stdout, and its check on stderr."""
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(path)
    assert f"({format}, 1001 classes); max relative error vs irv2: logits" in result.stderr

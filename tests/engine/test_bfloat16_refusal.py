"""bfloat16 on a CPU without bfloat16 instructions is refused with an irv2 error naming float32 and int8, on every
engine and entry point, never a runtime's own error (oneDNN's ``mkldnn_reorder_conv2d_weight: bf16 path needs
...`` on AVX2-only CPUs) nor float32 run under bfloat16's name (OpenVINO's f32 fallback).

``IRV2_CPU_BFLOAT16=0`` makes any CPU answer as one without them, so the refusal is checked on every machine;
what a CPU with them does is checked by the bfloat16 tests themselves (tests/bfloat16_support.py).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import irv2
from bfloat16_support import BFLOAT16_HERE, assert_cli_refused, assert_refused
from cli_runner import run_irv2
from irv2.engine import openvino_engine
from irv2.engine.precision import BFLOAT16_VARIABLE, cpu_has_fast_bfloat16
from irv2.errors import OptionError


@pytest.fixture
def without_bfloat16(monkeypatch):
    monkeypatch.setenv(BFLOAT16_VARIABLE, "0")
    assert not cpu_has_fast_bfloat16()


@pytest.mark.parametrize("engine", ["torch", "plain", "torchscript", "openvino", "auto", None])
def test_load_refuses_bfloat16(without_bfloat16, weights_dir, engine):
    assert_refused(irv2.load, weights_dir, dtype="bfloat16", engine=engine)
    assert_refused(irv2.load, weights_dir, dtype=torch.bfloat16, engine=engine)


def test_casting_a_module_to_bfloat16_is_refused_and_undone(without_bfloat16, weights_dir, batch, reference):
    module = irv2.load(weights_dir)
    assert_refused(module.to, torch.bfloat16)
    assert module.dtype == torch.float32 and module.precision == "float32"
    assert np.abs(module(batch) - reference[0]).max() <= 1e-5 * np.abs(reference[0]).max()


def test_the_command_line_refuses_bfloat16_in_one_line(weights_dir, tmp_path):
    image = irv2.sample_image()
    environment = {**os.environ, BFLOAT16_VARIABLE: "0"}
    assert_cli_refused(run_irv2("classify", image, "-w", weights_dir, "--dtype", "bf16", env=environment))
    output = tmp_path / "features.npz"
    assert_cli_refused(
        run_irv2("features", image, "-w", weights_dir, "--dtype", "bfloat16", "-o", output, env=environment)
    )
    assert not output.exists()
    # And the engines table says what this CPU does.
    info = run_irv2("info", "--engines", env=environment)
    assert info.returncode == 0, info.stderr


def test_openvino_never_runs_float32_under_bfloat16s_name(weights_dir, monkeypatch, tmp_path):
    """What OpenVINO compiled is read back: a bfloat16 hint it compiled as f32 (as it does on CPUs without
    bfloat16) is refused, not reported as bfloat16."""
    monkeypatch.setenv("IRV2_HOME", str(tmp_path))
    module = irv2.load(weights_dir, engine="openvino")
    assert openvino_engine.compiled_precision(module.engine.compiled) == "float32"
    monkeypatch.setattr(openvino_engine, "compiled_precision", lambda compiled: "float32")
    with pytest.raises(OptionError, match="no bfloat16 instructions"):
        openvino_engine._compile(module.engine.path, "bfloat16")


def test_this_cpu_does_what_its_instructions_allow(weights_dir, batch, reference):
    """Without the override: bfloat16 runs here if the CPU has the instructions, and is refused if not."""
    if not BFLOAT16_HERE:
        return assert_refused(irv2.load, weights_dir, dtype="bfloat16")
    module = irv2.load(weights_dir, dtype="bfloat16", engine="torch")
    assert module.precision == "bfloat16"
    assert np.abs(module(batch) - reference[0]).max() < 0.02 * np.abs(reference[0]).max()

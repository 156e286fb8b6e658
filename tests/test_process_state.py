"""Library functions leave the caller's process as they found it: PyTorch's flush-to-zero of subnormal floats is
set only where irv2 owns the process (the ``irv2`` command, Ray actors), never by ``irv2.load``, a call, or
``irv2.serve.serve`` (fast layer: a fresh interpreter per check, random weights)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Prints whether a subnormal float survives a multiplication (False once PyTorch flushes them to zero).
_CHECK = """
import os, signal, sys, threading
import numpy as np
import torch
import irv2

def subnormals_kept():
    return bool((torch.tensor([1e-39]) * 1.0).item() != 0.0)

print(subnormals_kept())
module = irv2.load(sys.argv[1], engine="torch")
module(np.zeros((1, 160, 160, 3), np.float32))
print(subnormals_kept())
if sys.argv[2] == "serve":
    from irv2.serve import serve
    # serve() runs until SIGTERM: send it once the server has started.
    threading.Timer(3.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
    serve(module, port=0, log_format="text")
    print(subnormals_kept())
else:
    from irv2.process_settings import flush_denormals
    flush_denormals()  # what the command and the Ray actors call
    print(subnormals_kept())
"""


@pytest.mark.parametrize("then", ["serve", "flush"])
def test_only_irv2s_own_processes_flush_subnormals(weights_dir, then, tmp_path):
    env = {**os.environ, "IRV2_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-c", _CHECK, str(weights_dir), then], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    before, after_load_and_call, after = done.stdout.split()
    assert (before, after_load_and_call) == ("True", "True")  # irv2.load and a call leave it alone
    assert after == ("True" if then == "serve" else "False")  # serve() too; the command's helper flushes

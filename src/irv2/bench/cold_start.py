"""Cold start: a fresh Python process from ``import irv2`` to its first prediction, phase by phase."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

# Run in a child interpreter, so nothing is imported or cached in memory yet: the figure a user sees.
_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import irv2
t1 = time.perf_counter()
module = irv2.load(sys.argv[1], device=sys.argv[2], dtype=sys.argv[3])
t2 = time.perf_counter()
image = module.preprocess(irv2.sample_image())[None]
module(image)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_prediction_s": t3 - t2}))
"""


def measure_cold_start(handle: str, *, device: str = "cpu", dtype: str = "float32") -> dict[str, float]:
    """Seconds from launching ``python`` to the first prediction on the bundled photo, with the phases
    (interpreter start, ``import irv2``, ``irv2.load``, first call). ``handle`` should already be cached."""
    env = {**os.environ, "IRV2_OFFLINE": "1"}
    started = time.perf_counter()
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, handle, device, dtype], capture_output=True, text=True, env=env, timeout=600
    )
    total = time.perf_counter() - started
    if child.returncode != 0:
        last = (child.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the cold-start probe failed: {last}")
    phases = json.loads(child.stdout.strip().splitlines()[-1])
    interpreter = total - sum(phases.values())
    return {"total_s": total, "interpreter_s": max(0.0, interpreter), **phases}

"""What the benchmarks' JSON reports share: the machine they ran on, and printing and writing the report."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from irv2.machine import cpu_name


def machine() -> dict[str, Any]:
    """The CPU's model name and the cores this process may use: every figure is named with its machine."""
    return {"cpu": cpu_name(), "cores": len(os.sched_getaffinity(0))}


def publish(report: dict[str, Any], out: str | None) -> None:
    """Print ``report`` as JSON, and write it to ``out`` when given (the docs' ``*_cpu.json`` files)."""
    text = json.dumps(report, indent=1)
    print(text)
    if out:
        Path(out).write_text(text + "\n")

"""Running the command line as a user does: ``python -m irv2 ARGS`` in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys


def run_irv2(*args, stdin: str | None = None, cwd: str | os.PathLike[str] | None = None, env=None, timeout=600):
    """The CompletedProcess of ``python -m irv2 ARGS``, with stdout and stderr as text."""
    return subprocess.run(
        [sys.executable, "-m", "irv2", *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )

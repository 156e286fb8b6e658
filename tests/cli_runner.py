"""Running the command line as a user does: ``python -m irv2 ARGS`` in a process of its own.

The process is a child of a warm Python (warm_python.py), which has torch and irv2 imported already: the same
command, streams, folder, environment and exit status as a fresh interpreter, without its 1.5-3 s of imports.
``fresh=True`` starts a fresh interpreter instead, for tests of what a command imports.
"""

from __future__ import annotations

import os

import warm_python


def run_irv2(
    *args, stdin: str | None = None, cwd: str | os.PathLike[str] | None = None, env=None, timeout=600, fresh=False
):
    """The CompletedProcess of ``python -m irv2 ARGS``, with stdout and stderr as text."""
    argv = ["-m", "irv2", *map(str, args)]
    return warm_python.run(argv, stdin=stdin, cwd=cwd, env=env, timeout=timeout, fresh=fresh)

"""New processes without the import bill: a warm Python that forks one child per command.

The suite starts ``python -m irv2 ...`` (and the docs' Python recipes) hundreds of times a run, and each fresh
interpreter spends 1.5-3 s importing torch before its first line of work: a third of the suite's time on a
2-core CPU. The warm Python imports torch, numpy, PIL and irv2 once and then waits; for each command it forks a
child, which is a process of its own: its own pid, standard streams, working folder, environment, ``sys.argv``
and exit status, killed by a signal as any process is. From there the child runs exactly what ``python -m irv2``
or ``python script.py`` runs (``runpy``, as the interpreter does) and ends as an interpreter ends (non-daemon
threads joined, ``atexit``, streams flushed).

What a child cannot tell apart from a fresh interpreter is what was imported before it began, and what was
read at import: so a run whose environment differs in a variable read at import time (threads, allocators,
``PYTHONPATH``...) gets a warm Python of its own, started with that environment, and a test of what a command
imports starts a fresh interpreter (``fresh=True``). The warm Python never runs a torch operation itself:
OpenMP's thread pool does not survive a fork, and each child starts its own.

Used as a command, for shell scripts: ``python warm_python.py run SOCKET ARGS...`` runs ``python ARGS...``
in a child of the warm Python at SOCKET, with this process's streams, folder and environment, passes on
SIGTERM, SIGINT and SIGHUP, and exits as the child did.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
from collections import OrderedDict

# What the warm Python imports before it forks: what nearly every irv2 command imports. Not the engines'
# runtimes (ONNX Runtime, OpenVINO) nor TensorFlow, which each child imports when it needs them.
PRELOAD = ("numpy", "PIL.Image", "torch", "irv2", "irv2.cli.main", "irv2.api", "irv2.model")

# Environment variables read when what the warm Python preloads is imported (by Python, torch and its GNU
# OpenMP, MKL, oneDNN, numpy's OpenBLAS): a run that sets any of them otherwise than a warm Python had them
# gets a warm Python of its own. Not KMP_*, which configure LLVM's and Intel's OpenMP, which nothing preloaded
# loads (TensorFlow sets two of them in os.environ when it is imported, and a child imports TensorFlow
# afresh); not PYTHONBREAKPOINT, read when breakpoint() is called (Ray sets it).
IMPORT_TIME_PREFIXES = (
    "PYTHON",
    "LD_",
    "OMP_",
    "GOMP_",
    "MKL_",
    "OPENBLAS_",
    "DNNL_",
    "ONEDNN_",
    "TORCH",
    "PYTORCH_",
    "CUDA_",
    "NPY_",
    "MALLOC_",
)

_SIGNALS_PASSED_ON = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


_READ_WHEN_USED = {"PYTHONBREAKPOINT"}


def import_time_environment(environ) -> dict[str, str]:
    return {
        key: value
        for key, value in environ.items()
        if key.startswith(IMPORT_TIME_PREFIXES) and key not in _READ_WHEN_USED
    }


# ---------------------------------------------------------------------------------------------------- server


def serve(path: str) -> dict:
    """Listen at ``path`` until stdin closes (the suite that started us has gone). Returns only in a child,
    with the request it is to run."""
    import selectors

    for name in PRELOAD:
        __import__(name)
    # What the children inherit stays out of their garbage collections: otherwise each child's first
    # collection writes to every inherited object, copying the warm Python's memory page by page.
    gc.freeze()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(sys.stdin, selectors.EVENT_READ, "parent")
    print("ready", flush=True)
    children: dict[int, tuple[int, socket.socket]] = {}  # pid -> (pidfd, connection)
    while True:
        for key, _ in selector.select():
            if key.data == "parent":
                for pid in children:
                    _kill(pid)
                raise SystemExit(0)
            if key.data == "accept":
                connection, _ = listener.accept()
                request, fds = _receive(connection)
                pid = os.fork()
                if pid == 0:  # the child: drop the server's sockets, take the client's streams, run
                    selector.close()
                    listener.close()
                    for _, other in children.values():
                        other.close()
                    connection.close()
                    for target, fd in enumerate(fds):
                        os.dup2(fd, target)
                        os.close(fd)
                    return request
                for fd in fds:
                    os.close(fd)
                pidfd = os.pidfd_open(pid)
                children[pid] = (pidfd, connection)
                connection.sendall(f"pid {pid}\n".encode())
                selector.register(pidfd, selectors.EVENT_READ, ("exited", pid))
                selector.register(connection, selectors.EVENT_READ, ("client", pid))
            elif key.data[0] == "exited":
                pid = key.data[1]
                _, status = os.waitpid(pid, 0)
                pidfd, connection = children.pop(pid)
                selector.unregister(pidfd)
                selector.unregister(connection)
                os.close(pidfd)
                with contextlib.suppress(OSError):  # the client may have gone first
                    connection.sendall(f"status {status}\n".encode())
                connection.close()
            elif not key.fileobj.recv(1):  # the client hung up (killed on a timeout): so does its child
                selector.unregister(key.fileobj)
                _kill(key.data[1])


def _kill(pid: int, number: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):  # it has ended already
        os.kill(pid, number)


def _receive(connection: socket.socket) -> tuple[dict, list[int]]:
    (size,) = struct.unpack("!Q", _read_exactly(connection, 8))
    request = json.loads(_read_exactly(connection, size))
    _, fds, _, _ = socket.recv_fds(connection, 1, 3)
    return request, fds


def _read_exactly(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the client hung up in the middle of its request")
        data += chunk
    return data


def become(request: dict) -> None:
    """In the child: take the request's folder, environment and argv, and run it as ``python ARGS`` would."""
    import random
    import runpy

    import numpy

    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for number in (*_SIGNALS_PASSED_ON, signal.SIGCHLD):
        signal.signal(number, signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL)
    # A fresh interpreter draws new seeds; a fork would share the warm Python's.
    random.seed()
    numpy.random.seed()
    argv = request["argv"]
    if argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        sys.path[0] = os.getcwd()
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(argv)
        sys.path[0] = os.path.dirname(os.path.abspath(argv[0]))
        runpy.run_path(argv[0], run_name="__main__")


# ---------------------------------------------------------------------------------------------------- client


# Set to 1 to run every command in a fresh interpreter, as before the warm Python: what the suite checks must
# hold either way.
FRESH_VARIABLE = "IRV2_TEST_FRESH_PYTHON"
_MOST_WARM_PYTHONS = 4  # one per import-time environment (the suite uses two), about 0.5 GB each


def run(
    argv: list[str], *, stdin: str | None = None, cwd=None, env=None, timeout: float | None = None, fresh=False
) -> subprocess.CompletedProcess:
    """``python ARGV`` with stdout and stderr captured as text, exactly as ``subprocess.run(..., text=True)``
    gives it, in a child of a warm Python where one serves ``env`` (default: this process's environment)."""
    environment = dict(os.environ if env is None else env)
    warm = None if fresh else warm_python_for(environment)
    if warm is None:
        command = [sys.executable, *argv]
        return subprocess.run(command, input=stdin, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)
    return warm.run(argv, stdin=stdin, cwd=cwd, env=environment, timeout=timeout)


_WARM: OrderedDict[frozenset, WarmPython] = OrderedDict()  # the most recently used last


def warm_python_for(environment: dict[str, str]) -> WarmPython | None:
    """The warm Python for runs in ``environment`` (started now if it is the first; the one used least
    recently is stopped if there are too many), or None where runs are to be fresh."""
    if os.environ.get(FRESH_VARIABLE, "").strip() not in ("", "0"):
        return None
    key = frozenset(import_time_environment(environment).items())
    if key in _WARM:
        _WARM.move_to_end(key)
    else:
        while len(_WARM) >= _MOST_WARM_PYTHONS:
            _WARM.popitem(last=False)[1].stop()
        _WARM[key] = WarmPython(environment)
    return _WARM[key]


class WarmPython:
    """A warm Python with the import-time environment of ``environment``, stopped when this process ends."""

    def __init__(self, environment: dict[str, str]) -> None:
        self._folder = tempfile.mkdtemp(prefix="warm-python-")
        self.socket_path = os.path.join(self._folder, "socket")
        log = os.path.join(self._folder, "log")
        with open(log, "wb") as stderr:
            command = [sys.executable, __file__, "serve", self.socket_path]
            self._process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=environment
            )
        atexit.register(self.stop)
        if self._process.stdout.readline() != b"ready\n":
            with open(log) as said:
                raise RuntimeError(f"the warm Python did not start:\n{said.read()[-4000:]}")

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.stdin.close()  # the server's signal to end
            self._process.wait(30)
        shutil.rmtree(self._folder, ignore_errors=True)

    def run(
        self, argv: list[str], *, stdin: str | None, cwd, env: dict[str, str], timeout: float | None
    ) -> subprocess.CompletedProcess:
        with tempfile.TemporaryFile() as stdin_file, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            stdin_file.write((stdin or "").encode())
            stdin_file.seek(0)
            request = {"argv": argv, "cwd": os.path.abspath(cwd or os.getcwd()), "env": env}
            status = _request(self.socket_path, request, [stdin_file.fileno(), out.fileno(), err.fileno()], timeout)
            out.seek(0)
            err.seek(0)
            stdout, stderr = _text(out.read()), _text(err.read())
        command = [sys.executable, *argv]
        if status is None:
            raise subprocess.TimeoutExpired(command, timeout, stdout, stderr)
        return subprocess.CompletedProcess(command, _returncode(status), stdout, stderr)


def _request(path: str, request: dict, fds: list[int], timeout: float | None) -> int | None:
    """Send ``request`` with ``fds`` as the child's stdin, stdout, stderr; the child's wait status, or None when
    ``timeout`` passed first (the child is then killed, and reaped before this returns)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        pid = _send(connection, path, request, fds)
        connection.settimeout(timeout)
        try:
            return _reply(connection)
        except TimeoutError:
            _kill(pid)
            connection.settimeout(60)
            _reply(connection)
            return None


def _send(connection: socket.socket, path: str, request: dict, fds: list[int]) -> int:
    """Connect, send the request and the child's streams; the child's pid."""
    connection.connect(path)
    body = json.dumps(request).encode()
    connection.sendall(struct.pack("!Q", len(body)) + body)
    socket.send_fds(connection, [b"\0"], fds)
    return _reply(connection)


def _reply(connection: socket.socket) -> int:
    """The number in the server's next line (``pid N`` or ``status N``)."""
    line = b""
    while not line.endswith(b"\n"):
        byte = connection.recv(1)
        if not byte:
            raise ConnectionError("the warm Python hung up")
        line += byte
    return int(line.split()[1])


def _returncode(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _text(data: bytes) -> str:
    """Bytes as ``subprocess.run(text=True)`` decodes them: the locale's encoding, universal newlines."""
    import locale

    return data.decode(locale.getpreferredencoding(False)).replace("\r\n", "\n").replace("\r", "\n")


def _run_as_command(path: str, argv: list[str]) -> int:
    """``python warm_python.py run SOCKET ARGS...``: run ARGS in a child with this process's streams, pass on
    signals, exit as it did."""
    request = {"argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        pid = _send(connection, path, request, [0, 1, 2])
        for number in _SIGNALS_PASSED_ON:
            signal.signal(number, lambda received, _frame: _kill(pid, received))
        status = _reply(connection)
    if os.WIFSIGNALED(status):  # die of the same signal, as a shell expects of its child
        number = os.WTERMSIG(status)
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        become(serve(sys.argv[2]))
    elif sys.argv[1] == "run":
        raise SystemExit(_run_as_command(sys.argv[2], sys.argv[3:]))

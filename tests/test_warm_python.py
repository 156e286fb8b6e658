"""The warm Python (warm_python.py) gives what a fresh interpreter gives: the suite's command-line and recipe
tests rely on it to be a process like any other."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

import warm_python

SCRIPT = textwrap.dedent(
    """
    import os, sys
    print(sys.argv[1:], os.getcwd(), os.environ.get("WARM_PYTHON_TEST"))
    print("stdin:", sys.stdin.read().strip())
    print("torch imported before this line:", "torch" in sys.modules, file=sys.stderr)
    import atexit
    atexit.register(lambda: print("atexit ran"))
    sys.exit(int(sys.argv[1]))
    """
)


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "script.py"
    path.write_text(SCRIPT)
    return path


def _both(argv, **options):
    warm = warm_python.run(argv, **options)
    fresh = warm_python.run(argv, fresh=True, **options)
    return warm, fresh


def test_a_child_has_the_streams_folder_environment_and_status_it_was_given(script, tmp_path):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    env = {**os.environ, "WARM_PYTHON_TEST": "yes"}
    warm, fresh = _both([str(script), "3", "ä b"], stdin="hello\n", cwd=folder, env=env, timeout=60)
    assert warm.returncode == fresh.returncode == 3
    assert warm.stdout == fresh.stdout == f"['3', 'ä b'] {folder} yes\nstdin: hello\natexit ran\n"
    assert "torch imported before this line: True" in warm.stderr  # what makes it warm
    assert "torch imported before this line: False" in fresh.stderr


def test_an_uncaught_exception_and_a_signal_end_it_as_they_end_an_interpreter(tmp_path):
    failing = tmp_path / "failing.py"
    failing.write_text("raise ValueError('no such thing')\n")
    warm, fresh = _both([str(failing)], timeout=60)
    assert warm.returncode == fresh.returncode == 1
    assert warm.stderr.splitlines()[-1] == fresh.stderr.splitlines()[-1] == "ValueError: no such thing"
    killed = tmp_path / "killed.py"
    killed.write_text("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n")
    warm, fresh = _both([str(killed)], timeout=60)
    assert warm.returncode == fresh.returncode == -signal.SIGTERM


def test_the_module_form_runs_irv2_as_python_m_does():
    warm, fresh = _both(["-m", "irv2", "--version"], timeout=60)
    assert (warm.returncode, warm.stdout, warm.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)


def test_a_timeout_kills_the_child(tmp_path):
    sleeper = tmp_path / "sleeper.py"
    sleeper.write_text("import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(120)\n")
    with pytest.raises(subprocess.TimeoutExpired) as caught:
        warm_python.run([str(sleeper)], timeout=2)
    pid = int(caught.value.output.split()[0])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone, and reaped


def test_the_command_form_passes_signals_on_and_exits_as_the_child_did(tmp_path):
    """``python warm_python.py run SOCKET ARGS`` (what the recipes' shell uses): SIGTERM to it reaches the child."""
    waiter = tmp_path / "waiter.py"
    waiter.write_text(
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))\n"
        "print('waiting', flush=True)\n"
        "time.sleep(120)\n"
    )
    warm = warm_python.warm_python_for(dict(os.environ))
    assert warm is not None
    command = [sys.executable, "-I", "-S", warm_python.__file__, "run", warm.socket_path, str(waiter)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as client:
        assert client.stdout.readline() == "waiting\n"
        client.send_signal(signal.SIGTERM)
        assert client.wait(60) == 7


def test_an_environment_read_at_import_gets_another_interpreter(tmp_path):
    usual = warm_python.warm_python_for(dict(os.environ))
    one_thread = warm_python.warm_python_for({**os.environ, "OMP_NUM_THREADS": "1"})
    assert usual is not None and one_thread is not None and one_thread is not usual
    assert warm_python.warm_python_for({**os.environ, "IRV2_HOME": "/elsewhere"}) is usual  # read when used
    # What importing TensorFlow (KMP_*) and starting Ray (PYTHONBREAKPOINT) put in os.environ changes nothing
    # that the warm Python preloaded.
    set_by_libraries = {"KMP_DUPLICATE_LIB_OK": "True", "KMP_INIT_AT_FORK": "FALSE", "PYTHONBREAKPOINT": "0"}
    assert warm_python.warm_python_for({**os.environ, **set_by_libraries}) is usual
    threads = tmp_path / "threads.py"
    threads.write_text("import torch\nprint(torch.get_num_threads())\n")
    result = warm_python.run([str(threads)], env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=60)
    assert result.stdout == "1\n"


def test_the_least_recently_used_warm_python_makes_room(monkeypatch):
    monkeypatch.setattr(warm_python, "_MOST_WARM_PYTHONS", 1)
    first = warm_python.warm_python_for({**os.environ, "OMP_NUM_THREADS": "1"})
    second = warm_python.warm_python_for({**os.environ, "OMP_NUM_THREADS": "2"})
    assert first is not None and second is not None and second is not first
    assert first._process.poll() is not None  # stopped
    assert warm_python.run(["-m", "irv2", "--version"], env={**os.environ, "OMP_NUM_THREADS": "2"}).returncode == 0

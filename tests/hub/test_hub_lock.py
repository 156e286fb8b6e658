"""The download lock: one download for many processes, no deadlock after a kill -9, a bounded wait."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest
from hub_helpers import Route, make_source, sha256

from irv2.errors import DownloadError
from irv2.hub import FileLock, artifact_path, fetch
from irv2.hub.lock import DEFAULT_TIMEOUT_S, lock_timeout

# fork: the children inherit the test's environment (IRV2_HOME) and imports, and start in milliseconds.
_fork = multiprocessing.get_context("fork")


def _fetch_in_child(source, results) -> None:
    path = fetch(source, progress=False)
    results.put((os.getpid(), str(path), path.read_bytes()))


def _hold_lock(path, ready, seconds) -> None:
    with FileLock(path):
        ready.set()
        time.sleep(seconds)


def test_concurrent_processes_download_once_and_share_the_file(server, payload):
    server.routes["/w"] = Route(payload, chunk_delay_s=0.05)  # ~0.25 s per download: the processes overlap
    source = make_source([server.url("/w")], None)
    results = _fork.Queue()
    children = [_fork.Process(target=_fetch_in_child, args=(source, results)) for _ in range(4)]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=30) for _ in children]
    for child in children:
        child.join(10)
        assert child.exitcode == 0
    assert server.count() == 1, "exactly one process may download; the others wait and reuse its file"
    assert {path for _, path, _ in outcomes} == {str(artifact_path(source))}
    assert all(data == payload for _, _, data in outcomes)
    assert len({pid for pid, _, _ in outcomes}) == 4
    assert fetch(source, progress=False).read_bytes() == payload  # the TOFU record agrees with the file


def test_lock_of_a_killed_process_does_not_block(server, payload, monkeypatch):
    monkeypatch.setenv("IRV2_LOCK_TIMEOUT", "10")  # a regression fails in 10 s instead of hanging
    server.routes["/w"] = Route(payload)
    source = make_source([server.url("/w")], sha256(payload))
    ready = _fork.Event()
    holder = _fork.Process(target=_hold_lock, args=(artifact_path(source), ready, 60))
    holder.start()
    assert ready.wait(10)
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(10)
    assert holder.exitcode == -signal.SIGKILL
    assert artifact_path(source).with_name("weights.bin.lock").exists()  # the file stays; the lock does not
    began = time.monotonic()
    assert fetch(source, progress=False).read_bytes() == payload
    assert time.monotonic() - began < 2


def test_lock_timeout_names_the_lock_file_and_holder(tmp_path):
    target = tmp_path / "artifact.bin"
    ready = _fork.Event()
    holder = _fork.Process(target=_hold_lock, args=(target, ready, 60))
    holder.start()
    try:
        assert ready.wait(10)
        began = time.monotonic()
        with pytest.raises(DownloadError) as info, FileLock(target, timeout=0.3):
            pass
        assert 0.3 <= time.monotonic() - began < 3
        message = str(info.value)
        assert f"{target}.lock" in message
        assert f"pid {holder.pid}" in message
        assert "IRV2_LOCK_TIMEOUT" in message
    finally:
        holder.kill()
        holder.join(10)
    with FileLock(target, timeout=1):  # free again once the holder is gone
        pass


def test_lock_excludes_within_one_process_too(tmp_path):
    with FileLock(tmp_path / "a"), pytest.raises(DownloadError), FileLock(tmp_path / "a", timeout=0.1):
        pass


def test_unwritable_cache_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(DownloadError, match=r"cannot create the lock file .*IRV2_HOME"):
        FileLock(tmp_path / "file" / "sub" / "artifact").acquire()


def test_lock_timeout_from_environment(monkeypatch):
    assert lock_timeout() == DEFAULT_TIMEOUT_S == 1800
    monkeypatch.setenv("IRV2_LOCK_TIMEOUT", "2.5")
    assert lock_timeout() == 2.5
    monkeypatch.setenv("IRV2_LOCK_TIMEOUT", "soon")
    with pytest.raises(DownloadError, match="IRV2_LOCK_TIMEOUT"):
        lock_timeout()

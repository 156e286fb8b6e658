"""fetch(): verified downloads, mirrors, resume, timeouts, trust on first use and offline mode."""

from __future__ import annotations

import json
import socket
import time

import pytest
from hub_helpers import Route, make_source, md5, sha256, write_part

from irv2.errors import DownloadError, HandleError
from irv2.hub import artifact_path, fetch, fetch_handle, record_path
from irv2.hub.cache import part_path


def _record(source) -> dict:
    return json.loads(record_path(source).read_text())


@pytest.mark.parametrize("kind", ["md5", "sha256"])
def test_good_download_is_cached_and_reused_without_network(server, payload, kind):
    server.routes["/w"] = Route(payload)
    source = make_source([server.url("/w")], md5(payload) if kind == "md5" else sha256(payload))
    path = fetch(source, progress=False)
    assert path == artifact_path(source)
    assert path.read_bytes() == payload
    record = _record(source)
    assert record["url"] == server.url("/w")
    assert record["checksum"] == source.checksum
    assert record["checksum_origin"] == "published"
    assert record["sha256"] == sha256(payload).split(":")[1]
    assert record["size_bytes"] == len(payload)
    assert not part_path(source).exists()
    assert server.count() == 1
    assert server.requests[0].user_agent.startswith("irv2/")
    assert server.requests[0].range is None

    assert fetch(source, progress=False) == path
    assert server.count() == 1, "a verified cached file must be used without any request"


def test_checksum_mismatch_is_rejected_and_nothing_is_cached(server, payload):
    server.routes["/w"] = Route(b"not the weights" * 1000)
    source = make_source([server.url("/w")], md5(payload))
    with pytest.raises(DownloadError) as info:
        fetch(source, progress=False)
    message = str(info.value)
    assert "checksum mismatch" in message
    assert md5(payload) in message
    assert md5(b"not the weights" * 1000) in message
    assert server.url("/w") in message
    assert not artifact_path(source).exists()
    assert not part_path(source).exists()
    assert not record_path(source).exists()


def test_bad_primary_falls_back_to_good_mirror(server, payload):
    server.routes["/bad"] = Route(b"x" * 5000)
    server.routes["/good"] = Route(payload)
    source = make_source([server.url("/bad"), server.url("/good")], sha256(payload))
    assert fetch(source, progress=False).read_bytes() == payload
    assert _record(source)["url"] == server.url("/good")


def test_size_mismatch_with_published_size_is_rejected(server, payload):
    server.routes["/w"] = Route(payload)
    source = make_source([server.url("/w")], None, size=len(payload) + 1)
    with pytest.raises(DownloadError, match="size mismatch"):
        fetch(source, progress=False)
    assert not artifact_path(source).exists()


def test_truncated_transfer_keeps_part_for_resume_then_resumes_with_range(server, payload):
    server.routes["/w"] = Route(payload, truncate_at=100_000)
    source = make_source([server.url("/w")], md5(payload))
    with pytest.raises(DownloadError, match="truncated transfer: got 100000 of 300000 bytes"):
        fetch(source, progress=False)
    assert not artifact_path(source).exists()
    assert part_path(source).read_bytes() == payload[:100_000]

    server.routes["/w"] = Route(payload)
    assert fetch(source, progress=False).read_bytes() == payload
    assert server.requests[-1].range == "bytes=100000-"
    assert not part_path(source).exists()


def test_truncated_transfer_without_range_support_deletes_part(server, payload):
    server.routes["/w"] = Route(payload, truncate_at=100_000, ranges=False)
    source = make_source([server.url("/w")], md5(payload))
    with pytest.raises(DownloadError, match="partial file deleted"):
        fetch(source, progress=False)
    assert not part_path(source).exists()
    assert not artifact_path(source).exists()


def test_resume_of_existing_part_with_range(server, payload):
    server.routes["/w"] = Route(payload)
    source = make_source([server.url("/w")], sha256(payload))
    write_part(source, payload[:123_456])
    assert fetch(source, progress=False).read_bytes() == payload
    assert [r.range for r in server.requests] == ["bytes=123456-"]


def test_part_is_restarted_when_server_ignores_range(server, payload):
    server.routes["/w"] = Route(payload, ranges=False)
    source = make_source([server.url("/w")], sha256(payload))
    write_part(source, b"garbage that must not be kept")
    assert fetch(source, progress=False).read_bytes() == payload
    assert server.count() == 1


def test_part_longer_than_the_file_is_restarted_after_416(server, payload):
    server.routes["/w"] = Route(payload)
    source = make_source([server.url("/w")], sha256(payload))
    write_part(source, b"\0" * (len(payload) + 10))
    assert fetch(source, progress=False).read_bytes() == payload
    assert [r.range for r in server.requests] == [f"bytes={len(payload) + 10}-", None]


def test_corrupt_part_is_dropped_after_checksum_failure_and_next_fetch_succeeds(server, payload):
    server.routes["/w"] = Route(payload)
    source = make_source([server.url("/w")], md5(payload))
    part = write_part(source, b"\0" * 1000)  # wrong prefix: the resumed file cannot verify
    with pytest.raises(DownloadError, match="checksum mismatch"):
        fetch(source, progress=False)
    assert not part.exists()
    assert fetch(source, progress=False).read_bytes() == payload


@pytest.mark.parametrize("status", [404, 500])
def test_http_error_tries_the_next_mirror(server, payload, status):
    server.routes["/primary"] = Route(b"", status=status)
    server.routes["/mirror"] = Route(payload)
    source = make_source([server.url("/primary"), server.url("/mirror")], md5(payload))
    assert fetch(source, progress=False).read_bytes() == payload
    assert [r.path for r in server.requests] == ["/primary", "/mirror"]


def test_all_urls_failing_lists_each_url_with_its_error(server, payload):
    server.routes["/a"] = Route(b"", status=404)
    server.routes["/b"] = Route(b"", status=500)
    source = make_source([server.url("/a"), server.url("/b")], md5(payload))
    with pytest.raises(DownloadError) as info:
        fetch(source, progress=False)
    message = str(info.value)
    assert f"{server.url('/a')}: HTTP 404" in message
    assert f"{server.url('/b')}: HTTP 500" in message
    assert not artifact_path(source).exists()


def test_server_that_never_answers_times_out(server, payload):
    server.routes["/w"] = Route(payload, stall_s=30)
    source = make_source([server.url("/w")], md5(payload))
    began = time.monotonic()
    with pytest.raises(DownloadError, match="no response within 1 s"):
        fetch(source, progress=False, timeout=1)
    assert time.monotonic() - began < 10


def test_server_that_stalls_mid_body_times_out(server, payload):
    server.routes["/w"] = Route(payload, stall_s=30, stall_after=50_000)
    source = make_source([server.url("/w")], md5(payload))
    began = time.monotonic()
    with pytest.raises(DownloadError, match="stalled for 1 s"):
        fetch(source, progress=False, timeout=1)
    assert time.monotonic() - began < 10
    assert not artifact_path(source).exists()


# -- trust on first use ------------------------------------------------------------------------------


def test_first_download_records_sha256_when_no_checksum_is_published(server, payload):
    server.routes["/w"] = Route(payload)
    source = make_source([server.url("/w")], None)
    fetch(source, progress=False)
    record = _record(source)
    assert record["checksum"] == sha256(payload)
    assert record["checksum_origin"] == "trust-on-first-use"
    fetch(source, progress=False)
    assert server.count() == 1


def test_tampered_cache_is_downloaded_again(server, payload):
    server.routes["/w"] = Route(payload)
    source = make_source([server.url("/w")], None)
    path = fetch(source, progress=False)
    path.write_bytes(b"tampered")
    assert fetch(source, progress=False).read_bytes() == payload
    assert server.count() == 2
    assert _record(source)["checksum"] == sha256(payload)


def test_tampered_cache_with_published_checksum_is_downloaded_again(server, payload):
    server.routes["/w"] = Route(payload)
    source = make_source([server.url("/w")], md5(payload))
    path = fetch(source, progress=False)
    path.write_bytes(payload[:-1] + b"!")
    assert fetch(source, progress=False).read_bytes() == payload
    assert server.count() == 2


def test_upstream_change_after_first_use_is_refused(server, payload):
    server.routes["/w"] = Route(payload)
    source = make_source([server.url("/w")], None)
    path = fetch(source, progress=False)
    path.write_bytes(b"tampered")
    server.routes["/w"] = Route(b"new upstream content")
    with pytest.raises(DownloadError) as info:
        fetch(source, progress=False)
    message = str(info.value)
    assert "recorded at the first download" in message
    assert str(record_path(source)) in message
    assert str(path) in message  # says the cached copy failed verification
    assert path.read_bytes() == b"tampered"  # not replaced by unverifiable content
    assert not part_path(source).exists()


# -- offline ----------------------------------------------------------------------------------------


def test_offline_uses_the_cached_copy_without_requests(server, payload, monkeypatch):
    server.routes["/w"] = Route(payload)
    source = make_source([server.url("/w")], None)
    path = fetch(source, progress=False)
    monkeypatch.setenv("IRV2_OFFLINE", "1")
    assert fetch(source, progress=False) == path
    assert server.count() == 1


def test_offline_without_cache_names_the_path_to_put_the_file(server, payload, monkeypatch):
    server.routes["/w"] = Route(payload)
    source = make_source([server.url("/w")], md5(payload))
    monkeypatch.setenv("IRV2_OFFLINE", "true")
    with pytest.raises(DownloadError) as info:
        fetch(source, progress=False)
    message = str(info.value)
    assert str(artifact_path(source)) in message
    assert md5(payload) in message
    assert "irv2.load" in message
    assert "offline" in message
    assert server.count() == 0


def test_offline_accepts_a_file_put_by_hand_after_verifying_it(server, payload):
    source = make_source([server.url("/w")], md5(payload))
    path = artifact_path(source)
    path.parent.mkdir(parents=True)
    path.write_bytes(payload)
    assert fetch(source, offline=True, progress=False) == path
    assert _record(source)["checksum"] == md5(payload)
    path.write_bytes(b"wrong file")
    with pytest.raises(DownloadError, match="failed verification"):
        fetch(source, offline=True, progress=False)
    assert server.count() == 0


def test_unreachable_network_fails_fast_with_offline_advice():
    with socket.socket() as s:  # a port on 127.0.0.1 that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = make_source([f"http://127.0.0.1:{port}/w", f"http://127.0.0.1:{port}/mirror"], None)
    began = time.monotonic()
    with pytest.raises(DownloadError) as info:
        fetch(source, progress=False, timeout=5)
    assert time.monotonic() - began < 5
    message = str(info.value)
    assert "network is unreachable" in message
    assert str(artifact_path(source)) in message
    assert "irv2.load" in message
    assert f"http://127.0.0.1:{port}/mirror" in message


# -- handles and progress ------------------------------------------------------------------------------


def test_fetch_handle_with_an_unregistered_url(server, payload):
    server.routes["/dir/model.safetensors"] = Route(payload)
    url = server.url("/dir/model.safetensors")
    source, path = fetch_handle(url, progress=False)
    assert source.name.startswith("url-")
    assert path.name == "model.safetensors"
    assert path.read_bytes() == payload
    assert _record(source)["checksum"] == sha256(payload)


def test_fetch_handle_rejects_unknown_names():
    with pytest.raises(HandleError, match="tfhub-classification-1"):
        fetch_handle("no-such-weights")


def test_progress_bar_goes_to_stderr_only_when_asked(server, payload, capsys):
    server.routes["/w"] = Route(payload)
    fetch(make_source([server.url("/w")], None, name="a"), progress=True)
    err = capsys.readouterr().err
    assert "weights.bin" in err and "MB/s" in err and "100%" in err
    fetch(make_source([server.url("/w")], None, name="b"), progress=False)
    fetch(make_source([server.url("/w")], None, name="c"))  # stderr is not a terminal under pytest
    assert capsys.readouterr().err == ""

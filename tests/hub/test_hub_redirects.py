"""Redirects on the way to a download, as users meet them today (tfhub.dev -> Kaggle -> storage).

Every test runs against local servers that redirect across hosts (other ports, ``localhost`` vs 127.0.0.1,
https vs http), so urllib's own behaviour is checked, not assumed.
"""

from __future__ import annotations

import json
import ssl
import time

import pytest
from hub_helpers import Route, make_source, md5, redirect, self_signed_certificate, sha256, write_part

from irv2.errors import DownloadError
from irv2.hub import artifact_path, fetch, record_path
from irv2.hub.cache import part_path
from irv2.hub.redirects import MAX_HOPS, refusal
from requires import unavailable

REDIRECT_CODES = [301, 302, 303, 307, 308]


def _record(source) -> dict:
    return json.loads(record_path(source).read_text())


@pytest.mark.parametrize("code", REDIRECT_CODES)
def test_relative_location_on_the_same_host(server, payload, code):
    server.routes["/start"] = redirect("/files/w.bin", code)
    server.routes["/files/w.bin"] = Route(payload)
    source = make_source([server.url("/start")], md5(payload))
    assert fetch(source, progress=False).read_bytes() == payload
    assert [r.path for r in server.requests] == ["/start", "/files/w.bin"]
    record = _record(source)
    assert record["url"] == server.url("/start")  # the URL the source names, not where it led
    assert record["redirected_to"] == server.url("/files/w.bin")


@pytest.mark.parametrize("code", REDIRECT_CODES)
def test_absolute_location_on_another_host(start_server, payload, code):
    hub, storage = start_server(), start_server("localhost")
    hub.routes["/m/1"] = redirect(storage.url("/bucket/1.tar.gz?token=secret"), code)
    storage.routes["/bucket/1.tar.gz"] = Route(payload)
    source = make_source([hub.url("/m/1")], sha256(payload))
    assert fetch(source, progress=False).read_bytes() == payload
    (arrived,) = storage.requests
    assert arrived.host == storage.base.split("://")[1]  # the new host's name, not the first one's
    assert arrived.user_agent.startswith("irv2/")
    record = _record(source)
    assert record["url"] == hub.url("/m/1")
    assert record["redirected_to"] == storage.url("/bucket/1.tar.gz")  # no signed query kept on disk
    assert record["checksum"] == source.checksum
    assert artifact_path(source).parent.name == source.name


@pytest.mark.parametrize("code", REDIRECT_CODES)
def test_resume_through_a_chain_of_hosts_keeps_the_range(start_server, payload, code):
    tfhub, kaggle, storage = start_server(), start_server("localhost"), start_server()
    tfhub.routes["/google/m/1"] = redirect(kaggle.url("/models/google/m/1"), code)
    kaggle.routes["/models/google/m/1"] = redirect("/api/v1/models/google/m/1/download", code)
    kaggle.routes["/api/v1/models/google/m/1/download"] = redirect(storage.url("/signed/m.tar.gz"), code)
    storage.routes["/signed/m.tar.gz"] = Route(payload)
    source = make_source([tfhub.url("/google/m/1")], md5(payload))
    part = write_part(source, payload[:100_000])

    assert fetch(source, progress=False).read_bytes() == payload
    hops = [*tfhub.requests, *kaggle.requests, *storage.requests]
    assert [r.range for r in hops] == ["bytes=100000-"] * 4
    assert all(r.user_agent.startswith("irv2/") for r in hops)
    assert not part.exists()
    assert _record(source)["redirected_to"] == storage.url("/signed/m.tar.gz")


def test_a_transfer_cut_after_a_redirect_resumes_through_it(start_server, payload):
    hub, storage = start_server(), start_server()
    hub.routes["/w"] = redirect(storage.url("/w"), 303)
    storage.routes["/w"] = Route(payload, truncate_at=120_000)
    source = make_source([hub.url("/w")], md5(payload))
    with pytest.raises(DownloadError, match="truncated transfer: got 120000 of 300000 bytes"):
        fetch(source, progress=False)
    storage.routes["/w"] = Route(payload)
    assert fetch(source, progress=False).read_bytes() == payload
    assert storage.requests[-1].range == "bytes=120000-"


def test_an_error_after_a_redirect_names_where_it_happened_and_the_mirror_is_tried(start_server, payload):
    hub, storage, mirror = start_server(), start_server(), start_server()
    hub.routes["/w"] = redirect(storage.url("/gone?sig=abc"))
    mirror.routes["/w"] = Route(payload)
    source = make_source([hub.url("/w"), mirror.url("/w")], md5(payload))
    assert fetch(source, progress=False).read_bytes() == payload
    assert _record(source)["url"] == mirror.url("/w")
    assert _record(source)["redirected_to"] is None

    broken = make_source([hub.url("/w")], md5(payload), name="broken")
    with pytest.raises(DownloadError) as info:
        fetch(broken, progress=False)
    assert f"{hub.url('/w')}: HTTP 404 Not Found from {storage.url('/gone')} (redirected)" in str(info.value)


# -- refused chains -----------------------------------------------------------------------------------------


def test_a_redirect_loop_across_hosts_fails_fast_and_the_next_mirror_is_tried(start_server, payload):
    a, b, mirror = start_server(), start_server("localhost"), start_server()
    a.routes["/x"] = redirect(b.url("/y"), 302)
    b.routes["/y"] = redirect(a.url("/x"), 307)
    mirror.routes["/w"] = Route(payload)
    source = make_source([a.url("/x"), mirror.url("/w")], md5(payload))
    assert fetch(source, progress=False).read_bytes() == payload
    assert (a.count("/x"), b.count("/y")) == (1, 1)  # refused at the first repeat, not urllib's fifth

    looping = make_source([a.url("/x")], md5(payload), name="looping")
    began = time.monotonic()
    with pytest.raises(DownloadError) as info:
        fetch(looping, progress=False, timeout=5)
    assert time.monotonic() - began < 5
    message = str(info.value)
    assert f"{a.url('/x')}: redirect loop: {a.url('/x')} -> {b.url('/y')} -> {a.url('/x')}" in message
    assert "Traceback" not in message
    assert not artifact_path(looping).exists() and not part_path(looping).exists()


def test_a_location_pointing_at_itself_is_a_loop(server, payload):
    server.routes["/self"] = redirect("/self", 301)
    with pytest.raises(DownloadError, match="redirect loop"):
        fetch(make_source([server.url("/self")], md5(payload)), progress=False)
    assert server.count() == 1


def test_the_hop_limit(start_server, payload):
    a, b = start_server(), start_server()
    # MAX_HOPS redirects alternating between two hosts, then the file: followed to the end.
    for hop in range(MAX_HOPS):
        here, there = (a, b) if hop % 2 == 0 else (b, a)
        here.routes[f"/hop{hop}"] = redirect(there.url(f"/hop{hop + 1}"), REDIRECT_CODES[hop % 5])
    last = a if MAX_HOPS % 2 == 0 else b
    last.routes[f"/hop{MAX_HOPS}"] = Route(payload)
    assert fetch(make_source([a.url("/hop0")], md5(payload)), progress=False).read_bytes() == payload
    assert a.count() + b.count() == MAX_HOPS + 1

    # One hop more is refused, naming the limit and both ends of the chain.
    last.routes[f"/hop{MAX_HOPS}"] = redirect(a.url("/file"))
    a.routes["/file"] = Route(payload)
    before = a.count() + b.count()
    with pytest.raises(DownloadError) as info:
        fetch(make_source([a.url("/hop0")], md5(payload), name="too-long"), progress=False)
    message = str(info.value)
    assert f"more than {MAX_HOPS} redirects: {a.url('/hop0')} -> ... -> {last.url(f'/hop{MAX_HOPS}')}" in message
    assert a.count("/file") == 0
    assert a.count() + b.count() - before == MAX_HOPS + 1


def test_a_redirect_to_another_scheme_is_refused(server, payload):
    server.routes["/w"] = redirect("file:///etc/passwd")
    with pytest.raises(DownloadError) as info:
        fetch(make_source([server.url("/w")], md5(payload)), progress=False)
    assert f"refused a redirect from {server.url('/w')} to file:///etc/passwd" in str(info.value)


# -- https -> http ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chain", "refused"),
    [
        (["https://tfhub.dev/m/1", "https://www.kaggle.com/models/m/1"], None),
        (["http://tfhub.dev/m/1", "https://www.kaggle.com/models/m/1"], None),  # upgrades are fine
        (["http://a.example/x", "http://b.example/y"], None),
        (["https://tfhub.dev/m/1", "http://storage.example/m.tar.gz"], "never goes on over http"),
        (["https://a.example/1", "https://b.example/2", "http://c.example/3"], "never goes on over http"),
        (["https://a.example/1", "HTTP://b.example/2"], "never goes on over http"),
        (["https://a.example/1", "ftp://b.example/2"], "only http and https"),
        (["https://a.example/1", "https://b.example/2", "https://a.example/1"], "redirect loop"),
        ([f"https://a.example/{i}" for i in range(MAX_HOPS + 1)], None),
        ([f"https://a.example/{i}" for i in range(MAX_HOPS + 2)], f"more than {MAX_HOPS} redirects"),
    ],
)
def test_the_redirect_policy(chain, refused):
    reason = refusal(chain)
    if refused is None:
        assert reason is None
    else:
        assert refused in reason
        if "over http" in refused or "only http" in refused:
            assert f"from {chain[-2]} to {chain[-1]}" in reason  # names both URLs


def test_https_to_http_is_refused_end_to_end(start_server, payload, tmp_path, monkeypatch):
    made = self_signed_certificate(tmp_path)
    if made is None:
        unavailable("needs the openssl command to make a certificate for a local https server")
    cert, key = made
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts this certificate and no other
    secure, plain = start_server(tls=tls), start_server()
    secure.routes["/ok"] = redirect("/files/w", 307)
    secure.routes["/files/w"] = Route(payload)
    secure.routes["/down"] = redirect(plain.url("/w"), 302)
    plain.routes["/w"] = Route(payload)

    # The control: TLS works, and an https -> https redirect is followed.
    assert fetch(make_source([secure.url("/ok")], md5(payload)), progress=False).read_bytes() == payload
    with pytest.raises(DownloadError) as info:
        fetch(make_source([secure.url("/down")], md5(payload), name="downgraded"), progress=False)
    message = str(info.value)
    assert f"refused a redirect from {secure.url('/down')} to {plain.url('/w')}" in message
    assert "never goes on over http" in message
    assert plain.count() == 0  # not a byte was asked of the plain-http host

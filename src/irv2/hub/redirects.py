"""Which HTTP redirects a download follows: a urllib opener with one explicit policy.

Since November 2023 tfhub.dev answers with a redirect to Kaggle Models, which redirects again to a storage
URL, so a TF-Hub download crosses hosts before the first byte. urllib follows redirects by itself, but by its
own rules: any scheme change, a loop noticed only at its fifth turn, and no 308 before Python 3.11. Here every
hop is put to ``refusal`` first:

    * at most ``MAX_HOPS`` redirects, and a URL already visited ends the chain at once (a loop);
    * http(s) only, and never from https down to plain http: anyone on the path could then swap the file, and
      a source without a published checksum would record the swapped file as the truth (trust on first use);
    * 301, 302, 303, 307 and 308 alike send the same GET with the same headers to the next hop, so a resume's
      ``Range`` and the ``User-Agent`` reach the server that finally answers (urllib keeps them too, but
      that is an implementation detail here made a rule).

A refused hop raises ``RedirectRefused`` out of ``opener().open``; the socket timeout applies to every hop.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import IO, Any

MAX_HOPS = 10
_SCHEMES = ("http", "https")


class RedirectRefused(Exception):
    """A redirect the policy does not follow; the message names the URLs involved."""


def refusal(chain: Sequence[str], max_hops: int = MAX_HOPS) -> str | None:
    """Why the last hop of ``chain`` must not be followed, or None to follow it.

    Args:
        chain: the URL first requested, then each redirect target in turn (absolute URLs); at least two.
        max_hops: the most redirects one download may follow.
    """
    *visited, target = chain
    previous = visited[-1]
    if foreign := _foreign_scheme(previous, target):
        return foreign
    if _scheme(target) == "http" and any(_scheme(url) == "https" for url in visited):
        return f"refused a redirect from {previous} to {target}: a download over https never goes on over http"
    if target in visited:
        return "redirect loop: " + " -> ".join(chain)
    if len(chain) - 1 > max_hops:
        return f"more than {max_hops} redirects: {chain[0]} -> ... -> {previous} -> {target}"
    return None


def _scheme(url: str) -> str:
    return urllib.parse.urlsplit(url).scheme.lower()


def _foreign_scheme(previous: str, target: str) -> str | None:
    if _scheme(target) in _SCHEMES:
        return None
    return f"refused a redirect from {previous} to {target}: only http and https are followed"


def opener(max_hops: int = MAX_HOPS) -> urllib.request.OpenerDirector:
    """A urllib opener whose redirects follow ``refusal``; its other handlers are urllib's defaults."""
    return urllib.request.build_opener(_PolicyRedirectHandler(max_hops))


class _PolicyRedirectHandler(urllib.request.HTTPRedirectHandler):
    # urllib's own limits stay looser than ours, so that ours always speak first and with our message.
    max_repeats = 1 << 30

    def __init__(self, max_hops: int) -> None:
        self.max_hops = max_hops
        self.max_redirections = max_hops + 2

    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request:
        chain = (*getattr(req, "irv2_chain", (req.full_url,)), newurl)
        problem = refusal(chain, self.max_hops)
        if problem is not None:
            fp.close()
            raise RedirectRefused(problem)
        # Every redirect code becomes the same GET: downloads send no body, so 307/308's "keep the method"
        # and 303's "switch to GET" agree. The caller's headers go along unchanged (Range, User-Agent,
        # Accept-Encoding); urllib's per-host ones (Host) are not among them and are set afresh.
        new = urllib.request.Request(
            newurl, headers=dict(req.headers), origin_req_host=req.origin_req_host, unverifiable=True
        )
        new.irv2_chain = chain  # type: ignore[attr-defined]
        return new

    def http_error_302(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Any
    ) -> IO[bytes] | None:
        # urllib turns a Location in another scheme (file:, data:) into an HTTPError of its own wording
        # before ``redirect_request`` is asked; the policy is asked first, so the message is ours.
        location = headers.get("location") or headers.get("uri")
        if location is not None:
            foreign = _foreign_scheme(req.full_url, urllib.parse.urljoin(req.full_url, location.strip()))
            if foreign is not None:
                fp.close()
                raise RedirectRefused(foreign)
        return super().http_error_302(req, fp, code, msg, headers)

    # Python 3.10 knows no 308 (RFC 7538); it is 301's counterpart as 307 is 302's.
    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

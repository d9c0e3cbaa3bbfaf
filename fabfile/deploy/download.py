"""Every release download, bounded and https-only once https: on the server (`shell_dl`, curl or wget in the
install script) and on this machine (`fetch`, for `source: upload`).

Why: a download that stalls held the deploy until the install command's own 900 s bound, with an error that
did not say it was the download; and curl -L / urllib followed a redirect from https to plain http, where
anyone on the path could swap the checksum file along with the archive. Each download now has an overall
time limit and one line when it passes, and an https URL never continues over http.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

DOWNLOAD_SECONDS = 600  # one file, all retries included; the install command's bound is 900 s
CONNECT_SECONDS = 30
EXIT_DOWNLOAD = 44  # the install script's exit status for a download that failed or took too long


class FetchError(RuntimeError):
    """A release file could not be fetched on this machine; one line, nothing was installed."""


def shell_dl(https: bool, seconds: int = DOWNLOAD_SECONDS) -> str:
    """Shell text defining `dl URL FILE` for the server: curl (or wget for an http:// URL), ended by
    coreutils' `timeout` after `seconds` overall; a failure or the limit is one line and exit 44.

    An https URL needs curl: wget cannot be kept from following a redirect to http (curl: --proto-redir
    =https; and verify asks the services with curl anyway)."""
    curl = (f"timeout {seconds} curl -fsSL --retry 2 --connect-timeout {CONNECT_SECONDS} "
            + ("--proto =https --proto-redir =https " if https else "") + '-o "$2" "$1"')
    other = (f'timeout {seconds} wget -q -T {CONNECT_SECONDS} -O "$2" "$1"' if not https else
             "echo \"downloading $1 needs curl on the server (wget could follow a redirect from https to "
             f"http): apt-get install curl, or set source: upload\" >&2; exit {EXIT_DOWNLOAD}")
    return (f"if command -v curl >/dev/null; then get() {{ {curl}; }}; else get() {{ {other}; }}; fi\n"
            'dl() { local rc=0; get "$1" "$2" || rc=$?; [ $rc -eq 0 ] && return 0; '
            f"if [ $rc -eq 124 ]; then echo \"downloading $1 took longer than {seconds} s (the limit): check "
            "the server's network or its proxy, or set source: upload\" >&2; "
            "else echo \"downloading $1 failed (exit $rc, see above); nothing was installed\" >&2; fi; "
            f"exit {EXIT_DOWNLOAD}; }}")


def build_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(HttpsStaysHttps)


class HttpsStaysHttps(urllib.request.HTTPRedirectHandler):
    """urllib follows https -> http redirects; a release fetched over https must stay on https."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201, PLR0913
        if req.full_url.lower().startswith("https:") and not newurl.lower().startswith("https:"):
            raise FetchError(f"downloading {req.full_url}: the server redirected to {newurl}, which is not "
                             "https; refusing (the checksum could be swapped on the way)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch(url: str, dest: Path, seconds: float = DOWNLOAD_SECONDS,
          clock: Callable[[], float] = time.monotonic,
          opener: urllib.request.OpenerDirector | None = None) -> None:
    """Download `url` to `dest` (through a .part file) within `seconds` overall, https staying https."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    deadline = clock() + seconds
    opener = opener or build_opener()
    try:
        with opener.open(url, timeout=min(60.0, seconds)) as r, tmp.open("wb") as f:
            while chunk := r.read1(1 << 20):  # what has arrived: a crawling server still meets the limit
                f.write(chunk)
                if clock() > deadline:
                    raise FetchError(f"downloading {url} took longer than {seconds:.0f} s (the limit): check "
                                     "this machine's network, or put the archive in archive_dir")
    except FetchError:
        tmp.unlink(missing_ok=True)
        raise
    except (urllib.error.URLError, OSError, ValueError) as e:
        tmp.unlink(missing_ok=True)
        why = getattr(e, "reason", None) or e
        raise FetchError(f"downloading {url} failed ({why}); check the URL (release_url) and this machine's "
                         "network, or put the archive in archive_dir") from None
    tmp.replace(dest)

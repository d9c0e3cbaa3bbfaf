"""Issue 30 §11: every transfer has an overall time limit and one line when it passes; https stays https.
Fakes for the clock, the SFTP client and the HTTP opener (real servers: tests/proc/test_transfer_bounds.py).
"""

from __future__ import annotations

import io
import urllib.request
from pathlib import Path

import pytest

from fabfile.config.inventory import load_inventory
from fabfile.deploy import download
from fabfile.deploy.download import FetchError, HttpsStaysHttps, fetch, shell_dl
from fabfile.deploy.steps import install
from fabfile.ssh import stage, transport
from tests.pure.test_inventory import BASE, write


def test_the_server_s_https_download_refuses_a_redirect_to_http_and_has_an_overall_limit() -> None:
    text = shell_dl(https=True)
    assert "timeout 600 curl " in text and "--proto =https --proto-redir =https" in text
    assert "wget -" not in text and "needs curl on the server" in text  # wget cannot refuse the redirect
    assert "took longer than 600 s (the limit)" in text and "exit 44" in text


def test_an_http_download_may_use_wget_and_is_bounded_too() -> None:
    text = shell_dl(https=False)
    assert "--proto-redir" not in text and "timeout 600 wget " in text and "timeout 600 curl " in text


def test_the_install_step_downloads_the_default_https_release_with_the_bounded_dl(tmp_path: Path) -> None:
    host = load_inventory(write(tmp_path, BASE)).host("test")
    cmd = install._download_cmd(host.prometheus, host.prometheus.archive_name("prometheus"))
    assert host.prometheus.url().startswith("https://") and "--proto-redir =https" in cmd
    assert 'dl https://github.com/prometheus/prometheus/releases/download/v2.48.0/prometheus-2.48.0' in cmd


def _redirect(src: str, dest: str) -> urllib.request.Request | None:
    req = urllib.request.Request(src)
    return HttpsStaysHttps().redirect_request(req, io.BytesIO(), 302, "Found", {}, dest)


def test_this_machine_s_downloader_refuses_https_to_http() -> None:
    with pytest.raises(FetchError, match=r"redirected to http://mirror.test/a, which is not https; refusing"):
        _redirect("https://example.test/a", "http://mirror.test/a")
    assert _redirect("https://example.test/a", "https://objects.test/a").full_url == "https://objects.test/a"
    assert _redirect("http://127.0.0.1/a", "http://127.0.0.1/b").full_url == "http://127.0.0.1/b"


class _SlowOpener:
    """An opener whose response hands out 1 MiB chunks, forever."""

    def open(self, url: str, timeout: float) -> io.BufferedReader:  # noqa: ARG002
        class Endless(io.RawIOBase):
            def readable(self) -> bool:
                return True

            def readinto(self, b) -> int:  # noqa: ANN001
                b[:] = b"x" * len(b)
                return len(b)
        return io.BufferedReader(Endless())


def test_this_machine_s_download_stops_at_its_overall_limit(tmp_path: Path) -> None:
    ticks = iter(range(0, 10_000, 100))
    with pytest.raises(FetchError) as e:
        fetch("https://example.test/p.tar.gz", tmp_path / "p.tar.gz", clock=lambda: next(ticks),
              opener=_SlowOpener())  # type: ignore[arg-type]
    assert str(e.value) == ("downloading https://example.test/p.tar.gz took longer than 600 s (the limit): "
                            "check this machine's network, or put the archive in archive_dir")
    assert list(tmp_path.iterdir()) == []  # no .part left behind
    assert download.DOWNLOAD_SECONDS < 900  # within the install command's own bound


class _SftpConn:
    """A connection whose SFTP accepts every chunk (slowly, as the stepped clock says)."""

    host = "slow.test"

    def sftp(self):  # noqa: ANN201
        class Sftp:
            def mkdir(self, *a) -> None: ...  # noqa: ANN002
            def chmod(self, *a) -> None: ...  # noqa: ANN002

            def put(self, local, remote, callback) -> None:  # noqa: ANN001
                for n in range(100):
                    callback(n * 32768, 100 * 32768)

            def open(self, path, mode):  # noqa: ANN001, ANN202
                class F(io.BytesIO):
                    def chmod(self, mode) -> None: ...  # noqa: ANN001
                    def set_pipelined(self, on) -> None: ...  # noqa: ANN001
                return F()
        return Sftp()


@pytest.mark.parametrize("how", ["bytes", "file"])
def test_an_upload_stops_at_its_overall_limit_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            how: str) -> None:
    ticks = iter(range(0, 100_000, 100))
    monkeypatch.setattr(stage, "_now", lambda: next(ticks))
    (tmp_path / "a.tar.gz").write_bytes(b"x")
    with pytest.raises(transport.RemoteError) as e:
        if how == "bytes":
            stage.stage(_SftpConn(), b"x" * (20 * stage.CHUNK), "web.yml")
        else:
            stage.stage_file(_SftpConn(), str(tmp_path / "a.tar.gz"), "a.tar.gz")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("uploading ")
    assert "to slow.test:/tmp failed (it took longer than 900 s, the limit for one upload; " in msg


def test_a_stalled_sftp_request_is_one_line_naming_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stalled(_SftpConn):
        def sftp(self):  # noqa: ANN201
            class Sftp:
                def mkdir(self, *a) -> None:  # noqa: ANN002
                    raise TimeoutError("timed out")  # what paramiko's channel timeout raises
            return Sftp()

    with pytest.raises(transport.RemoteError, match=r"failed \(the server did not answer for 60 s; check"):
        stage.stage(Stalled(), b"x", "web.yml")

"""`healthy(tries)`: a slow answer is asked again, a refused connection or an error answer is final (the
drill's pre-checks on a busy server: one answer slower than the client's timeout is not a dead service)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fabfile.alerting.api import ApiTimeout, Http, free_port


class Service:
    """/-/healthy on loopback: the first `slow` answers come after `delay` seconds, then at once; `status`."""

    def __init__(self, slow: int, delay: float, status: int = 200) -> None:
        self.asked = 0
        svc = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                svc.asked += 1
                if svc.asked <= slow:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.end_headers()
                    self.wfile.write(b"OK")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting, as the test means it to

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def service():
    made: list[Service] = []

    def make(slow: int, delay: float = 1.0, status: int = 200) -> Service:
        made.append(Service(slow, delay, status))
        return made[-1]

    yield make
    for s in made:
        s.close()


def test_a_slow_answer_is_asked_again_up_to_tries(service) -> None:
    # slow = 3 s against the client's 1 s; the answer "at once" has that 1 s even on a machine under load
    svc = service(slow=2, delay=3.0)
    http = Http("alertmanager", svc.url, timeout=1.0)
    with pytest.raises(ApiTimeout):
        http.request("GET", "/-/healthy")
    assert http.healthy(tries=3)  # the second slow answer, then one at once
    assert svc.asked == 3
    always_slow = service(slow=5, delay=3.0)
    assert not Http("am", always_slow.url, timeout=1.0).healthy(tries=2)
    assert always_slow.asked == 2


def test_one_try_by_default_and_a_refusal_or_an_error_is_final(service) -> None:
    assert not Http("am", service(slow=1).url, timeout=0.3).healthy()
    refused = Http("am", f"http://127.0.0.1:{free_port()}", timeout=0.3)
    started = time.monotonic()
    assert not refused.healthy(tries=5)
    assert time.monotonic() - started < 1.0  # not asked five times over
    broken = service(slow=0, status=503)
    assert not Http("am", broken.url, timeout=0.3).healthy(tries=5)
    assert broken.asked == 1

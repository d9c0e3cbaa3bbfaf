"""Two threads on one fresh connection (the drill watches from one while the other acts), over a real
paramiko SSH server on loopback that runs the commands with the local bash (`sudo -n ` is dropped).

The server's handshake is slow on purpose (an emulated server under load takes seconds): both threads ask
for the connection while it is being opened. Stop 36's CI hung an hour here: each thread opened its own
transport on the one Connection, and a channel asked for on the replaced one was never answered.
"""

from __future__ import annotations

import contextlib
import shlex
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import paramiko
import pytest
from fabric import Connection

from fabfile.ssh import transport

KEY = paramiko.RSAKey.generate(1024)
HANDSHAKE = 1.5  # seconds the server takes to accept the password


class BashServer(paramiko.ServerInterface):
    def __init__(self) -> None:
        self.commands: dict[int, str] = {}
        self.ready = threading.Event()

    def get_allowed_auths(self, username: str) -> str:
        return "password"

    def check_auth_password(self, username: str, password: str) -> int:
        time.sleep(HANDSHAKE)
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        refused = paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        return paramiko.OPEN_SUCCEEDED if kind == "session" else refused

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        argv = shlex.split(command.decode())
        if argv[:2] == ["sudo", "-n"]:
            argv = argv[2:]
        threading.Thread(target=_execute, args=(channel, argv), daemon=True).start()
        return True


def _execute(chan: paramiko.Channel, argv: list[str]) -> None:
    """The command with the channel as its stdin/stdout/stderr, then its exit status, as sshd does."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def feed() -> None:
        with contextlib.suppress(OSError):
            while data := chan.recv(65536):
                proc.stdin.write(data)
                proc.stdin.flush()
            proc.stdin.close()

    def drain(stream, send) -> None:
        while data := stream.read1(65536):
            send(data)

    threading.Thread(target=feed, daemon=True).start()
    err = threading.Thread(target=drain, args=(proc.stderr, chan.sendall_stderr), daemon=True)
    err.start()
    drain(proc.stdout, chan.sendall)
    err.join()
    chan.send_exit_status(proc.wait())
    chan.close()


@contextlib.contextmanager
def ssh_server() -> Iterator[tuple[int, list[paramiko.Transport]]]:
    """(port, the transports the server accepted): every connection is served until the test ends."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[paramiko.Transport] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            t = paramiko.Transport(sock)
            t.add_server_key(KEY)
            accepted.append(t)
            t.start_server(server=BashServer())
            threading.Thread(target=lambda t=t: [t.accept(0.2) for _ in iter(stop.is_set, True)],
                             daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1], accepted
    finally:
        stop.set()
        listener.close()
        for t in accepted:
            t.close()


@pytest.fixture
def server() -> Iterator[tuple[int, list[paramiko.Transport]]]:
    with ssh_server() as s:
        yield s


def _fresh(port: int) -> Connection:
    return Connection("127.0.0.1", port=port, user="u",
                      connect_kwargs={"password": "p", "look_for_keys": False, "allow_agent": False})


def test_two_threads_on_a_fresh_connection_share_one_ssh_connection(server):
    port, accepted = server
    conn = _fresh(port)
    start, out = threading.Barrier(2), {}

    def worker(name: str, script: str) -> None:
        start.wait()
        out[name] = transport.run(conn, script, read_only=True, timeout=20).stdout

    threads = [threading.Thread(target=worker, args=("slow", "sleep 2; echo slow"), daemon=True),
               threading.Thread(target=worker, args=("quick", "echo quick"), daemon=True)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads), "a command on the shared connection hung"
        assert out == {"slow": "slow\n", "quick": "quick\n"}
        assert len(accepted) == 1  # both threads waited for the one handshake instead of making their own
        assert conn.transport.channel_timeout == transport.CHANNEL_OPEN_TIMEOUT  # no hour-long channel wait
    finally:
        conn.close()


def test_a_busy_root_shell_does_not_hold_up_the_other_thread(server):
    port, _ = server
    conn = _fresh(port)
    try:
        assert transport.run(conn, "echo open", read_only=True).stdout == "open\n"  # the root shell is up
        slow: dict = {}
        t = threading.Thread(target=lambda: slow.update(r=transport.run(conn, "sleep 3; echo slow",
                                                                         read_only=True)), daemon=True)
        t.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        assert transport.run(conn, "echo quick", read_only=True).stdout == "quick\n"
        assert time.monotonic() - t0 < 2.5  # its own channel, not a wait for the busy shell
        t.join(30)
        assert slow["r"].stdout == "slow\n"
    finally:
        conn.close()

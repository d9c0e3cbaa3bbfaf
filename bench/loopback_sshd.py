"""A loopback SSH server for bench/fleet_bench.py: accepts any key, answers like an empty host.

    python bench/loopback_sshd.py KEYFILE   (prints "PORT FINGERPRINT", serves until stdin closes)

Why a separate process: the benchmark measures the control side's CPU and memory, so the server's own work
(paramiko's crypto for fifty connections) must not be counted in it. It is no Debian host: in the root
shell every read part exits 1 with nothing (no file, no unit, no binary) and every other script exits 0 with
nothing; any other command exits 0 with nothing.
"""

from __future__ import annotations

import logging
import re
import socket
import sys
import threading
from pathlib import Path

import paramiko

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fabfile.config.validators import ssh_fingerprint  # noqa: E402


class Yes(paramiko.ServerInterface):
    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        if command == b"sudo -n bash":  # the deploy's long-lived root shell (fabfile/ssh/transport.RootShell)
            threading.Thread(target=root_shell, args=(channel,), daemon=True).start()
            return True

        def finish() -> None:  # after the reply to the request: exit 0, then close
            channel.send_exit_status(0)
            channel.close()

        threading.Timer(0.01, finish).start()
        return True


# a script sent to the root shell ends with this line (RootShell.send); a probe's parts with the other
_SCRIPT_END = re.compile(rb"printf '\\n%s\\n' (__ROSEY_END_\w+__) >&2\n")
_PROBE_PART = re.compile(rb"printf '\\n(__ROSEY_PROBE_\w+__) %s %d %s %s\\n' ([A-Za-z0-9_.-]+) \$\?")


def root_shell(channel: paramiko.Channel) -> None:
    """Answer each script as a Debian host with nothing installed would, roughly: every probe part exits 1
    with no output (no file, no unit, no binary), every other script exits 0."""
    buf = b""
    while True:
        data = channel.recv(65536)
        if not data:
            channel.send_exit_status(0)
            channel.close()
            return
        buf += data
        while (m := _SCRIPT_END.search(buf)) is not None:
            script, buf, mark = buf[:m.start()], buf[m.end():], m.group(1)
            parts = _PROBE_PART.findall(script)
            channel.sendall(b"".join(b"\n%s %s 1\n" % (pm, key) for pm, key in parts)
                            + b"\n%s %d\n" % (mark, 0))
            channel.sendall_stderr(b"\n%s\n" % mark)


def main() -> None:
    logging.getLogger("paramiko").addHandler(logging.NullHandler())  # a client hanging up is not news
    key = paramiko.ECDSAKey(filename=sys.argv[1])
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(128)
    print(lsock.getsockname()[1], ssh_fingerprint(key.asbytes()), flush=True)

    def serve() -> None:
        while True:
            sock, _ = lsock.accept()
            t = paramiko.Transport(sock)
            t.add_server_key(key)
            threading.Thread(target=t.start_server, kwargs={"server": Yes()}, daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    sys.stdin.read()  # the benchmark closes it when done


if __name__ == "__main__":
    main()

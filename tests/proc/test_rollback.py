"""install-services' health wait as a shell function against stand-in systemctl/curl, and a real listening
port (the rollback's decisions: tests/pure/test_rollback.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from fabfile.deploy import rollback
from fabfile.ssh.webauth import web_get_fn


def test_health_wait_gives_up_on_a_crash_loop_without_waiting_the_timeout(tmp_path: Path, host):
    """The shell function against fake systemctl/curl: restarts counted from the first look."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    count = tmp_path / "n"
    count.write_text("0")
    # as systemd answers: `--value` alone, else Key=value lines (one `show` for both while waiting)
    (bin_dir / "systemctl").write_text(
        f"#!/bin/sh\nn=$(cat {count}); echo $((n + 1)) > {count}\ncase \"$*\" in\n"
        "*--value*) echo $n;;\n*NRestarts*) echo ActiveState=activating; echo NRestarts=$n;;\n"
        "*) echo activating;; esac\n")
    (bin_dir / "curl").write_text("#!/bin/sh\nexit 7\n")
    (bin_dir / "sleep").write_text("#!/bin/sh\nexit 0\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    script = (f'{web_get_fn(host)}\n{rollback.health_fn(120)}\ncfg=/dev/null\n'
              'healthy prometheus 9090; echo "rc=$? $why"')
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                         env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, timeout=30).stdout
    assert out.strip() == "rc=1 it exited and systemd restarted it 2 times"


def test_health_wait_sees_a_listening_port_without_a_process_or_a_connection(host):
    """`rosey_listening PORT` (bash reading /proc/net/tcp*): the poll that decides when to ask /-/healthy."""
    import socket

    with socket.socket(socket.AF_INET6 if socket.has_ipv6 else socket.AF_INET) as srv:
        srv.bind(("::" if socket.has_ipv6 else "127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))  # bound, not listening
            other = closed.getsockname()[1]
            script = (f"{rollback.health_fn(120)}\n"
                      f"rosey_listening {port}; echo $?; rosey_listening {other}; echo $?")
            # PATH empty: the function must not need any program
            out = subprocess.run(["/bin/bash", "-c", script], capture_output=True, text=True,
                                 env={"PATH": ""}, timeout=30)
    assert out.stdout.split() == ["0", "1"], out.stderr

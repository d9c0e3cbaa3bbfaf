"""The root shell every step's scripts go through (transport.RootShell), on the real sshd, sudo and bash.

One `sudo -n bash` per connection carries all root scripts of a run. What must hold, whatever ran before:
each script is its own process with its own exit status, options, variables and directory; its stdin is
the text handed over, byte for byte, and never on a command line; a script that hangs or cannot be parsed
ends with a clear error and the next one still runs.
"""

from __future__ import annotations

import threading

import pytest

from fabfile.ssh import transport
from fabfile.ssh.connection import connect
from tests.lab.deployed import deployed_lab_fixture  # noqa: F401  (provides deployed_lab)
from tests.lab_fixtures import lab_inventory


@pytest.fixture
def conn(deployed_lab):
    c = connect(lab_inventory().host(deployed_lab.host))
    try:
        yield c
    finally:
        c.close()


def _shell_pid(c) -> str:
    # $PPID in a subshell is the parent of the shell that runs it: sudo, one per root shell
    return transport.run(c, "echo $PPID", read_only=True).stdout.strip()


def test_scripts_share_one_root_shell_and_keep_their_own_output_and_status(conn):
    first = transport.run(conn, "id -u; echo to-stderr >&2; printf 'no newline at the end'", read_only=True)
    assert (first.stdout, first.stderr, first.exited) == ("0\nno newline at the end", "to-stderr\n", 0)
    failed = transport.run(conn, "echo partial; exit 7", check=False)
    assert (failed.stdout, failed.exited) == ("partial\n", 7)
    with pytest.raises(transport.RemoteError, match=r"^probe failed on .* \(exit 3\): went wrong$"):
        transport.run(conn, "echo went wrong >&2; exit 3", what="probe")
    pids = {_shell_pid(conn) for _ in range(3)}
    assert len(pids) == 1 and pids != {""}
    assert transport.stats(conn).commands == 6  # each script is still one round trip


def test_nothing_a_script_sets_reaches_the_next(conn):
    transport.run(conn, "set -e; X=leaked; cd /etc; trap 'echo trap-ran' EXIT; umask 077; false; echo never",
               check=False)
    res = transport.run(conn, "echo \"${X:-unset} $PWD $(umask) $-\"; trap -p EXIT", read_only=True)
    x, pwd, umask, flags = res.stdout.split()
    assert (x, umask) == ("unset", "0022") and pwd != "/etc" and "e" not in flags


def test_stdin_arrives_byte_for_byte_and_never_on_a_command_line(conn):
    secret = "s3cr3t-" + "x" * 8
    text = f"password = \"{secret}\"\n\tindented $HOME `id` '\n__ROSEY_STDIN_0000000000000000__\nEOF\nlast\n"
    # while it runs, no process on the server carries the text in its arguments
    # (the needle comes from a file, so the search's own command line does not carry it either)
    t = "/tmp/rosey-shell-test"
    script = (f"cat > {t}.in; sed -n 's/^password = \"\\(.*\\)\"$/\\1/p' {t}.in > {t}.needle; "
              f"{{ test -s {t}.needle || echo no needle; }}; "
              f"grep -l -a -F -f {t}.needle /proc/[0-9]*/cmdline 2>/dev/null; "
              f"cat {t}.in; rm -f {t}.in {t}.needle")
    res = transport.run(conn, script, stdin=text, read_only=True)
    assert res.stdout == text


def test_a_script_that_hangs_or_cannot_be_parsed_fails_alone(conn):
    before = _shell_pid(conn)
    with pytest.raises(transport.RemoteError, match=r"did not finish within 2s"):
        transport.run(conn, "sleep 60", what="hang", timeout=2, read_only=True)
    after_hang = _shell_pid(conn)
    assert after_hang not in ("", before)  # that shell was given up; a new one serves the next script
    with pytest.raises(transport.RemoteError, match=r"exit 2\): .*syntax error"):
        transport.run(conn, "if true; then echo never", what="broken")
    assert transport.run(conn, "echo still here", read_only=True).stdout == "still here\n"
    transport.run(conn, "pkill -f '^sleep 60$'; true")


def test_a_second_thread_runs_beside_a_busy_shell(conn):
    """The drill watches from one thread while another acts: the busy shell is not waited for."""
    slow: dict = {}
    # busy for 6 s; the quick command must not wait for it (under load a new channel takes 1-3 s)
    t = threading.Thread(target=lambda: slow.update(r=transport.run(conn, "sleep 6; echo slow",
                                                                     read_only=True)))
    t.start()
    try:
        import time

        time.sleep(1)
        t0 = time.monotonic()
        assert transport.run(conn, "echo quick", read_only=True).stdout == "quick\n"
        assert time.monotonic() - t0 < 4.5
    finally:
        t.join(60)
    assert not t.is_alive(), "the busy shell's command never came back"
    assert slow["r"].stdout == "slow\n"

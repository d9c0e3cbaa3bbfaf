"""The session-port snippet run by bash (ufw planning from status text: tests/pure/test_ufw_plan.py)."""

from __future__ import annotations

import subprocess

from fabfile.facts import firewall as fw


def test_the_session_port_is_read_from_the_nearest_ancestor_that_has_ssh_connection():
    """As under sudo: our own shell has no SSH_CONNECTION (env_reset), a process above it does."""
    env = {"S": fw.SNIPPETS["session"], "PATH": "/usr/bin:/bin"}
    got = subprocess.run(["env", "SSH_CONNECTION=203.0.113.5 50000 10.0.0.1 2222", "bash", "-c",
                          'env -u SSH_CONNECTION bash -c "$S"; true'],
                         env=env, capture_output=True, text=True)
    assert (got.stdout, got.stderr) == ("2222\n", "")
    alone = subprocess.run(["bash", "-c", fw.SNIPPETS["session"]], env=env, capture_output=True, text=True)
    assert (alone.stdout, alone.stderr) == ("", "")  # no session anywhere up to init: nothing, and no noise

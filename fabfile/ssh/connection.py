"""One way to open SSH to a host, so every step and test connects the same way."""

from __future__ import annotations

import logging
from pathlib import Path

from fabric import Config, Connection

from fabfile.config.settings import HostSettings
from fabfile.errors import UserError
from fabfile.ssh.host_keys import VerifyPolicy

# paramiko logs at ERROR what we already report in one line (a refused tunnel channel while a service is
# still starting, a dropped connection); with no handler Python would print each such record to stderr.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


class KeyFileError(UserError):
    """`ssh.key` names no readable file on this machine."""


def key_problem(host: HostSettings) -> str | None:
    """Why `ssh.key` cannot be used, or None: said before anything connects (paramiko would say it only
    after the TCP connection, as a traceback-like FileNotFoundError)."""
    if not host.ssh.key:
        return None
    path = Path(host.ssh.key).expanduser()
    try:
        with path.open("rb"):
            pass
    except OSError as e:
        why = "is a directory" if path.is_dir() else (e.strerror or type(e).__name__).lower()
        return (f"hosts.{host.name}.ssh.key: {host.ssh.key}: {why}; give the path of a private key file on "
                "this machine, or remove ssh.key to use your ssh-agent")
    return None


def connect(host: HostSettings, connect_timeout: int | None = None) -> Connection:
    """A Fabric connection from the inventory; lazy (nothing is sent until the first command).

    With a key in the inventory only that key is offered (no agent, no ~/.ssh guessing), so a
    lab key never gets mixed up with the user's own. The server's host key is verified before anything
    is sent (host_keys.VerifyPolicy: the hosts.yml pin, the lab image's key, or known_hosts).
    """
    problem = key_problem(host)
    if problem:
        raise KeyFileError(problem)
    kw: dict = {"banner_timeout": 30, "auth_timeout": 30}  # the TCP timeout: connect_timeout below
    if host.ssh.key:
        kw.update(key_filename=host.ssh.key, look_for_keys=False, allow_agent=False)
    config = Config(overrides={"load_ssh_configs": False, "run": {"hide": True, "warn": True}})
    conn = Connection(host.address, user=host.ssh.user, port=host.ssh.port, connect_kwargs=kw,
                      config=config, connect_timeout=connect_timeout or host.ssh.connect_timeout)
    # Fabric's client loads no key files and trusts any key (AutoAddPolicy); ours decides every key
    conn.client.set_missing_host_key_policy(VerifyPolicy(host))
    return conn

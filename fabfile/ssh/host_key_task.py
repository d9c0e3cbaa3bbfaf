"""`inv host-key -H HOST [--accept]`: the first-contact path that is not "trust anything".

It shows the key the server presents (handshake only, no login) and what hosts.yml / known_hosts say about
it; only `--accept` records it, and a key that differs from a pin or a known one is never recorded, nor one
while a known_hosts line cannot be read (it might hold this host's old key). Unreadable lines are named.
"""

from __future__ import annotations

from collections.abc import Sequence

import paramiko

from fabfile.config.settings import HostSettings
from fabfile.output import Output
from fabfile.ssh import host_keys


def cli_host_key(hosts: Sequence[HostSettings], accept: bool, output: Output | None = None) -> int:
    out = output or Output()
    code = 0
    for host in hosts:
        try:
            key = host_keys.server_key(host)
        except (OSError, paramiko.SSHException, EOFError) as e:
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
            out.error(f"{host.name}: cannot read the host key from {host.address}:{host.ssh.port}: {why}")
            code = 1
            continue
        fp = host_keys.fingerprint(key)
        out.line(f"{host.name}: {host.address}:{host.ssh.port} presents {key.get_name()} {fp}")
        for skipped in host_keys.known_keys(host.address, host.ssh.port)[0].skipped:
            out.line(f"{host.name}: skipped {skipped}: it could not be read")
        try:
            host_keys.check(host, key)
        except host_keys.HostKeyError as e:
            if "unknown host key" not in str(e):
                out.error(str(e))  # changed or mismatching: never recorded from here
                code = 1
                continue
        else:
            out.line(f"{host.name}: already trusted")
            continue
        if not accept:
            out.line(f"{host.name}: not trusted yet; compare with `ssh-keygen -lf "
                     f"/etc/ssh/ssh_host_ed25519_key.pub` on the server, then run "
                     f"`inv host-key -H {host.name} --accept` (or pin ssh.host_key: {fp} in hosts.yml)")
            continue
        try:
            path = host_keys.record(host, key)
        except host_keys.CannotRecord as e:
            out.error(str(e))
            code = 1
            continue
        out.line(f"{host.name}: recorded in {path}")
    return code



"""`inv status` glue: one SSH connection (two tunnels) per host, opened in parallel and kept for --watch."""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor

from rich.console import Console

from fabfile import stdio
from fabfile.alerting.api import Apis
from fabfile.config.inventory import Inventory
from fabfile.config.secrets import load_secrets
from fabfile.config.settings import HostSettings
from fabfile.deploy.runner import DEFAULT_PARALLEL
from fabfile.facts import deliveries, remote_write
from fabfile.ssh.session import HostUnreachable, open_session
from fabfile.status.collect import HostStatus, collect
from fabfile.status.view import as_json, show


def _open(stack: contextlib.ExitStack, inventory: Inventory, host: HostSettings,
          secrets: dict[str, str]) -> Apis | str:
    """The host's API clients, or why not (one line, secrets masked)."""
    try:
        session = stack.enter_context(open_session(inventory, host, secrets=secrets, apis=True,
                                                   api_timeout=10))
    except HostUnreachable as e:  # (SSH, tunnel: shown per host, the others still report)
        return str(e)
    assert session.apis is not None
    return session.apis


def cli_status(inventory: Inventory, hosts: list[HostSettings], *, as_json_out: bool = False,
               watch: float = 0, parallel: int = DEFAULT_PARALLEL) -> int:
    """Exit 0 when every host could be read, 1 when one could not; at most `parallel` hosts read at once."""
    console = Console(file=stdio.SafeStream(), highlight=False, soft_wrap=False)  # type: ignore[arg-type]
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(max(1, min(parallel, len(hosts)))) as pool:
        # secrets first, once per host (read only): a missing one is bad input (exit 2) before any connection
        secrets = [load_secrets(inventory, h) for h in hosts]
        clients = list(pool.map(lambda h, s: _open(stack, inventory, h, s), hosts, secrets))

        def read(pair: tuple[HostSettings, Apis | str]) -> HostStatus:
            h, c = pair
            if not isinstance(c, Apis):
                return HostStatus(h.name, h.env, False, c)
            if h.prometheus.agent:  # no query API on an agent: say where the figures are instead
                return HostStatus(h.name, h.env, note=remote_write.agent_note())
            return collect(c, h.name, h.env, deliveries.channels(h))

        try:
            while True:
                statuses = list(pool.map(read, zip(hosts, clients, strict=True)))
                if as_json_out:
                    stdio.write(as_json(statuses) + "\n")
                else:
                    if watch and console.is_terminal:
                        console.clear()
                    show(console, statuses)
                    console.print(f"read in {max(s.seconds for s in statuses):.1f}s"
                                  + (f"; every {watch:g}s, Ctrl-C to stop" if watch else ""), style="dim")
                if not watch:
                    return 0 if all(s.ok for s in statuses) else 1
                stdio.flush()
                time.sleep(watch)
        except KeyboardInterrupt:
            return 0

"""`inv status` glue: one SSH connection (two tunnels) per host, opened in parallel and kept for --watch."""

from __future__ import annotations

import contextlib
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from rich.console import Console

from fabfile.alerting.api import Apis
from fabfile.config.inventory import HostSettings, Inventory
from fabfile.config.secrets import load_secrets
from fabfile.ssh.session import HostUnreachable, open_session
from fabfile.status.collect import HostStatus, collect
from fabfile.status.view import as_json, show


def _open(stack: contextlib.ExitStack, inventory: Inventory, host: HostSettings) -> Apis | str:
    """The host's API clients, or why not (one line, secrets masked)."""
    try:
        session = stack.enter_context(open_session(inventory, host, apis=True, api_timeout=10))
    except HostUnreachable as e:  # (SSH, tunnel: shown per host, the others still report)
        return str(e)
    assert session.apis is not None
    return session.apis


def cli_status(inventory: Inventory, hosts: list[HostSettings], *, as_json_out: bool = False,
               watch: float = 0) -> int:
    """Exit 0 when every host could be read, 1 when one could not."""
    console = Console(highlight=False, soft_wrap=False)
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(max(1, len(hosts))) as pool:
        for h in hosts:  # secrets first: a missing one is bad input (exit 2) before any connection
            load_secrets(inventory, h)
        clients = list(pool.map(lambda h: _open(stack, inventory, h), hosts))

        def read(pair: tuple[HostSettings, Apis | str]) -> HostStatus:
            h, c = pair
            return collect(c, h.name, h.env) if isinstance(c, Apis) else HostStatus(h.name, h.env, False, c)

        try:
            while True:
                statuses = list(pool.map(read, zip(hosts, clients, strict=True)))
                if as_json_out:
                    print(as_json(statuses), flush=True)
                else:
                    if watch and console.is_terminal:
                        console.clear()
                    show(console, statuses)
                    console.print(f"read in {max(s.seconds for s in statuses):.1f}s"
                                  + (f"; every {watch:g}s, Ctrl-C to stop" if watch else ""), style="dim")
                if not watch:
                    return 0 if all(s.ok for s in statuses) else 1
                sys.stdout.flush()
                time.sleep(watch)
        except KeyboardInterrupt:
            return 0

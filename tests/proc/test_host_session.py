"""open_session reaching for a host that refuses: its API tunnels bind a local port first (a socket), so
this runs here, not in tests/pure (the session itself: tests/pure/test_host_session.py)."""

from __future__ import annotations

import pytest

from fabfile.ssh.session import HostUnreachable, open_session
from tests.helpers import fixture_inventory
from tests.pure.test_host_session import Fake


def test_a_host_that_cannot_be_reached_is_one_masked_line():
    inv = fixture_inventory()
    host = inv.host("lab")
    fake = Fake(fail="pw-123")
    with (pytest.raises(HostUnreachable) as e,
          open_session(inv, host, secrets={"web_password": "pw-123"}, apis=True, connector=lambda h: fake)):
        raise AssertionError("not reached")
    where = f"{host.address}:{host.ssh.port}"
    assert str(e.value) == f"cannot reach {where} over SSH: OSError: refused while sending ********"
    assert fake.closed

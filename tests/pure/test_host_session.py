"""HostSession: one host's state kept beside its connection, never on it, and the one way to open a host."""

from __future__ import annotations

import gc

from fabric import Connection

from fabfile.ssh import session as sessions
from fabfile.ssh.session import HostSession, open_session, session_of
from tests.helpers import fixture_inventory


def test_two_connections_to_one_server_keep_their_own_state():
    """Fabric's Connection compares equal for the same user@host:port: found by identity, not equality."""
    a, b = Connection("h", user="u"), Connection("h", user="u")
    assert a == b
    session_of(a).stats.count()
    assert session_of(a) is session_of(a) and session_of(b) is not session_of(a)
    assert session_of(b).stats.commands == 0 and session_of(a).stats.commands == 1
    assert not [k for k in vars(a) if k.startswith("_rosey")]  # nothing is set on Fabric's object


def test_a_bare_connection_s_session_goes_with_it():
    conn = Connection("h", user="u")
    session_of(conn)
    key = id(conn)
    assert key in sessions._by_id
    del conn
    gc.collect()
    assert key not in sessions._by_id


class Fake:
    """A connection that is never dialled; with `apis`, opening it fails naming `fail` (a secret)."""

    def __init__(self, fail: str = "") -> None:
        self.fail, self.closed, self.host = fail, False, "127.0.0.1"

    def open(self) -> None:
        raise OSError(f"refused while sending {self.fail}")

    def close(self) -> None:
        self.closed = True


def test_open_session_without_apis_contacts_nothing_and_closes_what_it_opened():
    inv = fixture_inventory()
    host = inv.host("lab")
    fake = Fake()
    with open_session(inv, host, secrets={"web_password": "pw-123"}, connector=lambda h: fake) as s:
        assert isinstance(s, HostSession) and s.conn is fake and s.host is host and s.apis is None
        assert s.masker("x pw-123 y") == "x ******** y"
    assert fake.closed

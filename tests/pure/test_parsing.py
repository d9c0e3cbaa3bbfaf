"""The one duration parser and the one version parser: what each caller relied on before they were merged."""

from __future__ import annotations

import pytest

from fabfile.config.durations import is_duration, parse_duration
from fabfile.config.versions import is_release_version, parse_version, reported_version


@pytest.mark.parametrize(("text", "seconds"), [
    ("15s", 15), ("1m30s", 90), ("500ms", 0.5), ("15d", 1296000), ("2h", 7200), ("1w", 604800),
    ("1y", 31536000), ("1h30m", 5400), ("0s", 0), (" 5m ", 300), (30, 30.0), (1.5, 1.5),
])
def test_durations_in_seconds(text, seconds) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "h", "2x", "15", "1.5h", "30s1m", "1h 30m", "-1m", "1d1d"])
def test_not_durations(bad) -> None:
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        parse_duration(bad)
    assert not is_duration(bad)


def test_is_duration_wants_the_exact_text_a_config_gets() -> None:
    assert is_duration("15s") and is_duration("1h30m")
    assert not is_duration(" 15s") and not is_duration("15s\n")


@pytest.mark.parametrize(("output", "version"), [
    ("prometheus, version 2.42.0+ds (branch: debian/sid, revision: 2.42.0+ds-5)", "2.42.0"),
    ("amtool, version 0.28.1 (branch: HEAD)", "0.28.1"),
    ("prometheus, version 3.0.0-rc.0 (branch: HEAD)", "3.0.0-rc.0"),
    ("bash: /usr/local/bin/amtool: No such file or directory", None),
    ("", None), (None, None),
])
def test_version_reported_by_a_binary(output, version) -> None:
    assert reported_version(output) == version


@pytest.mark.parametrize(("text", "ok"), [
    ("2.48.0", True), ("3.0.0-rc.0", True), ("v2.48.0", False), ("2.48", False), ("2.42.0+ds", False),
    ("latest", False),
])
def test_release_version_as_hosts_yml_spells_it(text, ok) -> None:
    assert is_release_version(text) is ok
    if ok:
        assert parse_version(text)  # every version the inventory accepts can be compared

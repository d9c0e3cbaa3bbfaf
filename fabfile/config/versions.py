"""Release-version comparisons and the version-dependent features we rely on, in one place.

Every option whose existence depends on the Prometheus/Alertmanager release is listed in FEATURES with the
first release that has it (and where that fact comes from), so render decisions are data, not scattered ifs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fabfile.config.receivers import RECEIVER_TYPES

_VERSION = re.compile(r"^v?([0-9]{1,9})\.([0-9]{1,9})\.([0-9]{1,9})(?:[-+].*)?$")
# as hosts.yml names a release: 2.48.0, 3.0.0-rc.0 (ASCII digits only: `\d` would take '２' and '٥'; at
# most 9 each, so int() never meets a 5000-digit one)
RELEASE_VERSION = r"[0-9]{1,9}\.[0-9]{1,9}\.[0-9]{1,9}(?:-[0-9A-Za-z.]{1,64})?"
_REPORTED = re.compile(rf"version ({RELEASE_VERSION})")


def is_release_version(text: str) -> bool:
    """How hosts.yml must spell a version: the release's own number (no `v`, no build suffix like `+ds`)."""
    return re.fullmatch(RELEASE_VERSION, text) is not None


def reported_version(text: str | None) -> str | None:
    """`--version` output -> the release it reports: 'prometheus, version 2.42.0+ds (branch: ...)' -> '2.42.0'
    (Debian's '+ds' is the same release); None when the output names no version (binary missing)."""
    m = _REPORTED.search(text or "")
    return m.group(1) if m else None


def parse_version(version: str) -> tuple[int, int, int]:
    """'2.48.0' -> (2, 48, 0). A suffix ('3.0.0-rc.0', '2.42.0+ds') counts as that release."""
    m = _VERSION.match(version.strip())
    if not m:
        raise ValueError(f"not a release version like 2.48.0: {version!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def at_least(version: str, minimum: str) -> bool:
    """True when `version` is `minimum` or newer (numeric, not string, comparison: 2.9.0 < 2.10.0)."""
    return parse_version(version) >= parse_version(minimum)


@dataclass(frozen=True)
class Feature:
    component: str  # "prometheus" | "alertmanager"
    what: str  # as a user would recognise it in the config or on the command line
    since: str  # first release that has it (and where it works)
    source: str


FEATURES: dict[str, Feature] = {f"{f.component} {f.what}": f for f in (
    Feature("prometheus", "--web.config.file", "2.24.0",
            "Prometheus 2.24.0 added TLS/basic auth through the exporter-toolkit web config file"),
    Feature("prometheus", "fallback_scrape_protocol", "3.0.0",
            "Prometheus 3.0 fails a scrape whose Content-Type is missing or unparsable unless the job "
            "names a fallback_scrape_protocol (new in 3.0; 2.x rejects the unknown field): migration guide, "
            "'Scrape protocols'"),
    Feature("prometheus", "agent mode", "2.32.0",
            "Prometheus 2.32.0 added agent mode (--enable-feature=agent); 3.0 made it the --agent flag"),
    Feature("prometheus", "--agent", "3.0.0",
            "Prometheus 3.0 replaced --enable-feature=agent by --agent (3.0 migration guide, 'Flags')"),
    Feature("prometheus", "remote_write sample_age_limit", "2.50.0",
            "queue_config.sample_age_limit first documented in configuration.md at v2.50.0"),
    Feature("alertmanager", "--web.config.file", "0.22.0",
            "Alertmanager 0.22.0 added the exporter-toolkit web config file"),
    Feature("alertmanager", "smtp_auth_password_file", "0.25.0",
            "alertmanager#3038 (SMTP password file fields), released in 0.25.0"),
    Feature("alertmanager", "time_intervals location", "0.25.0",
            "alertmanager#2782 (time zone `location` in time intervals), released in 0.25.0"),
    # each receiver type's `*_configs` block with its `*_file` option, from the receiver table
    *(Feature("alertmanager", i.what, i.since, i.source)
      for t in RECEIVER_TYPES for i in t.integrations.values()),
    Feature("alertmanager", "--cluster.tls-config", "0.24.0",
            "alertmanager#2237 (TLS for the gossip between cluster members), released in 0.24.0"),
    Feature("alertmanager", "--cluster.label", "0.26.0",
            "alertmanager#3354 (a label that keeps other clusters' gossip out), released in 0.26.0"),
)}

# The bot's exposition format when its Content-Type header is missing or odd (Prometheus 3.x only; see above).
BOT_FALLBACK_SCRAPE_PROTOCOL = "PrometheusText0.0.4"

# Console template/library flags: only meaningful before 3.0, whose release archives no longer ship the
# consoles/ and console_libraries/ directories (prometheus#13443, prometheus/docs#2554).
PROMETHEUS_CONSOLES_UNTIL = "3.0.0"


def supports(key: str, version: str) -> bool:
    """`key` is "<component> <what>", e.g. supports("alertmanager webhook url_file", "0.25.0") -> False."""
    return at_least(version, FEATURES[key].since)


# Prometheus 3.x writes TSDB data (index format v3 etc.) that only 2.55 and newer can read: the 3.0 migration
# guide asks to pass through 2.55 both ways. A rollback below it would start on data it cannot open.
PROMETHEUS_3X_DATA_READABLE_FROM = "2.55.0"


def prometheus_downgrade_refusal(host: str, installed: str | None, target: str, data_dir: str) -> str | None:
    """One line refusing to go from an installed 3.x to a release that cannot read its data; else None.

    Decided before anything changes on the server (the install step reads the installed version first).
    """
    readable = PROMETHEUS_3X_DATA_READABLE_FROM
    if not installed or not at_least(installed, "3.0.0") or at_least(target, readable):
        return None
    return (f"hosts.{host}.prometheus.version: {target} cannot read the data Prometheus {installed} wrote "
            f"in {data_dir} (only {readable} or newer can); nothing was changed. Options: keep {installed}, "
            f"pick {readable} or newer, or move {data_dir} aside yourself to start {target} with empty "
            f"history")

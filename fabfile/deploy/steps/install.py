"""install-prometheus / install-alertmanager: a checksum-verified release in a versioned dir, symlinked.

Layout (paths from fabfile.config.render): the archive is unpacked into `release_dir` (e.g.
/usr/local/lib/rosey-monitoring/prometheus-2.48.0.linux-amd64/), and /usr/local/bin/{prometheus,promtool}
are symlinks into it. An upgrade unpacks the new release next to the old one and swaps the symlinks
atomically (`ln -sfn` to a temp name + `mv -T`), so the previous release stays for a rollback.

Round trips: one probe reads everything (links, versions, users, data dirs); when something is to be
done, ONE more command fetches/verifies/unpacks/switches (plus SFTP for the offline `upload` source). In a
run of both installs, the first one's command also fetches the other release when the run's read says it
will be needed (`prefetch_for`), so the second install only switches to it.
The restart is not done here: install-services sees that the running process's binary differs.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fabfile.config import layout
from fabfile.config.inventory_error import InventoryError
from fabfile.config.settings import Component, HostSettings
from fabfile.config.versions import prometheus_downgrade_refusal, reported_version
from fabfile.deploy.download import FetchError, fetch, shell_dl
from fabfile.deploy.steps.base import StepContext, StepResult
from fabfile.facts.files import parse_sums
from fabfile.ssh import probe, stage, transport
from fabfile.ssh.session import HostSession

CACHE_DIR = Path("~/.cache/rosey-monitoring").expanduser()
SUMS = "sha256sums.txt"

EXIT_NO_SUM, EXIT_MISMATCH, EXIT_BAD_BINARY = 41, 42, 43
PREFETCHED = "__ROSEY_PREFETCHED__"  # the other release was fetched, verified and unpacked beside this one


class ChecksumError(RuntimeError):
    """The archive is not the one the release (or the pin in hosts.yml) describes; nothing was installed."""


@dataclass(frozen=True)
class Plan:
    """What the probe found and what has to be done."""

    service: str
    want: str  # version wanted
    current: str | None  # version the stable symlink runs now (None: not installed)
    fetch: bool  # download/upload + unpack the release
    switch: bool  # point the symlinks at the release
    user: bool  # create the system user/group
    dirs: list[str]  # data dirs to create or fix the owner of

    @property
    def changes(self) -> list[str]:
        out = []
        if self.user:
            out.append(f"create system user {layout.service_user(self.service)}")
        if self.fetch:
            out.append(f"fetch and unpack {self.service} {self.want}")
        if self.switch:
            out.append(f"switch {'/'.join(layout.BINARIES[self.service])} to {self.want}")
        out.extend(f"create/fix data dir {d}" for d in self.dirs)
        return out

    @property
    def summary(self) -> str:
        if self.current == self.want or not (self.fetch or self.switch):
            return f"{self.service} {self.want}: " + ", ".join(self.changes)
        return f"{self.service} {self.current or 'none'} → {self.want}"


def _snippets(host: HostSettings, service: str) -> dict[str, str]:
    """Everything install needs to know, as snippets for one `probe.probe`."""
    q = shlex.quote
    rel = layout.release_dir(host, service)
    user = layout.service_user(service)
    snippets = {
        # where each stable link leads (itself when it is no link): one process for all of them
        "links": "realpath -m -- " + " ".join(q(layout.binary_path(b)) for b in layout.BINARIES[service]),
        "current": probe.version_snippet(layout.binary_path(service)),
        "release": "; ".join(probe.version_snippet(f"{rel}/{b}") for b in layout.BINARIES[service]),
        "user": f"getent passwd {q(user)}; getent group {q(user)}",
        "dirs": " ; ".join(f"stat -c '%U:%G' {q(d)} 2>/dev/null || echo missing"
                           for d in _dirs_of(host, service)),
    }
    return snippets


def _dirs_of(host: HostSettings, service: str) -> list[str]:
    return [layout.data_dir(host, service)]


def decide(host: HostSettings, service: str, state: dict[str, str]) -> Plan:
    """Pure decision from probe answers (unit-tested without a server)."""
    comp: Component = getattr(host, service)
    rel = layout.release_dir(host, service)
    user = layout.service_user(service)
    bins = layout.BINARIES[service]
    links = state["links"].split("\n")
    links += [""] * (len(bins) - len(links))
    linked = all(links[i] == f"{rel}/{b}" for i, b in enumerate(bins))
    rel_versions = [reported_version(v) for v in state["release"].split("\n")]
    release_ok = len(rel_versions) >= len(bins) and all(v == comp.version for v in rel_versions[:len(bins)])
    current = reported_version(state["current"])
    entries = [line.split(":") for line in state["user"].split("\n")]
    has_user = (any(len(e) == 7 and e[0] == user for e in entries)  # passwd: name:x:uid:gid:gecos:home:shell
                and any(len(e) == 4 and e[0] == user for e in entries))  # group: name:x:gid:members
    dirs = [d for d, owner in zip(_dirs_of(host, service), state["dirs"].split("\n"), strict=False)
            if owner.strip() != f"{user}:{user}"]
    return Plan(service=service, want=comp.version, current=current, fetch=not release_ok,
                switch=not (linked and release_ok), user=not has_user, dirs=dirs)


# ---------------------------------------------------------------- checksums and the local archive


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def local_archive(host: HostSettings, service: str, log=print) -> tuple[Path, str]:
    """For `source: upload`: the archive on this machine and its verified sha256.

    From `archive_dir` if set, else from the cache (~/.cache/rosey-monitoring/<service>/v<version>/),
    downloading it there once from `release_url`. The expected checksum is the pin in hosts.yml or
    the release's sha256sums.txt; a mismatch raises ChecksumError before anything is uploaded.
    """
    comp: Component = getattr(host, service)
    name = comp.archive_name(service) + ".tar.gz"
    if comp.archive_dir:
        folder = Path(comp.archive_dir).expanduser()
        archive = folder / name
        if not archive.is_file():
            raise InventoryError(f"hosts.{host.name}.{service}.archive_dir: {archive} not found; "
                                 f"put {name} (and {SUMS}) there or remove archive_dir to use the cache")
    else:
        folder = CACHE_DIR / service / f"v{comp.version}"
        archive = folder / name
        if not archive.is_file():
            log(f"downloading {comp.url()}/{name} to {folder}")
            if not comp.sha256:
                fetch(f"{comp.url()}/{SUMS}", folder / SUMS)
            fetch(f"{comp.url()}/{name}", archive)
    expected = comp.sha256
    where = f"hosts.yml {service}.sha256"
    if not expected:
        sums = folder / SUMS
        if not sums.is_file():
            raise ChecksumError(f"{archive}: no checksum to verify it against; pin {service}.sha256 in "
                                f"hosts.yml or put the release's {SUMS} next to it")
        expected = parse_sums(sums.read_text(), name)
        where = str(sums)
        if not expected:
            raise ChecksumError(f"{sums} has no line for {name}; refusing to install an unverified archive")
    got = _file_sha256(archive)
    if got != expected:
        raise ChecksumError(f"checksum mismatch for {archive}: expected {expected} ({where}), got {got}; "
                            "nothing was installed")
    return archive, expected


# ---------------------------------------------------------------- the one changing command


def apply_script(host: HostSettings, plan: Plan, *, fetch_cmd: str = "", expected: str | None = None) -> str:
    """Shell script doing `plan` as root in one command; aborts before touching anything on a bad checksum.

    `fetch_cmd` leaves `$archive` in the current dir (download) — or `$archive` is the staged upload;
    the checksum is `expected` (pin or computed here) or looked up in the release's sha256sums.txt.
    """
    q = shlex.quote
    service = plan.service
    rel = layout.release_dir(host, service)
    user = layout.service_user(service)
    bins = layout.BINARIES[service]
    lines = ["set -eu", "umask 022"]
    if plan.fetch:
        lines += fetch_lines(host, service, fetch_cmd, expected)
    if plan.user:
        lines += [
            f"getent group {q(user)} >/dev/null || groupadd --system {q(user)}",
            f"getent passwd {q(user)} >/dev/null || useradd --system --gid {q(user)} --no-create-home "
            f"--home-dir /nonexistent --shell /usr/sbin/nologin {q(user)}",
        ]
    for d in plan.dirs:
        # Create with the right owner; an existing dir from a manual install (e.g. owned by rosey) is
        # handed to the service user with its contents, so its data stays readable. Nothing is deleted.
        lines.append(f"if [ -d {q(d)} ]; then chown -R {q(user)}:{q(user)} {q(d)}; "
                     f"else install -d -o {q(user)} -g {q(user)} -m 0750 {q(d)}; fi")
    if plan.switch:
        for b in bins:
            link = layout.binary_path(b)
            lines.append(f"ln -sfn {q(rel + '/' + b)} {q(link)}.rosey-new && "
                         f"mv -T {q(link)}.rosey-new {q(link)}")
    return "\n".join(lines)


def fetch_lines(host: HostSettings, service: str, fetch_cmd: str, expected: str | None) -> list[str]:
    """Shell lines: fetch, verify and unpack `service`'s release into its release dir (links untouched)."""
    q = shlex.quote
    comp: Component = getattr(host, service)
    name = comp.archive_name(service)
    rel = layout.release_dir(host, service)
    parent = rel.rsplit("/", 1)[0]
    bins = layout.BINARIES[service]
    lines = [
        'work=$(mktemp -d /tmp/rosey-install.XXXXXX); trap \'rm -rf "$work"\' EXIT; cd "$work"',
        fetch_cmd,
        f"expected={q(expected or '')}",
        'if [ -z "$expected" ]; then',
        f"  expected=$(awk -v a={q(name + '.tar.gz')} '$2==a || $2==\"*\"a {{print $1}}' {SUMS})",
        f"  [ -n \"$expected\" ] || {{ echo \"{SUMS} of the release has no line for {name}.tar.gz\" >&2;"
        f" exit {EXIT_NO_SUM}; }}",
        "fi",
        'got=$(sha256sum "$archive" | cut -d" " -f1)',
        f'[ "$got" = "$expected" ] || {{ echo "checksum mismatch for {name}.tar.gz: expected $expected, '
        f'got $got; nothing was installed" >&2; exit {EXIT_MISMATCH}; }}',
        'mkdir x && tar -xzf "$archive" -C x --no-same-owner',
        'rm -f -- "$archive"',  # unpacked: a staged upload need not wait for the end of the run in /tmp
        f"test -d x/{q(name)} || {{ echo 'archive has no {name}/ directory' >&2; "
        f"exit {EXIT_BAD_BINARY}; }}",
    ]
    lines += version_checks(f"x/{name}", bins, comp.version)
    lines += [
        f"mkdir -p {q(parent)}",
        f"rm -rf {q(rel)}.rosey-new {q(rel)}",
        f"mv x/{q(name)} {q(rel)}.rosey-new && chown -R root:root {q(rel)}.rosey-new",
        f"mv -T {q(rel)}.rosey-new {q(rel)}",
    ]
    # what each binary just said, kept for later reads (probe.version_snippet): no Go start per read
    lines += [probe.version_mark_snippet(f"{rel}/{b}", f"$v{i}") for i, b in enumerate(bins)]
    return lines


def version_checks(folder: str, bins: tuple[str, ...] | list[str], version: str) -> list[str]:
    """Shell lines: each binary in `folder` must report `version`, else exit EXIT_BAD_BINARY; after them
    `$v<i>` holds binary i's `--version` line. The binaries start at once: each is a Go program whose start
    is the slow part on a small server (about 2 s under emulation), and a release has two."""
    q = shlex.quote
    lines = [f"( {q(folder + '/' + b)} --version 2>&1 | head -n1 > .rosey-v{i} ) &"
             for i, b in enumerate(bins)]
    lines.append("wait")
    for i, b in enumerate(bins):
        lines.append(
            f"v{i}=$(cat .rosey-v{i}); "
            f"echo \"$v{i}\" | grep -Eq 'version {re.escape(version)}([^0-9.]|$)' || "
            f"{{ echo \"new {b} reports '$v{i}', expected version {version}\" >&2; "
            f"exit {EXIT_BAD_BINARY}; }}")
    return lines


def _download_cmd(comp: Component, name: str) -> str:
    q = shlex.quote
    url = comp.url().rstrip("/")
    cmds = [shell_dl(url.lower().startswith("https:")), f"archive={q(name + '.tar.gz')}",
            f"dl {q(url + '/' + name + '.tar.gz')} \"$archive\""]
    if not comp.sha256:
        cmds.append(f"dl {q(url + '/' + SUMS)} {SUMS}")
    return "\n".join(cmds)


def _read(host: HostSettings, service: str) -> probe.Read:
    return probe.Read(_snippets(host, service), what=f"install-{service} probe")


def reads_prometheus(host: HostSettings, ctx: StepContext) -> probe.Read:
    return _read(host, layout.PROMETHEUS)


def reads_alertmanager(host: HostSettings, ctx: StepContext) -> probe.Read:
    return _read(host, layout.ALERTMANAGER)


def prefetch_for(later: Mapping[str, Mapping[str, str]], host: HostSettings, service: str
                 ) -> str | None:
    """The other release of this run, when its step is about to download it: fetched beside this one.

    Why: on a fresh host both steps download, verify and unpack; the second server core does the second
    release while the first unpacks this one, and its step then only switches the links (its read finds the
    release in place and verified, as after any earlier install). What its step will do is known from the
    run's read-ahead, which the runner hands this step as `later` (`ctx.later`: the registry declares that
    each install step sees the other's read); without one (a single step) nothing is fetched ahead.
    `upload` sources are left to their step (the upload would come first anyway).
    """
    for other in layout.SERVICES:
        if other == service or getattr(host, other).source != "download":
            continue
        state = later.get(f"install-{other}")
        if state is not None and decide(host, other, state).fetch:
            return other
    return None


def with_prefetch(host: HostSettings, script: str, other: str) -> str:
    """`script`, with `other`'s release fetched at the same time. Its failure is not this step's: its own
    step then fetches again and reports why. Both end before the command does (one deploy lock, one end)."""
    comp: Component = getattr(host, other)
    fetch = ["set -eu", "umask 022",
             *fetch_lines(host, other, _download_cmd(comp, comp.archive_name(other)), comp.sha256)]
    body = "\n".join(fetch)
    return (f"(\n{body}\n) </dev/null >/dev/null 2>&1 &\npf=$!\n(\n{script}\n)\nrc=$?\n"
            f"if wait $pf; then echo {PREFETCHED}; fi\nexit $rc")


def install_component(conn: HostSession, host: HostSettings, ctx: StepContext, service: str) -> StepResult:
    step = f"install-{service}"
    comp: Component = getattr(host, service)
    state = probe.probe_read(conn, _read(host, service), masker=ctx.masker)
    plan = decide(host, service, state)
    if service == layout.PROMETHEUS:  # refused before anything changes (dry run too)
        refusal = prometheus_downgrade_refusal(host.name, plan.current, comp.version,
                                               layout.data_dir(host, service))
        if refusal:
            return StepResult(step, "failed", refusal)
    if not plan.changes:
        return StepResult(step, "ok", f"{service} {comp.version} installed")
    if ctx.dry_run:
        return StepResult(step, "changed", f"would: {plan.summary} (dry run)",
                          ["would " + c for c in plan.changes])
    name = comp.archive_name(service)
    fetch_cmd, expected = "", comp.sha256
    if plan.fetch:
        if comp.source == "upload":
            try:
                archive, expected = local_archive(host, service, ctx.log)
            except (ChecksumError, FetchError) as e:
                return StepResult(step, "failed", ctx.masker(str(e)))
            ctx.log(f"uploading {archive.name} ({archive.stat().st_size // 1024} KiB)")
            staged = stage.stage_file(conn, str(archive), archive.name)
            fetch_cmd = f"archive={shlex.quote(staged)}"
        else:
            fetch_cmd = _download_cmd(comp, name)
    script = apply_script(host, plan, fetch_cmd=fetch_cmd, expected=expected)
    other = prefetch_for(ctx.later, host, service)
    if other:
        script = with_prefetch(host, script, other)
    res = transport.run(conn, script, what=step, masker=ctx.masker, check=False, timeout=900)
    stdout = res.stdout.replace(PREFETCHED + "\n", "")
    if res.exited != 0:
        return StepResult(step, "failed", transport.one_line(res.stderr or stdout, ctx.masker))
    done = plan.changes
    if PREFETCHED in res.stdout:
        version = getattr(host, other).version
        done = [*done, f"fetched and unpacked {other} {version} beside it (install-{other} switches to it)"]
    return StepResult(step, "changed", plan.summary, done)


def install_prometheus(conn: HostSession, host: HostSettings, ctx: StepContext) -> StepResult:
    return install_component(conn, host, ctx, layout.PROMETHEUS)


def install_alertmanager(conn: HostSession, host: HostSettings, ctx: StepContext) -> StepResult:
    return install_component(conn, host, ctx, layout.ALERTMANAGER)

"""Reading a server: several read-only snippets in ONE command, answered per snippet with its exit status.

- `probe(conn, {key: snippet})` several snippets in ONE command; `{key: Out}` (a str with `.rc`);
                                `stdin=` reaches the snippets as the file "$PROBE_STDIN"
- `read_ahead(conn, [Read, ...])` every step's read in ONE command before the first step; each step's own
                                probe of the same read is answered from it until something is applied
- `peek_ahead(conn, Read)`      what the read-ahead found for a later step, without taking it (the runner
                                hands it to the steps that declare they see it: StepSpec.sees)
- `read_after_change(conn, Read)` the next step's read, done at the end of any changing `run` (same command)
- `version_snippet(path)`       a binary's `--version` line, cheap on a slow server (see below)
"""

from __future__ import annotations

import re
import secrets as _random
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from fabric import Connection

from fabfile.masking import Masker
from fabfile.ssh.session import HostSession, resolve
from fabfile.ssh.transport import RemoteError, one_line, run

PROBE_TIMEOUT = 300.0


class Out(str):
    """A snippet's output (stdout+stderr, trailing newline stripped) that also carries its exit status."""

    rc: int
    seconds: float | None  # how long the snippet ran on the server (None: its shell cannot tell)

    def __new__(cls, text: str, rc: int, seconds: float | None = None) -> Out:
        obj = super().__new__(cls, text)
        obj.rc = rc
        obj.seconds = seconds
        return obj

    @property
    def ok(self) -> bool:
        return self.rc == 0


_MARK = "__ROSEY_PROBE_{}__"


@dataclass(frozen=True)
class _ReadAfterChange:
    """`read` done at the end of a changing `run` (transport.AfterChange); its answer is for the next step."""

    read: Read

    def prepare(self, s: HostSession) -> tuple[str, Callable[[str], None]]:
        mark = _MARK.format(_random.token_hex(6))

        def take(text: str) -> None:
            try:
                outs = parse_probe(text, self.read.snippets.keys(), mark)
            except RemoteError:
                return
            s.ahead = [(self.read, outs)]

        return probe_script(self.read.snippets, mark), take


def read_after_change(conn: HostSession | Connection, read: Read | None) -> None:
    """The read the next step will ask for first. Any changing `run` until this is set again ends with it, in
    the same command, and the next step's `probe` of it is answered from there (once), so a step that
    changed something costs the next step no round trip of its own. Not done when the change failed, or for
    a read that needs stdin (the run's own input is its script's) or waits (`Read.follows_change`)."""
    follows = read is not None and read.sudo and read.stdin is None and read.follows_change
    resolve(conn)[1].follow = _ReadAfterChange(read) if follows else None


# start, and every run asks for four of them (install for the release's binaries, verify for the stable links
# to them), so:
# - install keeps what a binary it unpacked said in a mark file next to it (`version_mark_snippet`), with the
#   binary's identity (device, inode, size, and mtime and ctime in nanoseconds: any write, chmod or chown
#   changes the ctime, and nobody can set it back); a read whose binary still has that identity answers from
#   the mark, any other runs the binary, as git's index trusts a file's stat data;
# - inside one probe each real binary runs at most once.
_ID_FORMAT = "%d:%i:%s:%.9Y:%.9Z"
_IDENTITY = f"stat -L -c {_ID_FORMAT} --"
# Every binary of a probe at once, before its snippets: one `realpath` and one `stat` for all of them, the
# marks read with bash's own `read`, so a read with everything installed starts two processes for its
# versions instead of four per binary (each start costs 0.05-0.1 s on an emulated VM).
_VERSION_FN = """rosey_versions_init() {
  declare -gA RV_REAL=() RV_ID=() RV_VER=()
  local p real n id ver mark i=0 reals=()
  mapfile -t reals < <(realpath -m -- "$@")
  for p in "$@"; do RV_REAL[$p]=${reals[$i]}; i=$((i + 1)); done
  while read -r n id; do RV_ID[$n]=$id; done < <(stat -L -c '%n ID_FORMAT' -- "${reals[@]}" 2>/dev/null)
  for real in "${reals[@]}"; do
    [ -z "${RV_VER[$real]+x}" ] && [ -x "$real" ] || continue
    mark="${real%/*}/.rosey-version.${real##*/}" id="" ver=""
    { IFS= read -r id; IFS= read -r ver; } 2>/dev/null < "$mark"
    if [ -n "$id" ] && [ "$id" = "${RV_ID[$real]:-}" ]; then RV_VER[$real]=$ver
    else RV_VER[$real]=$("$real" --version 2>&1 | head -n 1); fi
  done
}
rosey_version() {
  local real=${RV_REAL[$1]:-}
  if [ -n "$real" ] && [ -n "${RV_VER[$real]+x}" ]; then printf '%s\n' "${RV_VER[$real]}"; return; fi
  "$1" --version 2>&1 | head -n 1
}""".replace("ID_FORMAT", _ID_FORMAT)
_VERSION_CALL = re.compile(r"rosey_version ('[^']*'|[^\s;|&)]+)")


def version_snippet(path: str) -> str:
    return f"rosey_version {shlex.quote(path)}"


def version_mark_snippet(binary: str, said: str) -> str:
    """Shell recording `said` (a shell word, e.g. "$v") as `binary`'s `--version` line (version_snippet)."""
    real, mark = shlex.quote(binary), shlex.quote(f"{binary.rsplit('/', 1)[0]}/.rosey-version."
                                                   f"{binary.rsplit('/', 1)[1]}")
    return f'{{ {_IDENTITY} {real}; printf "%s\\n" "{said}"; }} > {mark}'


def probe_script(snippets: Mapping[str, str], marker: str) -> str:
    """Shell text that runs each snippet in its own subshell (stdin closed, stderr merged) and
    follows its output with a marker line carrying the key and the exit status.

    The snippets run at the same time (they only read), each into its own pipe, and one `cat` prints the
    pipes in the snippets' order, so a read takes about as long as its slowest part, not the sum of its
    parts: a part that waits (on a service's HTTP answer) or starts programs overlaps the others, on every
    core the server has. Pipes, not files: nothing to clean up, and one part's output never mixes with
    another's.
    """
    parts = ["export LC_ALL=C"]
    binaries = list(dict.fromkeys(shlex.split(m)[0] for s in snippets.values()
                                  for m in _VERSION_CALL.findall(s)))
    if binaries:
        parts += [_VERSION_FN, "rosey_versions_init " + " ".join(shlex.quote(b) for b in binaries)]
    jobs = []
    for key, snippet in snippets.items():
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", key):
            raise ValueError(f"probe key must be a plain name, got {key!r}")
        # $EPOCHREALTIME (bash 5): the snippet's own time, free (no process), so a slow read names its parts
        jobs.append(f"<(__t=$EPOCHREALTIME; ( {snippet}\n) </dev/null 2>&1; "
                    f"printf '\\n{marker} %s %d %s %s\\n' {key} $? \"$__t\" \"$EPOCHREALTIME\")")
    if jobs:
        parts.append("cat " + " \\\n  ".join(jobs))
    return "\n".join(parts)


def _elapsed(start: str | None, end: str | None) -> float | None:
    try:
        return round(float((end or "").replace(",", ".")) - float((start or "").replace(",", ".")), 3)
    except ValueError:
        return None


def parse_probe(stdout: str, keys: Iterable[str], marker: str) -> dict[str, Out]:
    out: dict[str, Out] = {}
    buf: list[str] = []
    pat = re.compile(rf"^{re.escape(marker)} (\S+) ([0-9]+)(?: (\S*) (\S*))?$")
    for line in stdout.split("\n"):
        m = pat.match(line)
        if m:
            text = "\n".join(buf)
            out[m.group(1)] = Out(text[:-1] if text.endswith("\n") else text, int(m.group(2)),
                                  _elapsed(m.group(3), m.group(4)))
            buf = []
        else:
            buf.append(line)
    missing = [k for k in keys if k not in out]
    if missing:
        raise RemoteError(f"probe output incomplete (no answer for {', '.join(missing)})")
    return out


# `probe(stdin=...)`: the text is saved to a private temp file (0600, removed on exit) named by this variable
PROBE_STDIN = "PROBE_STDIN"
_STDIN_PRELUDE = f'umask 077; {PROBE_STDIN}=$(mktemp /tmp/rosey-probe.XXXXXX); cat > "${PROBE_STDIN}"\n'
# whatever the probe created goes when it ends (set first, so an early exit cleans up too)
_CLEANUP = f"trap 'rm -rf ${{{PROBE_STDIN}:+\"${PROBE_STDIN}\"}}' EXIT\n"


def probe(conn: HostSession | Connection, snippets: Mapping[str, str], *, sudo: bool = True,
          masker: Masker | None = None, what: str = "probe", stdin: str | None = None) -> dict[str, Out]:
    """Run several read-only snippets in ONE SSH command; `{key: Out}` with each one's output and rc.

    A failing snippet does not stop the others (its `.rc` says so); only the transport failing raises.
    `stdin` (e.g. a curl config with a password): kept in a private temp file the snippets read as
    `"$PROBE_STDIN"` (`curl -K "$PROBE_STDIN"`) — each snippet's own stdin stays closed.
    """
    if not snippets:
        return {}
    bare, session = resolve(conn)
    ahead = _take_ahead(session, Read(snippets, stdin, sudo))
    if ahead is not None:
        return ahead
    marker = _MARK.format(_random.token_hex(6))
    script = probe_script(snippets, marker)
    if stdin is not None:
        script = _STDIN_PRELUDE + script
    script = _CLEANUP + script
    res = run(conn, script, sudo=sudo, what=what, masker=masker, check=False, stdin=stdin, read_only=True,
              timeout=PROBE_TIMEOUT)
    if res.exited != 0 and marker not in res.stdout:
        raise RemoteError(f"{what} failed on {bare.host} (exit {res.exited}): "
                          f"{one_line(res.stderr or res.stdout, masker)}")
    return parse_probe(res.stdout, snippets.keys(), marker)


@dataclass(frozen=True)
class Read:
    """One step's read of the server, as `probe` takes it, so the runner can read all steps' state at once."""

    snippets: Mapping[str, str]
    stdin: str | None = None
    sudo: bool = True
    what: str = "probe"
    # False: never read at the end of an earlier step's change (a read that may wait for the server to
    # settle: its wait belongs in its own step's time)
    follows_change: bool = True


def probe_read(conn: HostSession | Connection, read: Read, masker: Masker | None = None) -> dict[str, Out]:
    return probe(conn, read.snippets, sudo=read.sudo, masker=masker, what=read.what, stdin=read.stdin)


def read_ahead(conn: HostSession | Connection, reads: Sequence[Read], masker: Masker | None = None) -> int:
    """Run several steps' reads as ONE probe; each step's own `probe` of the same read is then answered
    from it, once, as long as nothing was applied on this connection since (any non-probe `run` drops it:
    from then on every read goes to the server). Returns how many reads it answered ahead.

    Why: a run where nothing needs doing (the common re-run) costs one round trip instead of one per step.
    A read whose stdin differs from an earlier read's, or without sudo, is left to its step.
    """
    kept: list[tuple[int, Read]] = []
    stdin: str | None = None
    for i, r in enumerate(reads):
        if not r.sudo or (r.stdin is not None and stdin is not None and r.stdin != stdin):
            continue
        stdin = r.stdin if r.stdin is not None else stdin
        kept.append((i, r))
    if len(kept) < 2:
        return 0
    # the same snippet asked by two steps (verify re-reads the firewall) runs once
    first: dict[str, str] = {}
    for i, r in kept:
        for key, snippet in r.snippets.items():
            first.setdefault(snippet, f"r{i}.{key}")
    outs = probe(conn, {k: snippet for snippet, k in first.items()}, masker=masker, what="read host state",
                 stdin=stdin)
    resolve(conn)[1].ahead = [(r, {key: outs[first[snippet]] for key, snippet in r.snippets.items()})
                              for _, r in kept]
    return len(kept)


def _ahead_index(session: HostSession, read: Read) -> int | None:
    for n, (r, _) in enumerate(session.ahead):
        if dict(r.snippets) == dict(read.snippets) and r.stdin == read.stdin and r.sudo == read.sudo:
            return n
    return None


def peek_ahead(conn: HostSession | Connection, read: Read) -> dict[str, Out] | None:
    """What the read-ahead answered for `read` (None: it did not, or a change since has dropped it), left
    for the step that owns the read. The runner asks it for the steps a step declares it sees
    (StepSpec.sees, handed over as `ctx.later`): a step never peeks at another's read by itself."""
    session = resolve(conn)[1]
    n = _ahead_index(session, read)
    return None if n is None else session.ahead[n][1]


def _take_ahead(session: HostSession, read: Read) -> dict[str, Out] | None:
    # once: a step that reads again (waiting for something) must see the server
    n = _ahead_index(session, read)
    return None if n is None else session.ahead.pop(n)[1]

"""deploy-configs' "nothing is lost" path, by running the real generated script against a temp directory.

Why run it instead of reading it: the restore is shell, and only executing it shows that the previous
files really come back byte for byte, that the services are asked to reload the old config, and that the
staging dir goes away. systemctl/curl/journalctl are stubs that act like a service which rejects files
containing REJECT, never answers for files containing HANG, and accepts anything else; with a `silent` file in
its state dir it does not answer at all (a hung process).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest

from fabfile.config import layout, render
from fabfile.deploy.steps import configs
from fabfile.masking import Masker
from tests.helpers import fixture_inventory

SECRETS = {"web_password": "pw-Very-Secret-1", "smtp_password": "smtp-Secret-2"}

pytestmark = pytest.mark.root  # the script installs files as root:root

# A service stand-in: reload reads the config dir like the real one would; metrics come from a state file.
SYSTEMCTL = r"""#!/bin/bash
state=$STUB_STATE
case "$1" in
  reload)
    echo "$2" >> "$state/reloads"
    if grep -qs HANG "$STUB_BASE"/*.yml; then exit 0; fi
    if grep -qs REJECT "$STUB_BASE"/*.yml; then
      ts=$(cat "$state/$2.ts" 2>/dev/null || echo 0); echo "0 $ts" > "$state/$2"
      echo "error loading config: pw-Very-Secret-1 was rejected" > "$state/journal"
    else
      now=$(date +%s); echo "$now" > "$state/$2.ts"; echo "1 $now" > "$state/$2"
    fi ;;
  show) echo 4242 ;;
esac
"""
CURL = r"""#!/bin/bash
[ -e "$STUB_STATE/silent" ] && exit 7  # a hung service: nothing answers
for f in "$STUB_STATE"/prometheus "$STUB_STATE"/alertmanager; do
  [ -f "$f" ] || continue
  n=$(basename "$f"); read -r ok ts < "$f"
  echo "${n}_config_last_reload_successful $ok"
  echo "${n}_config_last_reload_success_timestamp_seconds $ts"
done
"""
JOURNALCTL = """#!/bin/bash
cat "$STUB_STATE/journal" 2>/dev/null
"""
KILL_NOTHING = "#!/bin/bash\nexit 0\n"


@dataclasses.dataclass
class Box:
    host: object
    base: Path
    stage: Path
    state: Path
    env: dict[str, str]
    targets: list


@pytest.fixture
def box(tmp_path, monkeypatch) -> Box:
    inv = fixture_inventory()
    base, stage, state, stubs, bins = (tmp_path / n for n in ("base", "stage", "state", "stubs", "bin"))
    for d in (base, stage, state, stubs, bins):
        d.mkdir()
    host = dataclasses.replace(inv.host("lab"), base_dir=str(base))
    rendered = render.render_host(inv, host, SECRETS)
    for name in layout.CONFIG_FILES:  # the server's current, working config
        (base / name).write_text(rendered.files[name])
        (base / name).chmod(layout.CONFIG_MODE)
    for name, text in (("systemctl", SYSTEMCTL), ("curl", CURL), ("journalctl", JOURNALCTL)):
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    for tool in ("promtool", "amtool"):  # validation passes: the point is what happens after it
        (bins / tool).write_text(KILL_NOTHING)
        (bins / tool).chmod(0o755)
    monkeypatch.setattr(layout, "BIN_DIR", str(bins))
    monkeypatch.setattr(configs, "RELOAD_WAIT_S", 2)
    monkeypatch.setattr(configs, "SILENT_WAIT_S", 1)
    for svc in layout.SERVICES:  # both running a successfully loaded config
        (state / svc).write_text("1 1000\n")
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "STUB_STATE": str(state),
           "STUB_BASE": str(base)}
    return Box(host, base, stage, state, env, configs.targets(host, rendered))


def shas(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir()) if p.is_file()}


def deploy(box: Box, new: dict[str, str], missing: str = "") -> tuple[int, dict[str, str], list]:
    """Stage `new` {filename: text} (but not `missing`), plan against the temp dir, run the script;
    (rc, sections, changes)."""
    tgts = [dataclasses.replace(t, data=new[t.name].encode()) if t.name in new else t
            for t in box.targets if not t.secret]
    sha = {t.path: hashlib.sha256(Path(t.path).read_bytes()).hexdigest() for t in tgts}
    stat = {t.path: (t.owner, t.group, t.mode) for t in tgts}
    changes = configs.plan(tgts, sha, stat)
    staged = {}
    for c in changes:
        p = box.stage / f"ab-{c.name}"
        if c.name != missing:
            p.write_bytes(c.data)
        staged[c.name] = str(p)
    reload, _ = configs.services_to_reload(changes, {s: True for s in layout.SERVICES})
    script = configs.apply_script(box.host, staged, changes, reload, False, [])
    p = subprocess.run(["bash", "-c", script], env=box.env, capture_output=True, text=True, timeout=60)
    return p.returncode, configs._sections(p.stdout + p.stderr), changes


def reloads(box: Box) -> list[str]:
    f = box.state / "reloads"
    return f.read_text().split() if f.exists() else []


def rules_with(word: str, box: Box) -> str:
    return (box.base / "alert_rules.yml").read_text() + f"# {word}\n"


def test_rejected_reload_restores_the_previous_files_and_reloads_them(box):
    before = shas(box.base)
    rc, sec, changes = deploy(box, {"alert_rules.yml": rules_with("REJECT", box)})
    assert rc == 30, sec
    assert shas(box.base) == before  # byte-identical, and no .rosey-new/.rosey-old left behind
    assert reloads(box) == ["prometheus", "prometheus"]  # the new config, then the old one again
    assert (box.state / "prometheus").read_text().startswith("1 ")  # the old config confirmed
    assert "reloaded prometheus" in sec["restore"]
    assert not box.stage.exists() and "unstaged" in sec  # the staging dir is gone
    res = configs._outcome(rc, sec, changes, ["prometheus"], [], Masker(SECRETS.values()))
    assert res.failed
    assert res.summary.startswith("prometheus: reload rejected (prometheus_config_last_reload_successful=0)")
    assert "previous config restored and active again" in res.summary
    assert any("journal: error loading config: ******** was rejected" in d for d in res.details)
    assert "pw-Very-Secret-1" not in res.summary + "\n".join(res.details)


def test_unanswered_reload_times_out_and_is_rolled_back(box):
    before = shas(box.base)
    rc, sec, changes = deploy(box, {"alert_rules.yml": rules_with("HANG", box)})
    # the restored files no longer hang the stand-in, so the old config confirms
    assert rc == 30, sec
    assert "prometheus: reload not confirmed within 2 s" in sec["reload"]
    assert shas(box.base) == before


def test_web_yml_rejected_by_prometheus_rolls_back_both_services(box):
    """A file two services read: the one that took it (or was not reached) ends up on the old config too."""
    before = shas(box.base)
    web = (box.base / "web.yml").read_text() + "# REJECT\n"
    rc, sec, _ = deploy(box, {"web.yml": web})
    assert rc == 30, sec
    # prometheus rejected it first, so alertmanager was never asked: only prometheus reloads again
    assert reloads(box) == ["prometheus", "prometheus"]
    assert shas(box.base) == before


def test_success_keeps_the_new_files_and_leaves_nothing_behind(box):
    new = rules_with("fine", box)
    rc, sec, _ = deploy(box, {"alert_rules.yml": new})
    assert rc == 0, sec
    assert (box.base / "alert_rules.yml").read_text() == new
    assert oct((box.base / "alert_rules.yml").stat().st_mode & 0o777) == oct(layout.CONFIG_MODE)
    assert sorted(p.name for p in box.base.iterdir() if p.is_file()) == sorted(layout.CONFIG_FILES)
    assert reloads(box) == ["prometheus"]
    assert not box.stage.exists()
    assert "restore" not in sec


def test_activation_breaking_off_puts_back_what_was_already_moved(box):
    before = shas(box.base)
    new = {"prometheus.yml": (box.base / "prometheus.yml").read_text() + "# new\n",
           "alert_rules.yml": rules_with("new", box)}
    # the second staged file is missing: its install fails after prometheus.yml was already moved
    rc, sec, changes = deploy(box, new, missing="alert_rules.yml")
    assert [c.name for c in changes] == ["prometheus.yml", "alert_rules.yml"]
    assert rc == 20, sec
    assert shas(box.base) == before
    assert reloads(box) == []
    res = configs._outcome(rc, sec, changes, ["prometheus"], [], Masker())
    assert "the previous files are in place, nothing reloaded" in res.summary



@pytest.fixture
def full_base(box):
    """The config dir on a filesystem with no space left (a tmpfs just big enough for today's files)."""
    used = sum(p.stat().st_size for p in box.base.iterdir())
    saved = {p.name: p.read_bytes() for p in box.base.iterdir()}
    size_kb = used // 1024 + 64
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs", str(box.base)],
                   check=True)
    try:
        for name, data in saved.items():
            (box.base / name).write_bytes(data)
            (box.base / name).chmod(layout.CONFIG_MODE)
        with open(box.base / ".filler", "wb", buffering=0) as f:  # fill it up to the last byte
            for chunk in (b"\0" * 4096, b"\0"):
                with contextlib.suppress(OSError):
                    while True:
                        f.write(chunk)
        yield box
    finally:
        subprocess.run(["umount", str(box.base)], check=False)


def test_a_full_disk_under_base_dir_changes_nothing_and_says_why(full_base):
    """The first write into base_dir fails: nothing was moved, so nothing is "restored" (a restore would
    need space too, and its failure would wrongly say the server needs checking); no temp file remains."""
    box = full_base
    before = shas(box.base)
    new = {"prometheus.yml": (box.base / "prometheus.yml").read_text() + "# new\n",
           "alert_rules.yml": rules_with("new", box)}
    rc, sec, changes = deploy(box, new)
    assert rc == 20, sec
    assert shas(box.base) == before  # byte-identical, no .rosey-new / .rosey-old left in the full dir
    assert reloads(box) == []
    res = configs._outcome(rc, sec, changes, ["prometheus"], [], Masker())
    assert res.failed
    assert "No space left on device" in res.summary, res.summary
    assert "the previous files are in place, nothing reloaded" in res.summary


def test_a_service_that_does_not_answer_at_all_gets_its_old_files_back_and_a_short_second_wait(box):
    """A hung process (SIGSTOPped, stuck): the new config is never confirmed; the old files go back, and the
    restore's confirmation waits SILENT_WAIT_S, not the whole RELOAD_WAIT_S again: it cannot answer either."""
    (box.state / "silent").touch()
    before = shas(box.base)
    t0 = time.monotonic()
    rc, sec, changes = deploy(box, {"alert_rules.yml": rules_with("new", box)})
    took = time.monotonic() - t0
    assert rc == 32, sec
    assert shas(box.base) == before
    assert "prometheus: reload not confirmed within 1 s" in sec["restore"]  # the short second wait
    res = configs._outcome(rc, sec, changes, ["prometheus"], [], Masker())
    assert res.summary.startswith("prometheus: reload not confirmed within 2 s: it does not answer at all "
                                  "(hung? systemctl status prometheus)"), res.summary
    assert "previous files restored, but their reload was not confirmed either" in res.summary
    assert took < 2 + 1 + 3, took  # both waits, plus the script itself


def test_the_checks_run_at_once_and_the_first_failing_one_in_order_is_reported(box):
    """promtool and amtool stand-ins that both refuse, the first one slower: the report is promtool's (the
    order of the checks, not of their ends), with the real paths in its words, and nothing is activated."""
    bins = Path(layout.BIN_DIR)
    (bins / "promtool").write_text('#!/bin/bash\n[ "$2" = rules ] || exit 0\nsleep 1\n'
                                   'echo "$3: bad rule"; exit 1\n')
    (bins / "amtool").write_text(f'#!/bin/bash\ntouch {box.state}/amtool-ran\necho "$2: bad route"; exit 1\n')
    before = shas(box.base)
    rc, sec, _ = deploy(box, {"alert_rules.yml": rules_with("x", box)})
    assert rc == 10, sec
    assert (box.state / "amtool-ran").exists()  # it ran beside promtool, though promtool's failure decides
    assert f"{box.base}/alert_rules.yml: bad rule" in sec["validate"]
    assert "promtool check rules failed" in sec["validate"] and "amtool" not in sec["validate"]
    assert "rosey-validate" not in sec["validate"]
    assert shas(box.base) == before and reloads(box) == []

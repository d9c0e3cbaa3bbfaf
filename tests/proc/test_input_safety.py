"""Issue 9 §2 through bash: a quote in base_dir or a newline in the password cannot run a command or
add a curl option (the validation itself: tests/pure/test_input_safety.py)."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

from fabfile.config import render
from fabfile.deploy.steps.configs import apply_script, plan, targets
from fabfile.ssh.webauth import curl_config
from tests.pure.test_input_safety import SECRETS, load


def test_base_dir_cannot_run_a_command_through_the_sed_line(tmp_path: Path) -> None:
    """Today's sed line put base_dir inside single quotes unescaped: a quote in it ran a command as root."""
    inv = load(tmp_path)
    host = inv.host("test")
    pwned = tmp_path / "PWNED"
    evil = dataclasses.replace(host, base_dir=f"/opt/x';touch {pwned};'")
    rendered = render.render_host(inv, host, SECRETS)  # (the unit's own check would refuse it)
    tgts = targets(evil, rendered)
    script = apply_script(evil, {}, plan(tgts, {}, {}), [], False, [t for t in tgts if t.secret])
    sed = [ln for ln in script.splitlines() if ln.startswith("sed -i ")]
    assert len(sed) == 1
    subprocess.run(["bash", "-c", sed[0]], cwd=tmp_path, capture_output=True, timeout=10)
    assert not pwned.exists(), "a quote in base_dir ran a command"


def test_a_newline_in_the_password_cannot_add_a_curl_option(tmp_path: Path) -> None:
    """curl reads its config line by line: the password's line break must not start a new option."""
    inv = load(tmp_path)
    pwned = tmp_path / "PWNED"
    cfg = curl_config(inv.host("test"), {"web_password": f'pw"\noutput = "{pwned}'})
    assert cfg.count("\n") == 1 and cfg.endswith("\n")
    # the real curl: it fetches a local file with that config; an injected `output` would write PWNED
    src = tmp_path / "page.txt"
    src.write_text("hello")
    p = subprocess.run(["curl", "-sS", "-K", "-", f"file://{src}"], input=cfg, capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "hello" and not pwned.exists()

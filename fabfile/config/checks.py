"""Validation of rendered files with the real Prometheus tools: the commands as data, and a local runner.

`check_commands()` only builds argv lists, so the deploy step can run the very same checks on the server
with the server's own promtool/amtool against the staged files. `validate_rendered()` runs them here for
`inv render`, printing one verdict per check and failing with the tool's own message (secrets masked).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fabfile.config import local_tools
from fabfile.config.inventory import PROJECT_ROOT
from fabfile.config.layout import secret_path
from fabfile.config.render import Rendered
from fabfile.config.settings import HostSettings

RULE_TESTS_DIR = PROJECT_ROOT / "monitoring" / "tests"
PLACEHOLDER = "placeholder-not-a-secret"


@dataclass(frozen=True)
class ToolCheck:
    """One validator run: promtool/amtool and its arguments (here or on the server)."""

    name: str
    argv: tuple[str, ...]

    @property
    def tool(self) -> str:
        return self.argv[0]

    def shell(self) -> str:
        """One shell command line, e.g. for a remote `sudo -u prometheus sh -c`."""
        return shlex.join(self.argv)


@dataclass(frozen=True)
class Verdict:
    check: ToolCheck
    status: str  # "pass" | "fail" | "skip"
    output: str  # the tool's own words (masked), or why it was skipped

    @property
    def failed(self) -> bool:
        return self.status == "fail"


class CheckFailed(Exception):
    """At least one validator rejected the files; the message holds the tools' (masked) output."""


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def check_commands(prometheus_yml: str, rules_yml: str, web_yml: str, alertmanager_yml: str, *,
                   promtool: str = "promtool", amtool: str = "amtool") -> list[ToolCheck]:
    """The four validators, for files at these paths (local or remote; nothing is run here)."""
    return [
        ToolCheck("promtool check config", (promtool, "check", "config", prometheus_yml)),
        ToolCheck("promtool check rules", (promtool, "check", "rules", rules_yml)),
        ToolCheck("promtool check web-config", (promtool, "check", "web-config", web_yml)),
        ToolCheck("amtool check-config", (amtool, "check-config", alertmanager_yml)),
    ]


def rule_test_command(test_files: Sequence[str | Path], *, promtool: str = "promtool") -> ToolCheck:
    return ToolCheck("promtool test rules", (promtool, "test", "rules", *map(str, test_files)))


def run_checks(checks: Sequence[ToolCheck], masker: Callable[[str], str], *,
               echo: Callable[[str], None] = print, cwd: Path | None = None,
               timeout: int = 120) -> list[Verdict]:
    """Run each check, print its verdict; a missing tool is a skip, or a failure under CI=true."""
    verdicts = []
    for check in checks:
        if shutil.which(check.tool) is None:
            if in_ci():
                v = Verdict(check, "fail", f"{check.tool} not found on PATH (required under CI=true)")
            else:
                v = Verdict(check, "skip", f"{check.tool} not found on PATH")
        else:
            proc = subprocess.run(check.argv, capture_output=True, text=True, cwd=cwd, timeout=timeout)
            out = masker((proc.stdout + proc.stderr).strip())
            v = Verdict(check, "pass" if proc.returncode == 0 else "fail", out)
        echo(f"  {v.status.upper():4}  {check.name}" + (f": {v.output}" if v.status == "skip" else ""))
        if v.failed and v.output:
            echo("\n".join("        " + line for line in v.output.splitlines()))
        verdicts.append(v)
    return verdicts


def _check_copy(rendered: Rendered, host: HostSettings, workdir: Path) -> dict[str, Path]:
    """Write a checkable copy of the rendered files into `workdir`, secrets replaced by placeholders.

    The rendered configs point at the real server paths (<base_dir>/secrets/<name>), which do not exist
    here, and `promtool check config` may insist that referenced files exist (some releases check
    credential files). We never write the real secrets to disk for a check and never change what goes into
    --out, so the check runs on a temporary copy in which only the secret-file paths are redirected to
    placeholder files. Everything else is byte for byte what will be deployed (alert_rules.yml sits next to
    prometheus.yml, as on the server, so the relative rule_files entry resolves the same way).
    """
    secrets_dir = workdir / "secrets"
    secrets_dir.mkdir()
    redirect = {}
    for sf in rendered.secret_files:
        (secrets_dir / sf.name).write_text(PLACEHOLDER)
        redirect[secret_path(host, sf.name)] = str(secrets_dir / sf.name)
    paths = {}
    for name, text in rendered.files.items():
        for real, local in redirect.items():
            text = text.replace(real, local)
        (workdir / name).write_text(text)
        paths[name] = workdir / name
    return paths


def rule_test_files(tests_dir: Path = RULE_TESTS_DIR) -> list[Path]:
    return sorted(tests_dir.glob("*.yml"))


def validate_rendered(rendered: Rendered, host: HostSettings, masker: Callable[[str], str], *,
                      echo: Callable[[str], None] = print, tests_dir: Path = RULE_TESTS_DIR,
                      shown_dir: Path | None = None) -> list[Verdict]:
    """All checks of `inv render` for one host; raises CheckFailed naming the failed checks.

    `shown_dir`: where the user finds the files (the --out dir); tool messages name it instead of the
    temporary check copy.
    """
    tools = {svc: local_tools.choose(host, svc) for svc in local_tools.TOOL_OF}
    for choice in tools.values():
        if choice.note:
            echo(f"  note: {choice.note}")
    with tempfile.TemporaryDirectory(prefix=f"rosey-check-{host.name}-") as tmp:
        p = _check_copy(rendered, host, Path(tmp))
        def show(text: str) -> str:
            text = masker(text)
            return text.replace(tmp, str(shown_dir)) if shown_dir is not None else text

        def checks_with(promtool: str, amtool: str) -> list[ToolCheck]:
            found = check_commands(str(p["prometheus.yml"]), str(p["alert_rules.yml"]), str(p["web.yml"]),
                                   str(p["alertmanager.yml"]), promtool=promtool, amtool=amtool)
            return found + ([rule_test_command(tests, promtool=promtool)] if tests else [])

        tests = rule_test_files(tests_dir)
        checks = checks_with(tools["prometheus"].path, tools["alertmanager"].path)
        verdicts = run_checks(checks, show, echo=echo, cwd=tests_dir if tests else None)
        verdicts = _retry_with_release_tools(host, tools, verdicts, checks_with, show, echo,
                                             tests_dir if tests else None)
        if not tests:
            echo(f"  SKIP  promtool test rules: no test files in {tests_dir}")
    failed = [v.check.name for v in verdicts if v.failed]
    if failed:
        details = "\n".join(f"{v.check.name}: {v.output}" for v in verdicts if v.failed)
        raise CheckFailed(f"{host.name}: {', '.join(failed)} failed:\n{details}")
    return verdicts


def _retry_with_release_tools(host: HostSettings, tools: dict[str, local_tools.ToolChoice],
                              verdicts: list[Verdict], checks_with: Callable[[str, str], list[ToolCheck]],
                              show: Callable[[str], str], echo: Callable[[str], None],
                              cwd: Path | None) -> list[Verdict]:
    """A local tool that rejected the files gets one more say from the host's release's own tool, if here.

    E.g. a local promtool newer than the host's release that cannot parse an option only the older release
    has: the release's own verdict is the one that matters on the server.
    """
    for service, choice in tools.items():
        failed = [i for i, v in enumerate(verdicts) if v.failed and v.check.tool == choice.path]
        better = local_tools.fallback(host, service, choice) if failed else None
        if better is None:
            continue
        echo(f"  note: {better.note}")
        redo = checks_with(better.path if service == "prometheus" else tools["prometheus"].path,
                           better.path if service == "alertmanager" else tools["alertmanager"].path)
        again = run_checks([redo[i] for i in failed], show, echo=echo, cwd=cwd)
        for i, v in zip(failed, again, strict=True):
            verdicts[i] = v
    return verdicts

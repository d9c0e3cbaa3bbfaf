"""How each alert rule is proven: promtool cases, a lab test that causes it for real, the channels it reaches.

Issue 28: every rule of monitoring/alert_rules.yml gets a lab proof, a test that produces the rule's real
condition on a lab host and reads the notification where it lands. Such a test carries
`@pytest.mark.proves("RuleName")`; this module finds those markers statically (ast, nothing imported or run),
so `problems()` fails the suite (tests/pure/test_rule_coverage.py) when a rule is added without one, and
`markdown_table()` is the README's table. A rule that cannot be caused in a test run is listed in
NO_LAB_PROOF with the reason, shown in the table instead of a proof.

The lab proofs also record what they saw (`record_seen`, one JSON line per message in build/rule-coverage/);
`seen_report()` sums it up for the end of the run (tests/conftest.py prints it).

    python -m tests.rule_coverage           # the table
    python -m tests.rule_coverage --check   # exit 1 with one line per problem
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fabfile.config.labels import HEARTBEAT_ALERT
from fabfile.config.receivers import RECEIVER_TYPES

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "monitoring" / "alert_rules.yml"
PROMTOOL_TESTS = REPO / "monitoring" / "tests"
LAB_TESTS = REPO / "tests" / "lab"
README = REPO / "README.md"
SEEN_DIR = REPO / "build" / "rule-coverage"
PROOF_MODULE = "tests/lab/test_rule_proofs.py"  # where a new rule's proof goes
MARKER = "proves"
CAUSES = "RULE_CAUSES"  # a lab module's literal {rule: how it is caused}, shown in the table
MISSING = "**missing** (fails the suite)"  # the proof column of a rule with neither proof nor exemption
BEGIN, END = "<!-- rule-coverage:start -->", "<!-- rule-coverage:end -->"

# Rules no test run can cause for real, with the reason the table shows. Keep this short: each entry is a
# rule whose delivery nobody sees before a user's server needs it.
NO_LAB_PROOF: dict[str, str] = {}  # every rule has one today (tests/lab/test_rule_proofs.py)


@dataclass(frozen=True)
class RuleInfo:
    name: str
    severity: str  # the `severity` label; "" when the rule has none
    for_: str  # as written (`1m`), "" when the rule has no `for:`


@dataclass
class Cases:
    """promtool `alert_rule_test` entries of one alertname: expecting alerts (firing) or none (quiet)."""

    firing: int = 0
    quiet: int = 0


# ---------------------------------------------------------------- the static sources


def read_rules(path: Path = RULES) -> list[RuleInfo]:
    """Every alerting rule of every group, in file order."""
    doc = yaml.safe_load(path.read_text()) or {}
    return [RuleInfo(str(r["alert"]), str((r.get("labels") or {}).get("severity", "")), str(r.get("for", "")))
            for group in doc.get("groups") or [] for r in group.get("rules") or [] if r.get("alert")]


def promtool_cases(test_dir: Path = PROMTOOL_TESTS) -> dict[str, Cases]:
    """The promtool cases per alertname over every monitoring/tests/*.yml."""
    out: dict[str, Cases] = {}
    for path in sorted(test_dir.glob("*.yml")):
        doc = yaml.safe_load(path.read_text()) or {}
        for test in doc.get("tests") or []:
            for case in test.get("alert_rule_test") or []:
                cases = out.setdefault(str(case.get("alertname")), Cases())
                if case.get("exp_alerts"):
                    cases.firing += 1
                else:
                    cases.quiet += 1
    return out


def _is_proves(node: ast.expr) -> bool:
    """`pytest.mark.proves(...)` (or `mark.proves(...)` after `from pytest import mark`)."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == MARKER):
        return False
    owner = node.func.value
    return (isinstance(owner, ast.Attribute) and owner.attr == "mark") or (
        isinstance(owner, ast.Name) and owner.id == "mark")


@dataclass
class Proofs:
    """What the lab tests' `proves` markers say: rule -> ["file.py::test", ...], and markers not readable."""

    by_rule: dict[str, list[str]] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    # (module file, rule) -> how that module causes it: a module-level literal dict RULE_CAUSES
    causes: dict[tuple[str, str], str] = field(default_factory=dict)


def lab_proofs(lab_dir: Path = LAB_TESTS) -> Proofs:
    """The `proves` markers on the test functions of tests/lab/*.py, read without importing the modules."""
    proofs = Proofs()
    for path in sorted(lab_dir.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in tree.body:
            if (isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == [CAUSES]
                    and isinstance(node.value, ast.Dict)):
                for k, v in zip(node.value.keys, node.value.values, strict=True):
                    if isinstance(k, ast.Constant) and isinstance(v, ast.Constant):
                        proofs.causes[(path.name, str(k.value))] = str(v.value)
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if not node.name.startswith("test"):
                continue
            test = f"{path.name}::{node.name}"
            for deco in filter(_is_proves, node.decorator_list):
                assert isinstance(deco, ast.Call)
                if not deco.args:
                    proofs.unreadable.append(f"{path}:{deco.lineno}: {test}: @pytest.mark.{MARKER}() names "
                                             "no rule: name the rules the test causes")
                for arg in deco.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        proofs.by_rule.setdefault(arg.value, []).append(test)
                    else:
                        proofs.unreadable.append(f"{path}:{deco.lineno}: {test}: @pytest.mark.{MARKER}(...) "
                                                 "takes rule names as string literals (read without running)")
    return proofs


# ---------------------------------------------------------------- problems and the table


def problems(rules_path: Path = RULES, test_dir: Path = PROMTOOL_TESTS, lab_dir: Path = LAB_TESTS,
             exempt: Mapping[str, str] = NO_LAB_PROOF) -> list[str]:
    """One line per gap: a rule without lab proof (or exemption) or promtool firing case, and markers or
    exemptions that name no rule (a typo would otherwise prove nothing)."""
    rules = [r.name for r in read_rules(rules_path)]
    cases, proofs = promtool_cases(test_dir), lab_proofs(lab_dir)
    where = _shown(rules_path)
    out: list[str] = []
    for name in rules:
        if name not in proofs.by_rule and name not in exempt:
            out.append(f"{where}: rule {name} has no lab proof: add a lab test marked "
                       f"@pytest.mark.{MARKER}(\"{name}\") ({PROOF_MODULE})")
        if not cases.get(name, Cases()).firing:
            out.append(f"{where}: rule {name} has no promtool case where it fires: add one to "
                       f"{_shown(test_dir)}/*.yml")
    for name, tests in sorted(proofs.by_rule.items()):
        if name not in rules:
            out.append(f"{', '.join(tests)}: @pytest.mark.{MARKER}(\"{name}\") names no rule of {where}")
    for name in exempt:
        if name not in rules:
            out.append(f"tests/rule_coverage.py: NO_LAB_PROOF names {name}, no rule of {where}: remove it")
        elif name in proofs.by_rule:
            out.append(f"tests/rule_coverage.py: NO_LAB_PROOF exempts {name}, which has a lab proof "
                       f"({', '.join(proofs.by_rule[name])}): remove the exemption")
    return out + proofs.unreadable


def _shown(path: Path) -> str:
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)


# Where each alert goes, as fabfile/config/render.py `_alertmanager_context` builds the routes: critical ->
# email-critical and on to every receiver type routed on severity="critical" (continue: true); info ->
# email-info, in business hours; the Watchdog -> the heartbeat type only (first, no continue); anything
# else -> the root's email-default (no catch-all route). The chat list comes from the receiver table, so a
# new type shows here; tests/pure/test_rule_coverage.py checks this against a rendered alertmanager.yml.
CRITICAL_CHAT = tuple(t.name for t in RECEIVER_TYPES if t.route.matchers == ('severity="critical"',))
HEARTBEAT = tuple(t.name for t in RECEIVER_TYPES if f'alertname="{HEARTBEAT_ALERT}"' in t.route.matchers)


def channels(rule: RuleInfo) -> list[str]:
    """The channels on the rule's route with every channel configured."""
    if rule.name == HEARTBEAT_ALERT:
        return [f"{name} only" for name in HEARTBEAT]
    if rule.severity == "critical":
        return ["email (critical)", *CRITICAL_CHAT]
    if rule.severity == "info":
        return ["email (info, business hours)"]
    return ["email"]


def markdown_table(rules_path: Path = RULES, test_dir: Path = PROMTOOL_TESTS, lab_dir: Path = LAB_TESTS,
                   exempt: Mapping[str, str] = NO_LAB_PROOF) -> str:
    """The README's table: one row per rule, in the rules file's order."""
    cases, proofs = promtool_cases(test_dir), lab_proofs(lab_dir)
    rows = ["| Rule | Severity | for | promtool cases (firing / quiet) | Lab proof | Channels on its route |",
            "|---|---|---|---|---|---|"]
    for rule in read_rules(rules_path):
        c = cases.get(rule.name, Cases())
        tests = proofs.by_rule.get(rule.name)
        proof = ("; ".join(dict.fromkeys(_proof(t, rule.name, proofs) for t in tests)) if tests
                 else f"none: {exempt.get(rule.name, MISSING)}")
        rows.append(f"| `{rule.name}` | {rule.severity or '-'} | {rule.for_ or '-'} | {c.firing} / {c.quiet} "
                    f"| {proof} | {', '.join(channels(rule))} |")
    return "\n".join(rows) + "\n"


def _proof(test: str, rule: str, proofs: Proofs) -> str:
    """A proof as the table shows it: the module's own words for the cause, else the test's name."""
    module = test.split("::")[0]
    cause = proofs.causes.get((module, rule))
    return f"{cause} (`{module}`)" if cause else f"`{test}`"


def readme_block(text: str) -> str | None:
    """What the README holds between the rule-coverage markers (None: no markers)."""
    if BEGIN not in text or END not in text:
        return None
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def with_table(text: str, table: str) -> str:
    """The README text with `table` between the markers."""
    head, rest = text.split(BEGIN, 1)
    return f"{head}{BEGIN}\n{table}{END}{rest.split(END, 1)[1]}"


# ---------------------------------------------------------------- what the lab proofs saw


def record_seen(rule: str, channel: str, event: str, seconds: float | None,
                directory: Path = SEEN_DIR) -> None:
    """One message a lab proof read: `event` firing or resolved, `seconds` from the cause to this message
    (None: not timed). One file per process, so xdist workers never write into the same file."""
    directory.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"rule": rule, "channel": channel, "event": event, "seconds": seconds})
    with (directory / f"seen-{os.getpid()}.jsonl").open("a") as f:
        f.write(line + "\n")


@dataclass
class Seen:
    """The channels one rule's messages were read on, and the earliest time from cause to a message."""

    firing: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    first_seconds: float | None = None


def seen_report(directory: Path = SEEN_DIR) -> dict[str, Seen]:
    """Every record of this run (the directory is cleared at the session's start), by rule."""
    out: dict[str, Seen] = {}
    for path in sorted(directory.glob("seen-*.jsonl")):
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            seen = out.setdefault(rec["rule"], Seen())
            channels_seen = seen.resolved if rec["event"] == "resolved" else seen.firing
            if rec["channel"] not in channels_seen:
                channels_seen.append(rec["channel"])
            if rec["event"] != "resolved" and rec["seconds"] is not None:
                s = float(rec["seconds"])
                seen.first_seconds = s if seen.first_seconds is None else min(seen.first_seconds, s)
    return dict(sorted(out.items()))


def seen_lines(report: Mapping[str, Seen]) -> list[str]:
    """One line per rule for the end of the run."""
    def first(s: Seen) -> str:
        return f"{s.first_seconds:.1f}s after the cause" if s.first_seconds is not None else "not timed"

    return [f"{rule}: firing on {', '.join(s.firing) or 'nothing'}; resolved on "
            f"{', '.join(s.resolved) or 'nothing'}; first message {first(s)}" for rule, s in report.items()]


def clear_seen(directory: Path = SEEN_DIR) -> None:
    """Forget the records of an earlier run."""
    shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str]) -> int:
    if "--check" in argv:
        found = problems()
        print("\n".join(found) or "every rule has a lab proof (or an exemption) and a promtool firing case")
        return 1 if found else 0
    if "--write-readme" in argv:
        text = README.read_text()
        if readme_block(text) is None:
            print(f"README.md: no {BEGIN} ... {END} block to write the table into; add the two lines")
            return 2
        README.write_text(with_table(text, markdown_table()))
        return 0
    print(markdown_table(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Which alert rules file render, deploy-configs and the drill use, and reading it with a clear error."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from fabfile.config.durations import parse_duration
from fabfile.config.inventory import PROJECT_ROOT
from fabfile.errors import UserError

RULES_SOURCE = PROJECT_ROOT / "monitoring" / "alert_rules.yml"
RULES_ENV = "ROSEY_RULES_FILE"  # trial another rules file without editing the repo (render, deploy, drill)


class RulesFileError(UserError):
    """The alert rules file is missing or unreadable (not an inventory problem)."""


def rules_source() -> Path:
    """The alert rules every consumer uses: `ROSEY_RULES_FILE` if set, else monitoring/alert_rules.yml."""
    override = os.environ.get(RULES_ENV)
    return Path(override).expanduser() if override else RULES_SOURCE


def read_rules(path: Path | None = None) -> str:
    """The rules file's text, or one RulesFileError line naming the file and the fix."""
    path = path or rules_source()
    fix = (f"fix {RULES_ENV} or unset it" if os.environ.get(RULES_ENV)
           else "restore monitoring/alert_rules.yml")
    try:
        return path.read_text()
    except FileNotFoundError:
        raise RulesFileError(f"{path}: alert rules not found; {fix}") from None
    except (OSError, UnicodeDecodeError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
        raise RulesFileError(f"{path}: alert rules cannot be read ({why}); {fix}") from None


class RuleMissing(RulesFileError):
    """The rules file has no alert rule of that name."""


@dataclass(frozen=True)
class Rule:
    """One alerting rule as the drill needs it: its `for:`, labels and its group's interval."""

    name: str
    for_: float
    labels: dict[str, str]
    group_interval: float | None  # the rule group's own `interval:`, if set
    expr: str = ""


def _alert_rules(path: Path) -> list[tuple[dict, dict]]:
    """(group, rule) of every alerting rule in the file, in file order; a broken file is one line."""
    try:
        doc = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError, ValueError, RecursionError) as e:  # a 5000-digit number, [[[[...
        raise RulesFileError(f"cannot read alert rules {path}: {str(e)[:200]}") from None
    try:
        return [(group, rule) for group in doc.get("groups") or [] for rule in group.get("rules") or []
                if rule.get("alert")]
    except (TypeError, AttributeError) as e:  # a group or rule that is no mapping
        raise RulesFileError(f"{path}: alert rules cannot be read ({str(e)[:200]}); check it with "
                             "promtool check rules") from None


def alert_names(path: Path | None = None) -> list[str]:
    """The alert names the rules file defines, in file order."""
    return [str(rule["alert"]) for _, rule in _alert_rules(path or rules_source())]


def load_rule(name: str, path: Path | None = None) -> Rule:
    """The alert's `for:`, labels and its group's interval, read from the rules file that gets deployed."""
    path = path or rules_source()
    for group, rule in _alert_rules(path):
        if rule.get("alert") == name:
            try:
                return _rule(name, group, rule)
            except (ValueError, TypeError, AttributeError) as e:  # a `for:` no duration, labels no mapping
                raise RulesFileError(f"{path}: alert rule {name} cannot be read ({str(e)[:200]}); check it "
                                     "with promtool check rules") from None
    raise RuleMissing(f"{path}: no alert rule named {name}")


def _rule(name: str, group: dict, rule: dict) -> Rule:
    gi = group.get("interval")
    return Rule(name, parse_duration(rule.get("for", "0s")),
                {str(k): str(v) for k, v in (rule.get("labels") or {}).items()},
                parse_duration(gi) if gi else None, str(rule.get("expr", "")))

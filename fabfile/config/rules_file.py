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


def load_rule(name: str, path: Path | None = None) -> Rule:
    """The alert's `for:`, labels and its group's interval, read from the rules file that gets deployed."""
    path = path or rules_source()
    try:
        doc = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise RulesFileError(f"cannot read alert rules {path}: {e}") from None
    for group in doc.get("groups") or []:
        for rule in group.get("rules") or []:
            if rule.get("alert") == name:
                gi = group.get("interval")
                return Rule(name, parse_duration(rule.get("for", "0s")),
                            {str(k): str(v) for k, v in (rule.get("labels") or {}).items()},
                            parse_duration(gi) if gi else None, str(rule.get("expr", "")))
    raise RuleMissing(f"{path}: no alert rule named {name}")

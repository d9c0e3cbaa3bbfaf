"""ufw's saved rules read from its own files, printed the way `ufw show added` prints them.

Why not run `ufw show added` / `ufw status`: each is a Python start on the server (2-5 s under emulation,
two of them in every read of every run). ufw itself answers both from files and one iptables call:
the rules from the `### tuple ###` comments of /etc/ufw/user.rules and user6.rules (the IPv6 file only
when IPV6=yes), "active" from whether its `ufw-user-input` chain is loaded. This module redoes that
conversion for every tuple shape ufw writes (apps, interfaces, route rules, logging, comments), so the
plan sees the same text as before; a lab test compares it with the real `ufw show added`.
"""

from __future__ import annotations

import re

_TUPLE = re.compile(r"^### tuple ###\s*")
_ANY = ("0.0.0.0/0", "::/0")


def _rule_text(fields: list[str], comment: str) -> tuple[str, bool] | None:
    """One tuple's fields -> (the rule as `ufw show added` prints it after 'ufw ', is it a route rule)."""
    if not 6 <= len(fields) <= 9:
        return None  # ufw skips these too ("malformed tuple")
    direction, iface_in, iface_out = "in", "", ""
    if len(fields) in (7, 9):
        last = fields[-1]
        direction = last.split("_")[0]
        if "!" in last and "in_" in last and "out_" in last:
            iface_in, iface_out = (part.partition("_")[2] for part in last.split("!", 1))
        elif last.startswith("in_"):
            iface_in = last.partition("_")[2]
        elif last.startswith("out_"):
            iface_out = last.partition("_")[2]
        elif "_" in last:
            return None
    action, route = fields[0], False
    if ":" in action:
        route, action = True, action.split(":", 1)[1]
    verb, _, logtype = action.lower().partition("_")
    verb = verb if verb in ("allow", "reject", "limit") else "deny"
    proto, dport, dst, sport, src = fields[1:6]
    dapp = sapp = ""
    if len(fields) >= 8:
        dapp = "" if fields[6] == "-" else fields[6].replace("%20", " ")
        sapp = "" if fields[7] == "-" else fields[7].replace("%20", " ")
    text = verb
    if dst in _ANY and src in _ANY and sport == "any" and not sapp and not iface_in and not iface_out \
            and dport != "any":
        if direction == "out":
            text += " out"
        if logtype:
            text += f" {logtype}"
        if dapp:
            text += f" '{dapp}'" if " " in dapp else f" {dapp}"
        else:
            text += f" {dport}" + (f"/{proto}" if proto != "any" else "")
    else:
        if iface_in:
            text += f" in on {iface_in}"
        if iface_out:
            text += f" out on {iface_out}"
        elif direction == "out":
            text += " out"
        if logtype:
            text += f" {logtype}"
        for word, loc, port, app in (("from", src, sport, sapp), ("to", dst, dport, dapp)):
            loc = "any" if loc in _ANY else loc
            if loc != "any" or port != "any" or app:
                text += f" {word} {loc}"
                if app:
                    text += f" app '{app}'" if " " in app else f" app {app}"
                elif port != "any":
                    text += f" port {port}"
        if " to " not in text and " from " not in text and not iface_in and not iface_out:
            text += " to any"
        if proto != "any" and not dapp and not sapp:
            text += f" proto {proto}"
    if comment:
        try:
            text += f" comment '{bytes.fromhex(comment).decode('utf-8')}'"
        except ValueError:
            return None
    return text, route


def show_added(rules: str, rules6: str = "") -> str:
    """The `### tuple ###` lines of user.rules and user6.rules -> `ufw show added`'s rule lines.

    Rules are IPv4's then IPv6's, each printed once: a rule for both families is one line, an IPv6-only
    rule comes after the others, as ufw prints them.
    """
    seen: list[str] = []
    for line in (rules + "\n" + rules6).splitlines():
        if not _TUPLE.match(line):
            continue
        body, _, comment = _TUPLE.sub("", line).partition(" comment=")
        got = _rule_text(body.split(), comment.strip())
        if got is None:
            continue
        text, route = got
        text = f"route {text}" if route else text
        if text not in seen:
            seen.append(text)
    return "\n".join(f"ufw {t}" for t in seen)


def loaded(rc_text: str) -> bool:
    """`iptables -L ufw-user-input` exit status -> ufw's rules are loaded (what `ufw status` calls active)."""
    return rc_text.strip() == "0"

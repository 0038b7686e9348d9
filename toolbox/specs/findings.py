"""What a spec check reports, and the allow-list it reads (``allow.toml``, beside this file)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ALLOW_FILE = Path(__file__).with_name("allow.toml")


@dataclass(frozen=True)
class Finding:
    """One disagreement between the plan and AWS's specs: one line, naming where and the rule."""

    check: str
    """``sar``, ``handlers`` or ``schemas``."""
    layer: str
    resource: str
    """The resource's name (or the operator role: ``operator-policy deploy``)."""
    where: str
    """The statement (``statement Sid``) or property (``property stages[0].name``)."""
    message: str
    """What is wrong, with the rule from the spec."""

    def line(self) -> str:
        return f"{self.layer}: {self.resource}: {self.where}: {self.message}"


class AllowListError(ValueError):
    """The allow-list file is malformed: one line naming the key."""


@cache
def allow_list(path: Path = ALLOW_FILE) -> dict[str, Any]:
    """The parsed allow-list; every entry must give a ``reason`` and a ``source``."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise AllowListError(f"{path.name}: not valid TOML: {exc}") from None
    groups = [
        (f"{cfn_type}[{n}]", group)
        for cfn_type, listed in data.get("handlers", {}).items()
        for n, group in enumerate(listed)
    ]
    for section in ("sar", "schemas-none", "handlers"):
        entries = groups if section == "handlers" else _entries(data.get(section, {}))
        for key, entry in entries:
            if not isinstance(entry, dict) or not entry.get("reason") or not entry.get("source"):
                raise AllowListError(
                    f"{path.name}: [{section}] {key!r} needs a 'reason' and a 'source' (a URL or"
                    " the spec it comes from)"
                )
            if section == "handlers" and not isinstance(entry.get("permissions"), list):
                raise AllowListError(f"{path.name}: [handlers] {key} needs 'permissions', a list")
    return data


def open_entries() -> list[str]:
    """The entries marked ``open``: known gaps whose fix is elsewhere, printed by synth."""
    data = allow_list()
    out = [
        f"{rule} {action}: {entry['open']}"
        for rule, entries in data.get("sar", {}).items()
        for action, entry in entries.items()
        if entry.get("open")
    ]
    return out


def _entries(section: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in section.items():
        if isinstance(value, dict) and "reason" not in value:
            out += _entries(value, f"{prefix}{key}.")
        else:
            out.append((prefix + key, value))
    return out

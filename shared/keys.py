"""Keys of a configuration mapping checked against the ones allowed, with the closest named.

Both ``platform.yaml`` (``shared.settings``, ``shared.services``) and the stack files
(``shared.stackconfig``) check their keys with it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from shared.errors import ConfigError


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice most like ``word`` (difflib), or None when none is close."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def check_keys(data: dict[str, Any], known: Iterable[str], where: str, prefix: str = "") -> None:
    """ConfigError for the first key of ``data`` not in ``known``, naming the closest one."""
    allowed = tuple(known)
    for key in data:
        if key in allowed:
            continue
        near = closest(str(key), allowed)
        hint = f"; did you mean {prefix}{near}?" if near else ""
        raise ConfigError(
            where, f"{prefix}{key}", "is not a known setting", ", ".join(allowed) + hint
        )

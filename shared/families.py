"""Image families: the tag prefixes that share the one ECR repository.

The list is an environment-wide setting (``imageFamilies`` in ``platform.yaml``), read by the two
layers that must agree on it, neither from the other's files: the registry's lifecycle policy
keeps the last images of each family by tag prefix, so one family's pushes never expire
another's; the pipeline builds one service per family but the first (the application's), tagged
``<family>-<commit>``, so a service without a family stops when its config is read, before
anything changes.
"""

from __future__ import annotations

import re

from shared.errors import ConfigError

PRODUCTION_TAG = "production"
"""The one tag that moves: the deploy handler puts it on the image it promotes (the registry lets
exactly this tag be overwritten and its lifecycle policy never expires that image)."""

FAMILY = r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*"
"""A family name: lowercase words joined by single hyphens (it is also a service name)."""
KEY = "imageFamilies"
"""The key in ``platform.yaml``."""
DEFAULT = ("app",)
"""The families when ``platform.yaml`` names none: the application's only."""
ALLOWED = "a YAML list of lowercase names (a-z 0-9, words joined by single hyphens), the app first"


def tag_prefix(family: str) -> str:
    """The image tag prefix of ``family``: tags are ``<family>-<commit>``."""
    return f"{family}-"


def validate(families: object, source: str) -> tuple[str, ...]:
    """``families`` checked: a list of one or more, well-formed, unique, none prefixing another."""
    if not isinstance(families, list | tuple) or not all(isinstance(f, str) for f in families):
        raise ConfigError(source, KEY, f"must be a list of names, got {families!r}", ALLOWED)
    if not families:
        raise ConfigError(source, KEY, "is empty", ALLOWED)
    for family in families:
        if not re.fullmatch(FAMILY, family):
            raise ConfigError(source, KEY, f"'{family}' is not valid", ALLOWED)
    seen: set[str] = set()
    for family in families:
        if family in seen:
            raise ConfigError(source, KEY, f"'{family}' is listed twice", "unique names")
        seen.add(family)
    for family in families:
        for other in families:
            if other != family and tag_prefix(other).startswith(tag_prefix(family)):
                raise ConfigError(
                    source,
                    KEY,
                    f"'{family}-' is a prefix of '{other}-': the lifecycle rule of '{family}'"
                    f" would count the images of '{other}'",
                    "family names where none is another followed by a hyphen",
                )
    return tuple(families)

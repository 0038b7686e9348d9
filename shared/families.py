"""Image families: the tag prefixes that share the one ECR repository.

The registry layer owns the list (``platform-registry:imageFamilies``): its lifecycle policy keeps
the last images of each family by tag prefix, so one family's pushes never expire another's. The
first family is the application's; every extra service of the pipeline must be one of the others,
and its images are tagged ``<family>-<commit>``. The pipeline reads the list from the registry's
stack files when its config is read, so a service without a family stops before anything changes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from shared.errors import ConfigError
from shared.layers import get as get_layer
from shared.stackconfig import read_stack_files, stack_file

PRODUCTION_TAG = "production"
"""The one tag that moves: the deploy handler puts it on the image it promotes (the registry lets
exactly this tag be overwritten and its lifecycle policy never expires that image)."""

FAMILY = r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*"
"""A family name: lowercase words joined by single hyphens (it is also a service name)."""
KEY = "platform-registry:imageFamilies"
ALLOWED = "a YAML list of lowercase names (a-z 0-9, words joined by single hyphens), the app first"


def tag_prefix(family: str) -> str:
    """The image tag prefix of ``family``: tags are ``<family>-<commit>``."""
    return f"{family}-"


def validate(families: Sequence[str], source: str) -> tuple[str, ...]:
    """``families`` checked: at least one, well-formed, unique, no prefix inside another."""
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


def registry_families(environment: str) -> tuple[str, ...]:
    """The registry's image families in ``environment``, read from its stack files.

    Only the registry's files count: the pipeline's own stack file may not set another layer's
    key (shared/stackconfig.py refuses it), so the two layers can never disagree.
    """
    registry = get_layer("registry")
    values, _ = read_stack_files(registry, environment)
    source = stack_file(registry, environment)
    raw = values.get(KEY)
    if raw is None:
        raise ConfigError(source, KEY, "is required", ALLOWED)
    try:
        families = json.loads(raw)
    except ValueError:
        raise ConfigError(source, KEY, f"'{raw}' is not a list", ALLOWED) from None
    if not isinstance(families, list) or not all(isinstance(f, str) for f in families):
        raise ConfigError(source, KEY, "must be a list of strings", ALLOWED)
    return validate(families, source)

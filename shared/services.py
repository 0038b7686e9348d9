"""The services of the platform: one list, in ``platform.yaml``, the application first.

Every service gets the whole path: its own ECR repository (registry layer) and its own
five-stage pipeline (pipeline layer). ``platform.yaml`` names them once, each with only what
differs from the defaults; the layer that owns a setting reads it (the registry its repository's,
the pipeline the rest), so neither layer reads the other's files::

    services:
      app: {}                      # the application: every default
      worker:
        githubRepo: worker
        ecsService: worker
        environments:
          prod:
            deployAlarmArns: [arn:aws:cloudwatch:us-east-1:222222222222:alarm:worker-5xx]

The defaults are the owning layer's config (``stacks/<layer>/Pulumi.yaml``, overlaid by its
``Pulumi.<env>.yaml``); a service's own settings come next, then its ``environments.<env>``
ones. What each key means and which values it takes is declared once, in that ``Pulumi.yaml``;
here only the names are checked (a key no layer takes, a bad service name, an unknown
environment), so a typo stops every layer, not only the one that would have read it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.errors import ConfigError
from shared.keys import check_keys

PRODUCTION_TAG = "production"
"""The one tag that moves: the deploy handler puts it on the image it promotes (each repository
lets exactly this tag be overwritten and its lifecycle policy never expires that image)."""

KEY = "services"
"""The key in ``platform.yaml``."""
NAME = r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*"
"""A service name: lowercase words joined by single hyphens (it is part of physical names)."""
MAX_NAME = 20
"""A service's pipeline keeps its artifacts in a folder named after the first 20 characters of
the pipeline's name, which starts with the service's (``stacks/pipeline/names.py``)."""
DEFAULT: Mapping[str, Mapping[str, Any]] = {"app": {}}
"""The services when ``platform.yaml`` names none: the application, with every default."""
ALLOWED = (
    "a mapping of service names (a-z 0-9, words joined by single hyphens, at most"
    f" {MAX_NAME} chars) to their settings, the application first"
)
ENVIRONMENTS = "environments"
"""A service's per-environment settings, keyed by environment name."""

SETTINGS: Mapping[str, tuple[str, ...]] = {
    "registry": ("repositoryName", "keepImages", "untaggedExpiryDays"),
    "pipeline": (
        "sourceProvider",
        "githubOwner",
        "githubRepo",
        "githubBranch",
        "connectionArn",
        "githubWebhook",
        "triggerPaths",
        "sourceKey",
        "codecommitRepository",
        "codecommitTrigger",
        "codecommitBranch",
        "ecsCluster",
        "ecsService",
        "ecsTaskFamily",
        "containerName",
        "ecsTaskRoleName",
        "ecsExecutionRoleName",
        "requireApproval",
        "scanSeverityThreshold",
        "buildTimeoutMinutes",
        "buildImage",
        "deployAlarmArns",
        "bakeMinutes",
    ),
}
"""By owning layer, the settings a service may state (each declared in that layer's
``Pulumi.yaml``, where its default lives)."""


@dataclass(frozen=True)
class Service:
    """One service as ``platform.yaml`` names it, for one environment."""

    name: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    """What the service states, its environment's settings over its own, by key."""
    where: Mapping[str, str] = field(default_factory=dict)
    """By key, where in ``platform.yaml`` the value comes from (for error lines)."""

    def owned_by(self, layer: str) -> dict[str, Any]:
        """The settings the layer ``layer`` reads."""
        return {k: v for k, v in self.settings.items() if k in SETTINGS.get(layer, ())}


def _known() -> tuple[str, ...]:
    return tuple(key for keys in SETTINGS.values() for key in keys)


def _check_settings(values: Any, where: str, prefix: str) -> dict[str, Any]:
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(
            where, prefix.rstrip("."), "must be a mapping of settings", ", ".join(_known())
        )
    check_keys(values, _known(), where, prefix)
    return dict(values)


def validate(data: Any, environments: Iterable[str], where: str) -> dict[str, tuple[Service, ...]]:
    """The ``services`` mapping checked, resolved per environment (``{env: services}``)."""
    envs = tuple(environments)
    if data is None:
        data = DEFAULT
    if not isinstance(data, dict) or not data:
        raise ConfigError(where, KEY, f"must be a non-empty mapping, got {data!r}", ALLOWED)
    resolved: dict[str, list[Service]] = {env: [] for env in envs}
    for name, given in data.items():
        if not isinstance(name, str) or not re.fullmatch(NAME, name) or len(name) > MAX_NAME:
            raise ConfigError(where, KEY, f"service name '{name}' is not valid", ALLOWED)
        prefix = f"{KEY}.{name}."
        if given is not None and not isinstance(given, dict):
            raise ConfigError(where, f"{KEY}.{name}", "must be a mapping of settings", ALLOWED)
        spec = dict(given or {})
        per_env = spec.pop(ENVIRONMENTS, None) or {}
        own = _check_settings(spec, where, prefix)
        if not isinstance(per_env, dict):
            raise ConfigError(
                where,
                prefix + ENVIRONMENTS,
                "must map environment names to settings",
                ", ".join(envs),
            )
        for env in per_env:
            if env not in envs:
                raise ConfigError(
                    where, f"{prefix}{ENVIRONMENTS}.{env}", "is not an environment", ", ".join(envs)
                )
        for env in envs:
            extra = _check_settings(per_env.get(env), where, f"{prefix}{ENVIRONMENTS}.{env}.")
            settings = {**own, **extra}
            located = {key: f"{prefix}{key}" for key in own}
            located.update({key: f"{prefix}{ENVIRONMENTS}.{env}.{key}" for key in extra})
            resolved[env].append(Service(name, settings, located))
    return {env: tuple(services) for env, services in resolved.items()}

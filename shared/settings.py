"""Configuration: the environment-wide ``platform.yaml`` and each layer's stack config.

Both are validated into frozen dataclasses before any resource is registered, and every error
names the file, the key and what is allowed. Nothing here reads credentials: AWS access comes from
the caller's environment, secrets from Pulumi secret config.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from shared.errors import ConfigError
from shared.layers import REPO_ROOT

PLATFORM_FILE = REPO_ROOT / "platform.yaml"

NAMESPACE = re.compile(r"^[a-z][a-z0-9]{1,11}$")
ENVIRONMENT = re.compile(r"^[a-z][a-z0-9]{1,7}$")
ACCOUNT_ID = re.compile(r"^\d{12}$")
REGION = re.compile(
    r"^[a-z]{2}(-gov|-iso[a-z]?)?-(north|south|east|west|central|"
    r"northeast|southeast|northwest|southwest)-\d{1,2}$"
)
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")


def relative(path: Path) -> str:
    """A path as the user sees it from the repository root."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from ``path``; a one-line ConfigError when missing or malformed."""
    where = relative(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(where, "(file)", "does not exist") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "unreadable"
        raise ConfigError(where, "(file)", f"is not valid YAML{at}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(where, "(file)", "must be a YAML mapping of keys to values")
    return data


@dataclass(frozen=True)
class Platform:
    """Environment-wide settings shared by every layer (from ``platform.yaml``)."""

    namespace: str
    """Prefix of every physical name (2-12 chars, a-z and 0-9, starting with a letter)."""
    project: str
    """The ``Project`` tag."""
    cost_center: str
    """The ``CostCenter`` tag."""
    repository: str
    """The ``Repository`` tag: where this infrastructure code lives."""
    organization: str
    """The Pulumi organization that owns the stacks (``organization`` on a self-managed backend)."""
    environment: str
    """The environment (= stack name), the suffix of every physical name."""
    account_id: str
    """The AWS account the environment deploys to; the provider refuses any other."""
    region: str
    """The AWS region (default us-east-1)."""
    protect: bool
    """Whether stateful resources are protected from deletion."""


def environments(path: Path = PLATFORM_FILE) -> tuple[str, ...]:
    """The environments ``platform.yaml`` defines, in file order."""
    envs = read_yaml(path).get("environments")
    if not isinstance(envs, dict) or not envs:
        raise ConfigError(relative(path), "environments", "must map environment names to settings")
    return tuple(str(name) for name in envs)


def _text(
    data: dict[str, Any],
    key: str,
    where: str,
    *,
    pattern: re.Pattern[str] | None = None,
    allowed: str = "a non-empty string",
    prefix: str = "",
) -> str:
    value = data.get(key)
    if value is None or value == "":
        raise ConfigError(where, prefix + key, "is required", allowed)
    if not isinstance(value, str):
        raise ConfigError(where, prefix + key, f"must be a string, got {value!r}", allowed)
    if pattern is not None and not pattern.match(value):
        raise ConfigError(where, prefix + key, f"'{value}' is not valid", allowed)
    return value


@cache
def load_platform(environment: str, path: Path = PLATFORM_FILE) -> Platform:
    """Validated settings of one environment; ConfigError naming file and key otherwise."""
    where = relative(path)
    data = read_yaml(path)
    if not ENVIRONMENT.match(environment):
        raise ConfigError(
            where,
            "environments",
            f"environment name '{environment}' is not valid",
            "2-8 chars, a-z and 0-9, starting with a letter",
        )
    valid = environments(path)
    if environment not in valid:
        raise ConfigError(
            where, "environments", f"unknown environment '{environment}'", ", ".join(valid)
        )
    env = data["environments"][environment]
    if not isinstance(env, dict):
        raise ConfigError(where, f"environments.{environment}", "must be a mapping")
    prefix = f"environments.{environment}."
    protect = env.get("protect", False)
    if not isinstance(protect, bool):
        raise ConfigError(where, prefix + "protect", f"must be true or false, got {protect!r}")
    region = env.get("region", "us-east-1")
    return Platform(
        namespace=_text(
            data,
            "namespace",
            where,
            pattern=NAMESPACE,
            allowed="2-12 chars, a-z and 0-9, starting with a letter",
        ),
        project=_text(data, "project", where),
        cost_center=_text(data, "costCenter", where),
        repository=_text(data, "repository", where),
        organization=_text(
            {"stackOrganization": "organization", **data},
            "stackOrganization",
            where,
            pattern=re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"),
            allowed="a Pulumi organization name",
        ),
        environment=environment,
        account_id=_text(
            env,
            "accountId",
            where,
            pattern=ACCOUNT_ID,
            prefix=prefix,
            allowed='12 digits, quoted, e.g. "123456789012"',
        ),
        region=_text(
            {"region": region},
            "region",
            where,
            pattern=REGION,
            prefix=prefix,
            allowed="an AWS region such as us-east-1",
        ),
        protect=protect,
    )

"""Configuration: the environment-wide ``platform.yaml`` and each layer's stack config.

Both are validated into frozen dataclasses before any resource is registered, and every error
names the file, the key and what is allowed. Nothing here reads credentials: AWS access comes from
the caller's environment, secrets from Pulumi secret config.
"""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from shared import layers
from shared import services as platform_services
from shared.errors import ConfigError, PlatformError
from shared.keys import check_keys, closest
from shared.layers import REPO_ROOT
from shared.tagging import tag_problem

PLATFORM_FILE = layers.CONFIG_ROOT / "platform.yaml"
"""The environments and the organisation's settings (under :data:`shared.layers.CONFIG_ROOT`)."""

NAMESPACE = re.compile(r"^[a-z][a-z0-9]{1,11}$")
ENVIRONMENT = re.compile(r"^[a-z][a-z0-9]{1,7}$")
ACCOUNT_ID = re.compile(r"^\d{12}$")
PARTITION = "aws"
"""The partition every ARN the layers build is in (``arn:aws:...``), so its regions are allowed."""
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")


def relative(path: Path) -> str:
    """A path as the user sees it from the repository root (a config file: from the config root)."""
    resolved = path.resolve()
    for root in (layers.CONFIG_ROOT, REPO_ROOT):
        if resolved.is_relative_to(root):
            return str(resolved.relative_to(root))
    return str(path)


def _elsewhere(path: Path) -> str:
    """Where a config file was looked for, when the config root is not the repository's."""
    root = layers.CONFIG_ROOT
    if root != REPO_ROOT and path.resolve().is_relative_to(root):
        return f" in {layers.CONFIG_DIR_VARIABLE}={root}"
    return ""


class DuplicateKeyError(yaml.MarkedYAMLError):
    """A mapping that names the same key twice (YAML itself would let the last one win)."""

    def __init__(self, key: str, first: yaml.Mark, again: yaml.Mark) -> None:
        super().__init__(problem=f"'{key}' is written twice", problem_mark=again)
        self.key = key
        self.first_line = first.line + 1
        self.again_line = again.line + 1


_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML was built with it (the wheels are): ~10x faster parsing."""


class UniqueKeyLoader(_SAFE_LOADER):  # type: ignore[misc, valid-type]
    """A safe YAML loader that refuses a mapping with the same key twice.

    PyYAML keeps the last of two equal keys without a word, so a setting written twice would be
    silently half-ignored. Keys merged in with ``<<`` may still be overridden: that is what a
    merge is for. Only the constructor is overridden, so libyaml's parser is kept.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader reports it itself
                continue
            if first is not None:
                raise DuplicateKeyError(str(key), first, key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, where: str) -> Any:
    """The YAML document in ``text`` (from the file ``where``); a one-line ConfigError if not.

    Every YAML file the platform reads goes through here: a duplicate key is an error, and a
    syntax error names the line and column instead of printing PyYAML's multi-line report.
    """
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass  # nosec B506
    except DuplicateKeyError as exc:
        raise ConfigError(
            where,
            exc.key,
            f"is written twice (lines {exc.first_line} and {exc.again_line});"
            " YAML would silently keep only the last",
            "each key once per mapping",
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "unreadable"
        raise ConfigError(where, "(file)", f"is not valid YAML{at}: {problem}") from None


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from ``path``; a one-line ConfigError when missing or malformed."""
    where = relative(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(where, "(file)", f"does not exist{_elsewhere(path)}") from None
    data = parse_yaml(text, where)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(where, "(file)", "must be a YAML mapping of keys to values")
    return data


@cache
def aws_regions() -> dict[str, str]:
    """Every region AWS publishes, mapped to its partition, from botocore's bundled data.

    botocore ships ``endpoints.json`` (the partitions and their regions) inside the package, so
    this needs no network and no credentials. The file is read directly: importing
    ``botocore.loaders`` for it cost ~0.2 s of every plan (``./dev bench``), for the same data.
    """
    spec = importlib.util.find_spec("botocore")
    if spec is None or not spec.submodule_search_locations:
        raise PlatformError("botocore is not installed: .venv is incomplete; delete it to rebuild")
    bundled = Path(next(iter(spec.submodule_search_locations))) / "data" / "endpoints.json"
    data = json.loads(bundled.read_text(encoding="utf-8"))
    return {
        region: partition["partition"]
        for partition in data["partitions"]
        for region in partition["regions"]
    }


def check_region(region: Any, where: str, key: str) -> str:
    """``region`` if it is a region of :data:`PARTITION`; a ConfigError naming file and key."""
    regions = aws_regions()
    ours = sorted(r for r, p in regions.items() if p == PARTITION)
    allowed = f"one of the {len(ours)} regions of the {PARTITION} partition, e.g. us-east-1"
    if not isinstance(region, str) or not region:
        raise ConfigError(where, key, f"must be a region name, got {region!r}", allowed)
    partition = regions.get(region)
    if partition == PARTITION:
        return region
    if partition is not None:
        raise ConfigError(
            where,
            key,
            f"'{region}' is in the {partition} partition; the layers build arn:{PARTITION}: ARNs",
            allowed,
        )
    near = closest(region, ours)
    raise ConfigError(
        where,
        key,
        f"'{region}' is not a region AWS publishes",
        allowed + (f"; did you mean {near}?" if near else ""),
    )


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
    services: tuple[platform_services.Service, ...] = (platform_services.Service("app"),)
    """The services, the application first (``shared/services.py``), with this environment's
    settings: each gets its own repository (registry) and its own pipeline (pipeline)."""


TOP_KEYS = (
    "namespace",
    "project",
    "costCenter",
    "repository",
    "stackOrganization",
    "services",
    "environments",
)
"""The settings ``platform.yaml`` may hold at its top level; anything else is an error."""
ENVIRONMENT_KEYS = ("accountId", "region", "protect")
"""The settings of one environment in ``platform.yaml``."""
TAGGED = {"project": "Project", "costCenter": "CostCenter", "repository": "Repository"}
"""The ``platform.yaml`` settings that become tag values, with their tag keys."""


def environments(path: Path | None = None) -> tuple[str, ...]:
    """The environments ``platform.yaml`` (by default :data:`PLATFORM_FILE`) defines, in order."""
    path = path or PLATFORM_FILE
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


def _tag_value(data: dict[str, Any], key: str, where: str) -> str:
    value = _text(data, key, where, allowed="a tag value (1-256 chars)")
    problem = tag_problem(TAGGED[key], value)
    if problem:
        raise ConfigError(where, key, *problem)
    return value


def _environment(name: Any, env: Any, where: str) -> tuple[str, str, str, bool]:
    """(name, account, region, protect) of one ``environments`` entry, checked."""
    if not isinstance(name, str) or not ENVIRONMENT.match(name):
        raise ConfigError(
            where,
            "environments",
            f"environment name '{name}' is not valid",
            "2-8 chars, a-z and 0-9, starting with a letter",
        )
    prefix = f"environments.{name}."
    if not isinstance(env, dict):
        raise ConfigError(where, f"environments.{name}", "must be a mapping", "accountId, region")
    check_keys(env, ENVIRONMENT_KEYS, where, prefix)
    protect = env.get("protect", False)
    if not isinstance(protect, bool):
        raise ConfigError(where, prefix + "protect", f"must be true or false, got {protect!r}")
    account = _text(
        env,
        "accountId",
        where,
        pattern=ACCOUNT_ID,
        prefix=prefix,
        allowed='12 digits, quoted, e.g. "123456789012"',
    )
    region = check_region(env.get("region", "us-east-1"), where, prefix + "region")
    return name, account, region, protect


def load_all(path: Path | None = None) -> dict[str, Platform]:
    """Every environment of ``platform.yaml`` (by default :data:`PLATFORM_FILE`), validated; the
    first problem as a ConfigError.

    All of them, whichever one a run is for: a mistake in prod's entry fails a dev run too,
    instead of waiting for the day prod is deployed.
    """
    return _load_all(path or PLATFORM_FILE)


@cache
def _load_all(path: Path) -> dict[str, Platform]:
    return check_platform(read_yaml(path), relative(path))


def check_platform(data: dict[str, Any], where: str) -> dict[str, Platform]:
    """Every environment of the ``platform.yaml`` mapping ``data`` (read from ``where``), checked.

    The pure part of :func:`load_all`: ``./dev init`` checks the file it is about to write with
    it, so its errors are the very lines a plan would give.
    """
    namespace = _text(
        data,
        "namespace",
        where,
        pattern=NAMESPACE,
        allowed="2-12 chars, a-z and 0-9, starting with a letter",
    )
    project, cost_center, repository = (_tag_value(data, key, where) for key in TAGGED)
    organization = _text(
        {"stackOrganization": "organization", **data},
        "stackOrganization",
        where,
        pattern=re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"),
        allowed="a Pulumi organization name",
    )
    if "imageFamilies" in data:
        raise ConfigError(
            where,
            "imageFamilies",
            "is gone: each service has its own repository now",
            f"list the services under {platform_services.KEY} instead (docs/pipeline.md,"
            " 'Moving from image families')",
        )
    check_keys(data, TOP_KEYS, where)
    envs = data.get("environments")
    if not isinstance(envs, dict) or not envs:
        raise ConfigError(where, "environments", "must map environment names to settings")
    for name, env in envs.items():
        _environment(name, env, where)
    services = platform_services.validate(data.get(platform_services.KEY), list(envs), where)
    platforms: dict[str, Platform] = {}
    for name, env in envs.items():
        environment, account_id, region, protect = _environment(name, env, where)
        platforms[environment] = Platform(
            namespace=namespace,
            project=project,
            cost_center=cost_center,
            repository=repository,
            organization=organization,
            environment=environment,
            account_id=account_id,
            region=region,
            protect=protect,
            services=services[environment],
        )
    return platforms


def load_platform(environment: str, path: Path | None = None) -> Platform:
    """Validated settings of one environment; ConfigError naming file and key otherwise.

    The whole file is validated first (:func:`load_all`), every environment included.
    """
    path = path or PLATFORM_FILE
    where = relative(path)
    platforms = load_all(path)
    if not ENVIRONMENT.match(environment):
        raise ConfigError(
            where,
            "environments",
            f"environment name '{environment}' is not valid",
            "2-8 chars, a-z and 0-9, starting with a letter",
        )
    if environment not in platforms:
        raise ConfigError(
            where,
            "environments",
            f"unknown environment '{environment}'",
            ", ".join(platforms),
        )
    return platforms[environment]

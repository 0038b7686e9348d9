"""A layer's stack config: typed reads inside the program, and the files behind them offline.

Defaults live in one place, the ``config:`` block of the layer's ``Pulumi.yaml`` (typed and
described, applied by the Pulumi CLI); ``Pulumi.<env>.yaml`` holds only what differs. The
offline plan has no CLI, so :func:`read_stack_files` applies the same two files itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from shared.errors import ConfigError
from shared.layers import Layer
from shared.settings import EMAIL, read_yaml, relative

OFFLINE_SECRET = "offline-placeholder-for-a-secure-value"  # noqa: S105 - a placeholder, not a credential  # nosec B105
"""What a ``secure:`` value reads as in the offline plan (nothing can decrypt it there)."""


def stack_file(layer: Layer, environment: str) -> str:
    """The stack file of ``layer`` in ``environment``, relative to the repository root."""
    return relative(layer.directory / f"Pulumi.{environment}.yaml")


def read_stack_files(layer: Layer, environment: str) -> tuple[dict[str, str], list[str]]:
    """Config the CLI would hand the program: project defaults overlaid by the stack file.

    Returns the values (as strings, keyed ``namespace:key``) and the keys given as secrets.
    """
    project_file = layer.directory / "Pulumi.yaml"
    project = read_yaml(project_file)
    values: dict[str, str] = {}
    for key, spec in (project.get("config") or {}).items():
        full = key if ":" in key else f"{layer.project}:{key}"
        default = spec.get("default") if isinstance(spec, dict) else spec
        if default is not None:
            values[full] = _as_config_string(default)
    stack_path = layer.directory / f"Pulumi.{environment}.yaml"
    stack = read_yaml(stack_path)
    config = stack.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError(relative(stack_path), "config", "must be a mapping of keys to values")
    secret_keys: list[str] = []
    for key, value in config.items():
        if ":" not in key:
            raise ConfigError(
                relative(stack_path),
                key,
                "has no namespace",
                f"'{layer.project}:{key}' or a provider key such as 'aws:region'",
            )
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[key] = OFFLINE_SECRET
            secret_keys.append(key)
        else:
            values[key] = _as_config_string(value)
    return values, secret_keys


def _as_config_string(value: Any) -> str:
    """Config reaches a Pulumi program as strings; structured values as JSON, like the CLI."""
    import json

    if isinstance(value, str):
        return value
    return json.dumps(value)


class StackConfig:
    """Typed, validated reads of one layer's config; errors name the stack file and key."""

    def __init__(self, layer: Layer, environment: str) -> None:
        self.layer = layer
        self.environment = environment
        self.source = stack_file(layer, environment)
        self._config = pulumi.Config()

    def _full(self, key: str) -> str:
        return f"{self._config.name}:{key}"

    def _raw(self, key: str) -> str | None:
        value = self._config.get(key)
        return None if value is None or value == "" else value

    def _fail(self, key: str, problem: str, allowed: str | None = None) -> ConfigError:
        return ConfigError(self.source, self._full(key), problem, allowed)

    def string(
        self,
        key: str,
        *,
        pattern: str | None = None,
        allowed: str = "a non-empty string",
        optional: bool = False,
    ) -> str:
        """A required string (or '' when ``optional``), matched against ``pattern``."""
        value = self._raw(key)
        if value is None:
            if optional:
                return ""
            raise self._fail(key, "is required", allowed)
        if pattern is not None and not re.fullmatch(pattern, value):
            raise self._fail(key, f"'{value}' is not valid", allowed)
        return value

    def choice(self, key: str, choices: Iterable[str]) -> str:
        """One of ``choices``."""
        options = tuple(choices)
        value = self.string(key, allowed=", ".join(options))
        if value not in options:
            raise self._fail(key, f"'{value}' is not one of the choices", ", ".join(options))
        return value

    def integer(
        self,
        key: str,
        *,
        choices: Iterable[int] | None = None,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int:
        """A whole number, within bounds or among ``choices``."""
        allowed = (
            ", ".join(map(str, choices))
            if choices is not None
            else f"a whole number from {minimum} to {maximum}"
        )
        raw = self.string(key, allowed=allowed)
        try:
            value = int(raw)
        except ValueError:
            raise self._fail(key, f"'{raw}' is not a whole number", allowed) from None
        if choices is not None and value not in set(choices):
            raise self._fail(key, f"{value} is not allowed", allowed)
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise self._fail(key, f"{value} is out of range", allowed)
        return value

    def boolean(self, key: str) -> bool:
        """true or false."""
        raw = self.string(key, allowed="true or false").lower()
        if raw not in ("true", "false"):
            raise self._fail(key, f"'{raw}' is not a boolean", "true or false")
        return raw == "true"

    def email(self, key: str) -> str:
        """An email address."""
        value = self.string(key, allowed="an email address such as devops@company.com")
        if not EMAIL.match(value):
            raise self._fail(
                key,
                f"'{value}' is not an email address",
                "an email address such as devops@company.com",
            )
        return value

    def secret(self, key: str) -> pulumi.Output[str] | None:
        """A secret value, or None when unset. A secret given in plain text is refused."""
        if self._raw(key) is None:
            return None
        if not runtime_config.is_config_secret(self._full(key)):
            raise self._fail(
                key,
                "is set in plain text",
                f"a secret: run `pulumi config set --secret {key}` in {self.layer.directory.name}"
                " and remove the plain value",
            )
        return self._config.require_secret(key)

    def string_list(self, key: str, *, pattern: str, allowed: str) -> tuple[str, ...]:
        """A list of strings, each matching ``pattern``; empty when unset.

        A stack file holds it as a YAML list; the CLI (and :func:`read_stack_files`) hand it to
        the program as a JSON string, which is what this reads.
        """
        raw = self._raw(key)
        if raw is None:
            return ()
        try:
            value = json.loads(raw)
        except ValueError:
            raise self._fail(key, f"'{raw}' is not a list", f"a YAML list of {allowed}") from None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._fail(key, "must be a list of strings", f"a YAML list of {allowed}")
        for item in value:
            if not re.fullmatch(pattern, item):
                raise self._fail(key, f"'{item}' is not valid", allowed)
        return tuple(value)

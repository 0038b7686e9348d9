"""A layer's stack config: the files behind it checked, and typed reads of its values.

Defaults live in one place, the ``config:`` block of the layer's ``Pulumi.yaml`` (typed and
described, applied by the Pulumi CLI); ``Pulumi.<env>.yaml`` holds only what differs. Both files
are checked against each other before anything is read (:func:`load_layer_files`): a key the
project does not declare, a value of the wrong type, a secret in plain text or a key written
twice is a one-line ConfigError naming the file it is in. The check is driven by the
declarations alone, so a key a layer adds is covered as soon as it is declared. The offline plan
has no CLI, so :func:`read_stack_files` applies the same two files itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from shared.errors import ConfigError, PlatformError
from shared.keys import check_keys, closest
from shared.layers import LAYERS, Layer
from shared.services import Service
from shared.settings import EMAIL, PLATFORM_FILE, read_yaml, relative

OFFLINE_SECRET = "offline-placeholder-for-a-secure-value"  # noqa: S105 - a placeholder, not a credential  # nosec B105
"""What a ``secure:`` value reads as in the offline plan (nothing can decrypt it there)."""

STACK_FILE_KEYS = ("config", "secretsprovider", "encryptedkey", "encryptionsalt")
"""What a stack file may hold at its top level: the config, and what Pulumi itself writes there
when the stack is created (its secrets provider, encrypted data key or passphrase salt)."""
DECLARATION_KEYS = ("type", "description", "default", "items", "secret")
"""The attributes of one ``config:`` declaration in ``Pulumi.yaml`` that the layers use."""
TYPES = ("string", "integer", "boolean", "array")
"""The types a ``Pulumi.yaml`` declaration may have (Pulumi's project schema)."""
_INTEGER = re.compile(r"-?\d+")
SERVICE_PLACEHOLDER = "{service}"
"""In a layer's own value of a setting a service may state, the service's name
(:class:`ServiceConfig`)."""


@dataclass(frozen=True)
class Setting:
    """One key a layer's ``Pulumi.yaml`` declares under ``config:``."""

    key: str
    """The full key, ``<project>:<name>``, as stack files and the program name it."""
    name: str
    """The key as ``Pulumi.yaml`` writes it (without the project namespace)."""
    type: str
    default: Any
    """The default (None when there is none: the stack file must set it, or it is optional)."""
    secret: bool
    """Declared ``secret: true``: a stack file may set it only as a Pulumi secret."""


@dataclass(frozen=True)
class LayerFiles:
    """A layer's ``Pulumi.yaml`` declarations and one environment's stack file, checked."""

    layer: Layer
    environment: str
    project_file: str
    """``stacks/<layer>/Pulumi.yaml``, relative to the repository root."""
    stack_file: str
    """``stacks/<layer>/Pulumi.<env>.yaml``, relative to the repository root."""
    settings: dict[str, Setting]
    """The declared keys, by full key."""
    values: dict[str, Any]
    """What the stack file sets, by full key, as written (a secret as ``{"secure": ...}``)."""

    def unknown(self, key: str, where: str | None = None) -> ConfigError:
        """The error for ``key`` set in ``where`` (the stack file) but declared nowhere."""
        where = where or self.stack_file
        project = self.layer.project
        namespace, _, name = key.rpartition(":")
        near = closest(name, [s.name for s in self.settings.values()])
        hint = f"; the closest is {project}:{near}" if near else ""
        allowed = f"a key {self.project_file} declares{hint}"
        if not namespace:
            return ConfigError(
                where, key, "has no namespace", f"'{project}:{key}' if it is declared{hint}"
            )
        owner = next((layer for layer in LAYERS if layer.project == namespace), None)
        if owner is not None and owner != self.layer:
            problem = (
                f"is the {owner.name} layer's setting; set it in"
                f" {relative(owner.stack_file(self.environment))}"
            )
        elif namespace != project:
            problem = (
                f"is {namespace} provider config, which this layer never reads (its AWS provider"
                f" takes the account and region from {PLATFORM_FILE.name})"
            )
        else:
            problem = f"is not declared in {self.project_file}, so nothing would read it"
        return ConfigError(where, key, problem, allowed)

    def check(self, keys: Iterable[str]) -> None:
        """ConfigError for the first of ``keys`` (set as with ``pulumi config set``) undeclared."""
        for key in keys:
            if key not in self.settings:
                raise self.unknown(key)

    def defaults(self) -> dict[str, Any]:
        """The declared defaults, by full key."""
        return {k: s.default for k, s in self.settings.items() if s.default is not None}


def _type_problem(type_: str, value: Any, items: str | None = None) -> str | None:
    """Why ``value`` is not of the declared ``type_`` (as written in YAML), or None.

    The CLI writes what ``pulumi config set`` gets as text, so "7" is an integer and "true" a
    boolean, as the Pulumi CLI itself accepts them.
    """
    if type_ == "string" and (isinstance(value, str | int | float) and not isinstance(value, bool)):
        return None
    if type_ == "integer" and (
        (isinstance(value, int) and not isinstance(value, bool))
        or (isinstance(value, str) and _INTEGER.fullmatch(value))
    ):
        return None
    if type_ == "boolean" and (
        isinstance(value, bool) or (isinstance(value, str) and value.lower() in ("true", "false"))
    ):
        return None
    if type_ == "array" and isinstance(value, list):
        for item in value:
            if items is not None and _type_problem(items, item) is not None:
                return f"must be a list of {items}s, got an item {item!r}"
        return None
    return f"must be {_a(type_)}, got {value!r}"


def _a(type_: str) -> str:
    return ("an " if type_[0] in "aeiou" else "a ") + type_


def _declarations(layer: Layer, project_file: str) -> dict[str, Setting]:
    data = read_yaml(layer.directory / "Pulumi.yaml")
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError(project_file, "config", "must map keys to their declarations")
    settings: dict[str, Setting] = {}
    for key, spec in config.items():
        namespace, _, name = str(key).rpartition(":")
        where = f"config.{key}"
        if namespace and namespace != layer.project:
            raise ConfigError(
                project_file,
                where,
                f"declares a key of the {namespace} namespace, which this layer never reads",
                f"keys of the layer's own namespace ({layer.project}); the AWS account and"
                f" region come from {PLATFORM_FILE.name}",
            )
        if not isinstance(spec, dict):
            raise ConfigError(
                project_file, where, "must be a declaration", "type, description, default"
            )
        check_keys(spec, DECLARATION_KEYS, project_file, f"{where}.")
        type_ = spec.get("type", "string")
        if type_ not in TYPES:
            raise ConfigError(
                project_file, f"{where}.type", f"'{type_}' is not a type", ", ".join(TYPES)
            )
        items = spec.get("items") or {}
        item_type = items.get("type") if isinstance(items, dict) else None
        secret = spec.get("secret", False)
        if not isinstance(secret, bool):
            raise ConfigError(
                project_file, f"{where}.secret", f"must be true or false, got {secret!r}"
            )
        default = spec.get("default")
        if default is not None and secret:
            raise ConfigError(
                project_file,
                f"{where}.default",
                "is a default for a secret, in plain text in the repository",
                "no default; each stack sets it with `pulumi config set --secret`",
            )
        if default is not None:
            problem = _type_problem(type_, default, item_type)
            if problem:
                raise ConfigError(project_file, f"{where}.default", problem, _a(type_))
        settings[f"{layer.project}:{name}"] = Setting(
            f"{layer.project}:{name}", name, type_, default, secret
        )
    return settings


def load_layer_files(layer: Layer, environment: str) -> LayerFiles:
    """The layer's declarations and stack file for ``environment``, checked against each other.

    Everything a person writes in either file is either read or an error: an undeclared key, a
    top-level key Pulumi does not know, a value of the wrong type, a secret in plain text.
    """
    stack_path = layer.stack_file(environment)
    return check_stack_file(layer, environment, read_yaml(stack_path), relative(stack_path))


def check_stack_file(
    layer: Layer, environment: str, stack: dict[str, Any], where: str
) -> LayerFiles:
    """The stack-file mapping ``stack`` (read from ``where``), checked against the declarations.

    The part of :func:`load_layer_files` after the stack file is read: ``./dev init`` checks the
    file it is about to write with it, so its errors are the very lines a plan would give.
    """
    project_file = relative(layer.directory / "Pulumi.yaml")
    settings = _declarations(layer, project_file)
    check_keys(stack, STACK_FILE_KEYS, where)
    config = stack.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError(where, "config", "must be a mapping of keys to values")
    files = LayerFiles(layer, environment, project_file, where, settings, dict(config))
    for key, value in config.items():
        setting = settings.get(key)
        if setting is None:
            raise files.unknown(str(key))
        if isinstance(value, dict) and set(value) == {"secure"}:
            continue
        if setting.secret:
            raise ConfigError(
                where,
                key,
                "is set in plain text",
                f"a secret: run `pulumi config set --secret {setting.name}` in"
                f" {relative(layer.directory)} and remove the plain value",
            )
        problem = _type_problem(setting.type, value)
        if problem:
            raise ConfigError(
                where, key, problem, f"{_a(setting.type)}, as {project_file} declares"
            )
    return files


_CHECKED: set[tuple[tuple[str, bytes | None], ...]] = set()
"""The file contents :func:`check_all` has passed in this process (never a failure)."""


def check_all(environments: Iterable[str], layers: Iterable[Layer] = LAYERS) -> None:
    """Check every layer's files in every environment: a typo in prod's file fails a dev run.

    Every plan and every stack command runs this over all layers x all environments; a process
    that plans several times (the tests, ``./dev synth`` then a preview) parses each file once.
    The memo is keyed by the files' bytes, so an edited (or new, or deleted) file is checked
    again, and only a pass is remembered: a failure is reported on every call.
    """
    pairs = [(layer, environment) for layer in layers for environment in environments]
    paths = sorted(
        {layer.directory / "Pulumi.yaml" for layer, _ in pairs}
        | {layer.stack_file(environment) for layer, environment in pairs}
    )
    seen = tuple((str(path), _bytes_or_none(path)) for path in paths)
    if seen in _CHECKED:
        return
    for layer, environment in pairs:
        load_layer_files(layer, environment)
    _CHECKED.add(seen)


def _bytes_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def stack_file(layer: Layer, environment: str) -> str:
    """The stack file of ``layer`` in ``environment``, relative to the repository root."""
    return relative(layer.stack_file(environment))


def read_stack_files(layer: Layer, environment: str) -> tuple[dict[str, str], list[str]]:
    """Config the CLI would hand the program: project defaults overlaid by the stack file.

    Returns the values (as strings, keyed ``namespace:key``) and the keys given as secrets.
    """
    return config_values(load_layer_files(layer, environment))


def config_values(files: LayerFiles) -> tuple[dict[str, str], list[str]]:
    """The values and secret keys of :func:`read_stack_files`, from files already checked."""
    values = {key: _as_config_string(value) for key, value in files.defaults().items()}
    secret_keys: list[str] = []
    for key, value in files.values.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[key] = OFFLINE_SECRET
            secret_keys.append(key)
        else:
            values[key] = _as_config_string(value)
    return values, secret_keys


def _as_config_string(value: Any) -> str:
    """Config reaches a Pulumi program as strings; structured values as JSON, like the CLI."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


@dataclass(frozen=True)
class StackValues:
    """The config a layer's program is handed, with the files it comes from (for error lines).

    A config reader (``stacks/<layer>/config.py``'s ``load``) is a pure function of these, the
    platform settings and the label: the program passes what the engine handed it
    (:func:`program_values`), a tool what the files hold (:func:`file_values`).
    """

    files: LayerFiles
    """The layer's declarations and stack file, checked."""
    values: Mapping[str, str]
    """By full key (``<project>:<name>``), as the CLI hands them: strings, lists as JSON."""
    secret_keys: frozenset[str] = frozenset()
    """The keys given as secrets (``pulumi config set --secret``)."""


def file_values(layer: Layer, environment: str) -> StackValues:
    """What the CLI would hand the layer's program: ``Pulumi.yaml`` defaults overlaid by the
    stack file (a secret reads as :data:`OFFLINE_SECRET`, which nothing here can decrypt)."""
    files = load_layer_files(layer, environment)
    values, secret_keys = config_values(files)
    return StackValues(files, values, frozenset(secret_keys))


def program_values(layer: Layer, environment: str) -> StackValues:
    """What the engine handed the running program, for every key the layer declares."""
    files = load_layer_files(layer, environment)
    values: dict[str, str] = {}
    secret_keys: set[str] = set()
    for key in files.settings:
        value = runtime_config.get_config(key)
        if value is None:
            continue
        values[key] = value
        if runtime_config.is_config_secret(key):
            secret_keys.add(key)
    return StackValues(files, values, frozenset(secret_keys))


class StackConfig:
    """Typed, validated reads of one layer's config values; errors name the file the value is in."""

    def __init__(self, values: StackValues) -> None:
        self.files = values.files
        self.layer = self.files.layer
        self.environment = self.files.environment
        self.source = self.files.stack_file
        self._values = values.values
        self._secret_keys = values.secret_keys

    def _full(self, key: str) -> str:
        return f"{self.layer.project}:{key}"

    def _get(self, key: str) -> str | None:
        return self._values.get(self._full(key))

    def _raw(self, key: str) -> str | None:
        if self._full(key) not in self.files.settings:
            raise PlatformError(
                f"{self.files.project_file}: config.{key}: the program reads it but it is not"
                " declared; declare it under config: with its type, default and description"
            )
        value = self._get(key)
        return None if value is None or value == "" else value

    def where(self, key: str) -> tuple[str, str]:
        """The file the value of ``key`` comes from, and the key as that file writes it.

        A value the stack file does not set, equal to a non-empty declared default, is the
        default's: its error names ``Pulumi.yaml``. Anything else (the stack file,
        ``pulumi config set``, a missing value that an empty default leaves to each stack) is
        the stack file's.
        """
        full = self._full(key)
        setting = self.files.settings.get(full)
        if (
            setting is not None
            and full not in self.files.values
            and setting.default not in (None, "", [])
            and self._values.get(full) == _as_config_string(setting.default)
        ):
            return self.files.project_file, f"config.{setting.name}.default"
        return self.source, full

    def _fail(self, key: str, problem: str, allowed: str | None = None) -> ConfigError:
        return ConfigError(*self.where(key), problem, allowed)

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
        value = self._raw(key)
        if value is None:
            return None
        if self._full(key) not in self._secret_keys:
            raise self._fail(
                key,
                "is set in plain text",
                f"a secret: run `pulumi config set --secret {key}` in"
                f" {relative(self.layer.directory)} and remove the plain value",
            )
        return pulumi.Output.secret(value)

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


class ServiceConfig(StackConfig):
    """A layer's config as one service sees it: the layer's values (its defaults) overlaid by
    what ``platform.yaml`` states for the service (``shared/services.py``).

    In the layer's values, :data:`SERVICE_PLACEHOLDER` stands for the service's name, so a
    default such as ``ecsService: "{service}"`` gives each service its own without a word in
    platform.yaml. Reads are the layer's own typed reads; a value the service states is blamed
    on its line in ``platform.yaml`` (``services.<name>.<key>``), any other on the layer's files.
    """

    def __init__(self, values: StackValues, service: Service) -> None:
        super().__init__(values)
        platform_file = relative(PLATFORM_FILE)
        own = service.owned_by(self.layer.name)
        self._blame: dict[str, tuple[str, str]] = {}
        overlay: dict[str, str] = {}
        for key, value in own.items():
            setting = self.files.settings.get(self._full(key))
            if setting is None:
                raise PlatformError(
                    f"{self.files.project_file}: config.{key}: a service may state it"
                    " (shared/services.py) but it is not declared; declare it under config:"
                )
            where = (platform_file, service.where.get(key, f"services.{service.name}.{key}"))
            problem = _type_problem(setting.type, value)
            if problem:
                raise ConfigError(
                    *where,
                    problem,
                    f"{_a(setting.type)}, as {self.files.project_file} declares {key}",
                )
            overlay[self._full(key)] = _as_config_string(value)
            self._blame[key] = where
        self._values = {**self._values, **overlay}
        self.service = service.name

    def _get(self, key: str) -> str | None:
        value = super()._get(key)
        if value is None or key in self._blame:
            return value
        return value.replace(SERVICE_PLACEHOLDER, self.service)

    def where(self, key: str) -> tuple[str, str]:
        """Where the value of ``key`` comes from: the service's line, or the layer's files."""
        return self._blame.get(key) or super().where(key)

"""``./dev init``: point the repository at a team's own organisation, in one command.

It sets the values a team must change (the name prefix, each environment's account and region,
the Repository tag, the failure email, the GitHub owner and branch, the ECS cluster, and the
services) in ``platform.yaml`` and the layers' stack files, and nothing else. A service's GitHub
repository, ECS service, container and roles default to its name (``{service}`` in
``stacks/pipeline/Pulumi.yaml``); a service whose differ states them under ``services.<name>``.

Every value is checked by the validators a plan runs (``shared.settings.check_platform``,
``shared.stackconfig.check_stack_file`` and each layer's own config reader), on the files as
they would be written, so a bad value is the same one line ``./dev synth`` would print, and no
file is written unless every environment of every layer passes.

The files are edited as text, at the spans PyYAML's composer reports for each value, not loaded
and dumped: their comments are the documentation a new team reads, and a dump would drop them
(and reorder and restyle the rest). Each edited file is parsed again and compared with the
intended data, so a layout the editor does not understand is an error, never a wrong file.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shared import layers
from shared import services as platform_services
from shared.errors import ConfigError, PlatformError
from shared.layers import LAYERS, Layer
from shared.settings import Platform, check_platform, parse_yaml

PLATFORM = "platform.yaml"

Ask = Callable[[str, str], str]
"""Asks the person at the terminal: (question, current value) -> the answer ('' keeps it)."""


class InitError(PlatformError):
    """A value init cannot take, or a file it cannot edit; one line."""


@dataclass(frozen=True)
class Stacked:
    """A layer setting init writes into every environment's stack file."""

    layer: str
    name: str
    """The key as the layer's ``Pulumi.yaml`` declares it."""


@dataclass(frozen=True)
class Choices:
    """The values a team sets; each field's metadata: its flag, question and where it goes."""

    namespace: str
    repository: str
    email: str
    github_owner: str
    github_branch: str
    ecs_cluster: str
    services: tuple[str, ...]
    """The services' names, the application first; each one's repository and ECS service
    default to its name. Services init keeps keep their settings; the others are removed."""
    accounts: Mapping[str, str]
    """Each environment's AWS account id."""
    regions: Mapping[str, str]
    """Each environment's region."""


QUESTIONS: dict[str, str] = {
    "namespace": "Name prefix of every resource (2-12 chars, a-z 0-9)",
    "repository": "Where this code lives (the Repository tag), e.g. github.com/org/platform",
    "email": "Email for pipeline failure notifications",
    "github_owner": "GitHub owner of the services' repositories",
    "github_branch": "The branch the pipelines deploy",
    "ecs_cluster": "ECS cluster the pipelines deploy to",
    "services": "The services, comma-separated, the application first (each one's repository"
    " and ECS service are named after it)",
}
"""The question for each single-valued choice, in the order they are asked."""

STACKED: dict[str, Stacked] = {
    "email": Stacked("foundation", "notificationEmail"),
    "github_owner": Stacked("pipeline", "githubOwner"),
    "github_branch": Stacked("pipeline", "githubBranch"),
    "ecs_cluster": Stacked("pipeline", "ecsCluster"),
}
"""The choices that are layer settings, and which layer's."""


def flag(name: str) -> str:
    """The command-line flag of a choice (``github_owner`` -> ``--github-owner``; ``services``
    -> ``--service``, given once per service)."""
    return "--service" if name == "services" else "--" + name.replace("_", "-")


def _stack_path(root: Path, layer: Layer, environment: str) -> Path:
    return root / "stacks" / layer.name / f"Pulumi.{environment}.yaml"


def _where(root: Path, path: Path) -> str:
    return str(path.relative_to(root))


def _read(root: Path, path: Path) -> tuple[str, dict[str, Any]]:
    where = _where(root, path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(where, "(file)", "does not exist") from None
    data = parse_yaml(text, where) or {}
    if not isinstance(data, dict):
        raise ConfigError(where, "(file)", "must be a YAML mapping of keys to values")
    return text, data


def _environments(data: Mapping[str, Any]) -> tuple[str, ...]:
    envs = data.get("environments")
    if not isinstance(envs, dict) or not envs:
        raise ConfigError(PLATFORM, "environments", "must map environment names to settings")
    return tuple(str(name) for name in envs)


def current(root: Path | None = None) -> dict[str, str]:
    """What the files hold now for each choice (the answer a prompt keeps on Enter).

    A layer setting is the first environment's value: its stack file's, else the default.
    """
    root = root or layers.CONFIG_ROOT
    _, platform = _read(root, root / PLATFORM)
    first = _environments(platform)[0]
    found = {"namespace": platform.get("namespace"), "repository": platform.get("repository")}
    for name, stacked in STACKED.items():
        layer = _layer(stacked.layer)
        key = f"{layer.project}:{stacked.name}"
        _, stack = _read(root, _stack_path(root, layer, first))
        config = stack.get("config") or {}
        _, project = _read(layer.directory.parents[1], layer.directory / "Pulumi.yaml")
        declared = (project.get("config") or {}).get(stacked.name) or {}
        found[name] = config.get(key, declared.get("default"))
    named = platform.get(platform_services.KEY)
    found["services"] = ", ".join(named if isinstance(named, dict) else platform_services.DEFAULT)
    for env, settings in platform["environments"].items():
        found[f"account:{env}"] = (settings or {}).get("accountId")
        found[f"region:{env}"] = (settings or {}).get("region", "us-east-1")
    return {key: "" if value is None else str(value) for key, value in found.items()}


def _layer(name: str) -> Layer:
    return next(layer for layer in LAYERS if layer.name == name)


def _per_environment(
    option: str, items: Sequence[str], environments: Sequence[str], *, bare: bool
) -> dict[str, str]:
    """``ENV=VALUE`` items (a bare VALUE for every environment when ``bare``), checked."""
    found: dict[str, str] = {}
    allowed = ", ".join(environments)
    for item in items:
        env, sep, value = item.partition("=")
        if not sep:
            if not bare:
                raise InitError(
                    f"{option} {item}: name the environment, as {option} ENV=VALUE"
                    f" (ENV one of {allowed})"
                )
            found.update(dict.fromkeys(environments, item))
            continue
        if env not in environments:
            raise InitError(
                f"{option} {item}: unknown environment '{env}' (allowed: {allowed}, as"
                f" {PLATFORM} defines them)"
            )
        found[env] = value
    return found


def resolve(
    given: Mapping[str, str | Sequence[str]],
    accounts: Sequence[str] = (),
    regions: Sequence[str] = (),
    ask: Ask | None = None,
    root: Path | None = None,
) -> Choices:
    """The choices from the flags, asking for each missing one when ``ask`` is given.

    Without ``ask`` (no terminal, or CI) a missing value is a one-line InitError naming its flag.
    """
    root = root or layers.CONFIG_ROOT
    now = current(root)
    environments = _environments(_read(root, root / PLATFORM)[1])
    account_of = _per_environment("--account", accounts, environments, bare=False)
    region_of = _per_environment("--region", regions, environments, bare=True)

    def value(key: str, question: str, option: str) -> str:
        if ask is None:
            raise InitError(
                f"init: {option} is missing and there is no terminal to ask on (CI, or input"
                " is not a terminal): pass it as a flag"
            )
        return ask(question, now.get(key, "")).strip() or now.get(key, "")

    chosen: dict[str, Any] = {
        name: given.get(name) or value(name, question, flag(name))
        for name, question in QUESTIONS.items()
    }
    chosen["services"] = _names(chosen["services"])
    for env in environments:
        if env not in account_of:
            account_of[env] = value(
                f"account:{env}", f"AWS account id of {env}", f"--account {env}=ID"
            )
        if env not in region_of:
            region_of[env] = value(f"region:{env}", f"Region of {env}", f"--region {env}=REGION")
    return Choices(**chosen, accounts=account_of, regions=region_of)


def _names(given: str | Sequence[str]) -> tuple[str, ...]:
    """The services' names from ``--service`` flags or a comma-separated answer, each once."""
    items = given.split(",") if isinstance(given, str) else given
    return tuple(dict.fromkeys(name.strip() for name in items if name.strip()))


# -- editing YAML as text -------------------------------------------------------------------


def _scalar(value: str, style: str | None = None) -> str:
    """``value`` as a YAML scalar: in the style the file used, plain when that reads back."""
    if style == '"':
        return json.dumps(value)
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    plain = bool(value) and value == value.strip() and "#" not in value and ": " not in value
    if plain:
        try:
            plain = parse_yaml(f"k: {value}", "(value)") == {"k": value}
        except ConfigError:
            plain = False
    return value if plain else json.dumps(value)


def _last_index(node: yaml.Node) -> int:
    """Where the last scalar of ``node`` ends (a block mapping's end mark is past its comments)."""
    if isinstance(node, yaml.ScalarNode):
        return node.end_mark.index
    children: list[yaml.Node] = []
    if isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    return max((_last_index(child) for child in children), default=node.end_mark.index)


def _block(keys: Sequence[str], value: str, indent: int) -> str:
    lines = [f"{' ' * (indent + 2 * depth)}{key}:" for depth, key in enumerate(keys[:-1])]
    lines.append(f"{' ' * (indent + 2 * (len(keys) - 1))}{keys[-1]}: {_scalar(value)}")
    return "\n".join(lines)


def set_value(text: str, where: str, path: Sequence[str], value: str) -> str:
    """``text`` with the value at ``path`` (keys of nested block mappings) set to ``value``.

    A missing key is added after the mapping's last entry (a missing mapping as a nested
    block); an empty ``{}`` or empty value becomes a block. Comments and layout are kept.
    """
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    dotted = ".".join(path)
    if not isinstance(node, yaml.MappingNode):
        raise InitError(f"{where}: cannot set {dotted}: the file is not a mapping")
    parent_column = -2
    for depth, key in enumerate(path):
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            at = node.start_mark.index
            block = _block(path[depth:], value, parent_column + 2)
            return f"{text[:at].rstrip(' ')}\n{block}{text[node.end_mark.index :]}"
        if not isinstance(node, yaml.MappingNode):
            raise InitError(f"{where}: cannot set {dotted}: {'.'.join(path[:depth])} is a value")
        found = next(
            ((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key),
            None,
        )
        if found is None:
            if node.flow_style and node.value:
                raise InitError(
                    f"{where}: cannot set {dotted}: write {'.'.join(path[:depth]) or 'the file'}"
                    " as a block mapping (one key per line)"
                )
            if not node.value:  # `{}`: the block replaces it
                block = _block(path[depth:], value, parent_column + 2)
                start, end = node.start_mark.index, node.end_mark.index
                return f"{text[:start].rstrip(' ')}\n{block}{text[end:]}"
            indent = node.value[0][0].start_mark.column
            at = text.find("\n", _last_index(node))
            at = len(text) if at < 0 else at
            return f"{text[:at]}\n{_block(path[depth:], value, indent)}{text[at:]}"
        key_node, node = found
        parent_column = key_node.start_mark.column
    if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
        raise InitError(f"{where}: cannot set {dotted}: it holds a {node.tag.rsplit(':', 1)[-1]}")
    start, end = node.start_mark.index, node.end_mark.index
    new = _scalar(value, node.style)
    rest = text[end:]
    gap = len(rest) - len(rest.lstrip(" "))
    if rest[gap : gap + 1] == "#":  # keep a trailing comment in its column where there is room
        rest = " " * max(1, gap + (end - start) - len(new)) + rest[gap:]
    return text[:start] + new + rest


def set_services(text: str, where: str, names: Sequence[str]) -> str:
    """``text`` with the ``services`` mapping holding ``names``, in that order: a service it
    holds already keeps its entry (settings and comments on its lines), a new one is
    ``name: {}``, one not named is removed; without a ``services`` key, one is added at the end.
    """
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        raise InitError(f"{where}: cannot set {platform_services.KEY}: the file is not a mapping")
    found = next(
        (
            (k, v)
            for k, v in root.value
            if isinstance(k, yaml.ScalarNode) and k.value == platform_services.KEY
        ),
        None,
    )
    if found is None:
        entries = "".join(f"  {name}: {{}}\n" for name in names)
        return f"{text.rstrip(chr(10))}\n{platform_services.KEY}:\n{entries}"
    key, node = found
    if not isinstance(node, yaml.MappingNode) or node.flow_style or not node.value:
        start, end = node.start_mark.index, node.end_mark.index
        block = "\n".join(f"{' ' * (key.start_mark.column + 2)}{name}: {{}}" for name in names)
        return f"{text[:start].rstrip(' ')}\n{block}{text[end:]}"

    def line_end(index: int) -> int:
        at = text.find("\n", index)
        return len(text) if at < 0 else at

    held = {
        str(k.value): text[k.start_mark.index : line_end(_last_index(v))] for k, v in node.value
    }
    indent = " " * node.value[0][0].start_mark.column
    start = node.value[0][0].start_mark.index
    end = line_end(_last_index(node))
    block = f"\n{indent}".join(held.get(name, f"{name}: {{}}") for name in names)
    return text[:start] + block + text[end:]


def _with(data: Any, path: Sequence[str], value: Any) -> Any:
    """A copy of ``data`` with ``path`` set (the data the edited text must parse to)."""
    if not path:
        return value
    copy = dict(data) if isinstance(data, dict) else {}
    copy[path[0]] = _with(copy.get(path[0]), path[1:], value)
    return copy


@dataclass
class _File:
    path: Path
    where: str
    text: str
    data: dict[str, Any]

    def set(self, path: Sequence[str], value: str) -> None:
        self.text = set_value(self.text, self.where, path, value)
        self.data = _with(self.data, path, value)

    def set_services(self, names: Sequence[str]) -> None:
        held = self.data.get(platform_services.KEY)
        held = held if isinstance(held, dict) else {}
        if list(held) == list(names):
            return  # already these services, in this order: nothing to write
        self.text = set_services(self.text, self.where, names)
        self.data = {
            **self.data,
            platform_services.KEY: {name: held.get(name, {}) for name in names},
        }

    def checked(self) -> dict[str, Any]:
        """The edited text, parsed; an InitError unless it is exactly the intended data."""
        parsed = parse_yaml(self.text, self.where) or {}
        if parsed != self.data:
            raise InitError(
                f"{self.where}: the edit would not read back as intended (an unusual layout);"
                " set the values by hand, or rewrite the file in block style"
            )
        return parsed


# -- checking and writing ---------------------------------------------------------------------


def _read_args(layer: Layer, platform: Platform, files: Any) -> None:
    """Run ``layer``'s own (pure) config reader on ``files`` as a plan would; its ConfigError if
    not."""
    from shared.naming import Label
    from shared.stackconfig import StackValues, config_values

    values, secret_keys = config_values(files)
    load = importlib.import_module(f"stacks.{layer.name}.config").load
    load(StackValues(files, values, frozenset(secret_keys)), platform, Label(platform, layer))


def prepare(choices: Choices, root: Path | None = None) -> list[_File]:
    """Every file with the choices applied, checked as a plan checks them; nothing written."""
    root = root or layers.CONFIG_ROOT
    from shared.stackconfig import check_stack_file

    platform = _File(root / PLATFORM, PLATFORM, *_read(root, root / PLATFORM))
    platform.set(("namespace",), choices.namespace)
    platform.set(("repository",), choices.repository)
    environments = _environments(platform.data)
    for env in environments:
        platform.set(("environments", env, "accountId"), choices.accounts[env])
        platform.set(("environments", env, "region"), choices.regions[env])
    platform.set_services(choices.services)
    platforms = check_platform(platform.checked(), PLATFORM)
    files = [platform]
    for layer in LAYERS:
        declared = (
            _read(layer.directory.parents[1], layer.directory / "Pulumi.yaml")[1].get("config")
        ) or {}
        for env in environments:
            path = _stack_path(root, layer, env)
            stack = _File(path, _where(root, path), *_read(root, path))
            for name, stacked in STACKED.items():
                if stacked.layer != layer.name:
                    continue
                key = f"{layer.project}:{stacked.name}"
                new = getattr(choices, name)
                default = (declared.get(stacked.name) or {}).get("default")
                config = stack.data.get("config") or {}
                if key in config or new != default:  # deltas only: a default is not repeated
                    stack.set(("config", key), new)
            layer_files = check_stack_file(layer, env, stack.checked(), stack.where)
            _read_args(layer, platforms[env], layer_files)
            files.append(stack)
    return files


def init(choices: Choices, root: Path | None = None) -> list[str]:
    """Apply ``choices`` to the files under ``root``; the lines to print.

    Every file is prepared and checked first; a ConfigError or InitError leaves all untouched.
    """
    root = root or layers.CONFIG_ROOT
    files = prepare(choices, root)
    lines = []
    for file in files:
        if file.text == file.path.read_text(encoding="utf-8"):
            lines.append(f"unchanged {file.where}")
            continue
        file.path.write_text(file.text, encoding="utf-8")
        lines.append(f"wrote     {file.where}")
    return lines


__all__ = [
    "QUESTIONS",
    "STACKED",
    "Choices",
    "InitError",
    "current",
    "flag",
    "init",
    "prepare",
    "resolve",
    "set_services",
    "set_value",
]

"""The layer graph, written once.

Everything that needs the layers or their order reads it from here: the tasks (deploy order,
reverse destroy, the downstream guard), the offline plan, the tests, the check of the CI matrix
and of CODEOWNERS. Adding a layer means adding one entry below and a folder under ``stacks/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from shared.errors import PlatformError

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The repository's root folder."""

STACKS_DIR = REPO_ROOT / "stacks"
"""The layers' code, each under its folder with its ``Pulumi.yaml`` (the declarations)."""

CONFIG_DIR_VARIABLE = "PLATFORM_CONFIG_DIR"
"""The environment variable that points the configuration at another folder (the tests do)."""


def _config_root() -> Path:
    value = os.environ.get(CONFIG_DIR_VARIABLE, "")
    return Path(value).resolve() if value else REPO_ROOT


CONFIG_ROOT = _config_root()
"""Where an organisation's configuration is read: ``platform.yaml`` and each layer's stack files
(``stacks/<layer>/Pulumi.<env>.yaml``), in the repository's layout. The repository's root,
unless ``PLATFORM_CONFIG_DIR`` names another folder: the tests point it at the configuration they
own (``tests/fixtures/config``), so they never depend on the one a team writes. Read here only;
a real stack command refuses it (Pulumi reads the stack files next to ``Pulumi.yaml``)."""


@dataclass(frozen=True)
class Layer:
    """One independently deployed Pulumi project under ``stacks/``."""

    name: str
    """Folder name under ``stacks/`` and the ``Layer`` tag."""
    project: str
    """The Pulumi project name (``name:`` in the layer's ``Pulumi.yaml``)."""
    owner: str
    """The team that owns the layer: its ``Owner`` tag and its CODEOWNERS entry."""
    depends_on: tuple[str, ...]
    """Layers whose exports this layer reads through StackReferences."""
    description: str
    """One line for the README and ``./dev --list`` help."""

    @property
    def directory(self) -> Path:
        """The Pulumi project folder (the work dir of the Automation API workspace)."""
        return STACKS_DIR / self.name

    @property
    def config_directory(self) -> Path:
        """Where the layer's stack files are: ``stacks/<layer>/`` under :data:`CONFIG_ROOT`."""
        return CONFIG_ROOT / "stacks" / self.name

    def stack_file(self, environment: str) -> Path:
        """``Pulumi.<environment>.yaml``: what differs in that environment."""
        return self.config_directory / f"Pulumi.{environment}.yaml"


LAYERS: tuple[Layer, ...] = (
    Layer(
        name="foundation",
        project="platform-foundation",
        owner="platform-foundation",
        depends_on=(),
        description="KMS key, artifact bucket, GitHub token secret, failure topic",
    ),
    Layer(
        name="registry",
        project="platform-registry",
        owner="platform-registry",
        depends_on=("foundation",),
        description="ECR repository for the application image",
    ),
    Layer(
        name="pipeline",
        project="platform-pipeline",
        owner="platform-delivery",
        depends_on=("foundation", "registry"),
        description="IAM, CodeBuild, the five-stage CodePipeline, events and notifications",
    ),
)


class UnknownLayerError(PlatformError):
    """A layer name that is not in the graph."""


@cache
def _by_name() -> dict[str, Layer]:
    return {layer.name: layer for layer in LAYERS}


def names() -> tuple[str, ...]:
    """Layer names in dependency order."""
    return tuple(layer.name for layer in order())


def get(name: str) -> Layer:
    """The layer called ``name``; an error listing the valid names otherwise."""
    try:
        return _by_name()[name]
    except KeyError:
        valid = ", ".join(layer.name for layer in LAYERS)
        raise UnknownLayerError(f"unknown layer '{name}': valid layers are {valid}") from None


@cache
def order() -> tuple[Layer, ...]:
    """All layers, each after every layer it depends on (a stable topological sort)."""
    done: list[Layer] = []
    seen: set[str] = set()

    def visit(layer: Layer, path: tuple[str, ...]) -> None:
        if layer.name in seen:
            return
        if layer.name in path:
            cycle = " -> ".join((*path, layer.name))
            raise ValueError(f"the layer graph has a cycle: {cycle}")
        for dep in layer.depends_on:
            visit(get(dep), (*path, layer.name))
        seen.add(layer.name)
        done.append(layer)

    for layer in LAYERS:
        visit(layer, ())
    return tuple(done)


def upstream(name: str) -> tuple[Layer, ...]:
    """Every layer ``name`` needs, transitively, in dependency order (itself excluded)."""
    wanted: set[str] = set()
    stack = list(get(name).depends_on)
    while stack:
        dep = stack.pop()
        if dep not in wanted:
            wanted.add(dep)
            stack.extend(get(dep).depends_on)
    return tuple(layer for layer in order() if layer.name in wanted)


def downstream(name: str) -> tuple[Layer, ...]:
    """Every layer that needs ``name``, transitively, in dependency order."""
    get(name)
    return tuple(layer for layer in order() if name in {u.name for u in upstream(layer.name)})


def selection(name: str | None) -> tuple[Layer, ...]:
    """The layers a task acts on: one layer when named, otherwise all, in dependency order."""
    return (get(name),) if name else order()

"""Reads and validates the registry layer's config into :class:`RegistryArgs`.

One repository per service (``services`` in platform.yaml). Each repository's settings are the
layer's config (``Pulumi.yaml`` defaults, ``Pulumi.<env>.yaml``) overlaid by what the service
states for itself (``shared/services.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared import services
from shared.errors import ConfigError
from shared.naming import Kind, Label
from shared.settings import PLATFORM_FILE, Platform, relative
from shared.stackconfig import ServiceConfig, StackConfig, StackValues


@dataclass(frozen=True)
class RepositoryArgs:
    """One service's repository, validated and with its name checked."""

    service: str
    """The service whose images it holds."""
    repository_name: str
    """The ECR repository's name."""
    keep_images: int
    """How many tagged images the lifecycle policy keeps (the newest), besides production's."""
    untagged_expiry_days: int
    """Days after which untagged images expire."""


@dataclass(frozen=True)
class RegistryArgs:
    """Everything the registry component needs, validated and with its names checked."""

    repositories: tuple[RepositoryArgs, ...]
    """One per service, the application's first."""
    protect: bool
    """Protect the repositories from deletion (and keep their images on destroy)."""


def _repository(
    config: StackConfig, label: Label, service: str
) -> tuple[RepositoryArgs, tuple[str, str]]:
    """One service's repository, and where its name comes from (for error lines)."""
    purpose = config.string(
        "repositoryName",
        pattern=r"[a-z0-9]+(?:[._-][a-z0-9]+)*",
        allowed="lowercase a-z 0-9 with . _ - between them",
        optional=True,
    )
    blame = (
        config.where("repositoryName")
        if purpose
        else (relative(PLATFORM_FILE), f"{services.KEY}.{service}")
    )
    repository = RepositoryArgs(
        service=service,
        repository_name=label.name(Kind.ECR_REPOSITORY, purpose or service, blame=blame),
        keep_images=config.integer("keepImages", minimum=1, maximum=1000),
        untagged_expiry_days=config.integer("untaggedExpiryDays", minimum=1, maximum=365),
    )
    return repository, blame


def load(values: StackValues, platform: Platform, label: Label) -> RegistryArgs:
    """Validate the registry config; a ConfigError naming file and key on bad input."""
    repositories: list[RepositoryArgs] = []
    # By repository name: the service that has it, and where its name comes from.
    taken: dict[str, tuple[str, tuple[str, str]]] = {}
    for service in platform.services:
        config = ServiceConfig(values, service)
        repository, blame = _repository(config, label, service.name)
        other, named = taken.setdefault(repository.repository_name, (service.name, blame))
        if other != service.name:
            # The line that names the repository: this service's repositoryName, or else
            # the other's (a name it states that is this service's own).
            raise ConfigError(
                *(blame if blame[1].endswith("repositoryName") else named),
                f"services {other} and {service.name} would share the repository"
                f" {repository.repository_name}",
                "a repository of its own for each service (a repositoryName no other uses)",
            )
        repositories.append(repository)
    return RegistryArgs(repositories=tuple(repositories), protect=platform.protect)

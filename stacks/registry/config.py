"""Reads and validates the registry layer's config into :class:`RegistryArgs`."""

from __future__ import annotations

from dataclasses import dataclass

from shared.naming import Kind, Label
from shared.settings import Platform
from shared.stackconfig import StackConfig, StackValues


@dataclass(frozen=True)
class RegistryArgs:
    """Everything the registry component needs, validated and with its names checked."""

    repository_name: str
    """The ECR repository's name."""
    keep_images: int
    """How many images the lifecycle policy keeps of each image family."""
    image_families: tuple[str, ...]
    """The image families (tag prefixes) sharing the repository; the application's first (an
    environment-wide setting, ``imageFamilies`` in platform.yaml: the pipeline reads it too)."""
    untagged_expiry_days: int
    """Days after which untagged images expire."""
    protect: bool
    """Protect the repository from deletion (and keep its images on destroy)."""


def load(values: StackValues, platform: Platform, label: Label) -> RegistryArgs:
    """Validate the registry config; a ConfigError naming file and key on bad input."""
    config = StackConfig(values)
    purpose = config.string(
        "repositoryName",
        pattern=r"[a-z0-9]+(?:[._-][a-z0-9]+)*",
        allowed="lowercase a-z 0-9 with . _ - between them",
    )
    return RegistryArgs(
        repository_name=label.name(
            Kind.ECR_REPOSITORY,
            purpose,
            blame=config.where("repositoryName"),
        ),
        keep_images=config.integer("keepImages", minimum=1, maximum=1000),
        image_families=platform.image_families,
        untagged_expiry_days=config.integer("untaggedExpiryDays", minimum=1, maximum=365),
        protect=platform.protect,
    )

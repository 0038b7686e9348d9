"""What every layer's ``__main__.py`` does first: read the environment and config, tag, pick the
provider.

Reading happens in :class:`Program`'s constructor, before any resource exists: the platform
settings, and the config values the engine hands the program (:attr:`Program.values`), which
the layer's pure reader (``load(values, platform, label)``) then validates. The provider is
registered only when :meth:`Program.resource_options` is first asked for, after that. Nothing
half-applied on bad input.
"""

from __future__ import annotations

from functools import cached_property

import pulumi
import pulumi_aws as aws

from shared.layers import Layer, get
from shared.naming import Label
from shared.replacement import apply_delete_before_replace
from shared.settings import Platform, load_platform
from shared.stackconfig import StackValues, program_values
from shared.tagging import apply_default_tags


class Program:
    """The context of one layer's program in one environment (the stack)."""

    def __init__(self, layer: str) -> None:
        self.layer: Layer = get(layer)
        self.platform: Platform = load_platform(pulumi.get_stack())
        self.label = Label(self.platform, self.layer)
        self.values: StackValues = program_values(self.layer, self.platform.environment)
        apply_default_tags(self.label.tags)
        apply_delete_before_replace()

    @cached_property
    def provider(self) -> aws.Provider:
        """The layer's AWS provider: the environment's region, and only its account."""
        return aws.Provider(
            f"aws-{self.platform.environment}",
            region=self.platform.region,
            allowed_account_ids=[self.platform.account_id],
        )

    def resource_options(self) -> pulumi.ResourceOptions:
        """Options for the layer's component: children inherit the provider."""
        return pulumi.ResourceOptions(providers={"aws": self.provider})

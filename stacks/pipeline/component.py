"""The pipeline component (filled in by the pipeline issue): consumes both upstream contracts."""

from __future__ import annotations

import pulumi

from shared.contracts import FoundationOutputs, RegistryOutputs
from stacks.pipeline.config import PipelineArgs


class Pipeline(pulumi.ComponentResource):
    """The production container pipeline."""

    def __init__(
        self,
        name: str,
        args: PipelineArgs,
        foundation: FoundationOutputs,
        registry: RegistryOutputs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("acme:pipeline:Pipeline", name, None, opts)
        self.args = args
        self.register_outputs(
            {
                "artifactBucketArn": foundation.artifact_bucket_arn,
                "repositoryArn": registry.repository_arn,
            }
        )

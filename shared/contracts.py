"""What each layer exports, as one typed definition per layer.

The producer exports through :meth:`Contract.export` and the consumer reads through
:meth:`Contract.read`, so a renamed or dropped key fails a test (and the offline plan), not a
deploy. Reads use the StackReference per key and check each value's type; a missing stack or
key is one line naming the stack, the key and the command that creates it. Fields marked
``secret`` are exported as Pulumi secrets and stay secret on the consumer's side.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import pulumi

from shared.errors import UpstreamError
from shared.layers import get as get_layer


def output(key: str, doc: str, *, kind: type = str, secret: bool = False) -> Any:
    """Declare one exported value: its stack output key, meaning, JSON type and secrecy."""
    return dataclasses.field(metadata={"key": key, "doc": doc, "kind": kind, "secret": secret})


@dataclass(frozen=True)
class ExportSpec:
    """One exported key as the contract defines it."""

    attribute: str
    key: str
    doc: str
    kind: type
    secret: bool


def stack_name(organization: str, layer: str, environment: str) -> str:
    """The fully qualified name of a layer's stack: ``<org>/<project>/<env>``."""
    return f"{organization}/{get_layer(layer).project}/{environment}"


def create_command(layer: str, environment: str) -> str:
    """The command that creates (or updates) a layer's stack, runnable from the repository root.

    ``./dev`` is the one form every message and doc uses: it works in a plain shell (it builds
    ``.venv`` on first use); ``invoke`` is the same command once ``.venv`` is activated.
    """
    return f"./dev deploy --layer {layer} --env {environment}"


@dataclass(frozen=True)
class Contract:
    """Base of the per-layer contracts: a frozen dataclass of Outputs, one per export."""

    LAYER: ClassVar[str]

    @classmethod
    def specs(cls) -> tuple[ExportSpec, ...]:
        """Every exported key of the contract, in declaration order."""
        return tuple(
            ExportSpec(
                f.name,
                f.metadata["key"],
                f.metadata["doc"],
                f.metadata["kind"],
                f.metadata["secret"],
            )
            for f in dataclasses.fields(cls)
        )

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The stack output keys the contract exports."""
        return tuple(spec.key for spec in cls.specs())

    def export(self) -> None:
        """Export every field as a stack output (secret fields as secrets)."""
        for spec in self.specs():
            value = getattr(self, spec.attribute)
            pulumi.export(spec.key, pulumi.Output.secret(value) if spec.secret else value)

    @classmethod
    def check(cls, outputs: dict[str, Any], stack: str, environment: str) -> None:
        """Raise UpstreamError unless ``outputs`` holds every key of the contract, well typed.

        The tasks call this on a real stack's outputs before a deploy; the offline plan calls it
        on the upstream layer's exports.
        """
        for spec in cls.specs():
            cls._checked(spec, outputs.get(spec.key), stack, environment)

    @classmethod
    def _checked(cls, spec: ExportSpec, value: Any, stack: str, environment: str) -> Any:
        fix = create_command(cls.LAYER, environment)
        if value is None:
            raise UpstreamError(
                f"stack {stack} does not export '{spec.key}' ({spec.doc}); run `{fix}`"
            )
        if not isinstance(value, spec.kind):
            raise UpstreamError(
                f"stack {stack} exports '{spec.key}' as {type(value).__name__}, expected"
                f" {spec.kind.__name__}; run `{fix}` to update it"
            )
        return value

    @classmethod
    def read(
        cls, organization: str, environment: str, opts: pulumi.ResourceOptions | None = None
    ) -> Self:
        """Read the upstream layer's exports through a StackReference, typed and checked."""
        stack = stack_name(organization, cls.LAYER, environment)
        ref = pulumi.StackReference(f"{cls.LAYER}-{environment}", stack_name=stack, opts=opts)
        values = {
            spec.attribute: ref.get_output(spec.key).apply(
                lambda value, spec=spec: cls._checked(spec, value, stack, environment)
            )
            for spec in cls.specs()
        }
        return cls(**values)


@dataclass(frozen=True)
class FoundationOutputs(Contract):
    """Exports of ``stacks/foundation``."""

    LAYER: ClassVar[str] = "foundation"

    kms_key_arn: pulumi.Output[str] = output("kmsKeyArn", "ARN of the platform KMS key")
    kms_key_alias: pulumi.Output[str] = output("kmsKeyAlias", "alias of the platform KMS key")
    artifact_bucket_name: pulumi.Output[str] = output(
        "artifactBucketName", "name of the pipeline artifact bucket"
    )
    artifact_bucket_arn: pulumi.Output[str] = output(
        "artifactBucketArn", "ARN of the pipeline artifact bucket"
    )
    github_token_secret_arn: pulumi.Output[str] = output(
        "githubTokenSecretArn", "ARN of the Secrets Manager secret holding the GitHub token"
    )
    failure_topic_arn: pulumi.Output[str] = output(
        "failureTopicArn", "ARN of the SNS topic for pipeline failures"
    )
    source_bucket_name: pulumi.Output[str] = output(
        "sourceBucketName", "name of the S3 source bucket (sourceProvider s3)"
    )
    source_bucket_arn: pulumi.Output[str] = output(
        "sourceBucketArn", "ARN of the S3 source bucket (sourceProvider s3)"
    )
    github_webhook_secret_arn: pulumi.Output[str] = output(
        "githubWebhookSecretArn",
        "ARN of the Secrets Manager secret holding the GitHub webhook's HMAC token",
    )
    ledger_table_name: pulumi.Output[str] = output(
        "ledgerTableName", "name of the DynamoDB deployment ledger"
    )
    ledger_table_arn: pulumi.Output[str] = output(
        "ledgerTableArn", "ARN of the DynamoDB deployment ledger"
    )


@dataclass(frozen=True)
class RegistryOutputs(Contract):
    """Exports of ``stacks/registry``."""

    LAYER: ClassVar[str] = "registry"

    repository_name: pulumi.Output[str] = output("repositoryName", "name of the ECR repository")
    repository_arn: pulumi.Output[str] = output("repositoryArn", "ARN of the ECR repository")
    repository_url: pulumi.Output[str] = output("repositoryUrl", "URL to push the image to")


@dataclass(frozen=True)
class PipelineOutputs(Contract):
    """Exports of ``stacks/pipeline``."""

    LAYER: ClassVar[str] = "pipeline"

    pipeline_name: pulumi.Output[str] = output("pipelineName", "name of the CodePipeline")
    pipeline_arn: pulumi.Output[str] = output("pipelineArn", "ARN of the CodePipeline")
    pipeline_console_url: pulumi.Output[str] = output(
        "pipelineConsoleUrl", "AWS console page of the pipeline"
    )
    project_names: pulumi.Output[dict] = output(
        "projectNames", "CodeBuild project names by duty (and service-<name>)", kind=dict
    )
    role_arns: pulumi.Output[dict] = output(
        "roleArns", "IAM role ARNs by duty (pipeline, events, CodeBuild duties)", kind=dict
    )
    log_group_names: pulumi.Output[dict] = output(
        "logGroupNames",
        "CloudWatch log group names by CodeBuild project key and by handler",
        kind=dict,
    )
    handler_arns: pulumi.Output[dict] = output(
        "handlerArns", "Lambda function ARNs by handler (recorder, deploy-handler)", kind=dict
    )
    image_uri: pulumi.Output[str] = output(
        "imageUri", "the image in production: the repository URL with the production tag"
    )
    github_webhook_url: pulumi.Output[str] = output(
        "githubWebhookUrl",
        "URL of the GitHub source's CodePipeline webhook ('' for the other sources)",
    )


CONTRACTS: dict[str, type[Contract]] = {
    contract.LAYER: contract for contract in (FoundationOutputs, RegistryOutputs, PipelineOutputs)
}
"""The contract of each layer that has one, by layer name."""

"""What each layer exports, as one typed definition per layer.

The producer exports through :meth:`Contract.export` and the consumer reads through
:meth:`Contract.read`, so a renamed or dropped key fails a test (and the offline plan), not a
deploy. Reads use the StackReference per key and check each value's type; a missing stack or
key is one line naming the stack, the key and the command that creates it. Fields marked
``secret`` are exported as Pulumi secrets and stay secret on the consumer's side.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar

import pulumi

from shared.errors import UpstreamError
from shared.layers import get as get_layer

V = TypeVar("V")


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


def by_key(values: Mapping[str, V], value: Callable[[V], pulumi.Input[Any]]) -> pulumi.Output[dict]:
    """One output of each of ``values``, by its key: how a layer exports what it has once per
    service (or per duty) as one mapping."""
    return pulumi.Output.all(**{key: value(item) for key, item in values.items()})


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

    repository_names: pulumi.Output[dict] = output(
        "repositoryNames", "each service's ECR repository name, by service", kind=dict
    )
    repository_arns: pulumi.Output[dict] = output(
        "repositoryArns", "each service's ECR repository ARN, by service", kind=dict
    )
    repository_urls: pulumi.Output[dict] = output(
        "repositoryUrls", "the URL each service's image is pushed to, by service", kind=dict
    )

    def repository(self, service: str) -> Repository:
        """``service``'s repository, its values read out of the by-service exports."""

        def of(values: pulumi.Output[dict]) -> pulumi.Output[str]:
            return values.apply(lambda found: _for_service(found, service, self.LAYER))

        return Repository(
            of(self.repository_names), of(self.repository_arns), of(self.repository_urls)
        )


@dataclass(frozen=True)
class Repository:
    """One service's repository, as the pipeline layer uses it."""

    name: pulumi.Output[str]
    arn: pulumi.Output[str]
    url: pulumi.Output[str]


def _for_service(values: dict, service: str, layer: str) -> str:
    """``values[service]``, or one line saying the upstream stack predates the service."""
    if service not in values:
        raise UpstreamError(
            f"the {layer} layer has no repository for service '{service}' (it has"
            f" {', '.join(sorted(values)) or 'none'}); run `./dev deploy --layer {layer}` first"
        )
    return values[service]


@dataclass(frozen=True)
class PipelineOutputs(Contract):
    """Exports of ``stacks/pipeline``."""

    LAYER: ClassVar[str] = "pipeline"

    pipeline_names: pulumi.Output[dict] = output(
        "pipelineNames", "each service's CodePipeline name, by service", kind=dict
    )
    pipeline_arns: pulumi.Output[dict] = output(
        "pipelineArns", "each service's CodePipeline ARN, by service", kind=dict
    )
    pipeline_console_urls: pulumi.Output[dict] = output(
        "pipelineConsoleUrls", "AWS console page of each service's pipeline, by service", kind=dict
    )
    project_names: pulumi.Output[dict] = output(
        "projectNames", "CodeBuild project names by service, then by duty", kind=dict
    )
    role_arns: pulumi.Output[dict] = output(
        "roleArns",
        "IAM role ARNs by service, then by duty; the layer's own (recorder) under ''",
        kind=dict,
    )
    log_group_names: pulumi.Output[dict] = output(
        "logGroupNames",
        "log group names by service, then by CodeBuild project or handler; the recorder's under ''",
        kind=dict,
    )
    handler_arns: pulumi.Output[dict] = output(
        "handlerArns",
        "Lambda function ARNs by service (its deploy handler); the recorder's under ''",
        kind=dict,
    )
    image_uris: pulumi.Output[dict] = output(
        "imageUris",
        "each service's image in production (its repository URL with the production tag)",
        kind=dict,
    )
    github_webhook_urls: pulumi.Output[dict] = output(
        "githubWebhookUrls",
        "by service, the URL of its GitHub source's CodePipeline webhook ('' for other sources)",
        kind=dict,
    )


CONTRACTS: dict[str, type[Contract]] = {
    contract.LAYER: contract for contract in (FoundationOutputs, RegistryOutputs, PipelineOutputs)
}
"""The contract of each layer that has one, by layer name."""

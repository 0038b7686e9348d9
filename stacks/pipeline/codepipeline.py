"""The five-stage CodePipeline: Source, Build, Test, SecurityScan, Deploy.

The stage list is built by a plain function of the config, so the shape of the pipeline (names,
order, parallel tests, the approval inside Deploy) is decided in one readable place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from stacks.pipeline import names
from stacks.pipeline.config import PipelineArgs

STAGES = ("Source", "Build", "Test", "SecurityScan", "Deploy")
"""Exactly these five stages, in this order (the customer's constraint)."""

SOURCE_ARTIFACT = "SourceOutput"
BUILD_ARTIFACT = "BuildOutput"
IMAGE_DEFINITIONS = "imagedefinitions.json"
BUILD_VARIABLES = "BuildVariables"
"""Namespace of the DockerBuild action's exported variables (IMAGE_TAG, COMMIT_ID)."""


@dataclass(frozen=True)
class DeployGate:
    """What runs after the ECS deploy inside the Deploy stage, and how the stage ends."""

    action: Callable[[int], aws.codepipeline.PipelineStageActionArgs]
    """The action, given the run order after every other Deploy action."""
    on_failure: aws.codepipeline.PipelineStageOnFailureArgs | None = None
    """What the stage does when an action fails (``ROLLBACK``)."""
    on_success: aws.codepipeline.PipelineStageOnSuccessArgs | None = None
    """A condition checked before the stage succeeds (the bake's alarms), or None."""


def console_url(args: PipelineArgs) -> str:
    """The pipeline's page in the AWS console."""
    return (
        f"https://{args.region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/"
        f"{names.pipeline(args.label)}/view?region={args.region}"
    )


def _build_action(
    name: str,
    project_name: str,
    artifact: str,
    output: str | None = None,
    run_order: int = 1,
    *,
    namespace: str | None = None,
) -> aws.codepipeline.PipelineStageActionArgs:
    return aws.codepipeline.PipelineStageActionArgs(
        name=name,
        category="Build",
        owner="AWS",
        provider="CodeBuild",
        version="1",
        input_artifacts=[artifact],
        configuration={"ProjectName": project_name},
        output_artifacts=[output] if output else None,
        run_order=run_order,
        namespace=namespace,
    )


def stages(
    args: PipelineArgs,
    project_names: Mapping[str, str],
    source: aws.codepipeline.PipelineStageActionArgs,
    *,
    gate: DeployGate | None = None,
) -> list[aws.codepipeline.PipelineStageArgs]:
    """The five stages, in order. Unit and integration tests share a run order (parallel).

    ``source`` is the provider's Source action (``stacks.pipeline.sources``); ``gate`` the
    release flow's action after the ECS deploy and the Deploy stage's rollback
    (``stacks.pipeline.releases``).
    """
    deploy: list[aws.codepipeline.PipelineStageActionArgs] = []
    if args.require_approval:
        deploy.append(
            aws.codepipeline.PipelineStageActionArgs(
                name="Approve",
                category="Approval",
                owner="AWS",
                provider="Manual",
                version="1",
                configuration={
                    "CustomData": (
                        f"Deploy the scanned image to ECS service {args.ecs_service}"
                        f" in cluster {args.ecs_cluster}?"
                    )
                },
                run_order=1,
            )
        )
    deploy.append(
        aws.codepipeline.PipelineStageActionArgs(
            name="DeployToEcs",
            category="Deploy",
            owner="AWS",
            provider="ECS",
            version="1",
            input_artifacts=[BUILD_ARTIFACT],
            configuration={
                "ClusterName": args.ecs_cluster,
                "ServiceName": args.ecs_service,
                "FileName": IMAGE_DEFINITIONS,
            },
            run_order=len(deploy) + 1,
        )
    )
    if gate is not None:
        deploy.append(gate.action(len(deploy) + 1))
    actions = {
        "Source": [source],
        "Build": [
            # Its exported IMAGE_TAG and COMMIT_ID reach the deploy handler (releases.py).
            _build_action(
                "DockerBuild",
                project_names["docker-build"],
                SOURCE_ARTIFACT,
                BUILD_ARTIFACT,
                namespace=BUILD_VARIABLES,
            )
        ],
        "Test": [
            _build_action("UnitTests", project_names["unit-tests"], SOURCE_ARTIFACT),
            _build_action("IntegrationTests", project_names["integration-tests"], SOURCE_ARTIFACT),
        ],
        # The scan reads which image to check from the Build stage's imagedefinitions.json.
        "SecurityScan": [
            _build_action("ImageScan", project_names["security-scan"], BUILD_ARTIFACT)
        ],
        "Deploy": deploy,
    }
    return [
        aws.codepipeline.PipelineStageArgs(
            name=stage,
            actions=actions[stage],
            on_failure=gate.on_failure if gate and stage == "Deploy" else None,
            on_success=gate.on_success if gate and stage == "Deploy" else None,
        )
        for stage in STAGES
    ]


def pipeline(
    resource_name: str,
    args: PipelineArgs,
    *,
    role_arn: pulumi.Input[str],
    bucket_name: pulumi.Input[str],
    key_arn: pulumi.Input[str],
    stage_list: list[aws.codepipeline.PipelineStageArgs],
    triggers: list[aws.codepipeline.PipelineTriggerArgs] | None = None,
    opts: pulumi.ResourceOptions,
) -> aws.codepipeline.Pipeline:
    """The V2 pipeline, its artifacts in the foundation bucket encrypted with the platform key."""
    return aws.codepipeline.Pipeline(
        resource_name,
        name=names.pipeline(args.label),
        pipeline_type="V2",
        # A newer commit supersedes one still waiting: deploy the latest, not every one.
        execution_mode="SUPERSEDED",
        role_arn=role_arn,
        artifact_stores=[
            aws.codepipeline.PipelineArtifactStoreArgs(
                location=bucket_name,
                type="S3",
                encryption_key=aws.codepipeline.PipelineArtifactStoreEncryptionKeyArgs(
                    id=key_arn, type="KMS"
                ),
            )
        ],
        stages=stage_list,
        triggers=triggers,
        opts=opts,
    )

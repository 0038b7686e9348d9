"""The five-stage CodePipeline: Source, Build, Test, SecurityScan, Deploy.

The stage list is built by a plain function of the config, so the shape of the pipeline (names,
order, parallel tests, the approval inside Deploy) is decided in one readable place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

from stacks.pipeline.config import PipelineArgs

STAGES = ("Source", "Build", "Test", "SecurityScan", "Deploy")
"""Exactly these five stages, in this order (the customer's constraint)."""

SOURCE_ARTIFACT = "SourceOutput"
BUILD_ARTIFACT = "BuildOutput"
IMAGE_DEFINITIONS = "imagedefinitions.json"
BUILD_VARIABLES = "BuildVariables"
"""Namespace of the DockerBuild action's exported variables (IMAGE_TAG, COMMIT_ID)."""


def console_url(args: PipelineArgs) -> str:
    """The pipeline's page in the AWS console."""
    return (
        f"https://{args.region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/"
        f"{args.pipeline_name}/view?region={args.region}"
    )


def _build_action(
    name: str,
    project_name: str,
    artifact: str,
    output: str | None = None,
    run_order: int = 1,
    *,
    namespace: str | None = None,
) -> dict[str, Any]:
    action: dict[str, Any] = {
        "name": name,
        "category": "Build",
        "owner": "AWS",
        "provider": "CodeBuild",
        "version": "1",
        "input_artifacts": [artifact],
        "configuration": {"ProjectName": project_name},
        "run_order": run_order,
    }
    if output:
        action["output_artifacts"] = [output]
    if namespace:
        action["namespace"] = namespace
    return action


def _source_action(args: PipelineArgs, oauth_token: pulumi.Input[str] | None) -> dict[str, Any]:
    common = {
        "name": "Source",
        "category": "Source",
        "version": "1",
        "output_artifacts": [SOURCE_ARTIFACT],
        "run_order": 1,
    }
    if args.source_provider == "codeconnections":
        return {
            **common,
            "owner": "AWS",
            "provider": "CodeStarSourceConnection",
            "configuration": {
                "ConnectionArn": args.connection_arn,
                "FullRepositoryId": f"{args.github_owner}/{args.github_repo}",
                "BranchName": args.github_branch,
                "DetectChanges": "true",
                "OutputArtifactFormat": "CODE_ZIP",
            },
        }
    if oauth_token is None:
        raise ValueError("the GitHub source needs the OAuth token")
    return {
        **common,
        "owner": "ThirdParty",
        "provider": "GitHub",
        "configuration": {
            "Owner": args.github_owner,
            "Repo": args.github_repo,
            "Branch": args.github_branch,
            "OAuthToken": oauth_token,
            # GitHub (OAuth app) has no event source without a GitHub-side webhook, so it polls.
            "PollForSourceChanges": "true",
        },
    }


def stages(
    args: PipelineArgs,
    project_names: Mapping[str, str],
    oauth_token: pulumi.Input[str] | None,
) -> list[dict[str, Any]]:
    """The five stages, in order. Unit and integration tests share a run order (parallel)."""
    deploy: list[dict[str, Any]] = []
    if args.require_approval:
        deploy.append(
            {
                "name": "Approve",
                "category": "Approval",
                "owner": "AWS",
                "provider": "Manual",
                "version": "1",
                "configuration": {
                    "CustomData": (
                        f"Deploy the scanned image to ECS service {args.ecs_service}"
                        f" in cluster {args.ecs_cluster}?"
                    )
                },
                "run_order": 1,
            }
        )
    deploy.append(
        {
            "name": "DeployToEcs",
            "category": "Deploy",
            "owner": "AWS",
            "provider": "ECS",
            "version": "1",
            "input_artifacts": [BUILD_ARTIFACT],
            "configuration": {
                "ClusterName": args.ecs_cluster,
                "ServiceName": args.ecs_service,
                "FileName": IMAGE_DEFINITIONS,
            },
            "run_order": len(deploy) + 1,
        }
    )
    actions = {
        "Source": [_source_action(args, oauth_token)],
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
    return [{"name": stage, "actions": actions[stage]} for stage in STAGES]


def pipeline(
    resource_name: str,
    args: PipelineArgs,
    *,
    role_arn: pulumi.Input[str],
    bucket_name: pulumi.Input[str],
    key_arn: pulumi.Input[str],
    stage_list: list[dict[str, Any]],
    opts: pulumi.ResourceOptions,
) -> aws.codepipeline.Pipeline:
    """The V2 pipeline, its artifacts in the foundation bucket encrypted with the platform key."""
    return aws.codepipeline.Pipeline(
        resource_name,
        name=args.pipeline_name,
        pipeline_type="V2",
        # A newer commit supersedes one still waiting: deploy the latest, not every one.
        execution_mode="SUPERSEDED",
        role_arn=role_arn,
        artifact_stores=[
            {
                "location": bucket_name,
                "type": "S3",
                "encryption_key": {"id": key_arn, "type": "KMS"},
            }
        ],
        stages=stage_list,
        opts=opts,
    )

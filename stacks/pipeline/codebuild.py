"""CodeBuild for the pipeline: buildspecs from files, log groups, projects and report groups.

The buildspecs are real YAML files in ``buildspecs/``, read and parsed once per process when the
layer is planned; a broken one stops the plan with one line naming the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path

import pulumi
import pulumi_aws as aws

from shared.errors import PlatformError
from shared.settings import parse_yaml, relative
from stacks.pipeline import names
from stacks.pipeline.config import BuildProject, PipelineArgs

BUILDSPEC_DIR = Path(__file__).resolve().parent / "buildspecs"

COMPUTE_TYPE = "BUILD_GENERAL1_SMALL"
"""The smallest general-purpose instance (3 GB, 2 vCPUs): enough for these builds, cheapest."""

QUEUED_TIMEOUT_MINUTES = 60
"""A build that cannot start within an hour is better failed than left hanging the pipeline."""


@cache
def buildspec(file: str) -> str:
    """The text of ``buildspecs/<file>``, checked to be a version 0.2 buildspec with phases."""
    path = BUILDSPEC_DIR / file
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlatformError(f"{relative(path)}: not a readable buildspec: {exc}") from None
    data = parse_yaml(text, relative(path))
    if not isinstance(data, dict) or str(data.get("version")) != "0.2" or not data.get("phases"):
        raise PlatformError(f"{relative(path)}: a buildspec needs `version: 0.2` and `phases`")
    return text


def log_group(
    resource_name: str,
    project: BuildProject,
    args: PipelineArgs,
    key_arn: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> aws.cloudwatch.LogGroup:
    """The project's own log group: retention from config, encrypted with the platform key."""
    return aws.cloudwatch.LogGroup(
        resource_name,
        name=names.log_group(args.label, project.key),
        retention_in_days=args.log_retention_days,
        kms_key_id=key_arn,
        opts=opts,
    )


def report_group(
    resource_name: str,
    name: str,
    *,
    path: str,
    bucket_name: pulumi.Input[str],
    key_arn: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> aws.codebuild.ReportGroup:
    """A JUnit test report group whose raw results are exported, encrypted, to the artifacts."""
    return aws.codebuild.ReportGroup(
        resource_name,
        name=name,
        type="TEST",
        delete_reports=True,
        export_config=aws.codebuild.ReportGroupExportConfigArgs(
            type="S3",
            s3_destination=aws.codebuild.ReportGroupExportConfigS3DestinationArgs(
                bucket=bucket_name,
                encryption_key=key_arn,
                encryption_disabled=False,
                packaging="NONE",
                path=path,
            ),
        ),
        opts=opts,
    )


def project(
    resource_name: str,
    build: BuildProject,
    args: PipelineArgs,
    *,
    role_arn: pulumi.Input[str],
    key_arn: pulumi.Input[str],
    variables: Mapping[str, pulumi.Input[str]],
    privileged: bool,
    cache_modes: list[str],
    opts: pulumi.ResourceOptions,
) -> aws.codebuild.Project:
    """A CodeBuild project run by CodePipeline: its buildspec, role, key, logs and cache."""
    return aws.codebuild.Project(
        resource_name,
        name=names.project(args.label, build.key),
        description=build.description,
        service_role=role_arn,
        encryption_key=key_arn,
        build_timeout=args.build_timeout_minutes,
        queued_timeout=QUEUED_TIMEOUT_MINUTES,
        source=aws.codebuild.ProjectSourceArgs(
            type="CODEPIPELINE", buildspec=buildspec(build.buildspec)
        ),
        artifacts=aws.codebuild.ProjectArtifactsArgs(type="CODEPIPELINE"),
        environment=aws.codebuild.ProjectEnvironmentArgs(
            compute_type=COMPUTE_TYPE,
            image=args.build_image,
            type="LINUX_CONTAINER",
            image_pull_credentials_type="CODEBUILD",
            privileged_mode=privileged,
            environment_variables=[
                aws.codebuild.ProjectEnvironmentEnvironmentVariableArgs(
                    name=name, value=value, type="PLAINTEXT"
                )
                for name, value in sorted(variables.items())
            ],
        ),
        cache=aws.codebuild.ProjectCacheArgs(type="LOCAL", modes=cache_modes),
        logs_config=aws.codebuild.ProjectLogsConfigArgs(
            cloudwatch_logs=aws.codebuild.ProjectLogsConfigCloudwatchLogsArgs(
                status="ENABLED", group_name=names.log_group(args.label, build.key)
            ),
            s3_logs=aws.codebuild.ProjectLogsConfigS3LogsArgs(status="DISABLED"),
        ),
        opts=opts,
    )

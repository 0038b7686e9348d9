"""The pipeline layer's IAM: one role per duty, each with one inline least-privilege policy.

Every statement names the ARNs it guards; ``Resource: "*"`` only through
``shared.iam.WILDCARD_ALLOWED``. Trust policies name their service and the source conditions AWS
documents for it (``shared.iam.TRUST_CONDITION_KEYS``): this account and the exact resources that
may assume the role, whose ARNs are built from their known names (the role exists before them).
Roles that run the application's npm scripts write only their report prefix of the artifact
bucket; the scan only reads. docs/iam.md has every action with its resource type and source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from shared import iam
from shared.contracts import FoundationOutputs, Repository
from stacks.pipeline import names, sources
from stacks.pipeline.config import BuildProject, PipelineArgs

KEY_USE = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]
"""Encrypting and decrypting artifacts with the platform key; no administration."""

KEY_READ = ["kms:Decrypt", "kms:DescribeKey"]
"""Decrypting artifacts only: for a role that writes nothing."""

ALL_OBJECTS = ("",)
"""``writes`` for a role that may put any object (CodePipeline and the image build)."""

ECR_PUSH = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:CompleteLayerUpload",
    "ecr:DescribeImages",
    "ecr:GetDownloadUrlForLayer",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
]
"""Pushing an image (and pulling its cached layers) to the service's repository."""

INSPECTOR_READS = ["inspector2:ListCoverage", "inspector2:ListFindings"]
"""What a principal needs besides ``ecr:DescribeImageScanFindings`` to retrieve the findings of
enhanced scanning, which Amazon Inspector holds: the read actions of ECR's policy for enhanced
scanning (image-scanning-enhanced-iam.html; its Enable, Disable and ListAccountPermissions turn
scanning on and off, which the pipeline never does). Neither has a resource type in the Service
Authorization Reference: ``*``, in ``shared.iam.WILDCARD_ALLOWED``."""


def inspector_statement() -> iam.Statement:
    """Reading enhanced-scanning findings from Amazon Inspector (:data:`INSPECTOR_READS`)."""
    return iam.Statement(sid="ReadEnhancedFindings", actions=INSPECTOR_READS, resources=["*"])


@dataclass(frozen=True)
class DutyRole:
    """A role and its inline policy (the policy must exist before the role is used)."""

    role: aws.iam.Role
    policy: aws.iam.RolePolicy


def duty_role(
    resource_name: str,
    role_name: str,
    *,
    service: str,
    account_id: str,
    source_arns: Sequence[str],
    statements: Sequence[iam.Statement],
    opts: pulumi.ResourceOptions,
) -> DutyRole:
    """A role ``service`` may assume only for ``source_arns``, with exactly ``statements``."""
    role = aws.iam.Role(
        resource_name,
        name=role_name,
        assume_role_policy=iam.service_trust(
            service, account_id=account_id, source_arns=source_arns
        ),
        max_session_duration=3600,
        opts=opts,
    )
    policy = aws.iam.RolePolicy(
        f"{resource_name}-policy",
        name="least-privilege",
        role=role.id,
        policy=iam.document(*statements),
        opts=opts,
    )
    return DutyRole(role, policy)


def artifact_statements(
    args: PipelineArgs,
    foundation: FoundationOutputs,
    *,
    bucket_reads: bool,
    writes: Sequence[str] = ALL_OBJECTS,
) -> list[iam.Statement]:
    """Reading the service's pipeline artifacts; writing only under ``writes``.

    Every object is in the service's own folder of the foundation bucket
    (``names.artifact_folder``), so no role of one service reads or writes another's artifacts.
    ``writes`` are key prefixes (``""``: anywhere in the folder, for the roles that produce
    artifacts; a report prefix for a role that runs untrusted code; none for a role that only
    reads).
    """
    folder = names.artifact_folder(args.label)
    objects = pulumi.Output.concat(foundation.artifact_bucket_arn, "/", folder, "/*")
    statements = [
        iam.Statement(
            sid="ReadArtifacts",
            actions=["s3:GetObject", "s3:GetObjectVersion"],
            resources=[objects],
        )
    ]
    if writes:
        statements.append(
            iam.Statement(
                sid="WriteArtifacts",
                actions=["s3:PutObject"],
                resources=[
                    pulumi.Output.concat(
                        foundation.artifact_bucket_arn, "/", prefix.strip("/"), "/*"
                    )
                    if prefix
                    else objects
                    for prefix in writes
                ],
            )
        )
    statements.append(
        iam.Statement(
            sid="ArtifactKey",
            actions=KEY_USE if writes else KEY_READ,
            resources=[foundation.kms_key_arn],
        )
    )
    if bucket_reads:
        statements.append(
            iam.Statement(
                sid="ArtifactBucket",
                actions=["s3:GetBucketAcl", "s3:GetBucketLocation", "s3:GetBucketVersioning"],
                resources=[foundation.artifact_bucket_arn],
            )
        )
    return statements


def log_statement(args: PipelineArgs, projects: Sequence[BuildProject]) -> iam.Statement:
    """Writing build logs into the projects' own log groups (which exist already)."""
    resources: list[str] = []
    for project in projects:
        group = args.arn("logs", f"log-group:{names.log_group(args.label, project.key)}")
        resources += [group, f"{group}:*"]
    return iam.Statement(
        sid="BuildLogs", actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=resources
    )


def codebuild_trust_arns(args: PipelineArgs, projects: Sequence[BuildProject]) -> list[str]:
    """The ARNs of the projects a CodeBuild role serves, known before the projects exist."""
    return [names.project_arn(args.label, project.key) for project in projects]


def docker_build_statements(
    args: PipelineArgs,
    project: BuildProject,
    foundation: FoundationOutputs,
    repository: Repository,
) -> list[iam.Statement]:
    """Build and push the image: ECR login, push to the service's repository, artifacts, logs."""
    return [
        log_statement(args, [project]),
        *artifact_statements(args, foundation, bucket_reads=True),
        iam.Statement(
            # `*` because ECR auth tokens are account-wide (see shared.iam.WILDCARD_ALLOWED).
            sid="EcrLogin",
            actions=["ecr:GetAuthorizationToken"],
            resources=["*"],
        ),
        iam.Statement(sid="PushImage", actions=ECR_PUSH, resources=[repository.arn]),
    ]


def tests_statements(
    args: PipelineArgs,
    projects: Sequence[BuildProject],
    foundation: FoundationOutputs,
    report_group_arns: Sequence[pulumi.Input[str]],
) -> list[iam.Statement]:
    """Run the tests and publish their reports: source artifact, logs, the two report groups.

    The tests run the application's npm scripts (untrusted code): they read the source artifact
    and write only under their report groups' export prefixes, never other artifacts.
    """
    return [
        log_statement(args, projects),
        *artifact_statements(
            args, foundation, bucket_reads=True, writes=[p.report_prefix for p in projects]
        ),
        iam.Statement(
            sid="PublishTestReports",
            actions=[
                "codebuild:BatchPutCodeCoverages",
                "codebuild:BatchPutTestCases",
                "codebuild:CreateReport",
                "codebuild:UpdateReport",
            ],
            resources=list(report_group_arns),
        ),
    ]


def security_scan_statements(
    args: PipelineArgs,
    project: BuildProject,
    foundation: FoundationOutputs,
    repository: Repository,
) -> list[iam.Statement]:
    """Read the scan of the pushed image: its findings in the service's repository, artifacts,
    logs.

    It only reads: the Build stage's artifact in, nothing out.
    """
    return [
        log_statement(args, [project]),
        *artifact_statements(args, foundation, bucket_reads=True, writes=()),
        iam.Statement(
            sid="ReadScanFindings",
            actions=["ecr:DescribeImageScanFindings", "ecr:DescribeImages"],
            resources=[repository.arn],
        ),
        inspector_statement(),
    ]


def pipeline_statements(
    args: PipelineArgs, foundation: FoundationOutputs, project_arns: Sequence[str]
) -> list[iam.Statement]:
    """Run the five stages: artifacts, the four projects, the ECS service, the one source."""
    statements = [
        *artifact_statements(args, foundation, bucket_reads=True),
        iam.Statement(
            sid="RunBuilds",
            actions=["codebuild:BatchGetBuilds", "codebuild:StartBuild"],
            resources=list(project_arns),
        ),
        iam.Statement(
            sid="UpdateService",
            actions=["ecs:DescribeServices", "ecs:UpdateService"],
            resources=[args.arn("ecs", f"service/{args.ecs_cluster}/{args.ecs_service}")],
        ),
        iam.Statement(
            # DescribeTaskDefinition has no resource type in the SAR: `*` (WILDCARD_ALLOWED).
            sid="DescribeTaskDefinition",
            actions=["ecs:DescribeTaskDefinition"],
            resources=["*"],
        ),
        iam.Statement(
            # The SAR lists the task-definition type for RegisterTaskDefinition: the revisions
            # of the service's own family (the new one's number is not known in advance).
            sid="RegisterTaskDefinition",
            actions=["ecs:RegisterTaskDefinition"],
            resources=[task_definitions(args)],
        ),
        iam.Statement(
            # Tags are copied onto the new revision; only as part of registering it.
            sid="TagNewTaskDefinition",
            actions=["ecs:TagResource"],
            resources=[task_definitions(args)],
            conditions=[
                iam.Condition("StringEquals", "ecs:CreateAction", ["RegisterTaskDefinition"])
            ],
        ),
        iam.Statement(
            # The deploy watches the service's tasks: only tasks of this cluster.
            sid="WatchDeployment",
            actions=["ecs:DescribeTasks"],
            resources=[args.arn("ecs", f"task/{args.ecs_cluster}/*")],
        ),
        iam.Statement(
            # ListTasks' only resource type is container-instance, which Fargate tasks have
            # none of: `*` (shared.iam.WILDCARD_ALLOWED), confined to the cluster by ecs:cluster.
            sid="ListClusterTasks",
            actions=["ecs:ListTasks"],
            resources=["*"],
            conditions=[iam.Condition("ArnEquals", "ecs:cluster", [args.ecs_cluster_arn])],
        ),
        iam.pass_role("PassTaskRolesToEcsTasks", args.ecs_role_arns, "ecs-tasks.amazonaws.com"),
    ]
    # The source's own permissions (connection, or source object): stacks.pipeline.sources.
    return [*statements, *sources.pipeline_statements(args, foundation)]


def task_definitions(args: PipelineArgs) -> str:
    """Every revision of the service's task definition family."""
    return args.arn("ecs", f"task-definition/{args.ecs_task_family}:*")


def events_statements(pipeline_arn: pulumi.Input[str]) -> list[iam.Statement]:
    """Start this pipeline, and nothing else."""
    return [
        iam.Statement(
            sid="StartThisPipeline",
            actions=["codepipeline:StartPipelineExecution"],
            resources=[pipeline_arn],
        )
    ]

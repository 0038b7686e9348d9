"""The operators' AWS roles (CI deploy role, read-only drift role), generated, not hand-written.

:data:`ACCESS` is keyed by every Pulumi resource type the layers plan (a test compares it with
the dev and prod plans and the source-provider variants, so a new type without an entry fails).
Each entry gives the IAM actions the pulumi-aws provider (the Terraform AWS provider underneath)
calls to READ the resource, which is what a refresh needs, and to CREATE/UPDATE/DELETE/TAG it,
which a deploy needs besides the reads (the provider reads every resource back after writing it).

Resources are named by ARN patterns scoped to the platform: the ``namespace`` prefix every
physical name starts with (``shared.naming.Label``), the environment's account and Region from
``platform.yaml``. A ``*`` resource only for the actions in :data:`UNSCOPED`, each with the reason
AWS allows nothing narrower. ``iam:PassRole`` names the exact role ARNs the plan passes, each
with ``iam:PassedToService``. Sources: the Service Authorization Reference page of each service
(``SAR`` below, listed in docs/iam.md) and the provider's resource code
(github.com/hashicorp/terraform-provider-aws, ``internal/service/<service>/<resource>.go``):
docs/iam.md ("The operators' roles") has the table with the links.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from shared.iam import VERSION, Condition, Statement
from shared.settings import PARTITION, Platform

ANY = "*"
"""The scope of an action AWS documents without resource-level permissions (see UNSCOPED)."""

DRIFT = "drift"
DEPLOY = "deploy"
ROLES = (DRIFT, DEPLOY)

READ_VERBS = ("Describe", "Get", "List", "BatchGet")
"""What a read action's name starts with; the drift role holds nothing else (but the lock)."""


@dataclass(frozen=True)
class Grant:
    """Actions on the resources of some scopes (names in :func:`scopes`), maybe conditioned."""

    actions: tuple[str, ...]
    on: tuple[str, ...]
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Access:
    """What the provider calls for one resource type."""

    read: tuple[Grant, ...]
    """The provider's Read (refresh, and after every write)."""
    write: tuple[Grant, ...]
    """Create, Update, Delete and tagging."""
    source: str
    """The provider file whose Read/Create/Update/Delete the actions come from."""
    passes_role: tuple[str, str] | None = None
    """``(input, service principal)``: the input naming a role the service is handed."""


@dataclass(frozen=True)
class NoAws:
    """A type the engine plans that makes no AWS call, with the reason."""

    reason: str


# -- the KMS grants several types need ---------------------------------------------------------

_GRANT_FOR_AWS_RESOURCE = Condition("Bool", "kms:GrantIsForAWSResource", ("true",))
_KEY_GRANTS = Grant(
    ("kms:CreateGrant", "kms:DescribeKey", "kms:RetireGrant"),
    ("kms-key",),
    (_GRANT_FOR_AWS_RESOURCE,),
)
"""DynamoDB, ECR and Lambda attach the platform key to what they create through a grant made on
the caller's behalf (KMS: grant-authorization.html; ECR: encryption-at-rest.html "Required IAM
permissions"; DynamoDB: encryption.usagenotes.html); the key policy admits only such grants."""


def _through(service: str) -> Condition:
    return Condition("StringEquals", "kms:ViaService", (f"{service}.{{region}}.amazonaws.com",))


_SECRET_CRYPTO_READ = Grant(("kms:Decrypt",), ("kms-key",), (_through("secretsmanager"),))
_SECRET_CRYPTO_WRITE = Grant(
    ("kms:Decrypt", "kms:GenerateDataKey"), ("kms-key",), (_through("secretsmanager"),)
)
"""Secrets Manager encrypts and decrypts a value with the caller's permissions on the key
(secretsmanager security-encryption.html "Permissions for the KMS key")."""
_LAMBDA_CRYPTO = Grant(("kms:Encrypt", "kms:Decrypt"), ("kms-key",), (_through("lambda"),))
"""Lambda encrypts the environment variables with the caller's permissions on the key
(lambda configuration-envvars-encryption.html)."""

_S3 = "internal/service/s3/"


def _s3_config(get: str, put: str, resource: str) -> Access:
    """One S3 bucket sub-resource: read with ``get``, write (and delete) with ``put``."""
    return Access(
        read=(Grant((get,), ("s3-bucket",)),),
        write=(Grant((put,), ("s3-bucket",)),),
        source=_S3 + resource,
    )


ACCESS: dict[str, Access | NoAws] = {
    # -- foundation ------------------------------------------------------------------------------
    "aws:kms/key:Key": Access(
        read=(
            Grant(
                (
                    "kms:DescribeKey",
                    "kms:GetKeyPolicy",
                    "kms:GetKeyRotationStatus",
                    "kms:ListResourceTags",
                ),
                ("kms-key",),
            ),
        ),
        write=(
            Grant(("kms:CreateKey",), (ANY,)),
            Grant(
                (
                    "kms:CancelKeyDeletion",
                    "kms:DisableKey",
                    "kms:DisableKeyRotation",
                    "kms:EnableKey",
                    "kms:EnableKeyRotation",
                    "kms:PutKeyPolicy",
                    "kms:ScheduleKeyDeletion",
                    "kms:TagResource",
                    "kms:UntagResource",
                    "kms:UpdateKeyDescription",
                ),
                ("kms-key",),
            ),
        ),
        source="internal/service/kms/key.go",
    ),
    "aws:kms/alias:Alias": Access(
        # The Read finds the alias by listing the account's aliases (FindAliasByName).
        read=(Grant(("kms:ListAliases",), (ANY,)),),
        write=(
            Grant(
                ("kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"), ("kms-alias", "kms-key")
            ),
        ),
        source="internal/service/kms/alias.go",
    ),
    "aws:s3/bucket:Bucket": Access(
        read=(
            Grant(
                (
                    "s3:GetAccelerateConfiguration",
                    "s3:GetBucketAcl",
                    "s3:GetBucketCORS",
                    "s3:GetBucketLocation",
                    "s3:GetBucketLogging",
                    "s3:GetBucketObjectLockConfiguration",
                    "s3:GetBucketPolicy",
                    "s3:GetBucketRequestPayment",
                    "s3:GetBucketTagging",
                    "s3:GetBucketVersioning",
                    "s3:GetBucketWebsite",
                    "s3:GetEncryptionConfiguration",
                    "s3:GetLifecycleConfiguration",
                    "s3:GetReplicationConfiguration",
                    "s3:ListBucket",
                ),
                ("s3-bucket",),
            ),
        ),
        write=(
            Grant(
                (
                    "s3:CreateBucket",
                    "s3:DeleteBucket",
                    "s3:ListBucketVersions",
                    "s3:PutBucketTagging",
                ),
                ("s3-bucket",),
            ),
            # forceDestroy (dev): the provider deletes every object version before DeleteBucket.
            Grant(("s3:DeleteObject", "s3:DeleteObjectVersion"), ("s3-object",)),
        ),
        source=_S3 + "bucket.go",
    ),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": _s3_config(
        # DeleteBucketLifecycle is authorised by s3:PutLifecycleConfiguration (SAR).
        "s3:GetLifecycleConfiguration",
        "s3:PutLifecycleConfiguration",
        "bucket_lifecycle_configuration.go",
    ),
    "aws:s3/bucketNotification:BucketNotification": _s3_config(
        # Removing the resource writes an empty configuration (PutBucketNotificationConfiguration).
        "s3:GetBucketNotification",
        "s3:PutBucketNotification",
        "bucket_notification.go",
    ),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": _s3_config(
        "s3:GetBucketOwnershipControls",
        "s3:PutBucketOwnershipControls",
        "bucket_ownership_controls.go",
    ),
    "aws:s3/bucketPolicy:BucketPolicy": Access(
        read=(Grant(("s3:GetBucketPolicy",), ("s3-bucket",)),),
        write=(Grant(("s3:DeleteBucketPolicy", "s3:PutBucketPolicy"), ("s3-bucket",)),),
        source=_S3 + "bucket_policy.go",
    ),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": _s3_config(
        # DeletePublicAccessBlock is authorised by s3:PutBucketPublicAccessBlock (SAR).
        "s3:GetBucketPublicAccessBlock",
        "s3:PutBucketPublicAccessBlock",
        "bucket_public_access_block.go",
    ),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        _s3_config(
            # DeleteBucketEncryption is authorised by s3:PutEncryptionConfiguration (SAR).
            "s3:GetEncryptionConfiguration",
            "s3:PutEncryptionConfiguration",
            "bucket_server_side_encryption_configuration.go",
        )
    ),
    "aws:s3/bucketVersioning:BucketVersioning": _s3_config(
        "s3:GetBucketVersioning", "s3:PutBucketVersioning", "bucket_versioning.go"
    ),
    "aws:secretsmanager/secret:Secret": Access(
        read=(
            Grant(
                ("secretsmanager:DescribeSecret", "secretsmanager:GetResourcePolicy"), ("secret",)
            ),
        ),
        write=(
            Grant(
                (
                    "secretsmanager:CreateSecret",
                    "secretsmanager:DeleteResourcePolicy",
                    "secretsmanager:DeleteSecret",
                    "secretsmanager:PutResourcePolicy",
                    "secretsmanager:TagResource",
                    "secretsmanager:UntagResource",
                    "secretsmanager:UpdateSecret",
                ),
                ("secret",),
            ),
        ),
        source="internal/service/secretsmanager/secret.go",
    ),
    "aws:secretsmanager/secretVersion:SecretVersion": Access(
        # The Read compares the stored value: GetSecretValue, decrypted with the platform key.
        # Only on the secrets whose value a stack manages ("secret-value", from the plan): the
        # GitHub token the operator stores by hand is never readable by the drift role.
        read=(
            Grant(
                ("secretsmanager:GetSecretValue", "secretsmanager:ListSecretVersionIds"),
                ("secret-value",),
            ),
            _SECRET_CRYPTO_READ,
        ),
        write=(
            Grant(
                ("secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"),
                ("secret-value",),
            ),
            _SECRET_CRYPTO_WRITE,
        ),
        source="internal/service/secretsmanager/secret_version.go",
    ),
    "aws:sns/topic:Topic": Access(
        read=(Grant(("sns:GetTopicAttributes", "sns:ListTagsForResource"), ("sns-topic",)),),
        write=(
            Grant(
                (
                    "sns:CreateTopic",
                    "sns:DeleteTopic",
                    "sns:SetTopicAttributes",
                    "sns:TagResource",
                    "sns:UntagResource",
                ),
                ("sns-topic",),
            ),
        ),
        source="internal/service/sns/topic.go",
    ),
    "aws:sns/topicSubscription:TopicSubscription": Access(
        read=(Grant(("sns:GetSubscriptionAttributes",), (ANY,)),),
        write=(
            Grant(("sns:Subscribe",), ("sns-topic",)),
            Grant(("sns:SetSubscriptionAttributes", "sns:Unsubscribe"), (ANY,)),
        ),
        source="internal/service/sns/topic_subscription.go",
    ),
    "aws:dynamodb/table:Table": Access(
        # resourceTableRead: DescribeTable, DescribeContinuousBackups (point-in-time recovery),
        # DescribeTimeToLive, then the tags (ListTagsOfResource).
        read=(
            Grant(
                (
                    "dynamodb:DescribeContinuousBackups",
                    "dynamodb:DescribeTable",
                    "dynamodb:DescribeTimeToLive",
                    "dynamodb:ListTagsOfResource",
                ),
                ("dynamodb-table",),
            ),
        ),
        write=(
            Grant(
                (
                    "dynamodb:CreateTable",
                    "dynamodb:DeleteTable",
                    "dynamodb:TagResource",
                    "dynamodb:UntagResource",
                    "dynamodb:UpdateContinuousBackups",
                    "dynamodb:UpdateTable",
                    "dynamodb:UpdateTimeToLive",
                ),
                ("dynamodb-table",),
            ),
            _KEY_GRANTS,
        ),
        source="internal/service/dynamodb/table.go",
    ),
    # -- registry --------------------------------------------------------------------------------
    "aws:ecr/repository:Repository": Access(
        read=(Grant(("ecr:DescribeRepositories", "ecr:ListTagsForResource"), ("ecr-repository",)),),
        write=(
            Grant(
                (
                    "ecr:CreateRepository",
                    "ecr:DeleteRepository",
                    "ecr:PutImageScanningConfiguration",
                    "ecr:PutImageTagMutability",
                    "ecr:TagResource",
                    "ecr:UntagResource",
                ),
                ("ecr-repository",),
            ),
            _KEY_GRANTS,
        ),
        source="internal/service/ecr/repository.go",
    ),
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": Access(
        read=(Grant(("ecr:GetLifecyclePolicy",), ("ecr-repository",)),),
        write=(
            Grant(("ecr:DeleteLifecyclePolicy", "ecr:PutLifecyclePolicy"), ("ecr-repository",)),
        ),
        source="internal/service/ecr/lifecycle_policy.go",
    ),
    # -- pipeline --------------------------------------------------------------------------------
    "aws:iam/role:Role": Access(
        # resourceRoleRead: GetRole (tags included), then the inline and attached policies.
        read=(
            Grant(
                (
                    "iam:GetRole",
                    "iam:GetRolePolicy",
                    "iam:ListAttachedRolePolicies",
                    "iam:ListRolePolicies",
                ),
                ("iam-role",),
            ),
        ),
        write=(
            Grant(
                (
                    "iam:CreateRole",
                    "iam:DeleteRole",
                    "iam:DeleteRolePolicy",
                    "iam:DetachRolePolicy",
                    "iam:ListInstanceProfilesForRole",
                    "iam:TagRole",
                    "iam:UntagRole",
                    "iam:UpdateAssumeRolePolicy",
                    "iam:UpdateRole",
                ),
                ("iam-role",),
            ),
        ),
        source="internal/service/iam/role.go",
    ),
    "aws:iam/rolePolicy:RolePolicy": Access(
        read=(Grant(("iam:GetRolePolicy",), ("iam-role",)),),
        write=(Grant(("iam:DeleteRolePolicy", "iam:PutRolePolicy"), ("iam-role",)),),
        source="internal/service/iam/role_policy.go",
    ),
    "aws:codebuild/project:Project": Access(
        # CodeBuild has no TagResource: a project's tags travel in Create/UpdateProject.
        read=(Grant(("codebuild:BatchGetProjects",), ("codebuild-project",)),),
        write=(
            Grant(
                ("codebuild:CreateProject", "codebuild:DeleteProject", "codebuild:UpdateProject"),
                ("codebuild-project",),
            ),
        ),
        source="internal/service/codebuild/project.go",
        passes_role=("serviceRole", "codebuild.amazonaws.com"),
    ),
    "aws:codebuild/reportGroup:ReportGroup": Access(
        read=(Grant(("codebuild:BatchGetReportGroups",), ("codebuild-report-group",)),),
        write=(
            Grant(
                (
                    "codebuild:CreateReportGroup",
                    "codebuild:DeleteReportGroup",
                    "codebuild:UpdateReportGroup",
                ),
                ("codebuild-report-group",),
            ),
        ),
        source="internal/service/codebuild/report_group.go",
    ),
    "aws:codepipeline/pipeline:Pipeline": Access(
        read=(
            Grant(("codepipeline:GetPipeline", "codepipeline:ListTagsForResource"), ("pipeline",)),
        ),
        write=(
            Grant(
                (
                    "codepipeline:CreatePipeline",
                    "codepipeline:DeletePipeline",
                    "codepipeline:TagResource",
                    "codepipeline:UntagResource",
                    "codepipeline:UpdatePipeline",
                ),
                ("pipeline",),
            ),
        ),
        source="internal/service/codepipeline/codepipeline.go",
        passes_role=("roleArn", "codepipeline.amazonaws.com"),
    ),
    "aws:codepipeline/webhook:Webhook": Access(
        # The Read pages ListWebhooks to find the webhook by ARN (findWebhookByARN).
        read=(
            Grant(("codepipeline:ListWebhooks",), (ANY,)),
            Grant(("codepipeline:ListTagsForResource",), ("webhook",)),
        ),
        write=(
            Grant(
                (
                    "codepipeline:DeleteWebhook",
                    "codepipeline:PutWebhook",
                    "codepipeline:TagResource",
                    "codepipeline:UntagResource",
                ),
                ("webhook",),
            ),
        ),
        source="internal/service/codepipeline/webhook.go",
    ),
    "aws:cloudwatch/eventRule:EventRule": Access(
        read=(Grant(("events:DescribeRule", "events:ListTagsForResource"), ("events-rule",)),),
        write=(
            Grant(
                (
                    "events:DeleteRule",
                    "events:DisableRule",
                    "events:EnableRule",
                    "events:PutRule",
                    "events:TagResource",
                    "events:UntagResource",
                ),
                ("events-rule",),
            ),
        ),
        source="internal/service/events/rule.go",
    ),
    "aws:cloudwatch/eventTarget:EventTarget": Access(
        read=(Grant(("events:ListTargetsByRule",), ("events-rule",)),),
        write=(Grant(("events:PutTargets", "events:RemoveTargets"), ("events-rule",)),),
        source="internal/service/events/target.go",
        passes_role=("roleArn", "events.amazonaws.com"),
    ),
    "aws:cloudwatch/logGroup:LogGroup": Access(
        # The Read finds the group with DescribeLogGroups (name prefix), then its tags.
        read=(
            Grant(("logs:DescribeLogGroups",), (ANY,)),
            Grant(("logs:ListTagsForResource",), ("log-group",)),
        ),
        write=(
            Grant(
                (
                    "logs:AssociateKmsKey",
                    "logs:CreateLogGroup",
                    "logs:DeleteLogGroup",
                    "logs:DeleteRetentionPolicy",
                    "logs:DisassociateKmsKey",
                    "logs:PutRetentionPolicy",
                    "logs:TagResource",
                    "logs:UntagResource",
                ),
                ("log-group",),
            ),
        ),
        source="internal/service/logs/group.go",
    ),
    "aws:cloudwatch/metricAlarm:MetricAlarm": Access(
        read=(Grant(("cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource"), ("alarm",)),),
        write=(
            Grant(
                (
                    "cloudwatch:DeleteAlarms",
                    "cloudwatch:PutMetricAlarm",
                    "cloudwatch:TagResource",
                    "cloudwatch:UntagResource",
                ),
                ("alarm",),
            ),
        ),
        source="internal/service/cloudwatch/metric_alarm.go",
    ),
    "aws:lambda/function:Function": Access(
        # resourceFunctionRead: GetFunction (configuration, concurrency, tags), the code-signing
        # config, and the latest published version (ListVersionsByFunction).
        read=(
            Grant(
                (
                    "lambda:GetFunction",
                    "lambda:GetFunctionCodeSigningConfig",
                    "lambda:ListVersionsByFunction",
                ),
                ("lambda-function",),
            ),
        ),
        write=(
            Grant(
                (
                    "lambda:CreateFunction",
                    "lambda:DeleteFunction",
                    "lambda:DeleteFunctionConcurrency",
                    "lambda:PutFunctionConcurrency",
                    "lambda:TagResource",
                    "lambda:UntagResource",
                    "lambda:UpdateFunctionCode",
                    "lambda:UpdateFunctionConfiguration",
                ),
                ("lambda-function",),
            ),
            _KEY_GRANTS,
            _LAMBDA_CRYPTO,
        ),
        source="internal/service/lambda/function.go",
        passes_role=("role", "lambda.amazonaws.com"),
    ),
    "aws:lambda/permission:Permission": Access(
        read=(Grant(("lambda:GetPolicy",), ("lambda-function",)),),
        write=(Grant(("lambda:AddPermission", "lambda:RemovePermission"), ("lambda-function",)),),
        source="internal/service/lambda/permission.go",
    ),
    "aws:sns/topicPolicy:TopicPolicy": Access(
        read=(Grant(("sns:GetTopicAttributes",), ("sns-topic",)),),
        # Removing the policy writes the topic's default policy back (SetTopicAttributes).
        write=(Grant(("sns:SetTopicAttributes",), ("sns-topic",)),),
        source="internal/service/sns/topic_policy.go",
    ),
    "aws:sqs/queue:Queue": Access(
        read=(Grant(("sqs:GetQueueAttributes", "sqs:ListQueueTags"), ("sqs-queue",)),),
        write=(
            Grant(
                (
                    "sqs:CreateQueue",
                    "sqs:DeleteQueue",
                    "sqs:SetQueueAttributes",
                    "sqs:TagQueue",
                    "sqs:UntagQueue",
                ),
                ("sqs-queue",),
            ),
        ),
        source="internal/service/sqs/queue.go",
    ),
    "aws:sqs/queuePolicy:QueuePolicy": Access(
        read=(Grant(("sqs:GetQueueAttributes",), ("sqs-queue",)),),
        write=(Grant(("sqs:SetQueueAttributes",), ("sqs-queue",)),),
        source="internal/service/sqs/queue_policy.go",
    ),
    # -- no AWS call -----------------------------------------------------------------------------
    "github:index/repositoryWebhook:RepositoryWebhook": NoAws(
        "GitHub, not AWS: pulumi-github reads and writes the hook with the token of its provider"
        " (the repository's admin:repo_hook scope), not with the AWS role"
    ),
    "pulumi:providers:aws": NoAws(
        "the provider itself; it checks the account with sts:GetCallerIdentity, which needs no"
        " permission (STS API reference)"
    ),
    "pulumi:providers:github": NoAws("the GitHub provider: no AWS call"),
    "pulumi:pulumi:StackReference": NoAws(
        "read from the state backend (the StateRead statement), not from AWS"
    ),
    "acme:foundation:Foundation": NoAws("a component resource: only its children call AWS"),
    "acme:registry:Registry": NoAws("a component resource: only its children call AWS"),
    "acme:pipeline:Pipeline": NoAws("a component resource: only its children call AWS"),
}
"""Per Pulumi resource type: the IAM actions the provider calls, or why it calls none."""


INVOKES: dict[str, Access | NoAws] = {
    "aws:secretsmanager/getSecretVersion:getSecretVersion": Access(
        # The pipeline reads the GitHub token and the webhook secret the foundation holds.
        read=(Grant(("secretsmanager:GetSecretValue",), ("secret",)), _SECRET_CRYPTO_READ),
        write=(),
        source="internal/service/secretsmanager/secret_version_data_source.go",
    ),
    "aws:secretsmanager/getRandomPassword:getRandomPassword": Access(
        read=(Grant(("secretsmanager:GetRandomPassword",), (ANY,)),),
        write=(),
        source="internal/service/secretsmanager/random_password_data_source.go",
    ),
}
"""Per invoke (data source) the layers' programs call: what it needs. Only a preview or an up
runs the programs, so only the deploy role (which CI's previews use too) holds these."""


UNSCOPED: dict[str, str] = {
    "secretsmanager:GetRandomPassword": (
        "generates a random string and touches no secret: the SAR lists no resource type."
    ),
    "kms:CreateKey": "a key has no ARN before it exists: the SAR lists no resource type for it.",
    "kms:ListAliases": (
        "lists the account's aliases; the SAR lists no resource type (the alias Read lists them)."
    ),
    "logs:DescribeLogGroups": (
        "lists the account's log groups by name prefix; the SAR lists no resource type for it."
    ),
    "codepipeline:ListWebhooks": (
        "lists every webhook of the account and Region (the call names none), which is how the"
        " provider reads one webhook."
    ),
    "sns:GetSubscriptionAttributes": (
        "SNS's only resource type is topic: subscription calls list none in the SAR."
    ),
    "sns:SetSubscriptionAttributes": (
        "SNS's only resource type is topic: subscription calls list none in the SAR."
    ),
    "sns:Unsubscribe": (
        "SNS's only resource type is topic: subscription calls list none in the SAR."
    ),
    "cloudwatch:DescribeAlarmsForMetric": (
        "finds the alarms on a metric (verify: each dead-letter queue's alarm); the SAR lists no"
        " resource type for it, unlike DescribeAlarms."
    ),
}
"""Actions the operators' roles may hold on ``Resource: "*"``, each with the reason."""


STATE_LOCK_ACTIONS = ("s3:DeleteObject", "s3:PutObject")
"""The only writes the drift role holds: the stack lock a DIY backend takes even for a refresh
preview (pulumi/pulumi ``pkg/backend/diy/backend.go``: ``Refresh`` locks the stack)."""


# -- what the toolbox itself calls with the role ------------------------------------------------


NO_PERMISSION = "no-permission"
"""The scope of a call AWS authorises without any policy (STS GetCallerIdentity)."""
STATE = "state-bucket"
"""The scope of a call on the state backend's bucket, granted by the ``StateBucket`` statement."""


@dataclass(frozen=True)
class Call:
    """One AWS API call a toolbox command makes with the operator's credentials (boto3)."""

    service: str
    """The boto3 client; for every service here its name is also the IAM service prefix."""
    operation: str
    """The API operation, as botocore names it (``GetFunctionConfiguration``)."""
    on: str
    """The scope (:func:`scopes`) of the resource it names; NO_PERMISSION, or STATE."""
    action: str = ""
    """The IAM action when it is not ``<service>:<operation>``: the SAR's API-operations table
    (S3 names most bucket reads after the subresource, e.g. ``s3:GetLifecycleConfiguration``)."""

    @property
    def iam_action(self) -> str:
        """The action IAM checks for the call."""
        return self.action or f"{self.service}:{self.operation}"


VERIFY_READS: tuple[Call, ...] = (
    Call("kms", "GetKeyRotationStatus", "kms-key"),
    Call("s3", "GetPublicAccessBlock", "s3-bucket", "s3:GetBucketPublicAccessBlock"),
    Call("s3", "GetBucketVersioning", "s3-bucket"),
    Call("s3", "GetBucketLifecycleConfiguration", "s3-bucket", "s3:GetLifecycleConfiguration"),
    Call("s3", "GetBucketEncryption", "s3-bucket", "s3:GetEncryptionConfiguration"),
    Call("s3", "GetBucketNotificationConfiguration", "s3-bucket", "s3:GetBucketNotification"),
    Call("secretsmanager", "DescribeSecret", "secret"),
    Call("sns", "GetTopicAttributes", "sns-topic"),
    Call("sns", "ListSubscriptionsByTopic", "sns-topic"),
    Call("ecr", "DescribeRepositories", "ecr-repository"),
    Call("ecr", "GetLifecyclePolicy", "ecr-repository"),
    Call("dynamodb", "DescribeContinuousBackups", "dynamodb-table"),
    Call("dynamodb", "DescribeTable", "dynamodb-table"),
    Call("lambda", "GetFunctionConfiguration", "lambda-function"),
    Call("lambda", "GetPolicy", "lambda-function"),
    Call("cloudwatch", "DescribeAlarmsForMetric", ANY),
    Call("logs", "DescribeLogGroups", ANY),
    Call("codebuild", "BatchGetProjects", "codebuild-project"),
    Call("codepipeline", "GetPipeline", "pipeline"),
)
"""What verify reads: every call of ``toolbox/verify.py``'s checks, on the platform's resources.
A test runs verify against moto, records each call, and fails on one missing here."""

PREFLIGHT_READS: tuple[Call, ...] = (
    Call("s3", "HeadBucket", STATE, "s3:ListBucket"),
    Call("kms", "DescribeKey", "kms-key"),  # an awskms:// secrets provider's key
    Call("sts", "GetCallerIdentity", NO_PERMISSION),
    Call("ecs", "DescribeClusters", "ecs-cluster"),
    Call("ecs", "DescribeServices", "ecs-service"),
    Call("iam", "GetRole", "ecs-role"),
    Call("codecommit", "GetRepository", "codecommit-repository"),
    Call("codeconnections", "GetConnection", "connection"),
    Call("codestar-connections", "GetConnection", "codestar-connection"),
    Call("secretsmanager", "DescribeSecret", "secret"),  # the GitHub token
    Call("secretsmanager", "GetSecretValue", "secret"),
)
"""What the preflight reads (``toolbox/preflight.py``, before preview, deploy, refresh and destroy,
and the token check a deploy makes before the pipeline layer): the state bucket, the secrets
provider's key, the account, and what the pipeline layer points at but does not create."""

TOOLBOX_READS: dict[str, tuple[Call, ...]] = {
    DEPLOY: VERIFY_READS + PREFLIGHT_READS,
    DRIFT: (),
}
"""Per role, the toolbox calls it makes. CI's deploy role (``AWS_ROLE_ARN``) runs ``./dev
preview`` (Build) and ``./dev deploy`` then ``./dev verify`` (Deploy), so the preflight and verify;
the drift role (``DRIFT_ROLE_ARN``) runs only ``./dev drift``, which runs neither."""

_CALLS_ELSEWHERE = {
    NO_PERMISSION: "STS GetCallerIdentity needs no permission (STS API reference)",
    STATE: "the StateBucket statement grants s3:ListBucket on the backend's bucket",
}


def toolbox_grants(role: str) -> list[Grant]:
    """The grants of the calls ``role`` makes through the toolbox (:data:`TOOLBOX_READS`)."""
    return [
        Grant((call.iam_action,), (call.on,))
        for call in TOOLBOX_READS[role]
        if call.on not in _CALLS_ELSEWHERE
    ]


@dataclass(frozen=True)
class Outside:
    """What the pipeline layer points at but does not create, as ARNs: the preflight reads each."""

    ecs_cluster: str
    ecs_service: str
    ecs_roles: tuple[str, ...]
    """The task role and task execution role."""
    codecommit_repository: str = ""
    """The mirror whose pushes start the pipeline ('' without the CodeCommit trigger)."""
    connection: str = ""
    """The CodeConnections (or codestar-connections) ARN ('' unless that source provider)."""

    def scopes(self) -> dict[str, tuple[str, ...]]:
        """The scopes of :data:`PREFLIGHT_READS` these ARNs fill (an empty one grants nothing)."""
        service = self.connection.split(":")[2] if self.connection else ""
        return {
            "ecs-cluster": (self.ecs_cluster,),
            "ecs-service": (self.ecs_service,),
            "ecs-role": self.ecs_roles,
            "codecommit-repository": tuple(filter(None, (self.codecommit_repository,))),
            "connection": (self.connection,) if service == "codeconnections" else (),
            "codestar-connection": (self.connection,) if service == "codestar-connections" else (),
        }


def outside_of(args: Any) -> Outside:
    """The :class:`Outside` of the pipeline layer's config (a ``PipelineArgs``), under the same
    conditions the preflight checks each one."""
    return Outside(
        ecs_cluster=args.ecs_cluster_arn,
        ecs_service=args.arn("ecs", f"service/{args.ecs_cluster}/{args.ecs_service}"),
        ecs_roles=tuple(args.ecs_role_arns),
        codecommit_repository=(
            args.codecommit_repository_arn if args.source.codecommit_trigger else ""
        ),
        connection=args.connection_arn if args.source_provider == "codeconnections" else "",
    )


def scopes(
    platform: Platform,
    secret_values: Iterable[str] | None = None,
    outside: Outside | None = None,
) -> dict[str, tuple[str, ...]]:
    """The ARN patterns of each scope: the platform's names in its account and Region.

    Every physical name starts with ``<namespace>-`` (``shared.naming.Label``); KMS keys are
    named by a generated id, so the key scope is every key of the account and Region, and the
    key policy (foundation) confines who may use it. ``secret_values`` are the secrets whose
    value a stack manages (:func:`managed_secrets`); without them, every platform secret.
    ``outside`` adds what the pipeline layer points at (the preflight's reads).
    """
    part, region, account, ns = PARTITION, platform.region, platform.account_id, platform.namespace
    here = f"{region}:{account}"
    every_secret = f"arn:{part}:secretsmanager:{here}:secret:{ns}-*"
    return {
        "secret-value": (every_secret,) if secret_values is None else tuple(secret_values),
        ANY: ("*",),
        "kms-key": (f"arn:{part}:kms:{here}:key/*",),
        "kms-alias": (f"arn:{part}:kms:{here}:alias/{ns}-*",),
        "s3-bucket": (f"arn:{part}:s3:::{ns}-*",),
        "s3-object": (f"arn:{part}:s3:::{ns}-*/*",),
        "secret": (every_secret,),
        "sns-topic": (f"arn:{part}:sns:{here}:{ns}-*",),
        "dynamodb-table": (f"arn:{part}:dynamodb:{here}:table/{ns}-*",),
        "ecr-repository": (f"arn:{part}:ecr:{here}:repository/{ns}-*",),
        "iam-role": (f"arn:{part}:iam::{account}:role/{ns}-*",),
        "codebuild-project": (f"arn:{part}:codebuild:{here}:project/{ns}-*",),
        "codebuild-report-group": (f"arn:{part}:codebuild:{here}:report-group/{ns}-*",),
        "pipeline": (f"arn:{part}:codepipeline:{here}:{ns}-*",),
        "webhook": (f"arn:{part}:codepipeline:{here}:webhook:{ns}-*",),
        "events-rule": (f"arn:{part}:events:{here}:rule/{ns}-*",),
        "log-group": (
            f"arn:{part}:logs:{here}:log-group:/aws/codebuild/{ns}-*",
            f"arn:{part}:logs:{here}:log-group:/aws/lambda/{ns}-*",
        ),
        "alarm": (f"arn:{part}:cloudwatch:{here}:alarm:{ns}-*",),
        "lambda-function": (f"arn:{part}:lambda:{here}:function:{ns}-*",),
        "sqs-queue": (f"arn:{part}:sqs:{here}:{ns}-*",),
        **(outside.scopes() if outside else {}),
    }


# -- the state backend --------------------------------------------------------------------------


@dataclass(frozen=True)
class StateBucket:
    """Where an S3 backend keeps the stacks: ``s3://<bucket>/<prefix>``."""

    bucket: str
    prefix: str

    @property
    def bucket_arn(self) -> str:
        return f"arn:{PARTITION}:s3:::{self.bucket}"

    def objects(self, below: str = "") -> str:
        """The ARN of the objects under the prefix (and ``below`` it)."""
        path = "/".join(part for part in (self.prefix, below) if part)
        return f"{self.bucket_arn}/{path}/*" if path else f"{self.bucket_arn}/*"


def state_bucket(backend_url: str) -> StateBucket | None:
    """The S3 bucket and prefix of ``PULUMI_BACKEND_URL``; None for a file or Pulumi Cloud one."""
    parsed = urlparse(backend_url)
    if parsed.scheme != "s3" or not parsed.netloc:
        return None
    return StateBucket(parsed.netloc, parsed.path.strip("/"))


def _state_statements(role: str, state: StateBucket) -> list[Statement]:
    if role == DEPLOY:
        return [
            Statement(
                "StateBucket", ("s3:GetBucketLocation", "s3:ListBucket"), (state.bucket_arn,)
            ),
            Statement(
                "StateReadWrite",
                ("s3:DeleteObject", "s3:GetObject", "s3:PutObject"),
                (state.objects(),),
            ),
        ]
    return [
        Statement("StateBucket", ("s3:GetBucketLocation", "s3:ListBucket"), (state.bucket_arn,)),
        Statement("StateRead", ("s3:GetObject",), (state.objects(),)),
        Statement("StateLockOnly", STATE_LOCK_ACTIONS, (state.objects(".pulumi/locks"),)),
    ]


# -- assembling a role's policy -----------------------------------------------------------------


def _sid(scope_names: Iterable[str], conditions: Iterable[Condition]) -> str:
    """A statement id from its scopes and conditions, e.g. ``KmsKeyViaSecretsmanager``."""
    words = ["Unscoped" if name == ANY else name.title().replace("-", "") for name in scope_names]
    for condition in conditions:
        if condition.variable == "kms:ViaService":
            words += ["Via", *(str(value).split(".")[0].title() for value in condition.values)]
        else:
            words.append(condition.variable.split(":")[-1].replace("AWS", "Aws"))
    return "".join(words)


def _resolve(condition: Condition, platform: Platform) -> Condition:
    values = tuple(str(value).replace("{region}", platform.region) for value in condition.values)
    return Condition(condition.test, condition.variable, values)


def uncovered(types: Iterable[str]) -> list[str]:
    """The resource types without an entry in :data:`ACCESS`, sorted (a test fails on any)."""
    return sorted(set(types) - set(ACCESS))


def grants_of(role: str, types: Iterable[str] | None = None) -> list[Grant]:
    """The grants ``role`` needs for ``types`` (every type in :data:`ACCESS` by default)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    grants: list[Grant] = []
    for type_ in sorted(ACCESS if types is None else set(types)):
        entry = ACCESS[type_]
        if isinstance(entry, NoAws):
            continue
        grants += entry.read
        if role == DEPLOY:
            grants += entry.write
    if role == DEPLOY:
        for invoke in INVOKES.values():
            if isinstance(invoke, Access):
                grants += invoke.read
    return grants


def passed_roles(plans: Iterable[Any]) -> dict[str, list[str]]:
    """Per service principal, the role ARNs the plans hand to it (``passes_role`` inputs)."""
    passed: dict[str, set[str]] = {}
    for plan in plans:
        for resource in plan.resources:
            entry = ACCESS.get(resource.type)
            if not isinstance(entry, Access) or entry.passes_role is None:
                continue
            key, service = entry.passes_role
            arn = resource.inputs.get(key)
            if isinstance(arn, str) and arn:
                passed.setdefault(service, set()).add(arn)
    return {service: sorted(arns) for service, arns in sorted(passed.items())}


_SECRET_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")


def managed_secrets(plans: Iterable[Any]) -> list[str]:
    """The secrets whose value the plans manage (``SecretVersion``), as ARN patterns.

    Secrets Manager ends a secret's ARN with ``-`` and six random characters, unknown before it
    is created, so the pattern ends with ``-??????`` (Secrets Manager: "ARN of a secret").
    """
    secrets = set()
    for plan in plans:
        for resource in plan.resources:
            if resource.type == "aws:secretsmanager/secretVersion:SecretVersion":
                secrets.add(_SECRET_SUFFIX.sub("", resource.inputs["secretId"]) + "-??????")
    return sorted(secrets)


def policy(
    role: str,
    platform: Platform,
    *,
    passed: Mapping[str, Iterable[str]] | None = None,
    state: StateBucket | None = None,
    secret_values: Iterable[str] | None = None,
    outside: Outside | None = None,
) -> dict[str, Any]:
    """The IAM policy document of ``role`` for one environment.

    Both roles cover every type in :data:`ACCESS`, not only the environment's current plan: a
    refresh reads what the state holds (which may predate a config change) and a deploy must
    delete what a config change drops (the GitHub webhook when ``sourceProvider`` changes).
    Besides, each role may make the toolbox's own calls it runs (:data:`TOOLBOX_READS`: what
    verify and the preflight read), on the platform's resources and on ``outside``'s.
    """
    arns = scopes(platform, secret_values, outside)
    merged: dict[tuple[tuple[str, ...], tuple[Condition, ...]], set[str]] = {}
    for grant in grants_of(role) + toolbox_grants(role):
        merged.setdefault((grant.on, grant.conditions), set()).update(grant.actions)
    statements = _state_statements(role, state) if state else []
    for (on, conditions), actions in sorted(merged.items(), key=lambda item: _sid(*item[0])):
        if ANY in on:
            extra = sorted(actions - set(UNSCOPED))
            if extra:
                raise ValueError(f"Resource '*' for {extra}, which are not in UNSCOPED")
        resources = [arn for name in on for arn in arns.get(name, ())]
        if not resources:  # a scope this environment does not use (no connection, no mirror)
            continue
        statements.append(
            Statement(
                _sid(on, conditions),
                tuple(sorted(actions)),
                tuple(resources),
                conditions=tuple(_resolve(c, platform) for c in conditions),
            )
        )
    if role == DEPLOY:
        for service, roles in (passed or {}).items():
            statements.append(
                Statement(
                    "PassRoleTo" + service.split(".")[0].title(),
                    ("iam:PassRole",),
                    tuple(roles),
                    conditions=(Condition("StringEquals", "iam:PassedToService", (service,)),),
                )
            )
    return {"Version": VERSION, "Statement": [s.to_dict() for s in statements]}


def for_environment(
    environment: str, role: str, backend_url: str = ""
) -> tuple[dict[str, Any], StateBucket | None]:
    """The policy of ``role`` in ``environment``: its plan, its settings, the state backend."""
    from shared.settings import load_platform
    from toolbox.plancache import plan_all

    if role not in ROLES:
        raise ValueError(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    platform = load_platform(environment)
    plans = list(plan_all(environment, reuse="all").values())
    passed = passed_roles(plans) if role == DEPLOY else {}
    state = state_bucket(backend_url)
    # Only the drift role is confined to the managed secret values: the deploy role may update
    # any platform secret anyway (UpdateSecret sets a value), and its program reads the token.
    secret_values = managed_secrets(plans) if role == DRIFT else None
    outside = None
    if TOOLBOX_READS[role]:
        from toolbox.preflight import read_pipeline_args

        outside = outside_of(read_pipeline_args(environment))
    document = policy(
        role,
        platform,
        passed=passed,
        state=state,
        secret_values=secret_values,
        outside=outside,
    )
    return document, state


MANAGED_POLICY_CHARACTERS = 6_144
"""IAM quota: one managed policy's size, white space not counted (IAM and AWS STS quotas)."""
MANAGED_POLICIES_PER_ROLE = 10
"""IAM quota: managed policies attached to one role, by default."""
MANAGED_POLICIES_PER_ROLE_MAX = 20
"""IAM quota: managed policies attached to one role, at most (on request)."""


def characters(document: Mapping[str, Any]) -> int:
    """A policy's size as IAM counts it: the characters of its JSON that are not white space."""
    return sum(not c.isspace() for c in json.dumps(document, separators=(",", ":")))


def _fitting(statement: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    """``statement`` alone if a policy of it fits ``limit``, else split by its resources."""
    resources = statement.get("Resource", [])
    if characters({"Version": VERSION, "Statement": [statement]}) <= limit:
        return [statement]
    if isinstance(resources, str) or len(resources) < 2:
        raise ValueError(f"statement {statement['Sid']} alone is more than {limit} characters")
    half = len(resources) // 2
    pieces = [
        *_fitting({**statement, "Resource": resources[:half]}, limit),
        *_fitting({**statement, "Resource": resources[half:]}, limit),
    ]
    return [{**piece, "Sid": f"{statement['Sid']}{n}"} for n, piece in enumerate(pieces, 1)]


def managed_policies(
    document: Mapping[str, Any],
    most: int = MANAGED_POLICIES_PER_ROLE,
    limit: int = MANAGED_POLICY_CHARACTERS,
) -> list[dict[str, Any]]:
    """``document`` as at most ``most`` managed policies of ``limit`` characters each, in order.

    A role's inline policies may total 10,240 characters, which the deploy role outgrows with a
    handful of services (each adds a role to its ``iam:PassRole`` statement); a role may have 10
    managed policies of 6,144 characters each. Statements are kept whole and in order, one part
    filled before the next; a statement too large for one part is split by its resources.
    """
    parts: list[list[dict[str, Any]]] = [[]]
    for whole in document["Statement"]:
        for statement in _fitting(whole, limit):
            trial = {"Version": VERSION, "Statement": [*parts[-1], statement]}
            if parts[-1] and characters(trial) > limit:
                parts.append([])
            parts[-1].append(statement)
    if len(parts) > most:
        raise ValueError(
            f"the policy needs {len(parts)} managed policies of {limit} characters, more than"
            f" --max-policies {most} (IAM attaches {MANAGED_POLICIES_PER_ROLE} to a role by"
            f" default): ask AWS for a higher 'Managed policies per role' quota (at most"
            f" {MANAGED_POLICIES_PER_ROLE_MAX}) and"
            f" pass --max-policies {len(parts)}"
        )
    return [{"Version": VERSION, "Statement": part} for part in parts]


def write_managed_policies(
    folder: Path, prefix: str, parts: list[dict[str, Any]], environment: str
) -> str:
    """Write ``parts`` as PREFIX-N.json in ``folder`` (replacing a former run's); the next steps.

    The files of a former run with more parts are removed, so the folder never holds a part
    that is no longer part of the policy.
    """
    from shared.settings import load_platform

    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f"{prefix}-*.json"):
        stale.unlink()
    account = load_platform(environment).account_id
    lines = [f"wrote {len(parts)} managed polic{'y' if len(parts) == 1 else 'ies'} to {folder}:"]
    commands = []
    for number, part in enumerate(parts, 1):
        name = f"{prefix}-{number}"
        path = folder / f"{name}.json"
        path.write_text(render(part) + "\n", encoding="utf-8")
        lines.append(f"  {path} ({characters(part):,} characters)")
        commands += [
            f"aws iam create-policy --policy-name {name} --policy-document file://{path}",
            f"aws iam attach-role-policy --role-name ROLE"
            f" --policy-arn arn:{PARTITION}:iam::{account}:policy/{name}",
        ]
    lines += [
        "create and attach each to the role (ROLE: its name); to update one, `aws iam"
        " create-policy-version --policy-arn ARN --policy-document file://PATH --set-as-default`:",
        *commands,
    ]
    return "\n".join(lines)


def render(document: Mapping[str, Any]) -> str:
    """The policy as the JSON to paste or pass to ``aws iam put-role-policy``."""
    return json.dumps(document, indent=2)

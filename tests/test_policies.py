"""The policy pack: each condition of each rule has a bad case, and the real plans pass.

Every rule is written down below as the conditions it checks. Each condition has one minimal
bad resource: the rule's good resource with only that condition broken, so a rule that loses
the condition lets it through and a test fails. Good cases pin what the rule must let pass
(exemptions, the other half of an ``any``/``all``). Expected values are literal here, never
read from ``policies.rules``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from policies import rules
from policies.pack import policies
from policies.rules import RULES, Resource, check_resource, check_stack
from toolbox.synth import synth
from toolbox.verdicts import evaluate, unexamined

REQUIRED_TAG_KEYS = (
    "Project",
    "Environment",
    "Layer",
    "Owner",
    "ManagedBy",
    "Repository",
    "CostCenter",
)
TAGS = {key: "x" for key in REQUIRED_TAG_KEYS}
KEY_ARN = "arn:aws:kms:us-east-1:111111111111:key/k"
ROLE_ARN = "arn:aws:iam::111111111111:role/r"

RULE_NAMES = {
    "s3-public-access-blocked",
    "s3-versioning-enabled",
    "s3-lifecycle-expires",
    "s3-sse-kms",
    "s3-tls-only",
    "s3-bucket-guarded",
    "kms-rotation",
    "secret-cmk",
    "sns-cmk",
    "ecr-scan-on-push",
    "ecr-immutable-tags",
    "ecr-lifecycle",
    "logs-retention-and-kms",
    "codebuild-small",
    "codebuild-logs",
    "codebuild-encrypted",
    "codepipeline-five-stages",
    "codepipeline-artifacts-encrypted",
    "iam-no-wildcard-action",
    "iam-no-wildcard-resource",
    "iam-trust-source-conditions",
    "iam-passrole-scoped",
    "tags-required",
    "dynamodb-pitr-kms",
    "lambda-log-group",
    "lambda-dead-letters",
    "lambda-not-public",
}
"""The 27 mandatory policies of the pack."""

PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
BUCKET_TYPE = "aws:s3/bucket:Bucket"
KEY = "aws:kms/key:Key"
SECRET = "aws:secretsmanager/secret:Secret"
TOPIC = "aws:sns/topic:Topic"
REPOSITORY = "aws:ecr/repository:Repository"
ECR_LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
PROJECT = "aws:codebuild/project:Project"
PIPELINE = "aws:codepipeline/pipeline:Pipeline"
TABLE = "aws:dynamodb/table:Table"
FUNCTION = "aws:lambda/function:Function"
PERMISSION = "aws:lambda/permission:Permission"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
MANAGED_POLICY = "aws:iam/policy:Policy"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
REPOSITORY_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"
POLICY_DOCUMENT_PROPS = {
    ROLE: "assumeRolePolicy",
    ROLE_POLICY: "policy",
    MANAGED_POLICY: "policy",
    BUCKET_POLICY: "policy",
    TOPIC_POLICY: "policy",
    REPOSITORY_POLICY: "policy",
    KEY: "policy",
}
"""Every resource type whose policy document the IAM rules read, and the prop that holds it."""
STAGE_NAMES = ["Source", "Build", "Test", "SecurityScan", "Deploy"]


def doc(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def res(type_, logical="bad-thing", **props):
    return Resource(type_, f"urn:pulumi:dev::p::{type_}::{logical}", logical, props)


def allow(actions, resource="arn:aws:s3:::b/*", **extra):
    return {"Effect": "Allow", "Action": actions, "Resource": resource, **extra}


def service_trust(**condition):
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": ["codebuild.amazonaws.com"]},
        "Action": ["sts:AssumeRole"],
    }
    return doc({**statement, "Condition": condition} if condition else statement)


@dataclass(frozen=True)
class Case:
    """One resource a rule must flag (bad) or let pass (good), and why."""

    rule: str
    what: str
    resource: Resource
    config: dict[str, Any] = field(default_factory=dict)
    says: str = ""
    """Text the violation must contain (bad cases)."""

    @property
    def id(self) -> str:
        return f"{self.rule}: {self.what}"


ALL_BLOCKED = dict.fromkeys(
    ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True
)
EXPIRING = {"status": "Enabled", "expiration": {"days": 30}}
KMS_DEFAULT = {
    "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY_ARN}
}
TLS_DENY = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
LOGS_OK = {"retentionInDays": 7, "kmsKeyId": KEY_ARN}
CODEBUILD_LOGS = {"cloudwatchLogs": {"status": "ENABLED", "groupName": "/aws/codebuild/x"}}
STORE = {"location": "b", "type": "S3", "encryptionKey": {"type": "KMS", "id": KEY_ARN}}
PASSROLE_SCOPED = allow(
    "iam:PassRole",
    ROLE_ARN,
    Condition={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
)


def _without(mapping, key):
    return {k: v for k, v in mapping.items() if k != key}


BAD: list[Case] = [
    # s3-public-access-blocked: each of the four switches must be true.
    *[
        Case(
            "s3-public-access-blocked",
            f"{key} false",
            res(PAB, **{**ALL_BLOCKED, key: False}),
            says=key,
        )
        for key in ALL_BLOCKED
    ],
    # ... and each left unset (AWS's default is false).
    *[
        Case(
            "s3-public-access-blocked",
            f"{key} unset",
            res(PAB, **_without(ALL_BLOCKED, key)),
            says=key,
        )
        for key in ALL_BLOCKED
    ],
    Case("s3-public-access-blocked", "all four unset", res(PAB), says="blockPublicAcls"),
    # s3-versioning-enabled: status Enabled.
    Case(
        "s3-versioning-enabled",
        "suspended",
        res(VERSIONING, versioningConfiguration={"status": "Suspended"}),
    ),
    Case(
        "s3-versioning-enabled",
        "disabled",
        res(VERSIONING, versioningConfiguration={"status": "Disabled"}),
    ),
    Case("s3-versioning-enabled", "unset", res(VERSIONING)),
    Case("s3-versioning-enabled", "status unset", res(VERSIONING, versioningConfiguration={})),
    # s3-lifecycle-expires: some rule is Enabled and expires after days.
    Case(
        "s3-lifecycle-expires",
        "rule disabled",
        res(LIFECYCLE, rules=[{**EXPIRING, "status": "Disabled"}]),
    ),
    Case("s3-lifecycle-expires", "no expiration", res(LIFECYCLE, rules=[{"status": "Enabled"}])),
    Case(
        "s3-lifecycle-expires",
        "expiration without days",
        res(LIFECYCLE, rules=[{"status": "Enabled", "expiration": {}}]),
    ),
    Case("s3-lifecycle-expires", "no rules", res(LIFECYCLE, rules=[])),
    Case("s3-lifecycle-expires", "rules unset", res(LIFECYCLE)),
    Case(
        "s3-lifecycle-expires",
        "rule status unset",
        res(LIFECYCLE, rules=[_without(EXPIRING, "status")]),
    ),
    # s3-sse-kms: algorithm aws:kms and a key.
    Case(
        "s3-sse-kms",
        "AES256",
        res(
            ENCRYPTION,
            rules=[
                {
                    "applyServerSideEncryptionByDefault": {
                        "sseAlgorithm": "AES256",
                        "kmsMasterKeyId": KEY_ARN,
                    }
                }
            ],
        ),
    ),
    Case(
        "s3-sse-kms",
        "aws:kms without a key (the AWS managed key)",
        res(
            ENCRYPTION, rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}]
        ),
    ),
    Case("s3-sse-kms", "no rules", res(ENCRYPTION, rules=[])),
    # Unset, S3 encrypts with its own key (SSE-S3), not the platform's.
    Case("s3-sse-kms", "rules unset", res(ENCRYPTION)),
    Case(
        "s3-sse-kms",
        "algorithm unset (a key alone)",
        res(
            ENCRYPTION, rules=[{"applyServerSideEncryptionByDefault": {"kmsMasterKeyId": KEY_ARN}}]
        ),
    ),
    Case(
        "s3-sse-kms", "no default encryption", res(ENCRYPTION, rules=[{"bucketKeyEnabled": True}])
    ),
    # s3-tls-only: a Deny statement with Bool aws:SecureTransport false.
    Case(
        "s3-tls-only",
        "the TLS statement allows",
        res(BUCKET_POLICY, policy=doc({**TLS_DENY, "Effect": "Allow"})),
    ),
    Case(
        "s3-tls-only",
        "denies only TLS requests",
        res(
            BUCKET_POLICY,
            policy=doc({**TLS_DENY, "Condition": {"Bool": {"aws:SecureTransport": "true"}}}),
        ),
    ),
    Case(
        "s3-tls-only",
        "deny without the condition",
        res(BUCKET_POLICY, policy=doc(_without(TLS_DENY, "Condition"))),
    ),
    Case(
        "s3-tls-only",
        "the condition under another operator",
        res(
            BUCKET_POLICY,
            policy=doc(
                {**TLS_DENY, "Condition": {"StringEquals": {"aws:SecureTransport": "false"}}}
            ),
        ),
    ),
    Case("s3-tls-only", "no statements", res(BUCKET_POLICY, policy=doc())),
    Case(
        "s3-tls-only",
        "Bool without aws:SecureTransport",
        res(BUCKET_POLICY, policy=doc({**TLS_DENY, "Condition": {"Bool": {}}})),
    ),
    # kms-rotation
    Case("kms-rotation", "rotation off", res(KEY, enableKeyRotation=False)),
    Case("kms-rotation", "rotation unset", res(KEY)),
    # secret-cmk / sns-cmk: a key, and not an AWS managed one.
    Case("secret-cmk", "no key", res(SECRET)),
    Case("secret-cmk", "empty key", res(SECRET, kmsKeyId="")),
    Case("secret-cmk", "AWS managed key", res(SECRET, kmsKeyId="alias/aws/secretsmanager")),
    Case("sns-cmk", "no key", res(TOPIC)),
    Case("sns-cmk", "empty key", res(TOPIC, kmsMasterKeyId="")),
    Case("sns-cmk", "AWS managed key", res(TOPIC, kmsMasterKeyId="alias/aws/sns")),
    # ecr-scan-on-push / ecr-immutable-tags
    Case(
        "ecr-scan-on-push", "off", res(REPOSITORY, imageScanningConfiguration={"scanOnPush": False})
    ),
    Case("ecr-scan-on-push", "unset", res(REPOSITORY)),
    Case("ecr-scan-on-push", "scanOnPush unset", res(REPOSITORY, imageScanningConfiguration={})),
    Case("ecr-immutable-tags", "mutable", res(REPOSITORY, imageTagMutability="MUTABLE")),
    Case("ecr-immutable-tags", "unset", res(REPOSITORY)),
    # logs-retention-and-kms: a retention, at most the limit, and the key.
    Case(
        "logs-retention-and-kms",
        "kept forever",
        res(LOG_GROUP, kmsKeyId=KEY_ARN),
        says="kept forever",
    ),
    Case(
        "logs-retention-and-kms",
        "0 days (never expire)",
        res(LOG_GROUP, retentionInDays=0, kmsKeyId=KEY_ARN),
    ),
    Case(
        "logs-retention-and-kms",
        "8 days over the 7-day default",
        res(LOG_GROUP, **{**LOGS_OK, "retentionInDays": 8}),
        says="kept 8 days",
    ),
    Case(
        "logs-retention-and-kms",
        "31 days over a configured 30",
        res(LOG_GROUP, **{**LOGS_OK, "retentionInDays": 31}),
        config={"maxRetentionDays": 30},
    ),
    Case(
        "logs-retention-and-kms", "no key", res(LOG_GROUP, retentionInDays=7), says="not encrypted"
    ),
    # codebuild-small
    Case(
        "codebuild-small",
        "large",
        res(PROJECT, name="p", environment={"computeType": "BUILD_GENERAL1_LARGE"}),
    ),
    Case(
        "codebuild-small",
        "medium",
        res(PROJECT, name="p", environment={"computeType": "BUILD_GENERAL1_MEDIUM"}),
    ),
    Case("codebuild-small", "no environment", res(PROJECT, name="p")),
    Case("codebuild-small", "compute type unset", res(PROJECT, name="p", environment={})),
    # codebuild-logs: not DISABLED, and a group name.
    Case(
        "codebuild-logs",
        "disabled",
        res(
            PROJECT,
            logsConfig={
                "cloudwatchLogs": {**CODEBUILD_LOGS["cloudwatchLogs"], "status": "DISABLED"}
            },
        ),
    ),
    Case(
        "codebuild-logs",
        "no group name",
        res(PROJECT, logsConfig={"cloudwatchLogs": {"status": "ENABLED"}}),
    ),
    Case("codebuild-logs", "no logs config", res(PROJECT)),
    # codebuild-encrypted
    Case("codebuild-encrypted", "no key", res(PROJECT)),
    Case("codebuild-encrypted", "empty key", res(PROJECT, encryptionKey="")),
    # codepipeline-five-stages: exactly these names in this order.
    Case(
        "codepipeline-five-stages",
        "a stage missing",
        res(PIPELINE, stages=[{"name": n} for n in STAGE_NAMES if n != "SecurityScan"]),
    ),
    Case(
        "codepipeline-five-stages",
        "out of order",
        res(
            PIPELINE,
            stages=[{"name": n} for n in ["Source", "Build", "SecurityScan", "Test", "Deploy"]],
        ),
    ),
    Case(
        "codepipeline-five-stages",
        "an extra stage",
        res(PIPELINE, stages=[{"name": n} for n in [*STAGE_NAMES, "Approve"]]),
    ),
    Case("codepipeline-five-stages", "no stages", res(PIPELINE)),
    # codepipeline-artifacts-encrypted: stores exist and every one has a key.
    Case("codepipeline-artifacts-encrypted", "no store", res(PIPELINE, artifactStores=[])),
    Case("codepipeline-artifacts-encrypted", "stores unset", res(PIPELINE)),
    Case(
        "codepipeline-artifacts-encrypted",
        "store without key",
        res(PIPELINE, artifactStores=[_without(STORE, "encryptionKey")]),
    ),
    Case(
        "codepipeline-artifacts-encrypted",
        "key without id",
        res(PIPELINE, artifactStores=[{**STORE, "encryptionKey": {"type": "KMS"}}]),
    ),
    Case(
        "codepipeline-artifacts-encrypted",
        "second region's store without key",
        res(
            PIPELINE,
            artifactStores=[STORE, {**_without(STORE, "encryptionKey"), "region": "eu-west-1"}],
        ),
    ),
    # iam-no-wildcard-action: '*' or 'service:*' in an Allow, in every policy-bearing type.
    *[
        Case(
            "iam-no-wildcard-action",
            f"s3:* in {type_.rsplit(':', 1)[1]}",
            res(type_, **{prop: doc(allow(["s3:GetObject", "s3:*"]))}),
        )
        for type_, prop in POLICY_DOCUMENT_PROPS.items()
    ],
    Case("iam-no-wildcard-action", "'*' as a string", res(ROLE_POLICY, policy=doc(allow("*")))),
    # iam-no-wildcard-resource: Resource '*' only with allow-listed actions.
    *[
        Case(
            "iam-no-wildcard-resource",
            f"s3:GetObject on '*' in {type_.rsplit(':', 1)[1]}",
            res(type_, policy=doc(allow(["s3:GetObject"], "*"))),
        )
        for type_ in (ROLE_POLICY, MANAGED_POLICY, BUCKET_POLICY, TOPIC_POLICY, REPOSITORY_POLICY)
    ],
    Case(
        "iam-no-wildcard-resource",
        "an allowed action beside one that is not",
        res(ROLE_POLICY, policy=doc(allow(["ecr:GetAuthorizationToken", "ecr:PutImage"], ["*"]))),
        says="ecr:PutImage",
    ),
    # iam-trust-source-conditions: a service principal needs aws:SourceAccount or aws:SourceArn.
    Case(
        "iam-trust-source-conditions", "no condition", res(ROLE, assumeRolePolicy=service_trust())
    ),
    Case(
        "iam-trust-source-conditions",
        "only another condition key",
        res(ROLE, assumeRolePolicy=service_trust(StringEquals={"aws:PrincipalOrgID": "o-1"})),
    ),
    # iam-passrole-scoped: iam:PassRole needs iam:PassedToService.
    Case(
        "iam-passrole-scoped",
        "no condition",
        res(ROLE_POLICY, policy=doc(allow("iam:PassRole", ROLE_ARN))),
    ),
    Case(
        "iam-passrole-scoped",
        "in a list, another condition key",
        res(
            MANAGED_POLICY,
            policy=doc(
                allow(
                    ["iam:GetRole", "iam:PassRole"],
                    ROLE_ARN,
                    Condition={"StringEquals": {"iam:AssociatedResourceArn": "arn:aws:ecs:x"}},
                )
            ),
        ),
    ),
    # tags-required: each of the seven keys, with a value.
    *[
        Case("tags-required", f"{key} missing", res(KEY, tags=_without(TAGS, key)), says=key)
        for key in REQUIRED_TAG_KEYS
    ],
    Case("tags-required", "Owner empty", res(KEY, tags={**TAGS, "Owner": ""}), says="Owner"),
    Case("tags-required", "no tags", res(SECRET)),
    # ecr-immutable-tags: an exclusion may name only the tags allowed to move, exactly.
    Case(
        "ecr-immutable-tags",
        "a wildcard exclusion",
        res(
            REPOSITORY,
            imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
            imageTagMutabilityExclusionFilters=[{"filter": "*", "filterType": "WILDCARD"}],
        ),
        says="mutable",
    ),
    Case(
        "ecr-immutable-tags",
        "with exclusion but no filter",
        res(REPOSITORY, imageTagMutability="IMMUTABLE_WITH_EXCLUSION"),
    ),
    # dynamodb-pitr-kms: PITR on, SSE on with a customer-managed key.
    Case(
        "dynamodb-pitr-kms",
        "PITR off",
        res(
            TABLE,
            pointInTimeRecovery={"enabled": False},
            serverSideEncryption={"enabled": True, "kmsKeyArn": KEY_ARN},
        ),
        says="point-in-time recovery is off",
    ),
    # ... and PITR not mentioned at all: AWS's default is off.
    Case(
        "dynamodb-pitr-kms",
        "PITR unset",
        res(TABLE, serverSideEncryption={"enabled": True, "kmsKeyArn": KEY_ARN}),
        says="point-in-time recovery is not set (AWS's default is off)",
    ),
    Case(
        "dynamodb-pitr-kms",
        "PITR enabled unset",
        res(
            TABLE,
            pointInTimeRecovery={},
            serverSideEncryption={"enabled": True, "kmsKeyArn": KEY_ARN},
        ),
        says="point-in-time recovery is not set",
    ),
    Case(
        "dynamodb-pitr-kms",
        "SSE off",
        res(
            TABLE,
            pointInTimeRecovery={"enabled": True},
            serverSideEncryption={"enabled": False, "kmsKeyArn": KEY_ARN},
        ),
        says="customer-managed key",
    ),
    Case(
        "dynamodb-pitr-kms",
        "SSE on, key unset (the AWS managed key)",
        res(TABLE, pointInTimeRecovery={"enabled": True}, serverSideEncryption={"enabled": True}),
        says="customer-managed key",
    ),
    Case(
        "dynamodb-pitr-kms",
        "the AWS owned key",
        res(TABLE, pointInTimeRecovery={"enabled": True}),
        says="customer-managed key",
    ),
    Case(
        "dynamodb-pitr-kms",
        "the AWS managed key",
        res(
            TABLE,
            pointInTimeRecovery={"enabled": True},
            serverSideEncryption={"enabled": True, "kmsKeyArn": "alias/aws/dynamodb"},
        ),
    ),
    # lambda-log-group: its own group through logging_config.
    Case("lambda-log-group", "default group", res(FUNCTION, loggingConfig={"logFormat": "JSON"})),
    Case("lambda-log-group", "no logging config", res(FUNCTION)),
    # lambda-not-public: no "*", and a service principal is bound to a source.
    Case("lambda-not-public", "anyone", res(PERMISSION, principal="*"), says="anyone"),
    Case(
        "lambda-not-public",
        "a service for any source",
        res(PERMISSION, principal="events.amazonaws.com"),
        says="any account",
    ),
]
"""Resources each rule must flag: one per condition it checks."""

GOOD: list[Case] = [
    Case("s3-public-access-blocked", "all four", res(PAB, **ALL_BLOCKED)),
    Case(
        "s3-versioning-enabled",
        "enabled",
        res(VERSIONING, versioningConfiguration={"status": "Enabled"}),
    ),
    Case("s3-lifecycle-expires", "expires", res(LIFECYCLE, rules=[EXPIRING])),
    Case(
        "s3-lifecycle-expires",
        "one expiring rule among others",
        res(
            LIFECYCLE,
            rules=[
                {"status": "Enabled", "noncurrentVersionExpiration": {"noncurrentDays": 7}},
                EXPIRING,
            ],
        ),
    ),
    Case("s3-sse-kms", "the platform key", res(ENCRYPTION, rules=[KMS_DEFAULT])),
    Case(
        "s3-tls-only",
        "denies plain HTTP",
        res(BUCKET_POLICY, policy=doc(allow(["s3:GetObject"]), TLS_DENY)),
    ),
    Case(
        "s3-tls-only",
        "boolean false, single statement",
        res(
            BUCKET_POLICY,
            policy=json.dumps(
                {"Statement": {**TLS_DENY, "Condition": {"Bool": {"aws:SecureTransport": False}}}}
            ),
        ),
    ),
    Case("s3-tls-only", "policy unknown until apply (a preview)", res(BUCKET_POLICY)),
    Case("kms-rotation", "rotates", res(KEY, enableKeyRotation=True)),
    Case("secret-cmk", "the platform key", res(SECRET, kmsKeyId=KEY_ARN)),
    Case("secret-cmk", "a customer alias", res(SECRET, kmsKeyId="alias/acme-platform")),
    Case("sns-cmk", "the platform key", res(TOPIC, kmsMasterKeyId=KEY_ARN)),
    Case(
        "ecr-scan-on-push", "on", res(REPOSITORY, imageScanningConfiguration={"scanOnPush": True})
    ),
    Case("ecr-immutable-tags", "immutable", res(REPOSITORY, imageTagMutability="IMMUTABLE")),
    Case("logs-retention-and-kms", "7 days and the key", res(LOG_GROUP, **LOGS_OK)),
    Case("logs-retention-and-kms", "1 day", res(LOG_GROUP, **{**LOGS_OK, "retentionInDays": 1})),
    Case(
        "logs-retention-and-kms",
        "30 days under a configured 30",
        res(LOG_GROUP, **{**LOGS_OK, "retentionInDays": 30}),
        config={"maxRetentionDays": 30},
    ),
    Case(
        "codebuild-small",
        "small",
        res(PROJECT, name="p", environment={"computeType": "BUILD_GENERAL1_SMALL"}),
    ),
    Case("codebuild-logs", "its own group", res(PROJECT, logsConfig=CODEBUILD_LOGS)),
    Case(
        "codebuild-logs",
        "status left to the default",
        res(PROJECT, logsConfig={"cloudwatchLogs": {"groupName": "/g"}}),
    ),
    Case("codebuild-encrypted", "the platform key", res(PROJECT, encryptionKey=KEY_ARN)),
    Case(
        "codepipeline-five-stages",
        "the five",
        res(PIPELINE, stages=[{"name": n} for n in STAGE_NAMES]),
    ),
    Case("codepipeline-artifacts-encrypted", "encrypted", res(PIPELINE, artifactStores=[STORE])),
    Case(
        "codepipeline-artifacts-encrypted",
        "two stores, both encrypted",
        res(PIPELINE, artifactStores=[STORE, {**STORE, "region": "eu-west-1"}]),
    ),
    Case(
        "iam-no-wildcard-action",
        "named actions",
        res(ROLE_POLICY, policy=doc(allow(["s3:GetObject"]))),
    ),
    Case(
        "iam-no-wildcard-action",
        "a prefix wildcard",
        res(ROLE_POLICY, policy=doc(allow(["s3:Get*"]))),
    ),
    Case(
        "iam-no-wildcard-action",
        "a Deny may use '*'",
        res(
            BUCKET_POLICY,
            policy=doc({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}),
        ),
    ),
    Case(
        "iam-no-wildcard-resource",
        "the allow-listed actions",
        res(
            ROLE_POLICY,
            policy=doc(allow(["ecr:GetAuthorizationToken", "ecs:DescribeTaskDefinition"], "*")),
        ),
    ),
    Case(
        "iam-no-wildcard-resource",
        "a key policy's '*' is the key",
        res(
            KEY,
            policy=doc(
                allow(["kms:Decrypt"], "*", Principal={"AWS": "arn:aws:iam::111111111111:root"})
            ),
        ),
    ),
    Case(
        "iam-no-wildcard-resource",
        "a Deny on '*'",
        res(
            BUCKET_POLICY,
            policy=doc({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}),
        ),
    ),
    Case(
        "iam-trust-source-conditions",
        "aws:SourceAccount",
        res(
            ROLE, assumeRolePolicy=service_trust(StringEquals={"aws:SourceAccount": "111111111111"})
        ),
    ),
    Case(
        "iam-trust-source-conditions",
        "aws:SourceArn alone",
        res(ROLE, assumeRolePolicy=service_trust(ArnLike={"aws:SourceArn": "arn:aws:events:x"})),
    ),
    Case(
        "iam-trust-source-conditions",
        "an account principal",
        res(
            ROLE,
            assumeRolePolicy=doc(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
                    "Action": "sts:AssumeRole",
                }
            ),
        ),
    ),
    Case(
        "iam-passrole-scoped", "iam:PassedToService", res(ROLE_POLICY, policy=doc(PASSROLE_SCOPED))
    ),
    Case(
        "iam-passrole-scoped",
        "a Deny needs no condition",
        res(
            ROLE_POLICY,
            policy=doc({"Effect": "Deny", "Action": "iam:PassRole", "Resource": ROLE_ARN}),
        ),
    ),
    Case("tags-required", "the seven keys", res(KEY, tags=TAGS)),
    Case(
        "tags-required",
        "a type that takes no tags",
        res(ROLE_POLICY, policy=doc(allow(["s3:GetObject"]))),
    ),
    Case(
        "ecr-immutable-tags",
        "only production may move",
        res(
            REPOSITORY,
            imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
            imageTagMutabilityExclusionFilters=[{"filter": "production", "filterType": "WILDCARD"}],
        ),
    ),
    Case(
        "dynamodb-pitr-kms",
        "PITR and the platform key",
        res(
            TABLE,
            pointInTimeRecovery={"enabled": True},
            serverSideEncryption={"enabled": True, "kmsKeyArn": KEY_ARN},
        ),
    ),
    Case(
        "lambda-log-group",
        "its own group",
        res(FUNCTION, loggingConfig={"logFormat": "JSON", "logGroup": "/aws/lambda/f"}),
    ),
    Case(
        "lambda-not-public",
        "a rule's source ARN",
        res(
            PERMISSION,
            principal="events.amazonaws.com",
            sourceArn="arn:aws:events:us-east-1:111111111111:rule/r",
        ),
    ),
    Case(
        "lambda-not-public",
        "a source account",
        res(PERMISSION, principal="s3.amazonaws.com", sourceAccount="111111111111"),
    ),
    Case(
        "lambda-not-public",
        "an account principal",
        res(PERMISSION, principal="111111111111"),
    ),
]
"""Resources each rule must let pass: its exemptions and the other side of each condition."""


UNSET_IS_UNSAFE: dict[str, dict[str, str]] = {
    "s3-public-access-blocked": {
        f"{key} unset": "false"
        for key in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    },
    "s3-versioning-enabled": {"unset": "never enabled", "status unset": "never enabled"},
    "s3-lifecycle-expires": {"rules unset": "objects kept forever"},
    "s3-sse-kms": {"rules unset": "SSE-S3", "algorithm unset (a key alone)": "SSE-S3"},
    "kms-rotation": {"rotation unset": "no rotation"},
    "secret-cmk": {"no key": "the AWS managed key aws/secretsmanager"},
    "sns-cmk": {"no key": "no encryption"},
    "ecr-scan-on-push": {"unset": "no scan", "scanOnPush unset": "no scan"},
    "ecr-immutable-tags": {"unset": "MUTABLE"},
    "logs-retention-and-kms": {"kept forever": "never expire", "no key": "the service's key"},
    "codebuild-small": {"compute type unset": "required, no default"},
    "codebuild-logs": {"no group name": "the default group /aws/codebuild/<project>"},
    "codebuild-encrypted": {"no key": "the AWS managed key aws/s3"},
    "codepipeline-artifacts-encrypted": {"stores unset": "required, no default"},
    "dynamodb-pitr-kms": {
        "PITR unset": "off",
        "PITR enabled unset": "off",
        "the AWS owned key": "an AWS owned key",
        "SSE on, key unset (the AWS managed key)": "the AWS managed key aws/dynamodb",
    },
    "lambda-log-group": {"no logging config": "/aws/lambda/<function>, kept forever"},
    "iam-trust-source-conditions": {"no condition": "any account's resource may assume"},
    "iam-passrole-scoped": {"no condition": "passable to any service"},
    "tags-required": {"no tags": "untagged"},
    "lambda-not-public": {"a service for any source": "any account's resources may invoke"},
}
"""Per rule, the settings whose AWS default (beside it) is the unsafe one: each has a bad case
with the setting left out, beside the one that sets it false or off."""


def test_every_setting_whose_default_is_unsafe_has_its_unset_bad_case():
    named = {(case.rule, case.what) for case in BAD}
    missing = [
        (rule, what)
        for rule, cases in UNSET_IS_UNSAFE.items()
        for what in cases
        if (rule, what) not in named
    ]
    assert missing == []


def _ids(cases):
    return [case.id for case in cases]


RULE = {rule.name: rule for rule in RULES}


def test_the_pack_has_the_27_rules_each_with_bad_and_good_cases():
    assert set(RULE) == RULE_NAMES
    assert len(RULES) == 27
    stack_rules = {"s3-bucket-guarded", "ecr-lifecycle", "lambda-dead-letters"}
    assert {c.rule for c in BAD} == {c.rule for c in GOOD} == RULE_NAMES - stack_rules
    assert {c.rule for c in STACK_BAD} == {c.rule for c in STACK_GOOD} == stack_rules


@pytest.mark.parametrize("case", BAD, ids=_ids(BAD))
def test_rule_flags_each_condition_it_checks(case):
    examined: Counter[str] = Counter()
    messages = check_resource(RULE[case.rule], case.resource, case.config, examined)
    assert messages, f"{case.id}: not flagged"
    assert examined == {case.rule: 1}
    res_ = case.resource
    assert all(m.startswith(f"{res_.name} ({res_.type}): ") and "; fix: " in m for m in messages)
    assert case.says in " ".join(messages)


@pytest.mark.parametrize("case", GOOD, ids=_ids(GOOD))
def test_rule_lets_the_good_case_pass(case):
    assert check_resource(RULE[case.rule], case.resource, case.config) == []


def test_an_allow_listed_project_may_use_a_bigger_compute_type(monkeypatch):
    big = res(PROJECT, name="p-big", environment={"computeType": "BUILD_GENERAL1_LARGE"})
    monkeypatch.setitem(rules.COMPUTE_ALLOWLIST, "p-big", "the integration suite needs 15 GB")
    assert check_resource(RULE["codebuild-small"], big) == []


def test_a_resource_of_another_type_is_neither_checked_nor_examined():
    examined: Counter[str] = Counter()
    topic = res(TOPIC)
    for rule in RULES:
        if rule.stack_check is None and rule.name not in {"sns-cmk", "tags-required"}:
            assert check_resource(rule, topic, None, examined) == [], rule.name
    assert examined == {}
    untaggable = res(ROLE_POLICY, policy=doc(allow(["s3:GetObject"])))
    check_resource(RULE["tags-required"], untaggable, None, examined)
    assert examined == {}


BUCKET = res(BUCKET_TYPE, logical="artifacts", bucket="artifacts-b")
COMPANION_TYPES = (PAB, VERSIONING, LIFECYCLE, ENCRYPTION, BUCKET_POLICY)
COMPANIONS = {
    t: res(t, logical=f"artifacts-{i}", bucket="artifacts-b") for i, t in enumerate(COMPANION_TYPES)
}
REPO = res(REPOSITORY, logical="repo", name="repo")
COUNT_RULE = {
    "rulePriority": 1,
    "selection": {
        "tagStatus": "tagged",
        "tagPrefixList": ["app-"],
        "countType": "imageCountMoreThan",
        "countNumber": 10,
    },
    "action": {"type": "expire"},
}
AGE_RULE = {
    "rulePriority": 1,
    "selection": {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 1,
    },
    "action": {"type": "expire"},
}
REPO_LIFECYCLE = res(
    ECR_LIFECYCLE, logical="lc", repository="repo", policy=json.dumps({"rules": [COUNT_RULE]})
)
FUNCTION_NAMED = res(FUNCTION, logical="fn", name="fn")
INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
ON_FAILURE = {"onFailure": {"destination": "arn:aws:sqs:us-east-1:111111111111:q"}}
DLQ_ARN = "arn:aws:sqs:us-east-1:111111111111:fn-dlq"
FUNCTION_WITH_DLQ = res(FUNCTION, logical="fn", name="fn", deadLetterConfig={"targetArn": DLQ_ARN})


def dead_letters_alarm(queue, **overrides):
    """An alarm on messages waiting in ``queue``, to a topic (what the rule asks for)."""
    props = {
        "namespace": "AWS/SQS",
        "metricName": "ApproximateNumberOfMessagesVisible",
        "dimensions": {"QueueName": queue},
        "alarmActions": ["arn:aws:sns:us-east-1:111111111111:failures"],
        **overrides,
    }
    return res("aws:cloudwatch/metricAlarm:MetricAlarm", logical=f"{queue}-alarm", **props)


@dataclass(frozen=True)
class StackCase:
    rule: str
    what: str
    resources: list[Resource]

    @property
    def id(self) -> str:
        return f"{self.rule}: {self.what}"


STACK_BAD: list[StackCase] = [
    *[
        StackCase(
            "s3-bucket-guarded",
            f"no {t.rsplit(':', 1)[1]}",
            [BUCKET, *[c for k, c in COMPANIONS.items() if k != t]],
        )
        for t in COMPANION_TYPES
    ],
    StackCase(
        "s3-bucket-guarded",
        "the block guards another bucket",
        [BUCKET, *[c for k, c in COMPANIONS.items() if k != PAB], res(PAB, bucket="other-b")],
    ),
    StackCase(
        "s3-bucket-guarded",
        "two unnamed buckets (a preview), one block",
        [
            res(BUCKET_TYPE, logical="a"),
            res(BUCKET_TYPE, logical="b"),
            *[res(t, logical=f"a-{i}") for i, t in enumerate(COMPANION_TYPES)],
            *[res(t, logical=f"b-{i}") for i, t in enumerate(COMPANION_TYPES) if t != PAB],
        ],
    ),
    StackCase("ecr-lifecycle", "no lifecycle policy", [REPO]),
    StackCase(
        "ecr-lifecycle",
        "a policy that keeps no count of images",
        [REPO, res(ECR_LIFECYCLE, repository="repo", policy=json.dumps({"rules": [AGE_RULE]}))],
    ),
    StackCase(
        "ecr-lifecycle",
        "the policy of another repository",
        [REPO, res(ECR_LIFECYCLE, repository="other")],
    ),
    StackCase(
        "ecr-lifecycle",
        "two unnamed repositories (a preview), one policy",
        [
            res(REPOSITORY, logical="a"),
            res(REPOSITORY, logical="b"),
            res(ECR_LIFECYCLE, repository="x", policy=json.dumps({"rules": [COUNT_RULE]})),
        ],
    ),
    StackCase("lambda-dead-letters", "no DLQ, no destination", [FUNCTION_NAMED]),
    StackCase(
        "lambda-dead-letters",
        "a destination for another function",
        [FUNCTION_NAMED, res(INVOKE_CONFIG, functionName="other", destinationConfig=ON_FAILURE)],
    ),
    StackCase("lambda-dead-letters", "an SQS DLQ without an alarm", [FUNCTION_WITH_DLQ]),
    StackCase(
        "lambda-dead-letters",
        "the alarm watches another queue",
        [FUNCTION_WITH_DLQ, dead_letters_alarm("other-dlq")],
    ),
    StackCase(
        "lambda-dead-letters",
        "the alarm on its queue has no action",
        [FUNCTION_WITH_DLQ, dead_letters_alarm("fn-dlq", alarmActions=[])],
    ),
    StackCase(
        "lambda-dead-letters",
        "the alarm on its queue has its actions disabled",
        [FUNCTION_WITH_DLQ, dead_letters_alarm("fn-dlq", actionsEnabled=False)],
    ),
    StackCase(
        "lambda-dead-letters",
        "the alarm on its queue watches another metric",
        [FUNCTION_WITH_DLQ, dead_letters_alarm("fn-dlq", metricName="NumberOfMessagesSent")],
    ),
    StackCase(
        "lambda-dead-letters",
        "an SQS on-failure destination without an alarm",
        [FUNCTION_NAMED, res(INVOKE_CONFIG, functionName="fn", destinationConfig=ON_FAILURE)],
    ),
]

STACK_GOOD: list[StackCase] = [
    StackCase("s3-bucket-guarded", "every companion", [BUCKET, *COMPANIONS.values()]),
    StackCase(
        "s3-bucket-guarded",
        "unnamed bucket (a preview) with each companion",
        [
            res(BUCKET_TYPE, logical="a"),
            *[res(t, logical=f"a-{i}") for i, t in enumerate(COMPANION_TYPES)],
        ],
    ),
    StackCase("ecr-lifecycle", "its policy", [REPO, REPO_LIFECYCLE]),
    StackCase(
        "ecr-lifecycle",
        "unnamed repository (a preview) with a policy",
        [
            res(REPOSITORY, logical="a"),
            res(ECR_LIFECYCLE, repository="a-123", policy=json.dumps({"rules": [COUNT_RULE]})),
        ],
    ),
    StackCase(
        "lambda-dead-letters",
        "an SQS dead-letter queue with an alarm on messages waiting",
        [FUNCTION_WITH_DLQ, dead_letters_alarm("fn-dlq")],
    ),
    StackCase(
        "lambda-dead-letters",
        "an SQS on-failure destination with an alarm on messages waiting",
        [
            FUNCTION_NAMED,
            res(INVOKE_CONFIG, functionName="fn", destinationConfig=ON_FAILURE),
            dead_letters_alarm("q"),
        ],
    ),
    StackCase(
        "lambda-dead-letters",
        "an SNS dead-letter topic (its subscribers hear of it)",
        [
            res(
                FUNCTION,
                logical="fn",
                name="fn",
                deadLetterConfig={"targetArn": "arn:aws:sns:us-east-1:111111111111:fn-dlq"},
            )
        ],
    ),
]


@pytest.mark.parametrize("case", STACK_BAD, ids=_ids(STACK_BAD))
def test_stack_rule_flags_each_condition_it_checks(case):
    violations = check_stack(RULE[case.rule], case.resources)
    assert violations, f"{case.id}: not flagged"
    assert all("; fix: " in message for _, message in violations)


@pytest.mark.parametrize("case", STACK_GOOD, ids=_ids(STACK_GOOD))
def test_stack_rule_lets_the_good_stack_pass(case):
    assert check_stack(RULE[case.rule], case.resources) == []


def test_stack_rules_count_the_resources_they_guard():
    examined: Counter[str] = Counter()
    check_stack(RULE["s3-bucket-guarded"], [BUCKET, *COMPANIONS.values(), REPO], examined)
    check_stack(RULE["ecr-lifecycle"], [BUCKET, REPO, REPO_LIFECYCLE], examined)
    assert examined == {"s3-bucket-guarded": 1, "ecr-lifecycle": 1}


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_the_real_plan_of_every_layer_passes_every_policy(environment, dev, prod):
    for plan in {"dev": dev, "prod": prod}[environment].values():
        verdicts = evaluate(plan)
        assert verdicts.passed, [v.message for v in verdicts.violations]
        assert set(verdicts.examined) == RULE_NAMES


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_every_rule_examines_a_resource_of_the_real_plans(environment, dev, prod):
    """A rule that matches nothing in the plans (a mistyped type token) guards nothing."""
    plans = {"dev": dev, "prod": prod}[environment]
    verdicts = [evaluate(plan) for plan in plans.values()]
    total: Counter[str] = Counter()
    for verdict in verdicts:
        total.update(verdict.examined)
    assert {name for name, count in total.items() if count >= 1} == RULE_NAMES
    assert unexamined(verdicts) == []


def test_verdicts_count_only_what_each_rule_examined(dev):
    foundation = evaluate(dev["foundation"]).examined
    registry = evaluate(dev["registry"]).examined
    pipeline = evaluate(dev["pipeline"]).examined
    # One key, two buckets (artifacts, source), two secrets (GitHub token, webhook token), one
    # topic in the foundation; none elsewhere.
    assert (foundation["kms-rotation"], registry["kms-rotation"], pipeline["kms-rotation"]) == (
        1,
        0,
        0,
    )
    assert foundation["s3-bucket-guarded"] == 2 and registry["s3-bucket-guarded"] == 0
    assert (foundation["secret-cmk"], foundation["sns-cmk"]) == (2, 1)
    # One repository per service (app, worker) in the registry.
    for name in ("ecr-scan-on-push", "ecr-immutable-tags", "ecr-lifecycle"):
        assert (foundation[name], registry[name], pipeline[name]) == (0, 2, 0), name
    # Four CodeBuild projects per service; their eight log groups, the two deploy handlers' and
    # the recorder's; one pipeline per service.
    for name in ("codebuild-small", "codebuild-logs", "codebuild-encrypted"):
        assert pipeline[name] == 8, name
    assert pipeline["logs-retention-and-kms"] == 11
    # One ledger in the foundation; three handlers (the recorder, a deploy handler per service)
    # in the pipeline, and the recorder's two invoke permissions (its two rules).
    assert (foundation["dynamodb-pitr-kms"], pipeline["dynamodb-pitr-kms"]) == (1, 0)
    for name in ("lambda-log-group", "lambda-dead-letters"):
        assert (foundation[name], pipeline[name]) == (0, 3), name
    assert (foundation["lambda-not-public"], pipeline["lambda-not-public"]) == (0, 2)
    assert pipeline["codepipeline-five-stages"] == pipeline["codepipeline-artifacts-encrypted"] == 2
    # Tags: only resources whose type takes tags, so never more than the layer's resources.
    custom = sum(1 for r in dev["registry"].resources if r.custom)
    assert 1 <= registry["tags-required"] < custom


def test_unexamined_names_the_rules_no_layer_exercised(dev):
    # The registry holds a repository and its lifecycle policy: four rules look at them.
    registry_rules = {"ecr-scan-on-push", "ecr-immutable-tags", "ecr-lifecycle", "tags-required"}
    assert unexamined([evaluate(dev["registry"])]) == sorted(RULE_NAMES - registry_rules)


def test_a_drifted_plan_fails_synth_verdicts(dev):
    from dataclasses import replace

    plan = dev["foundation"]
    drifted = tuple(
        replace(r, inputs={**r.inputs, "enableKeyRotation": False})
        if r.type == "aws:kms/key:Key"
        else r
        for r in plan.resources
    )
    verdicts = evaluate(replace(plan, resources=drifted))
    assert [v.policy for v in verdicts.violations] == ["kms-rotation"]


def test_synth_writes_deterministic_verdicts_beside_the_plan(tmp_path):
    first = synth("dev", "registry", tmp_path / "a")
    second = synth("dev", "registry", tmp_path / "b")
    text = (tmp_path / "a" / "dev" / "registry.policy.json").read_text()
    assert text == (tmp_path / "b" / "dev" / "registry.policy.json").read_text()
    verdicts = json.loads(text)
    assert verdicts["passed"] is True
    assert set(verdicts["policies"]) == RULE_NAMES
    assert verdicts["policies"]["ecr-immutable-tags"] == {"examined": 2, "violations": []}
    assert verdicts["policies"]["kms-rotation"] == {"examined": 0, "violations": []}
    assert first.violations == second.violations == 0


def test_the_pack_defines_every_rule_as_a_mandatory_policy():
    built = policies()
    assert [p.name for p in built] == [rule.name for rule in RULES]
    assert {p.enforcement_level.value for p in built} == {"mandatory"}

"""The policy pack: every policy fails a deliberately bad resource, and the real plans pass."""

from __future__ import annotations

import json

import pytest

from policies.pack import policies
from policies.rules import RULES, Resource, check_resource
from shared.naming import REQUIRED_TAGS
from toolbox.synth import synth
from toolbox.verdicts import evaluate

TAGS = {key: "x" for key in REQUIRED_TAGS}
KEY_ARN = "arn:aws:kms:us-east-1:111111111111:key/k"


def doc(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def res(type_, logical="bad-thing", **props):
    return Resource(type_, f"urn:pulumi:dev::p::{type_}::{logical}", logical, props)


TRUST_OK = doc(
    {
        "Effect": "Allow",
        "Principal": {"Service": ["codebuild.amazonaws.com"]},
        "Action": ["sts:AssumeRole"],
        "Condition": {"StringEquals": {"aws:SourceAccount": ["111111111111"]}},
    }
)

# rule name -> (a resource that breaks it, one that keeps it)
CASES = {
    "s3-public-access-blocked": (
        res(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            blockPublicAcls=True,
            blockPublicPolicy=True,
            ignorePublicAcls=True,
            restrictPublicBuckets=False,
        ),
        res(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            blockPublicAcls=True,
            blockPublicPolicy=True,
            ignorePublicAcls=True,
            restrictPublicBuckets=True,
        ),
    ),
    "s3-versioning-enabled": (
        res(
            "aws:s3/bucketVersioning:BucketVersioning",
            versioningConfiguration={"status": "Suspended"},
        ),
        res(
            "aws:s3/bucketVersioning:BucketVersioning",
            versioningConfiguration={"status": "Enabled"},
        ),
    ),
    "s3-lifecycle-expires": (
        res(
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
            rules=[{"status": "Disabled", "expiration": {"days": 30}}],
        ),
        res(
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
            rules=[{"status": "Enabled", "expiration": {"days": 30}}],
        ),
    ),
    "s3-sse-kms": (
        res(
            "aws:s3/bucketServerSideEncryptionConfiguration:"
            "BucketServerSideEncryptionConfiguration",
            rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}],
        ),
        res(
            "aws:s3/bucketServerSideEncryptionConfiguration:"
            "BucketServerSideEncryptionConfiguration",
            rules=[
                {
                    "applyServerSideEncryptionByDefault": {
                        "sseAlgorithm": "aws:kms",
                        "kmsMasterKeyId": KEY_ARN,
                    }
                }
            ],
        ),
    ),
    "s3-tls-only": (
        res(
            "aws:s3/bucketPolicy:BucketPolicy",
            policy=doc({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"}),
        ),
        res(
            "aws:s3/bucketPolicy:BucketPolicy",
            policy=doc(
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": "*",
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ),
        ),
    ),
    "kms-rotation": (
        res("aws:kms/key:Key", enableKeyRotation=False),
        res("aws:kms/key:Key", enableKeyRotation=True),
    ),
    "secret-cmk": (
        res("aws:secretsmanager/secret:Secret", kmsKeyId="alias/aws/secretsmanager"),
        res("aws:secretsmanager/secret:Secret", kmsKeyId=KEY_ARN),
    ),
    "sns-cmk": (res("aws:sns/topic:Topic"), res("aws:sns/topic:Topic", kmsMasterKeyId=KEY_ARN)),
    "ecr-scan-on-push": (
        res("aws:ecr/repository:Repository", imageScanningConfiguration={"scanOnPush": False}),
        res("aws:ecr/repository:Repository", imageScanningConfiguration={"scanOnPush": True}),
    ),
    "ecr-immutable-tags": (
        res("aws:ecr/repository:Repository", imageTagMutability="MUTABLE"),
        res("aws:ecr/repository:Repository", imageTagMutability="IMMUTABLE"),
    ),
    "logs-retention-and-kms": (
        res("aws:cloudwatch/logGroup:LogGroup", retentionInDays=30, kmsKeyId=KEY_ARN),
        res("aws:cloudwatch/logGroup:LogGroup", retentionInDays=7, kmsKeyId=KEY_ARN),
    ),
    "codebuild-small": (
        res("aws:codebuild/project:Project", environment={"computeType": "BUILD_GENERAL1_LARGE"}),
        res("aws:codebuild/project:Project", environment={"computeType": "BUILD_GENERAL1_SMALL"}),
    ),
    "codebuild-logs": (
        res("aws:codebuild/project:Project", logsConfig={"cloudwatchLogs": {"status": "DISABLED"}}),
        res(
            "aws:codebuild/project:Project",
            logsConfig={"cloudwatchLogs": {"status": "ENABLED", "groupName": "/aws/x"}},
        ),
    ),
    "codebuild-encrypted": (
        res("aws:codebuild/project:Project"),
        res("aws:codebuild/project:Project", encryptionKey=KEY_ARN),
    ),
    "codepipeline-five-stages": (
        res(
            "aws:codepipeline/pipeline:Pipeline",
            stages=[{"name": n} for n in ("Source", "Build", "Deploy")],
        ),
        res(
            "aws:codepipeline/pipeline:Pipeline",
            stages=[{"name": n} for n in ("Source", "Build", "Test", "SecurityScan", "Deploy")],
        ),
    ),
    "codepipeline-artifacts-encrypted": (
        res("aws:codepipeline/pipeline:Pipeline", artifactStores=[{"location": "b"}]),
        res(
            "aws:codepipeline/pipeline:Pipeline",
            artifactStores=[{"location": "b", "encryptionKey": {"type": "KMS", "id": KEY_ARN}}],
        ),
    ),
    "iam-no-wildcard-action": (
        res(
            "aws:iam/rolePolicy:RolePolicy",
            policy=doc({"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::b"]}),
        ),
        res(
            "aws:iam/rolePolicy:RolePolicy",
            policy=doc(
                {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/*"]}
            ),
        ),
    ),
    "iam-no-wildcard-resource": (
        res(
            "aws:iam/rolePolicy:RolePolicy",
            policy=doc({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}),
        ),
        res(
            "aws:iam/rolePolicy:RolePolicy",
            policy=doc(
                {"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": "*"}
            ),
        ),
    ),
    "iam-trust-source-conditions": (
        res(
            "aws:iam/role:Role",
            assumeRolePolicy=doc(
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "codebuild.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ),
        ),
        res("aws:iam/role:Role", assumeRolePolicy=TRUST_OK),
    ),
    "iam-passrole-scoped": (
        res(
            "aws:iam/rolePolicy:RolePolicy",
            policy=doc(
                {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/r"}
            ),
        ),
        res(
            "aws:iam/rolePolicy:RolePolicy",
            policy=doc(
                {
                    "Effect": "Allow",
                    "Action": "iam:PassRole",
                    "Resource": "arn:aws:iam::1:role/r",
                    "Condition": {
                        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
                    },
                }
            ),
        ),
    ),
    "tags-required": (
        res("aws:kms/key:Key", tags={"Project": "x"}),
        res("aws:kms/key:Key", tags=TAGS),
    ),
}

BUCKET = res("aws:s3/bucket:Bucket", logical="artifacts", bucket="artifacts-b")
COMPANIONS = [
    res(t, logical=f"artifacts-{i}", bucket="artifacts-b")
    for i, t in enumerate(
        (
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            "aws:s3/bucketVersioning:BucketVersioning",
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            "aws:s3/bucketPolicy:BucketPolicy",
        )
    )
]
REPO = res("aws:ecr/repository:Repository", logical="repo", name="repo")
STACK_CASES = {
    "s3-bucket-guarded": ([BUCKET, *COMPANIONS[:-1]], [BUCKET, *COMPANIONS]),
    "ecr-lifecycle": (
        [REPO],
        [
            REPO,
            res(
                "aws:ecr/lifecyclePolicy:LifecyclePolicy",
                logical="lc",
                repository="repo",
                policy=json.dumps(
                    {
                        "rules": [
                            {
                                "rulePriority": 1,
                                "selection": {
                                    "tagStatus": "tagged",
                                    "tagPrefixList": ["app-"],
                                    "countType": "imageCountMoreThan",
                                    "countNumber": 10,
                                },
                                "action": {"type": "expire"},
                            }
                        ]
                    }
                ),
            ),
        ],
    ),
}
RULE = {rule.name: rule for rule in RULES}


def test_every_policy_has_a_bad_case():
    assert set(CASES) | set(STACK_CASES) == set(RULE)


@pytest.mark.parametrize("name", sorted(CASES))
def test_policy_fails_a_bad_resource_and_names_it_and_the_fix(name):
    bad, good = CASES[name]
    (message, *_) = check_resource(RULE[name], bad)
    assert message.startswith(f"{bad.name} ({bad.type}): ")
    assert "; fix: " in message
    assert check_resource(RULE[name], good) == []


@pytest.mark.parametrize("name", sorted(STACK_CASES))
def test_stack_policy_fails_a_bad_stack(name):
    bad, good = STACK_CASES[name]
    violations = list(RULE[name].stack_check(bad))
    assert violations and "; fix: " in violations[0][1]
    assert list(RULE[name].stack_check(good)) == []


def test_key_policies_may_use_the_key_wildcard():
    key = res(
        "aws:kms/key:Key",
        policy=doc(
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::1:root"},
                "Action": ["kms:Decrypt"],
                "Resource": "*",
            }
        ),
    )
    assert check_resource(RULE["iam-no-wildcard-resource"], key) == []


def test_log_retention_limit_comes_from_config():
    group = CASES["logs-retention-and-kms"][0]
    assert check_resource(RULE["logs-retention-and-kms"], group, {"maxRetentionDays": 30}) == []


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_the_real_plan_of_every_layer_passes_every_policy(environment, dev, prod):
    for plan in {"dev": dev, "prod": prod}[environment].values():
        verdicts = evaluate(plan)
        assert verdicts.passed, [v.message for v in verdicts.violations]
        assert set(verdicts.checked) == set(RULE)


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
    assert json.loads(text)["passed"] is True
    assert first.violations == second.violations == 0


def test_the_pack_defines_every_rule_as_a_mandatory_policy():
    built = policies()
    assert [p.name for p in built] == [rule.name for rule in RULES]
    assert {p.enforcement_level.value for p in built} == {"mandatory"}

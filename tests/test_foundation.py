"""The foundation layer: every seed requirement on the key, bucket, secret and topic."""

from __future__ import annotations

import json

import pytest

from shared.errors import ConfigError
from tests.conftest import inputs_of, policy_of

KEY = "aws:kms/key:Key"
BUCKET = "aws:s3/bucket:Bucket"


def test_key_rotates_yearly(dev):
    key = inputs_of(dev["foundation"], KEY)
    assert key["enableKeyRotation"] is True
    assert key["rotationPeriodInDays"] == 365


def test_key_has_an_alias_named_for_the_environment(dev):
    alias = inputs_of(dev["foundation"], "aws:kms/alias:Alias")
    assert alias["name"] == "alias/acme-foundation-artifacts-dev"


def test_key_policy_grants_no_wildcard_action_and_scopes_services(dev):
    doc = policy_of(dev["foundation"].one(KEY))
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    for statement in doc["Statement"]:
        assert all(a != "kms:*" and a != "*" for a in statement["Action"])
    logs = by_sid["CloudWatchLogsEncryptsPipelineLogs"]
    assert logs["Principal"] == {"Service": ["logs.us-east-1.amazonaws.com"]}
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == [
        "arn:aws:logs:us-east-1:111111111111:log-group:/aws/codebuild/acme-pipeline-*"
    ]
    via = by_sid["AccountUsesKeyThroughS3AndSecretsManager"]["Condition"]["StringEquals"]
    assert sorted(via["kms:ViaService"]) == [
        "s3.us-east-1.amazonaws.com",
        "secretsmanager.us-east-1.amazonaws.com",
    ]
    events = by_sid["EventBridgePublishesToEncryptedTopic"]
    assert events["Condition"]["StringEquals"]["aws:SourceAccount"] == ["111111111111"]


def test_bucket_versioned(dev):
    versioning = inputs_of(dev["foundation"], "aws:s3/bucketVersioning:BucketVersioning")
    assert versioning["versioningConfiguration"]["status"] == "Enabled"


def test_bucket_lifecycle_expires_after_30_days(dev):
    lifecycle = inputs_of(
        dev["foundation"], "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
    )
    (rule,) = lifecycle["rules"]
    assert rule["status"] == "Enabled"
    assert rule["expiration"]["days"] == 30
    assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == 30
    assert rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 1


def test_bucket_blocks_every_kind_of_public_access(dev):
    block = inputs_of(dev["foundation"], "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    for setting in (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ):
        assert block[setting] is True, setting


def test_bucket_encrypted_with_the_platform_key_and_bucket_key(dev):
    plan = dev["foundation"]
    sse = inputs_of(
        plan,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    )
    (rule,) = sse["rules"]
    default = rule["applyServerSideEncryptionByDefault"]
    assert default["sseAlgorithm"] == "aws:kms"
    assert default["kmsMasterKeyId"] == plan.exports["kmsKeyArn"]
    assert rule["bucketKeyEnabled"] is True


def test_bucket_owner_enforced_and_tls_only(dev):
    plan = dev["foundation"]
    ownership = inputs_of(plan, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    doc = policy_of(plan.one("aws:s3/bucketPolicy:BucketPolicy"))
    (deny,) = doc["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": ["false"]}}
    bucket_arn = plan.exports["artifactBucketArn"]
    assert deny["Resource"] == [bucket_arn, f"{bucket_arn}/*"]


def test_bucket_name_carries_account_and_environment(dev, prod):
    assert dev["foundation"].exports["artifactBucketName"] == (
        "acme-foundation-artifacts-111111111111-dev"
    )
    assert prod["foundation"].exports["artifactBucketName"].endswith("-prod")


def test_secret_encrypted_with_the_platform_key_and_holds_no_value_by_default(dev):
    plan = dev["foundation"]
    secret = inputs_of(plan, "aws:secretsmanager/secret:Secret")
    assert secret["kmsKeyId"] == plan.exports["kmsKeyArn"]
    assert plan.of_type("aws:secretsmanager/secretVersion:SecretVersion") == []


def test_github_token_from_secret_config_is_stored_and_never_written(replan):
    marker = "ghp_marker_value_that_must_never_leak"
    plan = replan("foundation", secrets={"platform-foundation:githubToken": marker})
    version = inputs_of(plan, "aws:secretsmanager/secretVersion:SecretVersion")
    assert version["secretString"] == "[secret]"
    assert marker not in plan.to_text()


def test_github_token_in_plain_config_is_refused(replan):
    marker = "ghp_marker_value_that_must_never_leak"
    with pytest.raises(ConfigError) as error:
        replan("foundation", config={"platform-foundation:githubToken": marker})
    message = str(error.value)
    assert message.startswith("stacks/foundation/Pulumi.dev.yaml: platform-foundation:githubToken:")
    assert "pulumi config set --secret githubToken" in message
    assert marker not in message


def test_topic_encrypted_and_only_eventbridge_publishes(dev):
    plan = dev["foundation"]
    topic = inputs_of(plan, "aws:sns/topic:Topic")
    assert topic["kmsMasterKeyId"] == plan.exports["kmsKeyArn"]
    doc = policy_of(plan.one("aws:sns/topicPolicy:TopicPolicy"))
    (statement,) = doc["Statement"]
    assert statement["Principal"] == {"Service": ["events.amazonaws.com"]}
    assert statement["Action"] == ["sns:Publish"]
    assert statement["Resource"] == [plan.exports["failureTopicArn"]]
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == ["111111111111"]


def test_failures_are_emailed_to_devops_by_default(dev):
    subscription = inputs_of(dev["foundation"], "aws:sns/topicSubscription:TopicSubscription")
    assert subscription["protocol"] == "email"
    assert subscription["endpoint"] == "devops@company.com"


def test_stateful_resources_protected_in_prod_only(dev, prod):
    stateful = (KEY, BUCKET, "aws:secretsmanager/secret:Secret")
    for type_ in stateful:
        assert dev["foundation"].one(type_).protect is False, type_
        assert prod["foundation"].one(type_).protect is True, type_
    assert inputs_of(dev["foundation"], BUCKET)["forceDestroy"] is True
    assert inputs_of(prod["foundation"], BUCKET)["forceDestroy"] is False


def test_plan_file_is_json_with_every_resource(dev):
    data = json.loads(dev["foundation"].to_text())
    assert {r["type"] for r in data["resources"]} >= {KEY, BUCKET}

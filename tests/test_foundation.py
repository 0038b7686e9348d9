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


def _key_statements(plan) -> dict:
    return {s["Sid"]: s for s in policy_of(plan.one(KEY))["Statement"]}


def test_key_policy_grants_no_wildcard_action_and_scopes_services(dev):
    by_sid = _key_statements(dev["foundation"])
    for statement in by_sid.values():
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


def test_key_is_administered_by_the_account_root_and_nobody_else(dev, prod):
    for plan, account in (
        (dev["foundation"], "111111111111"),
        (prod["foundation"], "222222222222"),
    ):
        admin = _key_statements(plan)["AccountAdministersKey"]
        assert admin["Principal"] == {"AWS": [f"arn:aws:iam::{account}:root"]}
        assert "kms:PutKeyPolicy" in admin["Action"]
        assert "Condition" not in admin


def test_account_principals_manage_grants_only_for_aws_resources(dev):
    by_sid = _key_statements(dev["foundation"])
    grant_actions = {"kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"}
    for sid, statement in by_sid.items():
        if "AWS" in statement["Principal"] and grant_actions & set(statement["Action"]):
            assert statement["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": ["true"]}}, sid
    grants = by_sid["AccountGrantsOnlyForAwsResources"]
    assert sorted(grants["Action"]) == sorted(grant_actions)
    assert grants["Principal"] == {"AWS": ["arn:aws:iam::111111111111:root"]}


def test_eventbridge_and_cloudwatch_may_use_the_key_for_the_topic_and_queues(dev):
    by_sid = _key_statements(dev["foundation"])
    events = by_sid["EventBridgeDeliversToEncryptedTopicAndQueues"]
    assert events["Principal"] == {"Service": ["events.amazonaws.com"]}
    assert sorted(events["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    # AWS documents that EventBridge sends no aws:Source* keys to KMS: a condition would drop
    # every delivery to the encrypted topic and queues.
    assert "Condition" not in events
    alarms = by_sid["CloudWatchAlarmsNotifyEncryptedTopic"]
    assert alarms["Principal"] == {"Service": ["cloudwatch.amazonaws.com"]}
    assert sorted(alarms["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert alarms["Condition"] == {"StringEquals": {"aws:SourceAccount": ["111111111111"]}}


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


def test_topic_encrypted_with_the_platform_key(dev):
    plan = dev["foundation"]
    topic = inputs_of(plan, "aws:sns/topic:Topic")
    assert topic["kmsMasterKeyId"] == plan.exports["kmsKeyArn"]
    # Its policy is the pipeline layer's, which knows the rule and alarm ARNs.
    assert plan.of_type("aws:sns/topicPolicy:TopicPolicy") == []


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

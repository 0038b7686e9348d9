"""The foundation layer: every seed requirement on the key, bucket, secret and topic."""

from __future__ import annotations

import json

import pytest

from shared.errors import ConfigError
from tests.conftest import inputs_of, policy_of

KEY = "aws:kms/key:Key"
BUCKET = "aws:s3/bucket:Bucket"
SECRET = "aws:secretsmanager/secret:Secret"
ARTIFACTS = "acme-foundation-artifacts-111111111111-dev"
SOURCE = "acme-foundation-source-111111111111-dev"
BUCKETS = (ARTIFACTS, SOURCE)


def of_bucket(plan, type_: str, bucket: str) -> dict:
    """The inputs of the one ``type_`` resource that configures ``bucket``."""
    (found,) = [
        r for r in plan.of_type(type_) if r.inputs.get("bucket", r.inputs.get("id")) == bucket
    ]
    return found.inputs


def secret_named(plan, name: str):
    (found,) = [r for r in plan.of_type(SECRET) if r.inputs["name"] == name]
    return found


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


@pytest.mark.parametrize("bucket", BUCKETS)
def test_bucket_versioned(dev, bucket):
    versioning = of_bucket(dev["foundation"], "aws:s3/bucketVersioning:BucketVersioning", bucket)
    assert versioning["versioningConfiguration"]["status"] == "Enabled"


def _lifecycle_rule(plan, bucket: str) -> dict:
    lifecycle = of_bucket(
        plan, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", bucket
    )
    (rule,) = lifecycle["rules"]
    assert rule["status"] == "Enabled"
    assert rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 1
    return rule


def test_bucket_lifecycle_expires_after_30_days(dev):
    rule = _lifecycle_rule(dev["foundation"], ARTIFACTS)
    assert rule["expiration"]["days"] == 30
    assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == 30


def test_source_zip_is_kept_a_year_and_its_old_versions_expire_with_the_artifacts(dev):
    rule = _lifecycle_rule(dev["foundation"], SOURCE)
    assert rule["expiration"]["days"] == 365
    assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == 30


def test_source_bucket_sends_its_object_events_to_eventbridge(dev):
    plan = dev["foundation"]
    (notification,) = plan.of_type("aws:s3/bucketNotification:BucketNotification")
    assert notification.inputs["bucket"] == SOURCE
    assert notification.inputs["eventbridge"] is True
    assert plan.exports["sourceBucketName"] == SOURCE
    assert plan.exports["sourceBucketArn"] == f"arn:aws:s3:::{SOURCE}"


@pytest.mark.parametrize("bucket", BUCKETS)
def test_bucket_blocks_every_kind_of_public_access(dev, bucket):
    block = of_bucket(
        dev["foundation"], "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket
    )
    for setting in (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ):
        assert block[setting] is True, setting


@pytest.mark.parametrize("bucket", BUCKETS)
def test_bucket_encrypted_with_the_platform_key_and_bucket_key(dev, bucket):
    plan = dev["foundation"]
    sse = of_bucket(
        plan,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        bucket,
    )
    (rule,) = sse["rules"]
    default = rule["applyServerSideEncryptionByDefault"]
    assert default["sseAlgorithm"] == "aws:kms"
    assert default["kmsMasterKeyId"] == plan.exports["kmsKeyArn"]
    assert rule["bucketKeyEnabled"] is True


@pytest.mark.parametrize("bucket", BUCKETS)
def test_bucket_owner_enforced_and_tls_only(dev, bucket):
    plan = dev["foundation"]
    ownership = of_bucket(plan, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", bucket)
    assert ownership["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    doc = json.loads(of_bucket(plan, "aws:s3/bucketPolicy:BucketPolicy", bucket)["policy"])
    (deny,) = doc["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": ["false"]}}
    bucket_arn = f"arn:aws:s3:::{bucket}"
    assert deny["Resource"] == [bucket_arn, f"{bucket_arn}/*"]


def test_bucket_urns_are_pinned(dev):
    # A refactor that changes these would replace a bucket (and lose its objects).
    base = "urn:pulumi:dev::platform-foundation::acme:foundation:Foundation$aws:s3/bucket:Bucket::"
    urns = {r.urn for r in dev["foundation"].of_type(BUCKET)}
    assert urns == {f"{base}foundation-artifacts", f"{base}foundation-source"}


def test_bucket_name_carries_account_and_environment(dev, prod):
    assert dev["foundation"].exports["artifactBucketName"] == (
        "acme-foundation-artifacts-111111111111-dev"
    )
    assert prod["foundation"].exports["artifactBucketName"].endswith("-prod")


VERSION = "aws:secretsmanager/secretVersion:SecretVersion"


def test_secret_encrypted_with_the_platform_key_and_holds_no_value_by_default(dev):
    plan = dev["foundation"]
    secret = secret_named(plan, "acme-foundation-github-token-dev")
    assert secret.inputs["kmsKeyId"] == plan.exports["kmsKeyArn"]
    assert [v.name for v in plan.of_type(VERSION)] == ["foundation-github-webhook-secret-value"]


def test_webhook_token_is_generated_stored_encrypted_and_kept_across_runs(dev):
    plan = dev["foundation"]
    secret = secret_named(plan, "acme-foundation-github-webhook-secret-dev")
    assert secret.inputs["kmsKeyId"] == plan.exports["kmsKeyArn"]
    assert plan.exports["githubWebhookSecretArn"].startswith(
        "arn:aws:secretsmanager:us-east-1:111111111111:secret:acme-foundation-github-webhook-"
    )
    (version,) = [v for v in plan.of_type(VERSION) if v.name.endswith("webhook-secret-value")]
    assert version.inputs["secretString"] == "[secret]"
    # GetRandomPassword answers anew on every run: only the first value may ever be stored.
    assert "offline0" not in plan.to_text()


def test_webhook_token_version_ignores_later_generated_values(dev):
    # GetRandomPassword answers anew on every run: without ignore_changes every `pulumi up`
    # would rotate the token and break the webhook until the pipeline layer is deployed again.
    (version,) = [
        v for v in dev["foundation"].of_type(VERSION) if v.name.endswith("webhook-secret-value")
    ]
    assert version.ignore_changes == ("secretString",)


def test_github_token_from_secret_config_is_stored_and_never_written(replan):
    marker = "ghp_marker_value_that_must_never_leak"
    plan = replan("foundation", secrets={"platform-foundation:githubToken": marker})
    (version,) = [v for v in plan.of_type(VERSION) if v.name == "foundation-github-token-value"]
    assert version.inputs["secretString"] == "[secret]"
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
    stateful = (KEY, BUCKET, SECRET)
    for type_ in stateful:
        assert {r.protect for r in dev["foundation"].of_type(type_)} == {False}, type_
        assert {r.protect for r in prod["foundation"].of_type(type_)} == {True}, type_
    assert {r.inputs["forceDestroy"] for r in dev["foundation"].of_type(BUCKET)} == {True}
    assert {r.inputs["forceDestroy"] for r in prod["foundation"].of_type(BUCKET)} == {False}


def test_plan_file_is_json_with_every_resource(dev):
    data = json.loads(dev["foundation"].to_text())
    assert {r["type"] for r in data["resources"]} >= {KEY, BUCKET}

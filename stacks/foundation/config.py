"""Reads and validates the foundation layer's config into :class:`FoundationArgs`."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from shared.layers import get as get_layer
from shared.naming import Kind, Label
from shared.settings import Platform
from shared.stackconfig import StackConfig, StackValues


@dataclass(frozen=True)
class FoundationArgs:
    """Everything the foundation component needs, validated and with its names checked."""

    account_id: str
    """The AWS account; principals and conditions in the policies name it."""
    region: str
    """The AWS region; service principals and ARNs in the policies name it."""
    key_alias: str
    """Alias of the KMS key (``alias/...``)."""
    bucket_name: str
    """Name of the artifact bucket (global, so it carries the account id)."""
    source_bucket_name: str
    """Name of the S3 source bucket (global, so it carries the account id)."""
    source_expiry_days: int
    """Days a published source zip is kept while no newer one replaces it."""
    secret_name: str
    """Name of the Secrets Manager secret holding the GitHub OAuth token."""
    webhook_secret_name: str
    """Name of the Secrets Manager secret holding the generated GitHub webhook HMAC token."""
    topic_name: str
    """Name of the SNS topic for pipeline failures."""
    log_group_prefix: str
    """Log groups (the pipeline's CodeBuild logs) that CloudWatch Logs may encrypt with the key."""
    handler_log_group_prefix: str
    """Log groups of the pipeline's Lambda handlers, which CloudWatch Logs may encrypt too."""
    ledger_table_name: str
    """Name of the DynamoDB deployment ledger."""
    notification_email: str
    """Address subscribed to the failure topic."""
    artifact_expiry_days: int
    """Days after which artifacts and noncurrent versions expire."""
    key_deletion_window_days: int
    """Waiting period before a deleted key is destroyed (7-30)."""
    secret_recovery_window_days: int
    """Days a deleted secret can be restored (0, or 7-30)."""
    protect: bool
    """Protect the stateful resources (key, bucket, secret, ledger) from deletion."""
    github_token: pulumi.Output[str] | None
    """The GitHub token from secret config, or None when the operator sets it in the secret."""


def load(values: StackValues, platform: Platform, label: Label) -> FoundationArgs:
    """Validate the foundation config; a ConfigError naming file and key on bad input."""
    config = StackConfig(values)
    return FoundationArgs(
        account_id=platform.account_id,
        region=platform.region,
        key_alias=label.name(Kind.KMS_ALIAS, "artifacts"),
        bucket_name=label.name(Kind.S3_BUCKET, "artifacts", scoped_to_account=True),
        source_bucket_name=label.name(Kind.S3_BUCKET, "source", scoped_to_account=True),
        source_expiry_days=config.integer("sourceExpiryDays", minimum=1, maximum=3650),
        secret_name=label.name(Kind.SECRET, "github-token"),
        webhook_secret_name=label.name(Kind.SECRET, "github-webhook-secret"),
        topic_name=label.name(Kind.SNS_TOPIC, "pipeline-failures"),
        log_group_prefix=label.prefix(Kind.LOG_GROUP, layer=get_layer("pipeline")),
        handler_log_group_prefix=label.prefix(Kind.LAMBDA_LOG_GROUP, layer=get_layer("pipeline")),
        ledger_table_name=label.name(Kind.DYNAMODB_TABLE, "ledger"),
        notification_email=config.email("notificationEmail"),
        artifact_expiry_days=config.integer("artifactExpiryDays", minimum=1, maximum=365),
        key_deletion_window_days=config.integer("keyDeletionWindowDays", minimum=7, maximum=30),
        secret_recovery_window_days=config.integer(
            "secretRecoveryWindowDays", choices=(0, *range(7, 31))
        ),
        protect=platform.protect,
        github_token=config.secret("githubToken"),
    )

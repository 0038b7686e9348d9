"""The foundation component: the KMS key, the artifact bucket, the token secret, the topic."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from shared import iam, ledger
from shared.contracts import FoundationOutputs
from stacks.foundation.config import FoundationArgs

KEY_USE = [
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
]
"""Cryptographic use of the key, without administration."""

KEY_ADMIN = [
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
]
"""Administration of the key, delegated to the account's IAM policies (no ``kms:*``)."""


class Foundation(pulumi.ComponentResource):
    """Everything the other layers encrypt with, store in and notify through."""

    key: aws.kms.Key
    """The customer-managed KMS key (rotation on) for artifacts, logs, secret, topic, images."""
    bucket: aws.s3.Bucket
    """The pipeline artifact bucket."""
    secret: aws.secretsmanager.Secret
    """The secret that holds the GitHub OAuth token."""
    topic: aws.sns.Topic
    """The topic pipeline failures are published to."""
    ledger: aws.dynamodb.Table
    """The deployment ledger: every pipeline, stage and build event, and every release."""
    outputs: FoundationOutputs
    """The layer's contract, exported by ``__main__``."""

    def __init__(
        self, name: str, args: FoundationArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("acme:foundation:Foundation", name, None, opts)
        self._name, self._args = name, args
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect)

        self.key = self._key(stateful)
        alias = aws.kms.Alias(
            f"{name}-key-alias", name=args.key_alias, target_key_id=self.key.key_id, opts=child
        )
        self.bucket = self._bucket(stateful, child)
        self.secret = self._secret(stateful, child)
        self.topic = self._topic(child)
        self.ledger = self._ledger(stateful)

        self.outputs = FoundationOutputs(
            kms_key_arn=self.key.arn,
            kms_key_alias=alias.name,
            artifact_bucket_name=self.bucket.bucket,
            artifact_bucket_arn=self.bucket.arn,
            github_token_secret_arn=self.secret.arn,
            failure_topic_arn=self.topic.arn,
            ledger_table_name=self.ledger.name,
            ledger_table_arn=self.ledger.arn,
        )
        self.register_outputs({"kmsKeyArn": self.key.arn, "artifactBucketArn": self.bucket.arn})

    def _key(self, opts: pulumi.ResourceOptions) -> aws.kms.Key:
        a = self._args
        account_root = f"arn:aws:iam::{a.account_id}:root"
        same_account = iam.Condition("StringEquals", "aws:SourceAccount", [a.account_id])
        policy = iam.key_policy(
            iam.Statement(
                sid="AccountAdministersKey",
                actions=KEY_ADMIN,
                resources=["*"],
                principals={"AWS": [account_root]},
            ),
            iam.Statement(
                # Pipeline and CodeBuild roles encrypt artifacts and read the token only through
                # S3 and Secrets Manager; their IAM policies name this key's ARN.
                sid="AccountUsesKeyThroughS3AndSecretsManager",
                actions=KEY_USE,
                resources=["*"],
                principals={"AWS": [account_root]},
                conditions=[
                    iam.Condition("StringEquals", "kms:CallerAccount", [a.account_id]),
                    iam.Condition(
                        "StringEquals",
                        "kms:ViaService",
                        [
                            f"s3.{a.region}.amazonaws.com",
                            f"secretsmanager.{a.region}.amazonaws.com",
                        ],
                    ),
                ],
            ),
            iam.Statement(
                sid="CloudWatchLogsEncryptsPipelineLogs",
                actions=KEY_USE,
                resources=["*"],
                principals={"Service": [f"logs.{a.region}.amazonaws.com"]},
                conditions=[
                    iam.Condition(
                        "ArnLike",
                        "kms:EncryptionContext:aws:logs:arn",
                        [
                            iam.arn(
                                "logs", a.region, a.account_id, f"log-group:{a.log_group_prefix}*"
                            )
                        ],
                    )
                ],
            ),
            iam.Statement(
                # The release handlers write the ledger (DynamoDB), publish to the topic (SNS)
                # and park failed events in their dead-letter queues (SQS); those services call
                # KMS on the caller's behalf. DynamoDB also needs CreateGrant and DescribeKey:
                # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.usagenotes.html
                sid="AccountUsesKeyThroughReleaseServices",
                actions=[*KEY_USE, "kms:CreateGrant"],
                resources=["*"],
                principals={"AWS": [account_root]},
                conditions=[
                    iam.Condition("StringEquals", "kms:CallerAccount", [a.account_id]),
                    iam.Condition(
                        "StringEquals",
                        "kms:ViaService",
                        [
                            f"dynamodb.{a.region}.amazonaws.com",
                            f"sns.{a.region}.amazonaws.com",
                            f"sqs.{a.region}.amazonaws.com",
                        ],
                    ),
                ],
            ),
            iam.Statement(
                sid="CloudWatchLogsEncryptsHandlerLogs",
                actions=KEY_USE,
                resources=["*"],
                principals={"Service": [f"logs.{a.region}.amazonaws.com"]},
                conditions=[
                    iam.Condition(
                        "ArnLike",
                        "kms:EncryptionContext:aws:logs:arn",
                        [
                            iam.arn(
                                "logs",
                                a.region,
                                a.account_id,
                                f"log-group:{a.handler_log_group_prefix}*",
                            )
                        ],
                    )
                ],
            ),
            iam.Statement(
                # EventBridge publishes failure events to the encrypted topic.
                sid="EventBridgePublishesToEncryptedTopic",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                principals={"Service": ["events.amazonaws.com"]},
                conditions=[same_account],
            ),
        )
        return aws.kms.Key(
            f"{self._name}-key",
            description=f"Platform key: artifacts, logs, secrets, topic and images ({a.key_alias})",
            enable_key_rotation=True,
            rotation_period_in_days=365,
            deletion_window_in_days=a.key_deletion_window_days,
            policy=policy,
            opts=opts,
        )

    def _bucket(
        self, stateful: pulumi.ResourceOptions, child: pulumi.ResourceOptions
    ) -> aws.s3.Bucket:
        a, name = self._args, self._name
        bucket = aws.s3.Bucket(
            f"{name}-artifacts", bucket=a.bucket_name, force_destroy=not a.protect, opts=stateful
        )
        of_bucket = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[bucket]))
        aws.s3.BucketPublicAccessBlock(
            f"{name}-artifacts-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=of_bucket,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-artifacts-ownership",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=of_bucket,
        )
        aws.s3.BucketVersioning(
            f"{name}-artifacts-versioning",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=of_bucket,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-artifacts-encryption",
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": self.key.arn,
                    },
                    "bucket_key_enabled": True,
                }
            ],
            opts=of_bucket,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-artifacts-lifecycle",
            bucket=bucket.id,
            rules=[
                {
                    "id": f"expire-after-{a.artifact_expiry_days}-days",
                    "status": "Enabled",
                    "filter": {},
                    "expiration": {"days": a.artifact_expiry_days},
                    "noncurrent_version_expiration": {"noncurrent_days": a.artifact_expiry_days},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
                }
            ],
            opts=of_bucket,
        )
        aws.s3.BucketPolicy(
            f"{name}-artifacts-policy",
            bucket=bucket.id,
            policy=iam.document(
                iam.Statement(
                    sid="DenyInsecureTransport",
                    effect="Deny",
                    actions=["s3:*"],
                    principals={"AWS": ["*"]},
                    resources=[bucket.arn, pulumi.Output.concat(bucket.arn, "/*")],
                    conditions=[iam.Condition("Bool", "aws:SecureTransport", ["false"])],
                )
            ),
            opts=of_bucket,
        )
        return bucket

    def _secret(
        self, stateful: pulumi.ResourceOptions, child: pulumi.ResourceOptions
    ) -> aws.secretsmanager.Secret:
        a = self._args
        secret = aws.secretsmanager.Secret(
            f"{self._name}-github-token",
            name=a.secret_name,
            kms_key_id=self.key.arn,
            description="GitHub OAuth token for the CodePipeline source action",
            recovery_window_in_days=a.secret_recovery_window_days,
            opts=stateful,
        )
        if a.github_token is not None:
            aws.secretsmanager.SecretVersion(
                f"{self._name}-github-token-value",
                secret_id=secret.id,
                secret_string=a.github_token,
                opts=child,
            )
        return secret

    def _ledger(self, stateful: pulumi.ResourceOptions) -> aws.dynamodb.Table:
        """The deployment ledger: one partition per pipeline execution (or build), sorted by time.

        The ``kind`` index (pipeline, stage, build, release) sorted by time answers "the last N
        releases" with one Query instead of a Scan (``invoke releases``).
        """
        a = self._args
        return aws.dynamodb.Table(
            f"{self._name}-ledger",
            name=a.ledger_table_name,
            billing_mode="PAY_PER_REQUEST",
            hash_key=ledger.PARTITION_KEY,
            range_key=ledger.SORT_KEY,
            attributes=[
                aws.dynamodb.TableAttributeArgs(name=ledger.PARTITION_KEY, type="S"),
                aws.dynamodb.TableAttributeArgs(name=ledger.SORT_KEY, type="S"),
                aws.dynamodb.TableAttributeArgs(name=ledger.KIND_KEY, type="S"),
            ],
            global_secondary_indexes=[
                aws.dynamodb.TableGlobalSecondaryIndexArgs(
                    name=ledger.KIND_INDEX,
                    projection_type="ALL",
                    key_schemas=[
                        aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(
                            attribute_name=ledger.KIND_KEY, key_type="HASH"
                        ),
                        aws.dynamodb.TableGlobalSecondaryIndexKeySchemaArgs(
                            attribute_name=ledger.SORT_KEY, key_type="RANGE"
                        ),
                    ],
                )
            ],
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(
                enabled=True, kms_key_arn=self.key.arn
            ),
            deletion_protection_enabled=a.protect,
            opts=stateful,
        )

    def _topic(self, child: pulumi.ResourceOptions) -> aws.sns.Topic:
        a = self._args
        topic = aws.sns.Topic(
            f"{self._name}-pipeline-failures",
            name=a.topic_name,
            kms_master_key_id=self.key.arn,
            opts=child,
        )
        aws.sns.TopicPolicy(
            f"{self._name}-pipeline-failures-policy",
            arn=topic.arn,
            policy=iam.document(
                iam.Statement(
                    sid="OnlyEventBridgeOfThisAccountPublishes",
                    actions=["sns:Publish"],
                    principals={"Service": ["events.amazonaws.com"]},
                    resources=[topic.arn],
                    conditions=[iam.Condition("StringEquals", "aws:SourceAccount", [a.account_id])],
                )
            ),
            opts=child,
        )
        aws.sns.TopicSubscription(
            f"{self._name}-pipeline-failures-email",
            topic=topic.arn,
            protocol="email",
            endpoint=a.notification_email,
            opts=child,
        )
        return topic

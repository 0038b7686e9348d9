"""The foundation component: the KMS key, the artifact and source buckets, the token and webhook
secrets, the failure topic and the deployment ledger."""

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
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RetireGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
]
"""Administration of the key, delegated to the account's IAM policies (no ``kms:*``, no grants)."""

KEY_GRANTS = ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"]
"""Grant management: only when an AWS service integrated with KMS asks on a principal's behalf
(``kms:GrantIsForAWSResource``), e.g. CodeBuild or ECR attaching the key to what they create."""

SERVICE_KEY_USE = ["kms:Decrypt", "kms:GenerateDataKey"]
"""What EventBridge and CloudWatch need to deliver to the encrypted topic and queues (SNS and
SQS server-side encryption call GenerateDataKey; AWS samples write `GenerateDataKey*`)."""

WEBHOOK_TOKEN_LENGTH = 40
"""Characters of the generated webhook token (letters and digits: no escaping anywhere)."""


class Foundation(pulumi.ComponentResource):
    """Everything the other layers encrypt with, store in and notify through."""

    key: aws.kms.Key
    """The customer-managed KMS key (rotation on) for artifacts, logs, secret, topic, images."""
    bucket: aws.s3.Bucket
    """The pipeline artifact bucket."""
    source_bucket: aws.s3.Bucket
    """The bucket an S3-sourced pipeline reads its versioned source zip from."""
    secret: aws.secretsmanager.Secret
    """The secret that holds the GitHub OAuth token."""
    webhook_secret: aws.secretsmanager.Secret
    """The secret that holds the generated HMAC token of the GitHub webhook."""
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
        a = args
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect)

        self.key = self._key(stateful)
        alias = aws.kms.Alias(
            f"{name}-key-alias", name=args.key_alias, target_key_id=self.key.key_id, opts=child
        )
        self.bucket = self._bucket(
            "artifacts", a.bucket_name, a.artifact_expiry_days, stateful, child
        )
        self.source_bucket = self._source_bucket(stateful, child)
        self.secret = self._secret(stateful, child)
        self.webhook_secret = self._webhook_secret(stateful, child)
        self.topic = self._topic(child)
        self.ledger = self._ledger(stateful)

        self.outputs = FoundationOutputs(
            kms_key_arn=self.key.arn,
            kms_key_alias=alias.name,
            artifact_bucket_name=self.bucket.bucket,
            artifact_bucket_arn=self.bucket.arn,
            github_token_secret_arn=self.secret.arn,
            failure_topic_arn=self.topic.arn,
            source_bucket_name=self.source_bucket.bucket,
            source_bucket_arn=self.source_bucket.arn,
            github_webhook_secret_arn=self.webhook_secret.arn,
            ledger_table_name=self.ledger.name,
            ledger_table_arn=self.ledger.arn,
        )
        self.register_outputs({"kmsKeyArn": self.key.arn, "artifactBucketArn": self.bucket.arn})

    def _key(self, opts: pulumi.ResourceOptions) -> aws.kms.Key:
        return aws.kms.Key(
            f"{self._name}-key",
            description=(
                f"Platform key: artifacts, logs, secrets, topic, queues and images"
                f" ({self._args.key_alias})"
            ),
            enable_key_rotation=True,
            rotation_period_in_days=365,
            deletion_window_in_days=self._args.key_deletion_window_days,
            policy=key_policy(self._args),
            opts=opts,
        )

    def _bucket(
        self,
        purpose: str,
        bucket_name: str,
        expiry_days: int,
        stateful: pulumi.ResourceOptions,
        child: pulumi.ResourceOptions,
    ) -> aws.s3.Bucket:
        """A private, versioned, KMS-encrypted, TLS-only bucket whose objects expire.

        Resource names are ``<component>-<purpose>[-<companion>]``: the artifact bucket's keep
        the URNs they had before the source bucket shared this builder.
        """
        a, name = self._args, f"{self._name}-{purpose}"
        bucket = aws.s3.Bucket(name, bucket=bucket_name, force_destroy=not a.protect, opts=stateful)
        of_bucket = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[bucket]))
        aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=of_bucket,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=of_bucket,
        )
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled"
            ),
            opts=of_bucket,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="aws:kms", kms_master_key_id=self.key.arn
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=of_bucket,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id=f"expire-after-{expiry_days}-days",
                    status="Enabled",
                    # An empty filter: the rule applies to every object in the bucket.
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                        days=expiry_days
                    ),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                        noncurrent_days=a.artifact_expiry_days
                    ),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=1
                    ),
                )
            ],
            opts=of_bucket,
        )
        aws.s3.BucketPolicy(
            f"{name}-policy",
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

    def _source_bucket(
        self, stateful: pulumi.ResourceOptions, child: pulumi.ResourceOptions
    ) -> aws.s3.Bucket:
        """The S3 source: versioned (the S3 source action requires it), and its object events
        sent to EventBridge, where the pipeline layer's rule starts the pipeline on a new zip.

        Current objects live ``sourceExpiryDays`` (a re-run needs the last published zip);
        older versions expire with the artifacts.
        """
        a = self._args
        bucket = self._bucket("source", a.source_bucket_name, a.source_expiry_days, stateful, child)
        aws.s3.BucketNotification(
            f"{self._name}-source-events",
            bucket=bucket.id,
            eventbridge=True,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[bucket])),
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

    def _webhook_secret(
        self, stateful: pulumi.ResourceOptions, child: pulumi.ResourceOptions
    ) -> aws.secretsmanager.Secret:
        """The GitHub webhook's HMAC token: generated once by Secrets Manager, stored, stable.

        ``GetRandomPassword`` is an invoke, so it answers anew on every run: the first value is
        stored and later ones ignored (``ignore_changes``), so the token only changes when the
        version is replaced on purpose (docs/pipeline.md, "Rotating the webhook token").
        """
        a = self._args
        secret = aws.secretsmanager.Secret(
            f"{self._name}-github-webhook-secret",
            name=a.webhook_secret_name,
            kms_key_id=self.key.arn,
            description="HMAC token GitHub signs the pipeline webhook's payloads with",
            recovery_window_in_days=a.secret_recovery_window_days,
            opts=stateful,
        )
        generated = aws.secretsmanager.get_random_password_output(
            password_length=WEBHOOK_TOKEN_LENGTH,
            exclude_punctuation=True,
            require_each_included_type=True,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        aws.secretsmanager.SecretVersion(
            f"{self._name}-github-webhook-secret-value",
            secret_id=secret.id,
            secret_string=pulumi.Output.secret(generated.random_password),
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(ignore_changes=["secretString"])
            ),
        )
        return secret

    def _ledger(self, stateful: pulumi.ResourceOptions) -> aws.dynamodb.Table:
        """The deployment ledger: one partition per pipeline execution (or build), sorted by time.

        The ``kind`` index (pipeline, stage, build, release) sorted by time answers "the last N
        releases" with one Query instead of a Scan (``./dev releases``).
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
        # The topic's policy is set by the pipeline layer, which knows the ARNs of the rule and
        # alarms that publish to it (stacks/pipeline/events.py).
        aws.sns.TopicSubscription(
            f"{self._name}-pipeline-failures-email",
            topic=topic.arn,
            protocol="email",
            endpoint=a.notification_email,
            opts=child,
        )
        return topic


def key_policy(a: FoundationArgs) -> pulumi.Output[str]:
    """The platform key's policy: administration, grants for AWS services, and service use.

    Each statement and its conditions are explained, with the AWS pages, in docs/iam.md.
    """
    account_root = f"arn:aws:iam::{a.account_id}:root"
    return iam.key_policy(
        iam.Statement(
            sid="AccountAdministersKey",
            actions=KEY_ADMIN,
            resources=["*"],
            principals={"AWS": [account_root]},
        ),
        iam.Statement(
            # Grants only for AWS resources: CodeBuild, ECR, Secrets Manager and the like create
            # grants on the key when they use it on a principal's behalf; nobody hands one out.
            sid="AccountGrantsOnlyForAwsResources",
            actions=KEY_GRANTS,
            resources=["*"],
            principals={"AWS": [account_root]},
            conditions=[iam.Condition("Bool", "kms:GrantIsForAWSResource", ["true"])],
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
                    [f"s3.{a.region}.amazonaws.com", f"secretsmanager.{a.region}.amazonaws.com"],
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
                    [iam.arn("logs", a.region, a.account_id, f"log-group:{a.log_group_prefix}*")],
                )
            ],
        ),
        iam.Statement(
            # The release handlers write the ledger (DynamoDB), publish to the topic (SNS) and
            # park failed events in their dead-letter queues (SQS); those services call KMS on
            # the caller's behalf. DynamoDB's grant is covered by the grants statement above
            # (kms:GrantIsForAWSResource), so this one holds no grant action:
            # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.usagenotes.html
            # Lambda encrypts the handlers' environment variables with this key when the
            # deployer creates or updates them, and decrypts them for the function: "only users
            # in your account with access to the KMS key can view or manage environment
            # variables" (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars-encryption.html).
            sid="AccountUsesKeyThroughReleaseServices",
            actions=KEY_USE,
            resources=["*"],
            principals={"AWS": [account_root]},
            conditions=[
                iam.Condition("StringEquals", "kms:CallerAccount", [a.account_id]),
                iam.Condition(
                    "StringEquals",
                    "kms:ViaService",
                    [
                        f"dynamodb.{a.region}.amazonaws.com",
                        f"lambda.{a.region}.amazonaws.com",
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
            # EventBridge delivers failure events to the encrypted topic and undeliverable events
            # to the encrypted dead-letter queues. No aws:SourceAccount/SourceArn condition: AWS
            # documents that EventBridge does not send them to KMS, so such a condition would
            # silently drop every notification; the topic and queue policies name the rules.
            sid="EventBridgeDeliversToEncryptedTopicAndQueues",
            actions=SERVICE_KEY_USE,
            resources=["*"],
            principals={"Service": ["events.amazonaws.com"]},
        ),
        iam.Statement(
            # CloudWatch alarms (failed rule invocations) notify the encrypted topic.
            sid="CloudWatchAlarmsNotifyEncryptedTopic",
            actions=SERVICE_KEY_USE,
            resources=["*"],
            principals={"Service": ["cloudwatch.amazonaws.com"]},
            conditions=[iam.Condition("StringEquals", "aws:SourceAccount", [a.account_id])],
        ),
    )

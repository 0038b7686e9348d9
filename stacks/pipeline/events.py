"""EventBridge rules: failures to the failure topic; CodeCommit pushes start a pipeline.

The failure notification is the layer's: one rule for every service's pipeline. Each service's
CodeCommit mirror starts its own pipeline. (The S3 source rule lives in ``sources``, the
recorder's rules in ``releases``; they use the same retry, dead-letter queue and alarm.)

Every target retries for a bounded time and then drops what it could not deliver into its own
KMS-encrypted SQS dead-letter queue; an alarm on each rule's ``FailedInvocations`` notifies the
failure topic; the topic's policy lets only that rule and those alarms publish (docs/iam.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from shared import iam
from shared.naming import Label
from stacks.pipeline import names
from stacks.pipeline.config import LayerArgs, PipelineArgs

RETRY = aws.cloudwatch.EventTargetRetryPolicyArgs(
    maximum_event_age_in_seconds=3600, maximum_retry_attempts=10
)
"""Retry a failed delivery for up to an hour (10 attempts), then send it to the DLQ."""

DLQ_RETENTION_SECONDS = 1_209_600
"""Undelivered events stay 14 days (the SQS maximum) for someone to look at."""


def failure_pattern(label: Label) -> dict[str, Any]:
    """Execution state changes to FAILED of every pipeline of the layer (every service's, by
    the ending their names share: ``names.pipeline_suffix``), and nothing else."""
    return {
        "source": ["aws.codepipeline"],
        "detail-type": ["CodePipeline Pipeline Execution State Change"],
        "detail": {"pipeline": [{"suffix": names.pipeline_suffix(label)}], "state": ["FAILED"]},
    }


def codecommit_pattern(args: PipelineArgs) -> dict[str, Any]:
    """A branch of the mirror repository created or updated."""
    return {
        "source": ["aws.codecommit"],
        "detail-type": ["CodeCommit Repository State Change"],
        "resources": [args.codecommit_repository_arn],
        "detail": {
            "event": ["referenceCreated", "referenceUpdated"],
            "referenceType": ["branch"],
            "referenceName": [args.codecommit_branch],
        },
    }


FAILURE_MESSAGE = (
    '"Pipeline <pipeline> failed (execution <execution>, <time>). Details:'
    " https://<region>.console.aws.amazon.com/codesuite/codepipeline/pipelines/<pipeline>"
    '/executions/<execution>/timeline?region=<region>"'
)
"""The e-mail text: a JSON string, so SNS delivers it as plain text, not as the raw event."""


def dead_letter_queue(
    resource_name: str,
    queue_name: str,
    rule_arn: str,
    key_arn: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> aws.sqs.Queue:
    """A target's dead-letter queue: encrypted with the platform key, only its rule may send."""
    queue = aws.sqs.Queue(
        resource_name,
        name=queue_name,
        kms_master_key_id=key_arn,
        kms_data_key_reuse_period_seconds=300,
        message_retention_seconds=DLQ_RETENTION_SECONDS,
        opts=opts,
    )
    aws.sqs.QueuePolicy(
        f"{resource_name}-policy",
        queue_url=queue.url,
        policy=iam.document(
            iam.Statement(
                sid="OnlyItsRuleSendsUndeliveredEvents",
                actions=["sqs:SendMessage"],
                principals={"Service": ["events.amazonaws.com"]},
                resources=[queue.arn],
                conditions=[iam.Condition("ArnEquals", "aws:SourceArn", [rule_arn])],
            )
        ),
        opts=opts,
    )
    return queue


@dataclass(frozen=True)
class Metric:
    """A CloudWatch metric and how an alarm reads it: the statistic over each period."""

    namespace: str
    name: str
    dimensions: Mapping[str, pulumi.Input[str]]
    statistic: str
    period: int


def topic_alarm(
    resource_name: str,
    alarm_name: str,
    description: str,
    metric: Metric,
    topic_arn: pulumi.Input[str],
    *,
    opts: pulumi.ResourceOptions,
) -> aws.cloudwatch.MetricAlarm:
    """An alarm to the failure topic as soon as ``metric`` is above zero for one period.

    Missing data means nothing happened (the metric is published only when there is something to
    count), so it is not breaching:
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html#alarms-and-missing-data
    """
    return aws.cloudwatch.MetricAlarm(
        resource_name,
        name=alarm_name,
        alarm_description=description,
        namespace=metric.namespace,
        metric_name=metric.name,
        dimensions=dict(metric.dimensions),
        statistic=metric.statistic,
        period=metric.period,
        evaluation_periods=1,
        threshold=0,
        comparison_operator="GreaterThanThreshold",
        treat_missing_data="notBreaching",
        alarm_actions=[topic_arn],
        opts=opts,
    )


def failed_invocations_alarm(
    resource_name: str,
    alarm_name: str,
    rule_name: pulumi.Input[str],
    topic_arn: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> aws.cloudwatch.MetricAlarm:
    """An alarm when the rule fails to invoke its target at all (after retries), to the topic."""
    return topic_alarm(
        resource_name,
        alarm_name,
        "The EventBridge rule could not deliver to its target (see its DLQ)",
        Metric("AWS/Events", "FailedInvocations", {"RuleName": rule_name}, "Sum", 300),
        topic_arn,
        opts=opts,
    )


def failure_topic_policy(
    resource_name: str,
    layer: LayerArgs,
    topic_arn: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> aws.sns.TopicPolicy:
    """The failure topic's policy: only the failure rule and this layer's alarms publish.

    The alarms (each rule's failed invocations, each handler's dead-letter queue, of every
    service) by the prefix of their names, so the policy stays the same size however many
    services there are (an SNS topic policy holds at most 30 KB).
    """
    label = layer.label
    return aws.sns.TopicPolicy(
        resource_name,
        arn=topic_arn,
        policy=iam.document(
            iam.Statement(
                sid="OnlyTheFailureRulesPublish",
                actions=["sns:Publish"],
                principals={"Service": ["events.amazonaws.com"]},
                resources=[topic_arn],
                conditions=[
                    iam.Condition(
                        "ArnEquals",
                        "aws:SourceArn",
                        [names.arn(label, "events", f"rule/{names.rule(label, 'failed')}")],
                    )
                ],
            ),
            iam.Statement(
                sid="OnlyTheLayersAlarmsPublish",
                actions=["sns:Publish"],
                principals={"Service": ["cloudwatch.amazonaws.com"]},
                resources=[topic_arn],
                conditions=[
                    iam.Condition("ArnLike", "aws:SourceArn", [names.alarm_arn_pattern(label)]),
                    iam.Condition("StringEquals", "aws:SourceAccount", [layer.account_id]),
                ],
            ),
        ),
        opts=opts,
    )


def failure_notification(
    resource_name: str,
    layer: LayerArgs,
    topic_arn: pulumi.Input[str],
    dead_letter_queue: aws.sqs.Queue,
    opts: pulumi.ResourceOptions,
) -> aws.cloudwatch.EventRule:
    """The rule on failed executions of every service's pipeline, to the failure topic."""
    return _to_failure_topic(
        resource_name,
        name=names.rule(layer.label, "failed"),
        description="Failed executions of every pipeline of the layer, to the failure topic",
        pattern=failure_pattern(layer.label),
        input_paths={
            "pipeline": "$.detail.pipeline",
            "execution": "$.detail.execution-id",
            "region": "$.region",
            "time": "$.time",
        },
        template=FAILURE_MESSAGE,
        topic_arn=topic_arn,
        dead_letter_queue=dead_letter_queue,
        opts=opts,
    )


def _to_failure_topic(
    resource_name: str,
    *,
    name: str,
    description: str,
    pattern: dict[str, Any],
    input_paths: dict[str, str],
    template: str,
    topic_arn: pulumi.Input[str],
    dead_letter_queue: aws.sqs.Queue,
    opts: pulumi.ResourceOptions,
) -> aws.cloudwatch.EventRule:
    """A rule whose events, read by ``input_paths`` into ``template``, go to the failure topic;
    its target retries, then dead-letters into ``dead_letter_queue`` like every other target."""
    rule = aws.cloudwatch.EventRule(
        resource_name,
        name=name,
        description=description,
        event_pattern=json.dumps(pattern, sort_keys=True),
        opts=opts,
    )
    aws.cloudwatch.EventTarget(
        f"{resource_name}-topic",
        rule=rule.name,
        target_id="failure-topic",
        arn=topic_arn,
        input_transformer=aws.cloudwatch.EventTargetInputTransformerArgs(
            input_paths=input_paths, input_template=template
        ),
        retry_policy=RETRY,
        dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(
            arn=dead_letter_queue.arn
        ),
        opts=opts,
    )
    return rule


def starts_pipeline(
    resource_name: str,
    *,
    name: str,
    description: str,
    event_pattern: pulumi.Input[str],
    pipeline_arn: pulumi.Input[str],
    role_arn: pulumi.Input[str],
    dead_letter_queue: aws.sqs.Queue,
    opts: pulumi.ResourceOptions,
) -> aws.cloudwatch.EventRule:
    """A rule whose events start this pipeline through ``role_arn``; its target retries, then
    dead-letters into ``dead_letter_queue`` like every other target."""
    rule = aws.cloudwatch.EventRule(
        resource_name, name=name, description=description, event_pattern=event_pattern, opts=opts
    )
    aws.cloudwatch.EventTarget(
        f"{resource_name}-pipeline",
        rule=rule.name,
        target_id="pipeline",
        arn=pipeline_arn,
        role_arn=role_arn,
        retry_policy=RETRY,
        dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(
            arn=dead_letter_queue.arn
        ),
        opts=opts,
    )
    return rule


def codecommit_trigger(
    resource_name: str,
    args: PipelineArgs,
    pipeline_arn: pulumi.Input[str],
    role_arn: pulumi.Input[str],
    *,
    dead_letter_queue: aws.sqs.Queue,
    opts: pulumi.ResourceOptions,
) -> aws.cloudwatch.EventRule:
    """The rule on pushes to the CodeCommit mirror, starting this pipeline through its role."""
    return starts_pipeline(
        resource_name,
        name=names.rule(args.label, "codecommit"),
        description=(
            f"Pushes to {args.codecommit_branch} of the CodeCommit mirror start"
            f" {names.pipeline(args.label)}"
        ),
        event_pattern=json.dumps(codecommit_pattern(args), sort_keys=True),
        pipeline_arn=pipeline_arn,
        role_arn=role_arn,
        dead_letter_queue=dead_letter_queue,
        opts=opts,
    )

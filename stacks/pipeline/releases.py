"""The release flow: the recorder and deploy handler Lambdas, their rules, and the Deploy gate.

- The **recorder**, one for the layer, gets every execution and stage state change of every
  service's pipeline and every build state change of the layer's CodeBuild projects (two
  EventBridge rules, whatever the number of services) and writes each to the foundation's ledger.
- Each service's **deploy handler** (its own function and role, which reach that service's
  repository only) runs in the Deploy stage after the ECS deploy (an Invoke/Lambda action):
  it checks the image and its scan, tags it ``production``, records the release and reports the
  job result. The stage rolls back when it fails, and, with ``deployAlarmArns``, when one of the
  alarms goes to ALARM within ``bakeMinutes`` after the deploy.

Each Lambda has its own role (least privilege), log group (retention and key as the CodeBuild
groups), dead-letter queue (SQS, the platform key) with an alarm to the failure topic as soon as a
message waits in it, reserved concurrency when ``reserveConcurrency`` is on (config.py,
:data:`~stacks.pipeline.config.RESERVED_CONCURRENCY`) and environment variables encrypted with the
platform key. The handlers' code is ``handlers/<file>``, packaged
alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from shared import iam
from shared.contracts import FoundationOutputs, Repository
from shared.naming import Label
from stacks.pipeline import events, names, roles
from stacks.pipeline.codepipeline import BUILD_VARIABLES, DeployGate
from stacks.pipeline.config import Handler, LayerArgs, PipelineArgs

HANDLER_DIR = Path(__file__).resolve().parent / "handlers"

RUNTIME = aws.lambda_.Runtime.PYTHON3D13
"""Python 3.13: supported by Lambda (and pulumi-aws 7.51's Runtime enum) well past 2026."""

DESCRIPTIONS = {
    "recorder": "Writes every pipeline, stage and build state change to the deployment ledger",
    "deploy-handler": "Checks the deployed image and its scan, tags it production, records it",
}
TIMEOUT_SECONDS = {"recorder": 30, "deploy-handler": 120}
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
"""SQS's longest retention: two weeks to look at an event that could not be recorded."""

DEAD_LETTERS_METRIC = "ApproximateNumberOfMessagesVisible"
"""The AWS/SQS metric (dimension ``QueueName``) of messages available in a queue: above 0 in a
handler's DLQ means an asynchronous invocation failed after Lambda's retries. SQS publishes it
every minute while the queue is active (a message in it, or any call on it), and nothing for a
queue idle for six hours: missing data is an empty queue, so it does not breach.
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-available-cloudwatch-metrics.html
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-monitoring-using-cloudwatch.html
"""
DEAD_LETTERS_PERIOD_SECONDS = 60
"""One SQS data point per period (SQS publishes one-minute metrics): the first minute a message
waits, the alarm fires."""

DEPLOY_ACTION = "PromoteImage"
KEY_USE = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]
"""The ledger (DynamoDB), the topic (SNS) and the dead-letter queue (SQS) use the platform key."""


@dataclass(frozen=True)
class Releases:
    """What the release flow created, for the component's outputs."""

    functions: dict[str, aws.lambda_.Function]
    """By handler key: the layer's recorder, or a service's deploy-handler."""
    log_groups: dict[str, aws.cloudwatch.LogGroup]
    roles: dict[str, aws.iam.Role]
    queues: dict[str, aws.sqs.Queue]


def function_arn(args: PipelineArgs, handler: Handler) -> str:
    """A handler's ARN, known from its name before it exists (the pipeline role names it)."""
    return args.arn("lambda", f"function:{names.function(args.label, handler.key)}")


def pipeline_pattern(label: Label) -> dict[str, Any]:
    """Every execution and stage state change of every pipeline of the layer, whatever the
    number of services: their names end the same (``names.pipeline_suffix``), and EventBridge
    matches by suffix, so the pattern stays one line long (an event pattern holds at most 4096
    characters: botocore's ``EventPattern`` shape).
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html
    """
    return {
        "source": ["aws.codepipeline"],
        "detail-type": [
            "CodePipeline Pipeline Execution State Change",
            "CodePipeline Stage Execution State Change",
        ],
        "detail": {"pipeline": [{"suffix": names.pipeline_suffix(label)}]},
    }


def builds_pattern(label: Label) -> dict[str, Any]:
    """Every build state change of every CodeBuild project of the layer (by their prefix)."""
    return {
        "source": ["aws.codebuild"],
        "detail-type": ["CodeBuild Build State Change"],
        "detail": {"project-name": [{"prefix": names.project_prefix(label)}]},
    }


def user_parameters(args: PipelineArgs, repository: Repository) -> pulumi.Output[str]:
    """The deploy handler's UserParameters: CodePipeline resolves the ``#{...}`` variables."""
    return pulumi.Output.json_dumps(
        {
            "service": args.service,
            "repository": repository.name,
            "imageTag": f"#{{{BUILD_VARIABLES}.IMAGE_TAG}}",
            "commit": f"#{{{BUILD_VARIABLES}.COMMIT_ID}}",
            "executionId": "#{codepipeline.PipelineExecutionId}",
            "threshold": args.scan_severity_threshold,
        }
    )


def deploy_gate(args: PipelineArgs, repository: Repository) -> DeployGate:
    """The deploy handler after the ECS deploy, and the Deploy stage's rollback.

    The handler runs after every other Deploy action (one run order later). The stage rolls back
    to the last successful execution when it fails (V2 ``onFailure`` ROLLBACK), and, with alarms
    configured, when a ``CloudWatchAlarm`` rule sees one of them in ALARM during the bake.
    https://docs.aws.amazon.com/codepipeline/latest/userguide/stage-conditions.html
    https://docs.aws.amazon.com/codepipeline/latest/userguide/rule-reference-CloudWatchAlarm.html
    """
    releases = args.releases

    def action(run_order: int) -> aws.codepipeline.PipelineStageActionArgs:
        return aws.codepipeline.PipelineStageActionArgs(
            name=DEPLOY_ACTION,
            category="Invoke",
            owner="AWS",
            provider="Lambda",
            version="1",
            configuration={
                "FunctionName": names.function(args.label, releases.deploy_handler.key),
                "UserParameters": user_parameters(args, repository),
            },
            run_order=run_order,
        )

    on_success = None
    if releases.deploy_alarm_arns:
        on_success = aws.codepipeline.PipelineStageOnSuccessArgs(
            condition=aws.codepipeline.PipelineStageOnSuccessConditionArgs(
                result="ROLLBACK",
                rules=[
                    aws.codepipeline.PipelineStageOnSuccessConditionRuleArgs(
                        name=f"Bake{index}",
                        rule_type_id=aws.codepipeline.PipelineStageOnSuccessConditionRuleRuleTypeIdArgs(
                            category="Rule", owner="AWS", provider="CloudWatchAlarm", version="1"
                        ),
                        configuration={
                            "AlarmName": name,
                            "AlarmStates": "ALARM",
                            "WaitTime": str(releases.bake_minutes),
                        },
                    )
                    for index, name in enumerate(releases.alarm_names, start=1)
                ],
            )
        )
    return DeployGate(
        action=action,
        on_failure=aws.codepipeline.PipelineStageOnFailureArgs(result="ROLLBACK"),
        on_success=on_success,
    )


def pipeline_statements(args: PipelineArgs) -> list[iam.Statement]:
    """What the pipeline role needs for the gate: invoke the handler, read the bake alarms."""
    releases = args.releases
    statements = [
        iam.Statement(
            sid="InvokeDeployHandler",
            actions=["lambda:InvokeFunction"],
            resources=[function_arn(args, releases.deploy_handler)],
        )
    ]
    if releases.deploy_alarm_arns:
        statements.append(
            iam.Statement(
                sid="WatchBakeAlarms",
                actions=["cloudwatch:DescribeAlarms"],
                resources=list(releases.deploy_alarm_arns),
            )
        )
    return statements


def handler_statements(
    label: Label,
    handler: Handler,
    foundation: FoundationOutputs,
    queue_arn: pulumi.Input[str],
) -> list[iam.Statement]:
    """What every handler needs: its own logs, the ledger, its DLQ, the platform key."""
    group = names.arn(label, "logs", f"log-group:{names.function_log_group(label, handler.key)}")
    return [
        iam.Statement(
            sid="HandlerLogs",
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[group, f"{group}:*"],
        ),
        iam.Statement(
            sid="WriteLedger", actions=["dynamodb:PutItem"], resources=[foundation.ledger_table_arn]
        ),
        iam.Statement(sid="DeadLetters", actions=["sqs:SendMessage"], resources=[queue_arn]),
        iam.Statement(sid="PlatformKey", actions=KEY_USE, resources=[foundation.kms_key_arn]),
    ]


def recorder_statements(label: Label) -> list[iam.Statement]:
    """The recorder also reads each execution's source revision (the commit): of the layer's
    pipelines only, named by their common ending (one line however many services)."""
    return [
        iam.Statement(
            sid="ReadExecutionCommit",
            actions=["codepipeline:GetPipelineExecution"],
            resources=[names.every_pipeline_arn(label)],
        )
    ]


def deploy_handler_statements(
    foundation: FoundationOutputs, repository: Repository
) -> list[iam.Statement]:
    """A service's deploy handler reads and tags images of its service's repository only, and
    reports the job."""
    return [
        iam.Statement(
            sid="ReadImageAndScan",
            actions=["ecr:BatchGetImage", "ecr:DescribeImageScanFindings", "ecr:DescribeImages"],
            resources=[repository.arn],
        ),
        roles.inspector_statement(),
        iam.Statement(sid="TagProduction", actions=["ecr:PutImage"], resources=[repository.arn]),
        iam.Statement(
            sid="NotifyFailure", actions=["sns:Publish"], resources=[foundation.failure_topic_arn]
        ),
        iam.Statement(
            # `*`: CodePipeline's job actions have no resource type (see WILDCARD_ALLOWED).
            sid="ReportJobResult",
            actions=["codepipeline:PutJobFailureResult", "codepipeline:PutJobSuccessResult"],
            resources=["*"],
        ),
    ]


@dataclass(frozen=True)
class HandlerSettings:
    """Where a handler lives and how it runs: its label (the layer's or a service's), log
    retention, reservation (None: the unreserved pool)."""

    label: Label
    log_retention_days: int
    reserved_concurrency: int | None


def recorder(
    name: str, layer: LayerArgs, foundation: FoundationOutputs, *, parent: pulumi.Resource
) -> Releases:
    """The layer's one recorder, with its logs, dead-letter queue and role; its rules are
    :func:`recorder_rules`."""
    made = Releases({}, {}, {}, {})
    _handler(
        f"{name}-recorder",
        HandlerSettings(
            layer.label,
            layer.log_retention_days,
            layer.reserved_concurrency.get(layer.recorder.key),
        ),
        layer.recorder,
        foundation,
        variables={
            "LEDGER_TABLE": foundation.ledger_table_name,
            "PIPELINE_SUFFIX": names.pipeline_suffix(layer.label),
        },
        statements=recorder_statements(layer.label),
        made=made,
        child=pulumi.ResourceOptions(parent=parent),
    )
    return made


def deploy_handler(
    name: str,
    args: PipelineArgs,
    foundation: FoundationOutputs,
    repository: Repository,
    *,
    parent: pulumi.Resource,
) -> Releases:
    """A service's deploy handler, with its logs, dead-letter queue and role."""
    made = Releases({}, {}, {}, {})
    handler = args.releases.deploy_handler
    _handler(
        f"{name}-{handler.key}",
        HandlerSettings(
            args.label,
            args.log_retention_days,
            args.releases.reserved_concurrency.get(handler.key),
        ),
        handler,
        foundation,
        variables={
            "LEDGER_TABLE": foundation.ledger_table_name,
            "FAILURE_TOPIC_ARN": foundation.failure_topic_arn,
            "SERVICE": args.service,
        },
        statements=deploy_handler_statements(foundation, repository),
        made=made,
        child=pulumi.ResourceOptions(parent=parent),
    )
    return made


def _handler(
    name: str,
    settings: HandlerSettings,
    handler: Handler,
    foundation: FoundationOutputs,
    *,
    variables: Mapping[str, pulumi.Input[str]],
    statements: list[iam.Statement],
    made: Releases,
    child: pulumi.ResourceOptions,
) -> None:
    key, label = handler.key, settings.label
    group = aws.cloudwatch.LogGroup(
        f"{name}-logs",
        name=names.function_log_group(label, key),
        retention_in_days=settings.log_retention_days,
        kms_key_id=foundation.kms_key_arn,
        opts=child,
    )
    queue = aws.sqs.Queue(
        f"{name}-dlq",
        name=names.queue(label, key),
        kms_master_key_id=foundation.kms_key_arn,
        kms_data_key_reuse_period_seconds=300,
        message_retention_seconds=DLQ_RETENTION_SECONDS,
        opts=child,
    )
    # AWS documents no source key Lambda sends when it assumes an execution role (the trust
    # policy names only the service: shared.iam.TRUST_CONDITION_KEYS); the role can only be
    # passed to a function from this account, and its policy names this layer's resources.
    duty = roles.duty_role(
        f"{name}-role",
        names.role(label, key),
        service="lambda.amazonaws.com",
        account_id=label.platform.account_id,
        source_arns=[],
        statements=[*handler_statements(label, handler, foundation, queue.arn), *statements],
        opts=child,
    )
    module = handler.file.removesuffix(".py")
    function = aws.lambda_.Function(
        name,
        name=names.function(label, key),
        description=DESCRIPTIONS[key],
        role=duty.role.arn,
        runtime=RUNTIME,
        architectures=["arm64"],
        handler=f"{module}.handler",
        code=pulumi.AssetArchive({handler.file: pulumi.FileAsset(str(HANDLER_DIR / handler.file))}),
        memory_size=256,
        timeout=TIMEOUT_SECONDS[key],
        # None: no reservation (``reserveConcurrency`` off), the account's unreserved pool.
        reserved_concurrent_executions=settings.reserved_concurrency,
        kms_key_arn=foundation.kms_key_arn,
        environment=aws.lambda_.FunctionEnvironmentArgs(variables=dict(variables)),
        dead_letter_config=aws.lambda_.FunctionDeadLetterConfigArgs(target_arn=queue.arn),
        logging_config=aws.lambda_.FunctionLoggingConfigArgs(
            log_format="JSON",
            log_group=group.name,
            application_log_level="INFO",
            system_log_level="WARN",
        ),
        opts=pulumi.ResourceOptions(parent=child.parent, depends_on=[group, duty.policy]),
    )
    dead_letters_alarm(
        f"{name}-dlq-alarm",
        names.function_alarm(label, key),
        queue.name,
        foundation.failure_topic_arn,
        opts=child,
    )
    made.functions[key] = function
    made.log_groups[key] = group
    made.roles[key] = duty.role
    made.queues[key] = queue


def dead_letters_alarm(
    resource_name: str,
    alarm_name: str,
    queue_name: pulumi.Input[str],
    topic_arn: pulumi.Input[str],
    *,
    opts: pulumi.ResourceOptions,
) -> aws.cloudwatch.MetricAlarm:
    """An alarm to the failure topic as soon as one message waits in a handler's DLQ.

    The topic policy admits it by name (``names.topic_alarms``). Missing data is an
    idle, empty queue (:data:`DEAD_LETTERS_METRIC`), so it is not breaching.
    """
    return events.topic_alarm(
        resource_name,
        alarm_name,
        "A Lambda handler failed an asynchronous invocation after its retries; the event"
        " waits in its dead-letter queue",
        events.Metric(
            "AWS/SQS",
            DEAD_LETTERS_METRIC,
            {"QueueName": queue_name},
            "Maximum",
            DEAD_LETTERS_PERIOD_SECONDS,
        ),
        topic_arn,
        opts=opts,
    )


def recorder_rules(
    name: str,
    layer: LayerArgs,
    recorder: aws.lambda_.Function,
    *,
    dead_letter_queues: Mapping[str, aws.sqs.Queue],
    opts: pulumi.ResourceOptions,
) -> dict[str, aws.cloudwatch.EventRule]:
    """Two rules to the recorder, each allowed to invoke it (its ARN and account); each target
    retries and dead-letters like every other target (``stacks.pipeline.events``).

    By rule key (``record-pipeline``, ``record-builds``), as ``dead_letter_queues`` is keyed.
    """
    label = layer.label
    rules = {
        "record-pipeline": (
            names.rule(label, "record-pipeline"),
            "Execution and stage state changes of every pipeline of the layer, to the ledger",
            pipeline_pattern(label),
        ),
        "record-builds": (
            names.rule(label, "record-builds"),
            "Build state changes of the layer's CodeBuild projects, to the ledger",
            builds_pattern(label),
        ),
    }
    made: dict[str, aws.cloudwatch.EventRule] = {}
    for key, (rule_name, description, pattern) in rules.items():
        rule = aws.cloudwatch.EventRule(
            f"{name}-{key}",
            name=rule_name,
            description=description,
            event_pattern=json.dumps(pattern, sort_keys=True),
            opts=opts,
        )
        permission = aws.lambda_.Permission(
            f"{name}-{key}-invoke",
            action="lambda:InvokeFunction",
            function=recorder.name,
            principal="events.amazonaws.com",
            source_arn=rule.arn,
            source_account=layer.account_id,
            opts=opts,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-{key}-target",
            rule=rule.name,
            target_id="recorder",
            arn=recorder.arn,
            retry_policy=events.RETRY,
            dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(
                arn=dead_letter_queues[key].arn
            ),
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(depends_on=[permission])
            ),
        )
        made[key] = rule
    return made

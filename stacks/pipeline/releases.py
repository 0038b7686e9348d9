"""The release flow: the recorder and deploy handler Lambdas, their rules, and the Deploy gate.

- The **recorder** gets every execution and stage state change of this pipeline and every build
  state change of this layer's CodeBuild projects (two EventBridge rules) and writes each to the
  foundation's ledger.
- The **deploy handler** runs in the Deploy stage after the ECS deploy (an Invoke/Lambda action):
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from shared import iam
from shared.contracts import FoundationOutputs, RegistryOutputs
from stacks.pipeline import events, names, roles
from stacks.pipeline.codepipeline import BUILD_VARIABLES, DeployGate
from stacks.pipeline.config import Handler, PipelineArgs

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
    """By handler key: recorder, deploy-handler."""
    log_groups: dict[str, aws.cloudwatch.LogGroup]
    roles: dict[str, aws.iam.Role]
    queues: dict[str, aws.sqs.Queue]


def function_arn(args: PipelineArgs, handler: Handler) -> str:
    """A handler's ARN, known from its name before it exists (the pipeline role names it)."""
    return args.arn("lambda", f"function:{names.function(args.label, handler.key)}")


def pipeline_pattern(args: PipelineArgs) -> dict[str, Any]:
    """Every execution and stage state change of this pipeline."""
    return {
        "source": ["aws.codepipeline"],
        "detail-type": [
            "CodePipeline Pipeline Execution State Change",
            "CodePipeline Stage Execution State Change",
        ],
        "detail": {"pipeline": [names.pipeline(args.label)]},
    }


def builds_pattern(project_names: Sequence[str]) -> dict[str, Any]:
    """Every build state change of these CodeBuild projects."""
    return {
        "source": ["aws.codebuild"],
        "detail-type": ["CodeBuild Build State Change"],
        "detail": {"project-name": sorted(project_names)},
    }


def user_parameters(args: PipelineArgs, registry: RegistryOutputs) -> pulumi.Output[str]:
    """The deploy handler's UserParameters: CodePipeline resolves the ``#{...}`` variables."""
    return pulumi.Output.json_dumps(
        {
            "repository": registry.repository_name,
            "imageTag": f"#{{{BUILD_VARIABLES}.IMAGE_TAG}}",
            "commit": f"#{{{BUILD_VARIABLES}.COMMIT_ID}}",
            "executionId": "#{codepipeline.PipelineExecutionId}",
            "threshold": args.scan_severity_threshold,
        }
    )


def deploy_gate(args: PipelineArgs, registry: RegistryOutputs) -> DeployGate:
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
                "UserParameters": user_parameters(args, registry),
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
    args: PipelineArgs,
    handler: Handler,
    foundation: FoundationOutputs,
    queue_arn: pulumi.Input[str],
) -> list[iam.Statement]:
    """What both handlers need: their own logs, the ledger, their DLQ, the platform key."""
    group = args.arn("logs", f"log-group:{names.function_log_group(args.label, handler.key)}")
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


def recorder_statements(args: PipelineArgs) -> list[iam.Statement]:
    """The recorder also reads its execution's source revision (the commit)."""
    return [
        iam.Statement(
            sid="ReadExecutionCommit",
            actions=["codepipeline:GetPipelineExecution"],
            resources=[names.pipeline_arn(args.label)],
        )
    ]


def deploy_handler_statements(
    foundation: FoundationOutputs, registry: RegistryOutputs
) -> list[iam.Statement]:
    """The deploy handler reads and tags images of the one repository and reports the job."""
    return [
        iam.Statement(
            sid="ReadImageAndScan",
            actions=["ecr:BatchGetImage", "ecr:DescribeImageScanFindings", "ecr:DescribeImages"],
            resources=[registry.repository_arn],
        ),
        roles.inspector_statement(),
        iam.Statement(
            sid="TagProduction", actions=["ecr:PutImage"], resources=[registry.repository_arn]
        ),
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


def build(
    name: str,
    args: PipelineArgs,
    foundation: FoundationOutputs,
    registry: RegistryOutputs,
    *,
    parent: pulumi.Resource,
) -> Releases:
    """Both handlers with their logs, dead-letter queues and roles.

    Their rules are :func:`recorder_rules`.
    """
    child = pulumi.ResourceOptions(parent=parent)
    releases = args.releases
    made = Releases({}, {}, {}, {})
    environment = {
        "recorder": {"LEDGER_TABLE": foundation.ledger_table_name},
        "deploy-handler": {
            "LEDGER_TABLE": foundation.ledger_table_name,
            "FAILURE_TOPIC_ARN": foundation.failure_topic_arn,
        },
    }
    extra = {
        "recorder": recorder_statements(args),
        "deploy-handler": deploy_handler_statements(foundation, registry),
    }
    for handler in releases.handlers:
        _handler(
            f"{name}-{handler.key}",
            args,
            handler,
            foundation,
            variables=environment[handler.key],
            statements=extra[handler.key],
            made=made,
            child=child,
        )
    return made


def _handler(
    name: str,
    args: PipelineArgs,
    handler: Handler,
    foundation: FoundationOutputs,
    *,
    variables: Mapping[str, pulumi.Input[str]],
    statements: list[iam.Statement],
    made: Releases,
    child: pulumi.ResourceOptions,
) -> None:
    key = handler.key
    group = aws.cloudwatch.LogGroup(
        f"{name}-logs",
        name=names.function_log_group(args.label, key),
        retention_in_days=args.log_retention_days,
        kms_key_id=foundation.kms_key_arn,
        opts=child,
    )
    queue = aws.sqs.Queue(
        f"{name}-dlq",
        name=names.queue(args.label, key),
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
        names.role(args.label, key),
        service="lambda.amazonaws.com",
        args=args,
        source_arns=[],
        statements=[*handler_statements(args, handler, foundation, queue.arn), *statements],
        opts=child,
    )
    module = handler.file.removesuffix(".py")
    function = aws.lambda_.Function(
        name,
        name=names.function(args.label, key),
        description=DESCRIPTIONS[key],
        role=duty.role.arn,
        runtime=RUNTIME,
        architectures=["arm64"],
        handler=f"{module}.handler",
        code=pulumi.AssetArchive({handler.file: pulumi.FileAsset(str(HANDLER_DIR / handler.file))}),
        memory_size=256,
        timeout=TIMEOUT_SECONDS[key],
        # None: no reservation (``reserveConcurrency`` off), the account's unreserved pool.
        reserved_concurrent_executions=args.releases.reserved_concurrency.get(key),
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
        names.function_alarm(args.label, key),
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
    args: PipelineArgs,
    recorder: aws.lambda_.Function,
    pipeline_projects: Sequence[str],
    *,
    dead_letter_queues: Mapping[str, aws.sqs.Queue],
    opts: pulumi.ResourceOptions,
) -> dict[str, aws.cloudwatch.EventRule]:
    """Two rules to the recorder, each allowed to invoke it (its ARN and account); each target
    retries and dead-letters like every other target (``stacks.pipeline.events``).

    By rule key (``record-pipeline``, ``record-builds``), as ``dead_letter_queues`` is keyed.
    """
    projects = [
        *pipeline_projects,
        *(names.project(args.label, service.key) for service in args.services),
    ]
    rules = {
        "record-pipeline": (
            names.rule(args.label, "record-pipeline"),
            f"Execution and stage state changes of {names.pipeline(args.label)}, to the ledger",
            pipeline_pattern(args),
        ),
        "record-builds": (
            names.rule(args.label, "record-builds"),
            "Build state changes of this layer's CodeBuild projects, to the ledger",
            builds_pattern(projects),
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
            source_account=args.account_id,
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

"""EventBridge rules: failures to the failure topic; CodeCommit pushes start the pipeline."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from stacks.pipeline.config import PipelineArgs


def failure_pattern(pipeline_name: str) -> dict[str, Any]:
    """Execution state changes of this pipeline to FAILED, and nothing else."""
    return {
        "source": ["aws.codepipeline"],
        "detail-type": ["CodePipeline Pipeline Execution State Change"],
        "detail": {"pipeline": [pipeline_name], "state": ["FAILED"]},
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


def failure_notification(
    resource_name: str,
    args: PipelineArgs,
    topic_arn: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> aws.cloudwatch.EventRule:
    """The rule on failed executions and its target, the foundation's failure topic."""
    rule = aws.cloudwatch.EventRule(
        resource_name,
        name=args.failure_rule_name,
        description=f"Failed executions of {args.pipeline_name}, to the failure topic",
        event_pattern=json.dumps(failure_pattern(args.pipeline_name), sort_keys=True),
        opts=opts,
    )
    aws.cloudwatch.EventTarget(
        f"{resource_name}-topic",
        rule=rule.name,
        target_id="failure-topic",
        arn=topic_arn,
        input_transformer=aws.cloudwatch.EventTargetInputTransformerArgs(
            input_paths={
                "pipeline": "$.detail.pipeline",
                "execution": "$.detail.execution-id",
                "region": "$.region",
                "time": "$.time",
            },
            input_template=FAILURE_MESSAGE,
        ),
        opts=opts,
    )
    return rule


def codecommit_trigger(
    resource_name: str,
    args: PipelineArgs,
    pipeline_arn: pulumi.Input[str],
    role_arn: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> aws.cloudwatch.EventRule:
    """The rule on pushes to the CodeCommit mirror, starting this pipeline through its role."""
    rule = aws.cloudwatch.EventRule(
        resource_name,
        name=args.trigger_rule_name,
        description=(
            f"Pushes to {args.codecommit_branch} of the CodeCommit mirror start"
            f" {args.pipeline_name}"
        ),
        event_pattern=json.dumps(codecommit_pattern(args), sort_keys=True),
        opts=opts,
    )
    aws.cloudwatch.EventTarget(
        f"{resource_name}-pipeline",
        rule=rule.name,
        target_id="pipeline",
        arn=pipeline_arn,
        role_arn=role_arn,
        opts=opts,
    )
    return rule

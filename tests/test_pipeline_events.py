"""EventBridge: failure-only notifications to the foundation topic, and the CodeCommit trigger."""

from __future__ import annotations

import fnmatch
import json

import pytest

from tests.pipeline_support import ACCOUNT, APP, RULE, TARGET, WORKER, named


def _rule(plan, name: str):
    rule = named(plan, RULE, name)
    (target,) = [t for t in plan.of_type(TARGET) if t.inputs["rule"] == name]
    return json.loads(rule.inputs["eventPattern"]), target.inputs


def test_only_failed_executions_of_the_layers_pipelines_are_notified(dev):
    plan = dev["pipeline"]
    pattern, _ = _rule(plan, "acme-pipeline-failed-dev")
    assert pattern["source"] == ["aws.codepipeline"]
    assert pattern["detail-type"] == ["CodePipeline Pipeline Execution State Change"]
    # one rule for every service: each pipeline's name ends with -<namespace>-<env>
    assert pattern["detail"] == {"pipeline": [{"suffix": "-acme-dev"}], "state": ["FAILED"]}
    assert set(plan.exports["pipelineNames"].values()) == {"app-acme-dev", "worker-acme-dev"}


def test_failures_go_to_the_foundation_topic_as_a_readable_message(dev):
    plan = dev["pipeline"]
    _, target = _rule(plan, "acme-pipeline-failed-dev")
    assert target["arn"] == dev["foundation"].exports["failureTopicArn"]
    transformer = target["inputTransformer"]
    paths = transformer["inputPaths"]
    assert paths["pipeline"] == "$.detail.pipeline"
    assert paths["execution"] == "$.detail.execution-id"
    message = json.loads(transformer["inputTemplate"].replace("<", "{").replace(">", "}"))
    rendered = message.format(
        pipeline="worker-acme-dev", execution="e-1", region="us-east-1", time="now"
    )
    assert "worker-acme-dev" in rendered and "e-1" in rendered
    assert (
        "https://us-east-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/"
        "worker-acme-dev/executions/e-1/" in rendered
    )


@pytest.mark.parametrize("service", [APP, WORKER])
def test_codecommit_pushes_to_the_mirror_branch_start_the_pipeline(dev, service):
    plan = dev["pipeline"]
    pattern, target = _rule(plan, f"acme-pipeline-{service}-codecommit-dev")
    assert pattern["source"] == ["aws.codecommit"]
    assert pattern["detail-type"] == ["CodeCommit Repository State Change"]
    assert pattern["resources"] == [f"arn:aws:codecommit:us-east-1:{ACCOUNT}:{service}"]
    assert sorted(pattern["detail"]["event"]) == ["referenceCreated", "referenceUpdated"]
    assert pattern["detail"]["referenceType"] == ["branch"]
    assert pattern["detail"]["referenceName"] == ["main"]
    assert target["arn"] == f"arn:aws:codepipeline:us-east-1:{ACCOUNT}:{service}-acme-dev"
    assert target["roleArn"] == f"arn:aws:iam::{ACCOUNT}:role/acme-pipeline-{service}-events-dev"


def test_codecommit_repository_and_branch_come_from_config(replan):
    plan = replan(
        "pipeline",
        config={
            "platform-pipeline:codecommitRepository": "mirror",
            "platform-pipeline:codecommitBranch": "release/2",
        },
    )
    for service in (APP, WORKER):
        pattern, _ = _rule(plan, f"acme-pipeline-{service}-codecommit-dev")
        assert pattern["resources"] == [f"arn:aws:codecommit:us-east-1:{ACCOUNT}:mirror"]
        assert pattern["detail"]["referenceName"] == ["release/2"]


QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
RULES = {
    "acme-pipeline-failed-dev": "failed",
    "acme-pipeline-app-codecommit-dev": "app-codecommit",
    "acme-pipeline-worker-codecommit-dev": "worker-codecommit",
    "acme-pipeline-record-pipeline-dev": "record-pipeline",
    "acme-pipeline-record-builds-dev": "record-builds",
}
"""Every rule of the default plan (github source, CodeCommit mirror on, two services), by the
part of its queue's and alarm's names after the layer."""


def test_every_target_retries_then_sends_to_its_own_encrypted_dead_letter_queue(dev):
    plan, key = dev["pipeline"], dev["foundation"].exports["kmsKeyArn"]
    targets = plan.of_type(TARGET)
    assert {t.inputs["rule"] for t in targets} == set(RULES)
    for target in targets:
        rule = target.inputs["rule"]
        assert target.inputs["retryPolicy"] == {
            "maximumEventAgeInSeconds": 3600,
            "maximumRetryAttempts": 10,
        }
        queue_name = f"acme-pipeline-{RULES[rule]}-dlq-dev"
        queue = named(plan, QUEUE, queue_name)
        assert target.inputs["deadLetterConfig"] == {
            "arn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:{queue_name}"
        }
        assert queue.inputs["kmsMasterKeyId"] == key
        assert queue.inputs["messageRetentionSeconds"] == 1209600


def test_only_its_rule_may_send_to_a_dead_letter_queue(dev):
    plan = dev["pipeline"]
    policies = {p.inputs["queueUrl"].rsplit("/", 1)[1]: p for p in plan.of_type(QUEUE_POLICY)}
    assert len(policies) == 5
    for rule, purpose in RULES.items():
        queue_name = f"acme-pipeline-{purpose}-dlq-dev"
        (statement,) = json.loads(policies[queue_name].inputs["policy"])["Statement"]
        assert statement["Principal"] == {"Service": ["events.amazonaws.com"]}
        assert statement["Action"] == ["sqs:SendMessage"]
        assert statement["Resource"] == [f"arn:aws:sqs:us-east-1:{ACCOUNT}:{queue_name}"]
        assert statement["Condition"] == {
            "ArnEquals": {"aws:SourceArn": [f"arn:aws:events:us-east-1:{ACCOUNT}:rule/{rule}"]}
        }


def test_failed_invocations_of_each_rule_alarm_to_the_failure_topic(dev):
    plan, topic = dev["pipeline"], dev["foundation"].exports["failureTopicArn"]
    alarms = {
        a.inputs["dimensions"]["RuleName"]: a.inputs
        for a in plan.of_type(ALARM)
        if a.inputs["namespace"] == "AWS/Events"
    }
    assert set(alarms) == set(RULES)
    for rule, purpose in RULES.items():
        alarm = alarms[rule]
        assert alarm["name"] == f"acme-pipeline-{purpose}-failed-invocations-dev"
        assert alarm["namespace"] == "AWS/Events"
        assert alarm["metricName"] == "FailedInvocations"
        assert alarm["statistic"] == "Sum"
        assert alarm["comparisonOperator"] == "GreaterThanThreshold"
        assert alarm["threshold"] == 0
        assert alarm["treatMissingData"] == "notBreaching"
        assert alarm["alarmActions"] == [topic]


def test_only_the_failure_rule_and_the_alarms_publish_to_the_topic(dev):
    plan, topic = dev["pipeline"], dev["foundation"].exports["failureTopicArn"]
    policy = plan.one("aws:sns/topicPolicy:TopicPolicy").inputs
    assert policy["arn"] == topic
    by_sid = {s["Sid"]: s for s in json.loads(policy["policy"])["Statement"]}
    events = by_sid["OnlyTheFailureRulesPublish"]
    assert events["Principal"] == {"Service": ["events.amazonaws.com"]}
    assert events["Action"] == ["sns:Publish"]
    assert events["Resource"] == [topic]
    assert events["Condition"] == {
        "ArnEquals": {
            "aws:SourceArn": [f"arn:aws:events:us-east-1:{ACCOUNT}:rule/acme-pipeline-failed-dev"]
        }
    }
    alarms = by_sid["OnlyTheLayersAlarmsPublish"]
    assert alarms["Principal"] == {"Service": ["cloudwatch.amazonaws.com"]}
    # one pattern however many services: every alarm of the layer is named under it
    assert alarms["Condition"]["ArnLike"] == {
        "aws:SourceArn": [f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:acme-pipeline-*"]
    }
    assert alarms["Condition"]["StringEquals"] == {"aws:SourceAccount": [ACCOUNT]}
    assert len(by_sid) == 2
    names = sorted(a.inputs["name"] for a in plan.of_type(ALARM))
    assert names == [
        "acme-pipeline-app-codecommit-failed-invocations-dev",
        "acme-pipeline-app-deploy-handler-dead-letters-dev",
        "acme-pipeline-failed-failed-invocations-dev",
        "acme-pipeline-record-builds-failed-invocations-dev",
        "acme-pipeline-record-pipeline-failed-invocations-dev",
        "acme-pipeline-recorder-dead-letters-dev",
        "acme-pipeline-worker-codecommit-failed-invocations-dev",
        "acme-pipeline-worker-deploy-handler-dead-letters-dev",
    ]
    (pattern,) = alarms["Condition"]["ArnLike"]["aws:SourceArn"]
    for name in names:
        assert fnmatch.fnmatchcase(f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{name}", pattern)

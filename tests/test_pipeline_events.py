"""EventBridge: failure-only notifications to the foundation topic, and the CodeCommit trigger."""

from __future__ import annotations

import json

from tests.pipeline_support import ACCOUNT, RULE, TARGET, named


def _rule(plan, name: str):
    rule = named(plan, RULE, name)
    (target,) = [t for t in plan.of_type(TARGET) if t.inputs["rule"] == name]
    return json.loads(rule.inputs["eventPattern"]), target.inputs


def test_only_failed_executions_of_this_pipeline_are_notified(dev):
    plan = dev["pipeline"]
    pattern, _ = _rule(plan, "acme-pipeline-failed-dev")
    assert pattern["source"] == ["aws.codepipeline"]
    assert pattern["detail-type"] == ["CodePipeline Pipeline Execution State Change"]
    assert pattern["detail"] == {"pipeline": [plan.exports["pipelineName"]], "state": ["FAILED"]}


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
        pipeline="acme-pipeline-app-dev", execution="e-1", region="us-east-1", time="now"
    )
    assert "acme-pipeline-app-dev" in rendered and "e-1" in rendered
    assert (
        "https://us-east-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/"
        "acme-pipeline-app-dev/executions/e-1/" in rendered
    )


def test_codecommit_pushes_to_the_mirror_branch_start_the_pipeline(dev):
    plan = dev["pipeline"]
    pattern, target = _rule(plan, "acme-pipeline-codecommit-dev")
    assert pattern["source"] == ["aws.codecommit"]
    assert pattern["detail-type"] == ["CodeCommit Repository State Change"]
    assert pattern["resources"] == [f"arn:aws:codecommit:us-east-1:{ACCOUNT}:app"]
    assert sorted(pattern["detail"]["event"]) == ["referenceCreated", "referenceUpdated"]
    assert pattern["detail"]["referenceType"] == ["branch"]
    assert pattern["detail"]["referenceName"] == ["main"]
    assert target["arn"] == plan.exports["pipelineArn"]
    assert target["roleArn"] == plan.exports["roleArns"]["events"]


def test_codecommit_repository_and_branch_come_from_config(replan):
    plan = replan(
        "pipeline",
        config={
            "platform-pipeline:codecommitRepository": "mirror",
            "platform-pipeline:codecommitBranch": "release/2",
        },
    )
    pattern, _ = _rule(plan, "acme-pipeline-codecommit-dev")
    assert pattern["resources"] == [f"arn:aws:codecommit:us-east-1:{ACCOUNT}:mirror"]
    assert pattern["detail"]["referenceName"] == ["release/2"]


QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
RULES = {
    "acme-pipeline-failed-dev": "failed",
    "acme-pipeline-codecommit-dev": "codecommit",
    "acme-pipeline-record-pipeline-dev": "record-pipeline",
    "acme-pipeline-record-builds-dev": "record-builds",
}
"""Every rule of the default plan (github source, CodeCommit mirror on, no services)."""


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
    assert len(policies) == 4
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
    assert sorted(alarms["Condition"]["ArnEquals"]["aws:SourceArn"]) == [
        f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:acme-pipeline-codecommit-failed-invocations-dev",
        f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:acme-pipeline-deploy-handler-dead-letters-dev",
        f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:acme-pipeline-failed-failed-invocations-dev",
        f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:acme-pipeline-record-builds-failed-invocations-dev",
        f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:acme-pipeline-record-pipeline-failed-invocations-dev",
        f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:acme-pipeline-recorder-dead-letters-dev",
    ]
    assert alarms["Condition"]["StringEquals"] == {"aws:SourceAccount": [ACCOUNT]}
    assert len(by_sid) == 2

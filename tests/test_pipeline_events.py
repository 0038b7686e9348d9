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

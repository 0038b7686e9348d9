"""The CodePipeline: five stages in order, parallel tests, the source switch, approval, the ECS
deploy, artifacts encrypted in the foundation bucket, the token kept secret, and the contract."""

from __future__ import annotations

import pytest

from shared.contracts import PipelineOutputs
from shared.errors import ConfigError
from tests.pipeline_support import PIPELINE, stages

CONNECTION = (
    "arn:aws:codeconnections:us-east-1:111111111111:connection/12345678-abcd-4ef0-9abc-1234567890ab"
)


def _actions(plan, stage: str) -> list[dict]:
    (found,) = [s for s in stages(plan) if s["name"] == stage]
    return found["actions"]


def test_exactly_five_stages_in_order(dev, prod):
    for plans in (dev, prod):
        names = [stage["name"] for stage in stages(plans["pipeline"])]
        assert names == ["Source", "Build", "Test", "SecurityScan", "Deploy"]


def test_v2_pipeline_stores_artifacts_in_the_foundation_bucket_with_the_key(dev):
    pipeline = dev["pipeline"].one(PIPELINE).inputs
    foundation = dev["foundation"].exports
    assert pipeline["pipelineType"] == "V2"
    (store,) = pipeline["artifactStores"]
    assert store["type"] == "S3"
    assert store["location"] == foundation["artifactBucketName"]
    assert store["encryptionKey"] == {"type": "KMS", "id": foundation["kmsKeyArn"]}
    assert pipeline["roleArn"] == dev["pipeline"].exports["roleArns"]["pipeline"]


def test_build_stage_runs_the_docker_build_project(dev):
    plan = dev["pipeline"]
    (build,) = _actions(plan, "Build")
    assert build["provider"] == "CodeBuild"
    assert build["configuration"]["ProjectName"] == plan.exports["projectNames"]["docker-build"]
    assert build["inputArtifacts"] == ["SourceOutput"]


def test_unit_and_integration_tests_run_in_parallel(dev):
    plan = dev["pipeline"]
    actions = _actions(plan, "Test")
    projects = {a["configuration"]["ProjectName"] for a in actions}
    names = plan.exports["projectNames"]
    assert projects == {names["unit-tests"], names["integration-tests"]}
    assert len({a["runOrder"] for a in actions}) == 1  # same run order: they run together
    assert all(a["inputArtifacts"] == ["SourceOutput"] for a in actions)


def test_security_scan_stage_scans_the_image_the_build_pushed(dev):
    plan = dev["pipeline"]
    (scan,) = _actions(plan, "SecurityScan")
    assert scan["configuration"]["ProjectName"] == plan.exports["projectNames"]["security-scan"]
    assert scan["inputArtifacts"] == _actions(plan, "Build")[0]["outputArtifacts"]


def _ecs(plan):
    return [a for a in _actions(plan, "Deploy") if a["provider"] == "ECS"]


def test_deploy_updates_the_configured_ecs_service_from_image_definitions(dev):
    plan = dev["pipeline"]
    (deploy,) = _ecs(plan)
    assert (deploy["category"], deploy["owner"], deploy["provider"]) == ("Deploy", "AWS", "ECS")
    assert deploy["configuration"] == {
        "ClusterName": "app",
        "ServiceName": "app",
        "FileName": "imagedefinitions.json",
    }
    assert deploy["inputArtifacts"] == _actions(plan, "Build")[0]["outputArtifacts"]


def test_ecs_cluster_and_service_come_from_config(replan):
    plan = replan(
        "pipeline",
        config={"platform-pipeline:ecsCluster": "web", "platform-pipeline:ecsService": "shop"},
    )
    (deploy,) = _ecs(plan)
    assert deploy["configuration"]["ClusterName"] == "web"
    assert deploy["configuration"]["ServiceName"] == "shop"


def test_prod_approves_manually_inside_deploy_before_the_ecs_action(prod):
    approve, deploy, promote = _actions(prod["pipeline"], "Deploy")
    assert (approve["category"], approve["provider"]) == ("Approval", "Manual")
    assert deploy["provider"] == "ECS"
    assert promote["provider"] == "Lambda"
    assert approve["runOrder"] < deploy["runOrder"] < promote["runOrder"]


def test_dev_deploys_without_approval(dev):
    actions = _actions(dev["pipeline"], "Deploy")
    assert [a["provider"] for a in actions] == ["ECS", "Lambda"]
    assert all(
        a["category"] != "Approval" for stage in stages(dev["pipeline"]) for a in stage["actions"]
    )


def test_github_source_by_default_with_the_token_as_a_secret(dev):
    plan = dev["pipeline"]
    (source,) = _actions(plan, "Source")
    assert (source["owner"], source["provider"], source["version"]) == ("ThirdParty", "GitHub", "1")
    config = source["configuration"]
    assert (config["Owner"], config["Repo"], config["Branch"]) == ("acme", "app", "main")
    assert config["OAuthToken"] == "[secret]"
    assert "offline-placeholder-token" not in plan.to_text()


def test_codeconnections_source_is_selectable(replan):
    plan = replan(
        "pipeline",
        config={
            "platform-pipeline:sourceProvider": "codeconnections",
            "platform-pipeline:connectionArn": CONNECTION,
            "platform-pipeline:githubOwner": "example-org",
            "platform-pipeline:githubRepo": "shop.api",
            "platform-pipeline:githubBranch": "release/1.2",
        },
    )
    (source,) = _actions(plan, "Source")
    assert (source["owner"], source["provider"]) == ("AWS", "CodeStarSourceConnection")
    assert source["configuration"]["ConnectionArn"] == CONNECTION
    assert source["configuration"]["FullRepositoryId"] == "example-org/shop.api"
    assert source["configuration"]["BranchName"] == "release/1.2"
    assert "OAuthToken" not in source["configuration"]
    assert source["outputArtifacts"] == ["SourceOutput"]


def test_codeconnections_needs_a_connection_arn(replan):
    with pytest.raises(ConfigError) as error:
        replan("pipeline", config={"platform-pipeline:sourceProvider": "codeconnections"})
    assert "platform-pipeline:connectionArn" in str(error.value)
    assert str(error.value).startswith("stacks/pipeline/Pulumi.dev.yaml:")


def test_unknown_source_provider_lists_the_choices(replan):
    with pytest.raises(ConfigError) as error:
        replan("pipeline", config={"platform-pipeline:sourceProvider": "gitlab"})
    assert "platform-pipeline:sourceProvider" in str(error.value)
    assert "github, codeconnections" in str(error.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [("githubOwner", "-acme"), ("githubRepo", "a/b"), ("githubBranch", "a..b")],
)
def test_github_coordinates_are_validated(replan, key, value):
    with pytest.raises(ConfigError, match=f"platform-pipeline:{key}"):
        replan("pipeline", config={f"platform-pipeline:{key}": value})


def test_pipeline_urn_is_pinned(dev):
    # A refactor that changes this URN would replace the pipeline (and lose its history).
    assert dev["pipeline"].one(PIPELINE).urn == (
        "urn:pulumi:dev::platform-pipeline::acme:pipeline:Pipeline"
        "$aws:codepipeline/pipeline:Pipeline::pipeline-codepipeline"
    )


def test_log_group_and_report_group_urns_are_pinned(dev):
    urns = {r.urn for r in dev["pipeline"].resources}
    base = "urn:pulumi:dev::platform-pipeline::acme:pipeline:Pipeline$"
    for key in ("docker-build", "unit-tests", "integration-tests", "security-scan"):
        assert f"{base}aws:cloudwatch/logGroup:LogGroup::pipeline-{key}-logs" in urns
    for key in ("unit-tests", "integration-tests"):
        assert f"{base}aws:codebuild/reportGroup:ReportGroup::pipeline-{key}-reports" in urns


def test_exports_satisfy_the_pipeline_contract(dev, prod):
    for plans in (dev, prod):
        plan = plans["pipeline"]
        PipelineOutputs.check(plan.exports, plan.stack, plan.environment)
        exports = plan.exports
        assert exports["pipelineArn"].endswith(f":{exports['pipelineName']}")
        assert exports["pipelineName"] in exports["pipelineConsoleUrl"]
        assert exports["pipelineConsoleUrl"].startswith("https://us-east-1.console.aws.amazon.com/")

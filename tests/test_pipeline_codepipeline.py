"""The CodePipeline: five stages in order, parallel tests, the source switch, approval, the ECS
deploy, artifacts encrypted in the foundation bucket, the token kept secret, and the contract."""

from __future__ import annotations

import pytest

from shared.contracts import PipelineOutputs
from shared.errors import ConfigError
from tests.pipeline_support import ACCOUNT, APP, WORKER, pipeline, stages

CONNECTION = (
    "arn:aws:codeconnections:us-east-1:111111111111:connection/12345678-abcd-4ef0-9abc-1234567890ab"
)


SERVICES = (APP, WORKER)


def _actions(plan, stage: str, service: str = APP) -> list[dict]:
    (found,) = [s for s in stages(plan, service) if s["name"] == stage]
    return found["actions"]


def test_exactly_five_stages_in_order(dev, prod):
    for plans in (dev, prod):
        for service in SERVICES:
            names = [stage["name"] for stage in stages(plans["pipeline"], service)]
            assert names == ["Source", "Build", "Test", "SecurityScan", "Deploy"]


@pytest.mark.parametrize("service", SERVICES)
def test_v2_pipeline_stores_artifacts_in_the_foundation_bucket_with_the_key(dev, service):
    inputs = pipeline(dev["pipeline"], service).inputs
    foundation = dev["foundation"].exports
    assert inputs["name"] == f"{service}-acme-dev"
    assert inputs["pipelineType"] == "V2"
    (store,) = inputs["artifactStores"]
    assert store["type"] == "S3"
    assert store["location"] == foundation["artifactBucketName"]
    assert store["encryptionKey"] == {"type": "KMS", "id": foundation["kmsKeyArn"]}
    assert inputs["roleArn"] == f"arn:aws:iam::{ACCOUNT}:role/acme-pipeline-{service}-pipeline-dev"


@pytest.mark.parametrize("service", SERVICES)
def test_build_stage_runs_the_docker_build_project(dev, service):
    (build,) = _actions(dev["pipeline"], "Build", service)
    assert build["provider"] == "CodeBuild"
    assert build["configuration"]["ProjectName"] == f"acme-pipeline-{service}-docker-build-dev"
    assert build["inputArtifacts"] == ["SourceOutput"]


@pytest.mark.parametrize("service", SERVICES)
def test_unit_and_integration_tests_run_in_parallel(dev, service):
    actions = _actions(dev["pipeline"], "Test", service)
    projects = {a["configuration"]["ProjectName"] for a in actions}
    assert projects == {
        f"acme-pipeline-{service}-unit-tests-dev",
        f"acme-pipeline-{service}-integration-tests-dev",
    }
    assert len({a["runOrder"] for a in actions}) == 1  # same run order: they run together
    assert all(a["inputArtifacts"] == ["SourceOutput"] for a in actions)


@pytest.mark.parametrize("service", SERVICES)
def test_security_scan_stage_scans_the_image_the_build_pushed(dev, service):
    plan = dev["pipeline"]
    (scan,) = _actions(plan, "SecurityScan", service)
    assert scan["configuration"]["ProjectName"] == f"acme-pipeline-{service}-security-scan-dev"
    assert scan["inputArtifacts"] == _actions(plan, "Build", service)[0]["outputArtifacts"]


def _ecs(plan, service: str = APP):
    return [a for a in _actions(plan, "Deploy", service) if a["provider"] == "ECS"]


@pytest.mark.parametrize("service", SERVICES)
def test_deploy_updates_the_configured_ecs_service_from_image_definitions(dev, service):
    plan = dev["pipeline"]
    (deploy,) = _ecs(plan, service)
    assert (deploy["category"], deploy["owner"], deploy["provider"]) == ("Deploy", "AWS", "ECS")
    assert deploy["configuration"] == {
        "ClusterName": "app",
        "ServiceName": service,
        "FileName": "imagedefinitions.json",
    }
    assert deploy["inputArtifacts"] == _actions(plan, "Build", service)[0]["outputArtifacts"]


def test_ecs_cluster_and_service_come_from_config(replan):
    plan = replan(
        "pipeline",
        config={
            "platform-pipeline:ecsCluster": "web",
            "platform-pipeline:ecsService": "shop-{service}",
        },
    )
    for service in SERVICES:
        (deploy,) = _ecs(plan, service)
        assert deploy["configuration"]["ClusterName"] == "web"
        assert deploy["configuration"]["ServiceName"] == f"shop-{service}"


@pytest.mark.parametrize("service", SERVICES)
def test_prod_approves_manually_inside_deploy_before_the_ecs_action(prod, service):
    approve, deploy, promote = _actions(prod["pipeline"], "Deploy", service)
    assert (approve["category"], approve["provider"]) == ("Approval", "Manual")
    assert deploy["provider"] == "ECS"
    assert promote["provider"] == "Lambda"
    assert approve["runOrder"] < deploy["runOrder"] < promote["runOrder"]


def test_dev_deploys_the_app_without_approval(dev):
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
    for service in SERVICES:
        (source,) = _actions(plan, "Source", service)
        assert (source["owner"], source["provider"]) == ("AWS", "CodeStarSourceConnection")
        assert source["configuration"]["ConnectionArn"] == CONNECTION
        assert source["configuration"]["BranchName"] == "release/1.2"
        assert "OAuthToken" not in source["configuration"]
        assert source["outputArtifacts"] == ["SourceOutput"]
    # the layer's githubRepo is every service's default; the worker states its own
    (app,) = _actions(plan, "Source", APP)
    assert app["configuration"]["FullRepositoryId"] == "example-org/shop.api"
    (worker,) = _actions(plan, "Source", WORKER)
    assert worker["configuration"]["FullRepositoryId"] == "example-org/worker-service"


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


BASE = "urn:pulumi:dev::platform-pipeline::acme:pipeline:Pipeline$acme:pipeline:ServicePipeline$"
"""Each service's resources are children of its ServicePipeline component."""


@pytest.mark.parametrize("service", SERVICES)
def test_pipeline_urn_is_pinned(dev, service):
    # A refactor that changes this URN would replace the pipeline (and lose its history).
    assert pipeline(dev["pipeline"], service).urn == (
        f"{BASE}aws:codepipeline/pipeline:Pipeline::pipeline-{service}-codepipeline"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_log_group_and_report_group_urns_are_pinned(dev, service):
    urns = {r.urn for r in dev["pipeline"].resources}
    for key in ("docker-build", "unit-tests", "integration-tests", "security-scan"):
        assert f"{BASE}aws:cloudwatch/logGroup:LogGroup::pipeline-{service}-{key}-logs" in urns
    for key in ("unit-tests", "integration-tests"):
        assert (
            f"{BASE}aws:codebuild/reportGroup:ReportGroup::pipeline-{service}-{key}-reports" in urns
        )


def test_exports_satisfy_the_pipeline_contract(dev, prod):
    for plans in (dev, prod):
        plan = plans["pipeline"]
        PipelineOutputs.check(plan.exports, plan.stack, plan.environment)
        exports = plan.exports
        env = plan.environment
        assert exports["pipelineNames"] == {APP: f"app-acme-{env}", WORKER: f"worker-acme-{env}"}
        for service in SERVICES:
            name = exports["pipelineNames"][service]
            assert exports["pipelineArns"][service].endswith(f":{name}")
            assert exports["pipelineConsoleUrls"][service] == (
                "https://us-east-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/"
                f"{name}/view?region=us-east-1"
            )

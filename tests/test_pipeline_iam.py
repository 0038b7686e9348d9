"""IAM: no wildcard anywhere in the plan of any layer, trust conditions, PassRole, exact ARNs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.pipeline_support import ACCOUNT, APP, ROLE, WORKER, role_policy, trust

SERVICES = (APP, WORKER)
"""The services of the tests' platform.yaml: each has its own roles."""
BUCKET = "arn:aws:s3:::acme-foundation-artifacts-111111111111-dev"
"""The foundation's artifact bucket in dev."""
FOLDER = {APP: "app-acme-dev", WORKER: "worker-acme-dev"}
"""Each service's artifact folder: its pipeline's name (``<service>-<ns>-<env>``), cut to 20."""

DOCUMENT_KEYS = ("assumeRolePolicy", "policy")
"""Inputs that hold an IAM document (roles, inline and managed policies, bucket/topic/key)."""


def _documents(plans) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for layer, plan in plans.items():
        for resource in plan.resources:
            for key in DOCUMENT_KEYS:
                value = resource.inputs.get(key)
                if isinstance(value, str) and value.lstrip().startswith("{"):
                    document = json.loads(value)
                    if "Statement" in document:
                        yield f"{layer}:{resource.name}:{key}", resource.type, document


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def test_no_wildcard_outside_the_allow_list_in_any_policy_of_any_layer(dev, prod):
    # A key policy's Resource "*" is the key itself; elsewhere only these actions, which AWS
    # does not scope to a resource, may be granted on "*" (shared/iam.py says why for each).
    allowed = {
        "ecr:GetAuthorizationToken",
        "ecs:DescribeTaskDefinition",
        # Only with an ecs:cluster condition: Fargate services have no container instance.
        "ecs:ListTasks",
        # Job results name a job id; CodePipeline has no resource type for them.
        "codepipeline:PutJobSuccessResult",
        "codepipeline:PutJobFailureResult",
        # Enhanced-scanning findings live in Amazon Inspector; its reads have no resource type.
        "inspector2:ListCoverage",
        "inspector2:ListFindings",
    }
    checked = 0
    for plans in (dev, prod):
        for where, type_, document in _documents(plans):
            for statement in document["Statement"]:
                checked += 1
                if statement["Effect"] != "Allow":
                    continue
                actions = _as_list(statement["Action"])
                for action in actions:
                    assert "*" not in action, f"{where}: wildcard action {action}"
                if "*" in _as_list(statement.get("Resource", [])):
                    if type_ == "aws:kms/key:Key":
                        continue
                    extra = set(actions) - allowed
                    assert not extra, f"{where}: Resource '*' for {sorted(extra)}"
    # The walk must see every role, inline policy, bucket, topic and key policy of both envs.
    assert checked >= 2 * 25


@pytest.mark.parametrize("service", SERVICES)
def test_every_pipeline_role_trusts_one_service_with_the_conditions_aws_documents(dev, service):
    plan = dev["pipeline"]

    def project_arn(key: str) -> str:
        return f"arn:aws:codebuild:us-east-1:{ACCOUNT}:project/acme-pipeline-{service}-{key}-dev"

    # CodeBuild and EventBridge document aws:SourceAccount and aws:SourceArn at role
    # assumption; CodePipeline documents neither, so its trust policy has no condition.
    expected = {
        "pipeline": ("codepipeline.amazonaws.com", None),
        "docker-build": ("codebuild.amazonaws.com", [project_arn("docker-build")]),
        "tests": (
            "codebuild.amazonaws.com",
            [project_arn("unit-tests"), project_arn("integration-tests")],
        ),
        "security-scan": ("codebuild.amazonaws.com", [project_arn("security-scan")]),
        "events": (
            "events.amazonaws.com",
            [f"arn:aws:events:us-east-1:{ACCOUNT}:rule/acme-pipeline-{service}-codecommit-dev"],
        ),
    }
    assert set(plan.exports["roleArns"][service]) == {*expected, "deploy-handler"}
    assert set(plan.exports["roleArns"][""]) == {"recorder"}
    # each service's five duties and deploy handler, and the layer's recorder
    assert len(plan.of_type(ROLE)) == 13
    for duty in ("recorder", "deploy-handler"):
        # Lambda execution roles: the service only. AWS documents no source key Lambda sends
        # when it assumes the role, and one it does not send would make the role unusable.
        statement = trust(plan, duty, service)
        assert statement["Principal"] == {"Service": ["lambda.amazonaws.com"]}, duty
        assert "Condition" not in statement, duty
    for duty, (principal, sources) in expected.items():
        statement = trust(plan, duty, service)
        assert statement["Principal"] == {"Service": [principal]}, duty
        assert statement["Action"] == ["sts:AssumeRole"], duty
        if sources is None:
            assert "Condition" not in statement, duty
            continue
        assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == [ACCOUNT], duty
        assert sorted(statement["Condition"]["ArnLike"]["aws:SourceArn"]) == sorted(sources), duty


@pytest.mark.parametrize("service", SERVICES)
def test_deploy_lists_tasks_only_in_its_cluster_and_describes_only_its_tasks(dev, service):
    policy = role_policy(dev["pipeline"], "pipeline", service)
    listing = policy["ListClusterTasks"]
    # ListTasks' only resource type is container-instance: Fargate has none, so "*" confined
    # by the ecs:cluster condition key.
    assert listing["Action"] == ["ecs:ListTasks"]
    assert listing["Resource"] == ["*"]
    assert listing["Condition"] == {
        "ArnEquals": {"ecs:cluster": [f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/app"]}
    }
    assert policy["WatchDeployment"]["Action"] == ["ecs:DescribeTasks"]
    assert policy["WatchDeployment"]["Resource"] == [f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/app/*"]
    granted = {a for s in policy.values() for a in s["Action"]}
    assert {
        "ecs:DescribeServices",
        "ecs:DescribeTaskDefinition",
        "ecs:DescribeTasks",
        "ecs:ListTasks",
        "ecs:RegisterTaskDefinition",
        "ecs:TagResource",
        "ecs:UpdateService",
    } <= granted
    container_instances = [
        r for s in policy.values() for r in s.get("Resource", []) if "container-instance" in r
    ]
    assert container_instances == []


@pytest.mark.parametrize("service", SERVICES)
def test_pipeline_passes_only_the_task_roles_and_only_to_ecs_tasks(dev, service):
    statements = role_policy(dev["pipeline"], "pipeline", service)
    passing = [s for s in statements.values() if "iam:PassRole" in s["Action"]]
    (pass_role,) = passing
    assert pass_role["Action"] == ["iam:PassRole"]
    assert sorted(pass_role["Resource"]) == [
        f"arn:aws:iam::{ACCOUNT}:role/{service}-task",
        f"arn:aws:iam::{ACCOUNT}:role/{service}-task-execution",
    ]
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": ["ecs-tasks.amazonaws.com"]}
    }
    for duty in ("docker-build", "tests", "security-scan", "events", "deploy-handler"):
        policy = role_policy(dev["pipeline"], duty, service)
        assert not any("iam:PassRole" in s["Action"] for s in policy.values()), duty


def test_passed_role_names_come_from_config(replan):
    plan = replan("pipeline", config={"platform-pipeline:ecsTaskRoleName": "shop-task"})
    (pass_role,) = [
        s for s in role_policy(plan, "pipeline").values() if "iam:PassRole" in s["Action"]
    ]
    assert f"arn:aws:iam::{ACCOUNT}:role/shop-task" in pass_role["Resource"]


@pytest.mark.parametrize("service", SERVICES)
def test_pipeline_role_runs_only_the_four_projects_and_updates_only_its_service(dev, service):
    policy = role_policy(dev["pipeline"], "pipeline", service)
    builds = policy["RunBuilds"]
    assert sorted(builds["Resource"]) == [
        f"arn:aws:codebuild:us-east-1:{ACCOUNT}:project/acme-pipeline-{service}-{key}-dev"
        for key in ("docker-build", "integration-tests", "security-scan", "unit-tests")
    ]
    assert policy["UpdateService"]["Resource"] == [
        f"arn:aws:ecs:us-east-1:{ACCOUNT}:service/app/{service}"
    ]
    assert "UseSourceConnection" not in policy  # the GitHub source needs no connection


@pytest.mark.parametrize("service", SERVICES)
def test_roles_reach_the_artifacts_only_in_their_folder_of_the_foundation_bucket(dev, service):
    foundation = dev["foundation"].exports
    assert foundation["artifactBucketArn"] == BUCKET
    for duty in ("pipeline", "docker-build", "tests", "security-scan"):
        policy = role_policy(dev["pipeline"], duty, service)
        assert policy["ReadArtifacts"]["Resource"] == [f"{BUCKET}/{FOLDER[service]}/*"], duty
        assert policy["ArtifactKey"]["Resource"] == [foundation["kmsKeyArn"]], duty
        # the bucket's own reads (location, ACL, versioning), never its objects
        assert policy["ArtifactBucket"]["Resource"] == [BUCKET], duty


def test_the_artifact_folder_is_the_first_20_characters_of_the_pipeline_name(replan, config_copy):
    platform = config_copy / "platform.yaml"
    platform.write_text(
        platform.read_text(encoding="utf-8").replace(
            "  app: {}", "  app: {}\n  order-history-export: {}"
        ),
        encoding="utf-8",
    )
    plan = replan("pipeline")
    assert plan.exports["pipelineNames"]["order-history-export"] == (
        "order-history-export-acme-dev"
    )
    policy = role_policy(plan, "pipeline", "order-history-export")
    assert policy["ReadArtifacts"]["Resource"] == [f"{BUCKET}/order-history-export/*"]


def _writes(policy: dict) -> list[str]:
    return sorted(
        r
        for s in policy.values()
        if any(a.startswith("s3:Put") for a in s["Action"])
        for r in s["Resource"]
    )


@pytest.mark.parametrize("service", SERVICES)
def test_only_the_pipeline_and_the_image_build_write_any_artifact(dev, service):
    for duty in ("pipeline", "docker-build"):
        assert _writes(role_policy(dev["pipeline"], duty, service)) == [
            f"{BUCKET}/{FOLDER[service]}/*"
        ], duty
    for duty in ("events", "deploy-handler"):
        assert _writes(role_policy(dev["pipeline"], duty, service)) == [], duty


@pytest.mark.parametrize("service", SERVICES)
def test_the_tests_running_npm_scripts_write_only_their_report_prefixes(dev, service):
    plan, folder = dev["pipeline"], FOLDER[service]
    assert _writes(role_policy(plan, "tests", service)) == [
        f"{BUCKET}/{folder}/test-reports/integration-tests/*",
        f"{BUCKET}/{folder}/test-reports/unit-tests/*",
    ]
    paths = sorted(
        g.inputs["exportConfig"]["s3Destination"]["path"]
        for g in plan.of_type("aws:codebuild/reportGroup:ReportGroup")
        if g.inputs["name"].startswith(f"acme-pipeline-{service}-")
    )
    assert paths == [
        f"{folder}/test-reports/integration-tests",
        f"{folder}/test-reports/unit-tests",
    ]


@pytest.mark.parametrize("service", SERVICES)
def test_the_security_scan_only_reads(dev, service):
    policy = role_policy(dev["pipeline"], "security-scan", service)
    assert _writes(policy) == []
    assert sorted(policy["ArtifactKey"]["Action"]) == ["kms:Decrypt", "kms:DescribeKey"]
    writes = {"s3:PutObject", "kms:Encrypt", "kms:GenerateDataKey", "ecr:PutImage"}
    assert not writes & {a for s in policy.values() for a in s["Action"]}


@pytest.mark.parametrize("service", SERVICES)
def test_build_roles_write_only_their_own_log_groups(dev, service):
    plan = dev["pipeline"]
    own = {
        "docker-build": ["docker-build"],
        "tests": ["unit-tests", "integration-tests"],
        "security-scan": ["security-scan"],
    }
    for duty, keys in own.items():
        logs = role_policy(plan, duty, service)["BuildLogs"]
        expected = []
        for key in keys:
            arn = (
                f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:"
                f"/aws/codebuild/acme-pipeline-{service}-{key}-dev"
            )
            expected += [arn, f"{arn}:*"]
        assert sorted(logs["Resource"]) == sorted(expected), duty


@pytest.mark.parametrize("service", SERVICES)
def test_only_the_docker_build_pushes_and_only_to_its_repository(dev, service):
    plan = dev["pipeline"]
    repository = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/acme-registry-{service}-dev"
    assert dev["registry"].exports["repositoryArns"][service] == repository
    docker = role_policy(plan, "docker-build", service)
    assert docker["PushImage"]["Resource"] == [repository]
    assert "ecr:PutImage" in docker["PushImage"]["Action"]
    assert docker["EcrLogin"]["Resource"] == ["*"]
    assert docker["EcrLogin"]["Action"] == ["ecr:GetAuthorizationToken"]
    scan = role_policy(plan, "security-scan", service)
    assert scan["ReadScanFindings"]["Resource"] == [repository]
    assert all("ecr:PutImage" not in s["Action"] for s in scan.values())


ENHANCED_READS = ["inspector2:ListCoverage", "inspector2:ListFindings"]
"""The read actions of ECR's IAM policy for enhanced scanning (image-scanning-enhanced-iam.html);
its Enable/Disable/ListAccountPermissions turn scanning on and off."""


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("duty", ["security-scan", "deploy-handler"])
def test_the_scan_readers_may_read_enhanced_findings_from_inspector(dev, duty, service):
    policy = role_policy(dev["pipeline"], duty, service)
    assert policy["ReadEnhancedFindings"] == {
        "Sid": "ReadEnhancedFindings",
        "Effect": "Allow",
        "Action": ENHANCED_READS,
        "Resource": ["*"],
    }


@pytest.mark.parametrize("action", ENHANCED_READS)
def test_inspector_reads_have_no_resource_type_in_the_sar_so_star_is_the_narrowest(action):
    from policy_sentry.querying.actions import get_action_data

    service, name = action.split(":")
    (entry,) = get_action_data(service, name)[service]
    assert entry["access_level"] == "List"
    assert entry["resource_arn_format"] == "*"


@pytest.mark.parametrize("service", SERVICES)
def test_tests_role_publishes_only_to_the_two_report_groups(dev, service):
    reports = role_policy(dev["pipeline"], "tests", service)["PublishTestReports"]
    assert sorted(reports["Resource"]) == [
        f"arn:aws:codebuild:us-east-1:{ACCOUNT}:report-group/acme-pipeline-{service}-{key}-dev"
        for key in ("integration-tests", "unit-tests")
    ]


@pytest.mark.parametrize("service", SERVICES)
def test_events_role_may_only_start_this_pipeline(dev, service):
    (statement,) = role_policy(dev["pipeline"], "events", service).values()
    assert statement["Action"] == ["codepipeline:StartPipelineExecution"]
    assert statement["Resource"] == [f"arn:aws:codepipeline:us-east-1:{ACCOUNT}:{service}-acme-dev"]


def test_codeconnections_source_may_use_only_its_connection(replan):
    arn = (
        "arn:aws:codestar-connections:us-east-1:111111111111:connection/"
        "12345678-abcd-4ef0-9abc-1234567890ab"
    )
    plan = replan(
        "pipeline",
        config={
            "platform-pipeline:sourceProvider": "codeconnections",
            "platform-pipeline:connectionArn": arn,
        },
    )
    for service in SERVICES:
        assert role_policy(plan, "pipeline", service)["UseSourceConnection"]["Resource"] == [arn]

"""Extra services: each gets its own Docker-build project, log group and least-privilege role."""

from __future__ import annotations

import json

import pytest

from shared.errors import ConfigError
from tests.conftest import real_upstream
from tests.pipeline_support import (
    LOG_GROUP,
    PROJECT,
    ROLE,
    ROLE_POLICY,
    project,
    role_policy,
    stages,
    trust,
    variables,
)
from tests.platform_support import with_image_families

SERVICES = ["billing", "search", "auth-api"]
KEY = "platform-pipeline:services"
WITH_FAMILIES = ("app", *SERVICES, "x" * 40)
"""The image families for these services (a what-if of platform.yaml)."""


def registry_families(monkeypatch, value):
    """The pipeline's plan as if platform.yaml listed ``value`` as the image families."""
    with_image_families(monkeypatch, value)


def unpatched_upstream(dev):
    """The session's foundation and registry plans: the pipeline reads only their exports, so
    the families the registry was planned with do not shape the pipeline's plan."""
    return real_upstream(dev, "foundation", "registry")


@pytest.fixture(scope="module")
def with_services(dev):
    from toolbox.offline import plan_layer

    upstream = unpatched_upstream(dev)
    with pytest.MonkeyPatch.context() as monkeypatch:
        registry_families(monkeypatch, WITH_FAMILIES)
        return plan_layer("pipeline", "dev", upstream, {KEY: json.dumps(SERVICES)})


def test_three_services_give_three_more_projects_log_groups_and_roles(dev, with_services):
    base, plan = dev["pipeline"], with_services
    for type_ in (PROJECT, LOG_GROUP, ROLE, ROLE_POLICY):
        assert len(plan.of_type(type_)) == len(base.of_type(type_)) + 3, type_
    for name in SERVICES:
        key = f"service-{name}"
        assert plan.exports["projectNames"][key] == f"acme-pipeline-{key}-dev"
        assert plan.exports["logGroupNames"][key] == f"/aws/codebuild/acme-pipeline-{key}-dev"
        assert plan.exports["roleArns"][key].endswith(f":role/acme-pipeline-{key}-dev")


def test_service_builds_are_docker_builds_with_their_own_tag_prefix(with_services):
    plan = with_services
    docker = project(plan, "docker-build")
    for name in SERVICES:
        service = project(plan, f"service-{name}")
        assert service.inputs["source"]["buildspec"] == docker.inputs["source"]["buildspec"]
        assert service.inputs["environment"]["privilegedMode"] is True
        assert service.inputs["environment"]["computeType"] == "BUILD_GENERAL1_SMALL"
        env = variables(service)
        assert env["IMAGE_TAG_PREFIX"] == f"{name}-"
        assert env["CONTAINER_NAME"] == name
        assert service.inputs["serviceRole"] == plan.exports["roleArns"][f"service-{name}"]


def test_each_service_role_is_trusted_for_and_logs_to_its_own_project_only(with_services):
    plan = with_services
    for name in SERVICES:
        key = f"service-{name}"
        statement = trust(plan, key)
        assert statement["Condition"]["ArnLike"]["aws:SourceArn"] == [
            f"arn:aws:codebuild:us-east-1:111111111111:project/{plan.exports['projectNames'][key]}"
        ]
        logs = role_policy(plan, key)["BuildLogs"]["Resource"]
        assert all(plan.exports["logGroupNames"][key] in arn for arn in logs)


def test_services_are_not_stages_of_the_pipeline(with_services):
    plan = with_services
    assert len(stages(plan)) == 5
    names = {a["configuration"].get("ProjectName") for s in stages(plan) for a in s["actions"]}
    assert not any("service-" in (n or "") for n in names)
    pipeline_builds = role_policy(plan, "pipeline")["RunBuilds"]["Resource"]
    assert len(pipeline_builds) == 4


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('["billing", "billing"]', "listed twice"),
        ('["Billing"]', "is not valid"),
        ('["a_b"]', "is not valid"),
        ("billing", "is not a list"),
        ('["' + "x" * 40 + '"]', "over the limit"),
    ],
)
def test_bad_service_lists_are_refused_naming_the_key(dev, replan, monkeypatch, value, problem):
    registry_families(monkeypatch, WITH_FAMILIES)
    with pytest.raises(ConfigError) as error:
        replan("pipeline", config={KEY: value}, upstream_plans=unpatched_upstream(dev))
    message = str(error.value)
    assert message.startswith(f"stacks/pipeline/Pulumi.dev.yaml: {KEY}:")
    assert problem in message


def test_a_service_must_be_an_image_family(replan):
    with pytest.raises(ConfigError) as error:
        replan("pipeline", config={KEY: '["worker"]'})
    message = str(error.value)
    assert message.startswith(f"stacks/pipeline/Pulumi.dev.yaml: {KEY}:")
    assert "'worker' is not an image family (imageFamilies in platform.yaml: ['app'])" in message
    assert "add 'worker' to imageFamilies in platform.yaml" in message


def test_the_applications_family_is_not_a_service(dev, replan, monkeypatch):
    registry_families(monkeypatch, ["app", "billing"])
    with pytest.raises(ConfigError) as error:
        replan("pipeline", config={KEY: '["app"]'}, upstream_plans=unpatched_upstream(dev))
    assert "'app' is not an image family" in str(error.value)


def test_the_application_image_is_tagged_with_the_first_family(dev, replan, monkeypatch):
    registry_families(monkeypatch, ["shop", "billing"])
    plan = replan("pipeline", upstream_plans=unpatched_upstream(dev))
    assert variables(project(plan, "docker-build"))["IMAGE_TAG_PREFIX"] == "shop-"

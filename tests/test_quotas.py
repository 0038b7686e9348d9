"""The quota check: what the offline plan creates, against the account's quotas and usage.

Usage is counted against moto (each service's own list call); moto's Service Quotas knows only
VPC's quotas, so its answers come from botocore's Stubber, shaped as the API reference shapes
GetServiceQuota and GetAWSDefaultServiceQuota. Quota codes, counts and lines are literals here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.stub import Stubber

from shared.errors import PlatformError
from tests.moto_support import fresh_account, moto_for_the_module
from toolbox import preflight, quotas, synth
from toolbox.offline import LayerPlan, PlannedResource
from toolbox.preflight import Preflight, PreflightReport, Purpose
from toolbox.quotas import Demand, Room

REGION = "us-east-1"
PIPELINE = "aws:codepipeline/pipeline:Pipeline"
PROJECT = "aws:codebuild/project:Project"
RULE = "aws:cloudwatch/eventRule:EventRule"
REPOSITORY = "aws:ecr/repository:Repository"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ROLE = "aws:iam/role:Role"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "codebuild.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)

moto_session = moto_for_the_module(REGION)


def quota(code: str) -> quotas.Quota:
    """The table's quota of that code."""
    (found,) = [q for q in quotas.QUOTAS if q.quota_code == code]
    return found


PIPELINES, PROJECTS, RULES = quota("L-78D200AD"), quota("L-ACCF6C0D"), quota("L-244521F2")
REPOSITORIES, LOG_GROUPS, ROLES = quota("L-CFEB8E8D"), quota("L-C7B9AAAB"), quota("L-FE177D64")


def resource(type_: str, name: str | None = None, **inputs: Any) -> PlannedResource:
    """A planned resource as the offline plan records it (only type and inputs matter here)."""
    if name is not None:
        inputs["name"] = name
    return PlannedResource(
        urn=f"urn:pulumi:dev::test::{type_}::{name}",
        type=type_,
        name=name or "generated",
        parent=None,
        custom=True,
        protect=False,
        provider=None,
        inputs=inputs,
    )


# -- what the plan needs ----------------------------------------------------------------------


def test_needed_counts_each_quota_and_each_event_bus_apart():
    plan = [
        resource(PIPELINE, "acme-app"),
        resource(PIPELINE, "acme-api"),
        resource(PROJECT, "acme-build"),
        resource(PROJECT, "acme-test"),
        resource(PROJECT, "acme-scan"),
        resource(RULE, "acme-failed"),  # no eventBusName: the default bus
        resource(RULE, "acme-record", eventBusName="default"),
        resource(
            RULE, "acme-ops", eventBusName="arn:aws:events:us-east-1:111111111111:event-bus/ops"
        ),
        resource(REPOSITORY, "acme-app"),
        resource(LOG_GROUP, "/aws/codebuild/acme-build"),
        resource(LOG_GROUP, "/aws/codebuild/acme-test"),
        resource(ROLE, "acme-build"),
        resource("aws:s3/bucket:Bucket", "acme-artifacts"),
        resource("aws:iam/rolePolicy:RolePolicy", "acme-build"),
    ]

    assert quotas.needed(plan) == {
        Demand(PIPELINES): 2,
        Demand(PROJECTS): 3,
        Demand(RULES, "default"): 2,
        Demand(RULES, "ops"): 1,
        Demand(REPOSITORIES): 1,
        Demand(LOG_GROUPS): 2,
        Demand(ROLES): 1,
    }


def test_a_resource_without_a_literal_name_counts_but_matches_nothing():
    plan = [resource(ROLE), resource(ROLE, "acme-build")]

    assert quotas.needed(plan) == {Demand(ROLES): 2}
    assert quotas.names(plan) == {Demand(ROLES): {"acme-build"}}


def test_the_real_plan_draws_on_every_quota_of_the_table(dev):
    resources = [r for plan in dev.values() for r in plan.resources]

    counted = quotas.needed(resources)

    assert {demand.quota.quota_code for demand in counted} == {
        "L-78D200AD",
        "L-ACCF6C0D",
        "L-244521F2",
        "L-CFEB8E8D",
        "L-C7B9AAAB",
        "L-FE177D64",
    }
    assert all(count >= 1 for count in counted.values())


# -- against the account ----------------------------------------------------------------------


class Clients:
    """The check's clients: moto's for the usage calls, botocore's Stubber for Service Quotas
    (and for any service a test stubs); records the Region each client was asked for."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.stubbed: dict[str, tuple[Any, Stubber]] = {}
        self.asked: list[tuple[str, str]] = []

    def stub(self, service: str) -> Stubber:
        client = self.session.client(service, region_name=REGION)
        stubber = Stubber(client)
        self.stubbed[service] = (client, stubber)
        return stubber

    def quota_value(self, quota_: quotas.Quota, value: float) -> None:
        """GetServiceQuota answers the applied ``value``."""
        stubber = self.stubbed["service-quotas"][1]
        stubber.add_response(
            "get_service_quota",
            {"Quota": answer(quota_, value)},
            {"ServiceCode": quota_.service_code, "QuotaCode": quota_.quota_code},
        )

    def __call__(self, service: str, region: str) -> Any:
        self.asked.append((service, region))
        if service in self.stubbed:
            return self.stubbed[service][0]
        return self.session.client(service, region_name=region)


def answer(quota_: quotas.Quota, value: float) -> dict[str, Any]:
    return {
        "ServiceCode": quota_.service_code,
        "QuotaCode": quota_.quota_code,
        "QuotaName": quota_.title,
        "Value": value,
        "Unit": "None",
        "Adjustable": True,
        "GlobalQuota": quota_.global_quota,
    }


@pytest.fixture
def clients(moto_session, monkeypatch) -> Iterator[Clients]:
    """An empty account of the test's own, and a stubbed Service Quotas whose every answer the
    test queued was asked for."""
    fresh_account(monkeypatch)
    made = Clients(moto_session)
    stubber = made.stub("service-quotas")
    stubber.activate()
    yield made
    for _, each in made.stubbed.values():
        each.deactivate()  # the module's clients are shared (OneClientEach): unhook this test's
    for _, each in made.stubbed.values():
        each.assert_no_pending_responses()


def make_projects(session: Any, *names: str) -> None:
    iam = session.client("iam")
    role = iam.create_role(RoleName=f"builder-{names[0]}", AssumeRolePolicyDocument=TRUST)
    for name in names:
        session.client("codebuild").create_project(
            name=name,
            source={"type": "S3", "location": "acme-source/app.zip"},
            artifacts={"type": "NO_ARTIFACTS"},
            environment={
                "type": "LINUX_CONTAINER",
                "image": "aws/codebuild/standard:7.0",
                "computeType": "BUILD_GENERAL1_SMALL",
            },
            serviceRole=role["Role"]["Arn"],
        )


def test_a_plan_under_the_quota_passes_with_the_room_it_leaves(clients):
    make_projects(clients.session, "other-a", "other-b", "other-c")
    clients.quota_value(PROJECTS, 5.0)

    rooms, findings = quotas.check(
        [resource(PROJECT, "acme-build"), resource(PROJECT, "acme-test")], clients, REGION
    )

    assert findings == []
    assert rooms == [Room(Demand(PROJECTS), limit=5, in_use=3, adds=2)]
    assert quotas.summary(rooms) == "CodeBuild build projects per Region 3+2 of 5"


def test_one_quota_over_is_one_line_with_the_numbers_and_the_increase_command(clients):
    make_projects(clients.session, "other-a", "other-b", "other-c")
    clients.quota_value(PROJECTS, 4.0)
    clients.quota_value(ROLES, 1000.0)

    rooms, findings = quotas.check(
        [resource(PROJECT, "acme-build"), resource(PROJECT, "acme-test"), resource(ROLE, "acme")],
        clients,
        REGION,
    )

    assert [finding.detail for finding in findings] == [
        "CodeBuild build projects per Region (codebuild L-ACCF6C0D): limit 4, 3 in use besides"
        " this plan's, the plan adds 2: 5 needed; request them (`aws service-quotas"
        " request-service-quota-increase --service-code codebuild --quota-code L-ACCF6C0D"
        " --desired-value 5 --region us-east-1`), see"
        " https://docs.aws.amazon.com/codebuild/latest/userguide/limits.html"
    ]
    assert [room.demand.quota.quota_code for room in rooms] == ["L-FE177D64"]


def test_what_the_plan_names_in_the_account_is_not_counted_twice(clients):
    # A redeploy: the plan's two projects exist already, beside one of another team.
    make_projects(clients.session, "acme-build", "acme-test", "other")
    clients.quota_value(PROJECTS, 3.0)

    rooms, findings = quotas.check(
        [resource(PROJECT, "acme-build"), resource(PROJECT, "acme-test")], clients, REGION
    )

    assert findings == []
    assert rooms == [Room(Demand(PROJECTS), limit=3, in_use=1, adds=2)]


def test_usage_is_counted_over_every_page(clients):
    logs = clients.session.client("logs")
    for number in range(60):  # DescribeLogGroups answers 50 a page
        logs.create_log_group(logGroupName=f"/aws/lambda/other-{number:02d}")
    clients.quota_value(LOG_GROUPS, 60.0)

    _, findings = quotas.check([resource(LOG_GROUP, "/aws/lambda/acme")], clients, REGION)

    assert [finding.detail.split("; request")[0] for finding in findings] == [
        "CloudWatch Logs log groups per Region (logs L-C7B9AAAB): limit 60, 60 in use besides"
        " this plan's, the plan adds 1: 61 needed"
    ]


def test_rules_are_counted_per_event_bus_and_the_quota_read_once(clients):
    events = clients.session.client("events")
    events.create_event_bus(Name="ops")
    for name in ("other-a", "other-b"):
        events.put_rule(Name=name, ScheduleExpression="rate(1 hour)")
    clients.quota_value(RULES, 2.0)

    rooms, findings = quotas.check(
        [resource(RULE, "acme-failed"), resource(RULE, "acme-ops", eventBusName="ops")],
        clients,
        REGION,
    )

    assert [finding.detail.split(": limit")[0] for finding in findings] == [
        "EventBridge rules per event bus (bus default) (events L-244521F2)"
    ]
    assert rooms == [Room(Demand(RULES, "ops"), limit=2, in_use=0, adds=1)]


def test_no_applied_value_falls_back_to_the_default(clients):
    make_projects(clients.session, "other")
    stubber = clients.stubbed["service-quotas"][1]
    codes = {"ServiceCode": "codebuild", "QuotaCode": "L-ACCF6C0D"}
    stubber.add_client_error(
        "get_service_quota", service_error_code="NoSuchResourceException", expected_params=codes
    )
    stubber.add_response("get_aws_default_service_quota", {"Quota": answer(PROJECTS, 2.0)}, codes)

    _, findings = quotas.check(
        [resource(PROJECT, "acme-build"), resource(PROJECT, "acme-test")], clients, REGION
    )

    assert (
        findings[0]
        .detail.split("; request")[0]
        .endswith("limit 2, 1 in use besides this plan's, the plan adds 2: 3 needed")
    )


def test_a_global_quota_is_read_in_us_east_1_whatever_the_region(clients):
    clients.quota_value(ROLES, 1000.0)

    quotas.check([resource(ROLE, "acme")], clients, "eu-west-1")

    assert clients.asked == [("service-quotas", "us-east-1"), ("iam", "eu-west-1")]
    assert quotas.increase_command(ROLES, 1200, "eu-west-1").endswith("--region us-east-1")
    assert quotas.increase_command(PROJECTS, 6000, "eu-west-1").endswith("--region eu-west-1")


def test_access_denied_by_service_quotas_names_the_permission(clients):
    stubber = clients.stubbed["service-quotas"][1]
    stubber.add_client_error(
        "get_service_quota",
        service_error_code="AccessDeniedException",
        service_message="not authorized",
        expected_params={"ServiceCode": "codepipeline", "QuotaCode": "L-78D200AD"},
    )

    rooms, findings = quotas.check([resource(PIPELINE, "acme-app")], clients, REGION)

    assert rooms == []
    assert [(finding.exceeded, finding.detail) for finding in findings] == [
        (
            False,
            "CodePipeline pipelines per Region (codepipeline L-78D200AD): the caller may not read"
            " it: servicequotas:GetServiceQuota was refused (AccessDeniedException: not"
            " authorized); attach the policy of `./dev operator-policy --role deploy`, which"
            " holds it",
        )
    ]


def test_access_denied_on_a_usage_call_names_its_action(clients):
    clients.quota_value(RULES, 300.0)
    events = clients.stub("events")
    events.add_client_error(
        "list_rules",
        service_error_code="AccessDeniedException",
        service_message="not authorized",
        expected_params={"EventBusName": "default"},
    )
    events.activate()

    _, findings = quotas.check([resource(RULE, "acme-failed")], clients, REGION)

    assert "events:ListRules was refused (AccessDeniedException" in findings[0].detail


# -- in the preflight -------------------------------------------------------------------------


class StubbedQuotas:
    """A session whose Service Quotas client is the test's stubbed one, moto's for the rest."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    def get_credentials(self) -> Any:
        return self.clients.session.get_credentials()

    def client(self, service: str, region_name: str | None = None) -> Any:
        return self.clients(service, region_name or REGION)


def layer(name: str, *resources: PlannedResource) -> LayerPlan:
    return LayerPlan(name, "dev", f"acme/{name}/dev", tuple(resources), {})


def test_the_preflight_fails_one_line_per_quota_and_counts_only_the_selected_layers(clients):
    plans = {
        "registry": layer("registry", resource(REPOSITORY, "acme-app")),
        "pipeline": layer("pipeline", resource(PROJECT, "acme-build"), resource(PIPELINE, "acme")),
    }
    clients.quota_value(PIPELINES, 0.0)
    clients.quota_value(PROJECTS, 0.0)
    check = Preflight("dev", StubbedQuotas(clients), plans=lambda environment: plans)

    results = check.check_quotas(("pipeline",))  # the registry's repository is not asked about

    assert [(result.name, result.ok) for result in results] == [
        ("quotas", False),
        ("quotas", False),
    ]
    assert (
        results[0]
        .line()
        .startswith(
            "  FAIL  quotas  CodePipeline pipelines per Region (codepipeline L-78D200AD): limit 0"
        )
    )
    report = PreflightReport("dev", Purpose.DEPLOY, tuple(results))
    assert report.summary() == (
        "preflight dev failed: quotas; nothing was touched (see the lines above)"
    )


def test_the_preflight_passes_one_line_with_the_room(clients):
    plans = {"registry": layer("registry", resource(REPOSITORY, "acme-app"))}
    clients.quota_value(REPOSITORIES, 100000.0)
    check = Preflight("dev", StubbedQuotas(clients), plans=lambda environment: plans)

    (result,) = check.check_quotas(("registry",))

    assert result.line() == (
        "  pass  quotas  room for the plan: ECR repositories per Region 0+1 of 100000"
    )


def test_a_failed_offline_plan_leaves_nothing_to_count():
    def plans(environment: str) -> dict[str, LayerPlan]:
        raise PlatformError("stacks/pipeline/Pulumi.dev.yaml: bad key")

    (result,) = Preflight("dev", object(), plans=plans).check_quotas(("pipeline",))

    assert (result.skipped, result.detail) == (
        True,
        "the offline plan failed, nothing to count (stacks/pipeline/Pulumi.dev.yaml: bad key)",
    )


class NoCredentials:
    def get_credentials(self) -> None:
        return None


@pytest.mark.parametrize(
    ("purpose", "counted"),
    [
        (Purpose.PREFLIGHT, True),
        (Purpose.DEPLOY, True),
        (Purpose.PREVIEW, False),
        (Purpose.REFRESH, False),
        (Purpose.DESTROY, False),
    ],
)
def test_the_quotas_are_checked_before_a_deploy_and_by_preflight(purpose, counted):
    check = Preflight("dev", NoCredentials(), cli_version=lambda: "0", plans=lambda environment: {})

    report = check.run(("foundation",), purpose)

    found = [result for result in report.results if result.name == "quotas"]
    assert [(r.skipped, r.detail) for r in found] == (
        [(True, "needs working AWS credentials in the right account")] if counted else []
    )


def test_the_real_preflight_plans_once_for_the_offline_plan_and_the_quotas(monkeypatch):
    planned: list[str] = []

    def fake_synth(environment: str, **_: Any) -> SimpleNamespace:
        planned.append(environment)
        return SimpleNamespace(violations=0, plans={"registry": layer("registry")})

    monkeypatch.setattr(synth, "synth", fake_synth)
    check = preflight.for_environment("dev")
    assert check.offline_plan is not None and check.plans is not None

    judged = check.offline_plan("dev")
    counted = check.plans("dev")

    assert planned == ["dev"]
    assert judged.ok and list(counted) == ["registry"]

"""Services: each service of platform.yaml has the whole path, its own resources, and roles that
reach nothing of another service (tested over the plan, for every ordered pair of services).

The plans are the offline plans of the tests' configuration (``app`` and ``worker``), of the same
with a third service, and of the application alone (the seed's single-application shape).
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from policies.rules import takes_tags
from shared.errors import ConfigError
from tests.pipeline_support import (
    ACCOUNT,
    APP,
    LOG_GROUP,
    PROJECT,
    REPORT_GROUP,
    ROLE,
    WORKER,
    pipeline,
    plan_services,
    project,
    role_arn,
    role_policy,
    stages,
    trust,
    variables,
)
from toolbox.offline import LayerPlan, PlannedResource

REGION = "us-east-1"
COMPONENT = "acme:pipeline:ServicePipeline"
FUNCTION = "aws:lambda/function:Function"
STAGES = ["Source", "Build", "Test", "SecurityScan", "Deploy"]
KEYS = ("docker-build", "unit-tests", "integration-tests", "security-scan")
DUTIES = ("pipeline", "events", "docker-build", "tests", "security-scan", "deploy-handler")
FIXTURE_SERVICES = {
    "app": {},
    "worker": {
        "githubRepo": "worker-service",
        "requireApproval": True,
        "scanSeverityThreshold": "CRITICAL",
        "environments": {
            "prod": {
                "deployAlarmArns": ["arn:aws:cloudwatch:us-east-1:222222222222:alarm:worker-5xx"]
            }
        },
    },
}
"""The services of tests/fixtures/config/platform.yaml, as written there."""
THIRD = "app-api"
"""A third service whose name starts with the first's: a pattern written for ``app`` that also
matched ``app-api``'s names would show here. It starts from an S3 source zip, so its pipeline
role reads a source object, and it bakes on an alarm of its own."""
THIRD_SETTINGS = {
    "sourceProvider": "s3",
    "deployAlarmArns": [f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:app-api-5xx"],
}


@pytest.fixture(scope="module")
def three(tmp_path_factory) -> dict[str, LayerPlan]:
    """Every layer's dev plan with a third service after the tests' two."""
    return plan_services(
        tmp_path_factory.mktemp("three") / "config",
        {**FIXTURE_SERVICES, THIRD: THIRD_SETTINGS},
    )


@pytest.fixture(scope="module")
def alone(tmp_path_factory) -> dict[str, LayerPlan]:
    """Every layer's dev plan with the application as the only service."""
    return plan_services(tmp_path_factory.mktemp("alone") / "config", {"app": {}})


@pytest.fixture(params=["two services", "two services in prod", "three services"])
def plans(request) -> dict[str, LayerPlan]:
    """The tests' configuration (dev, and prod where the worker bakes on an alarm of its own),
    and the same with a third service."""
    fixture = {"two services": "dev", "two services in prod": "prod"}.get(request.param, "three")
    return request.getfixturevalue(fixture)


ACCOUNTS = {"dev": "111111111111", "prod": "222222222222"}
"""Each environment's account in the tests' platform.yaml."""


# -- the full path, for each service ------------------------------------------------------------


def _stage(plan: LayerPlan, service: str, name: str) -> dict[str, Any]:
    (stage,) = [s for s in stages(plan, service) if s["name"] == name]
    return stage


def _children(plan: LayerPlan, service: str) -> list[PlannedResource]:
    """The resources of ``service``'s ServicePipeline component."""
    (component,) = [
        r for r in plan.resources if r.type == COMPONENT and r.name == f"pipeline-{service}"
    ]
    return [r for r in plan.resources if r.parent == component.urn]


@pytest.mark.parametrize("service", [APP, WORKER])
def test_each_service_has_five_stages_with_parallel_tests_and_its_deploy_handler(dev, service):
    plan = dev["pipeline"]
    assert [s["name"] for s in stages(plan, service)] == STAGES
    (source,) = _stage(plan, service, "Source")["actions"]
    assert source["category"] == "Source"
    (build,) = _stage(plan, service, "Build")["actions"]
    assert build["configuration"]["ProjectName"] == f"acme-pipeline-{service}-docker-build-dev"
    tests = _stage(plan, service, "Test")["actions"]
    assert sorted(a["configuration"]["ProjectName"] for a in tests) == [
        f"acme-pipeline-{service}-integration-tests-dev",
        f"acme-pipeline-{service}-unit-tests-dev",
    ]
    assert len({a["runOrder"] for a in tests}) == 1  # unit and integration in parallel
    (scan,) = _stage(plan, service, "SecurityScan")["actions"]
    assert scan["configuration"]["ProjectName"] == f"acme-pipeline-{service}-security-scan-dev"
    deploy = _stage(plan, service, "Deploy")
    ecs, promote = deploy["actions"][-2:]
    assert (ecs["provider"], ecs["configuration"]["ServiceName"]) == ("ECS", service)
    assert (promote["category"], promote["provider"]) == ("Invoke", "Lambda")
    assert promote["configuration"]["FunctionName"] == (
        f"acme-pipeline-{service}-deploy-handler-dev"
    )
    assert promote["runOrder"] == ecs["runOrder"] + 1
    assert deploy["onFailure"] == {"result": "ROLLBACK"}


@pytest.mark.parametrize("service", [APP, WORKER])
def test_each_service_has_its_own_projects_logs_reports_roles_and_deploy_handler(dev, service):
    plan = dev["pipeline"]
    mine = _children(plan, service)

    def names(type_: str) -> list[str]:
        return sorted(r.inputs["name"] for r in mine if r.type == type_)

    assert names(PROJECT) == [f"acme-pipeline-{service}-{key}-dev" for key in sorted(KEYS)]
    assert names(LOG_GROUP) == [
        f"/aws/codebuild/acme-pipeline-{service}-{key}-dev" for key in sorted(KEYS)
    ] + [f"/aws/lambda/acme-pipeline-{service}-deploy-handler-dev"]
    assert names(REPORT_GROUP) == [
        f"acme-pipeline-{service}-integration-tests-dev",
        f"acme-pipeline-{service}-unit-tests-dev",
    ]
    assert names(ROLE) == [f"acme-pipeline-{service}-{duty}-dev" for duty in sorted(DUTIES)]
    assert names(FUNCTION) == [f"acme-pipeline-{service}-deploy-handler-dev"]
    assert names("aws:codepipeline/pipeline:Pipeline") == [f"{service}-acme-dev"]
    # and the layer holds one ServicePipeline per service, nothing of a service outside it
    assert sorted(r.name for r in plan.of_type(COMPONENT)) == ["pipeline-app", "pipeline-worker"]


def test_the_workers_own_settings_apply_to_its_pipeline_only(dev):
    plan = dev["pipeline"]
    # requireApproval: true gives the worker an Approve action before its deploy in dev
    approve, *_ = _stage(plan, WORKER, "Deploy")["actions"]
    assert (approve["name"], approve["category"], approve["provider"]) == (
        "Approve",
        "Approval",
        "Manual",
    )
    assert [a["name"] for a in _stage(plan, APP, "Deploy")["actions"]] == [
        "DeployToEcs",
        "PromoteImage",
    ]
    # scanSeverityThreshold: CRITICAL in its security-scan project and its handler's parameters
    threshold = {
        service: variables(project(plan, "security-scan", service))["SCAN_SEVERITY_THRESHOLD"]
        for service in (APP, WORKER)
    }
    assert threshold == {APP: "HIGH", WORKER: "CRITICAL"}
    parameters = {
        service: json.loads(
            _stage(plan, service, "Deploy")["actions"][-1]["configuration"]["UserParameters"]
        )["threshold"]
        for service in (APP, WORKER)
    }
    assert parameters == {APP: "HIGH", WORKER: "CRITICAL"}
    # githubRepo: worker-service in its source action
    repos = {
        service: _stage(plan, service, "Source")["actions"][0]["configuration"]["Repo"]
        for service in (APP, WORKER)
    }
    assert repos == {APP: "app", WORKER: "worker-service"}


@pytest.mark.parametrize("service", [APP, WORKER])
def test_every_taggable_resource_of_a_service_carries_its_service_tag(dev, service):
    checked = set()
    for resource in _children(dev["pipeline"], service):
        if not resource.custom or not takes_tags(resource.type):
            continue
        assert (resource.inputs.get("tags") or {}).get("Service") == service, resource.urn
        checked.add(resource.type)
    assert checked >= {
        "aws:codebuild/project:Project",
        "aws:codebuild/reportGroup:ReportGroup",
        "aws:codepipeline/pipeline:Pipeline",
        "aws:iam/role:Role",
        "aws:lambda/function:Function",
        LOG_GROUP,
        "aws:sqs/queue:Queue",
    }


def test_the_layers_own_resources_carry_no_service_tag(dev):
    tagged = [
        resource
        for resource in dev["pipeline"].resources
        if resource.parent
        and resource.parent.endswith("::acme:pipeline:Pipeline::pipeline")
        and takes_tags(resource.type)
    ]
    # the recorder (function, role, log group, queue, alarm) and the layer's three rules, their
    # queues and alarms
    assert len(tagged) == 14
    for resource in tagged:
        assert "Service" not in resource.inputs["tags"], resource.urn


# -- isolation: nothing a service's role can do touches another service --------------------------

WILDCARD_ACTIONS = {
    "ecr:GetAuthorizationToken": "an ECR login token is for the whole registry of the account",
    "ecs:DescribeTaskDefinition": "no resource type in the Service Authorization Reference",
    "ecs:ListTasks": "its only resource type is container-instance (Fargate has none); the"
    " statement is confined to the service's cluster by ecs:cluster",
    "codepipeline:PutJobSuccessResult": "job results name a job id, no resource type",
    "codepipeline:PutJobFailureResult": "job results name a job id, no resource type",
    "inspector2:ListCoverage": "enhanced-scan findings are Inspector's, no resource type",
    "inspector2:ListFindings": "enhanced-scan findings are Inspector's, no resource type",
}
"""The actions granted on ``*``: AWS has nothing narrower, so no statement can name (or avoid)
another service's resources with them; every other statement is checked."""

SHARED = {
    "kmsKeyArn": "the platform key: every artifact, log group, queue and the ledger use it",
    "ledgerTableArn": "the one ledger: each deploy handler appends its own service's releases",
    "failureTopicArn": "the one failure topic: each deploy handler reports its own failures",
    "artifactBucketArn": "the artifact bucket itself, for GetBucketAcl/Location/Versioning:"
    " its objects are reached only in the service's own folder",
    "sourceBucketArn": "the source bucket itself, for GetBucketAcl/Location/Versioning: its"
    " objects are reached only at the service's own source key",
}
"""Platform resources (foundation exports) every service's roles may name, with the reason."""
BUCKET_ACTIONS = {"s3:GetBucketAcl", "s3:GetBucketLocation", "s3:GetBucketVersioning"}
"""All a role may do on a bucket itself (never ``s3:ListBucket``: no listing of other folders)."""


def _cluster_patterns(cluster: str, account: str) -> dict[str, str]:
    """Patterns a service's pipeline role names that are not the service's own resources."""
    ecs = f"arn:aws:ecs:{REGION}:{account}"
    return {
        f"{ecs}:task/{cluster}/*": "DescribeTasks (read only) of the tasks of the service's"
        " cluster, which services may share",
        f"{ecs}:cluster/{cluster}": "the ecs:cluster condition of ListTasks: the cluster,"
        " which services may share",
    }


ARN_OF = {
    PROJECT: "arn:aws:codebuild:{region}:{account}:project/{name}",
    REPORT_GROUP: "arn:aws:codebuild:{region}:{account}:report-group/{name}",
    LOG_GROUP: "arn:aws:logs:{region}:{account}:log-group:{name}",
    "aws:codepipeline/pipeline:Pipeline": "arn:aws:codepipeline:{region}:{account}:{name}",
    "aws:codepipeline/webhook:Webhook": "arn:aws:codepipeline:{region}:{account}:webhook:{name}",
    FUNCTION: "arn:aws:lambda:{region}:{account}:function:{name}",
    "aws:sqs/queue:Queue": "arn:aws:sqs:{region}:{account}:{name}",
    ROLE: "arn:aws:iam::{account}:role/{name}",
    "aws:cloudwatch/eventRule:EventRule": "arn:aws:events:{region}:{account}:rule/{name}",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "arn:aws:cloudwatch:{region}:{account}:alarm:{name}",
}
"""The ARN of each type of resource a service has, from its name (the AWS ARN formats)."""
NO_ARN = {
    "aws:iam/rolePolicy:RolePolicy",
    "aws:cloudwatch/eventTarget:EventTarget",
    "aws:sqs/queuePolicy:QueuePolicy",
    "github:index/repositoryWebhook:RepositoryWebhook",
    "pulumi:providers:github",
}
"""Types a service has that no IAM statement can name (a part of another resource, or GitHub's)."""


def _owned(plans: dict[str, LayerPlan], service: str) -> set[str]:
    """Sample ARNs of everything ``service`` owns: each resource of its component, its
    repository, ECS service and task roles, its artifact folder and source zip, its alarms."""
    plan = plans["pipeline"]
    account = ACCOUNTS[plan.environment]
    owned: set[str] = set()
    for resource in _children(plan, service):
        if resource.type in NO_ARN:
            continue
        assert resource.type in ARN_OF, f"{resource.urn}: add its ARN format to ARN_OF"
        arn = ARN_OF[resource.type].format(
            region=REGION, account=account, name=resource.inputs["name"]
        )
        owned.add(arn)
        if resource.type == LOG_GROUP:
            owned.add(f"{arn}:log-stream:sample")
        if resource.type == REPORT_GROUP:  # where CodeBuild exports its reports
            export = resource.inputs["exportConfig"]["s3Destination"]
            owned.add(f"arn:aws:s3:::{export['bucket']}/{export['path']}/report.zip")
    owned.add(plans["registry"].exports["repositoryArns"][service])
    deploy = _stage(plan, service, "Deploy")
    (ecs,) = [a for a in deploy["actions"] if a["provider"] == "ECS"]
    cluster, name = ecs["configuration"]["ClusterName"], ecs["configuration"]["ServiceName"]
    owned.add(f"arn:aws:ecs:{REGION}:{account}:service/{cluster}/{name}")
    # The fixture's task definition families are the default, the service's name.
    owned.add(f"arn:aws:ecs:{REGION}:{account}:task-definition/{service}:7")
    owned |= {f"arn:aws:iam::{account}:role/{service}-task{end}" for end in ("", "-execution")}
    bucket = plans["foundation"].exports["artifactBucketArn"]
    folder = plan.exports["pipelineNames"][service][:20]  # CodePipeline's artifact folder
    owned |= {
        f"{bucket}/{folder}/SourceOutp/a1b2c3",  # artifact names cut to 10 characters
        f"{bucket}/{folder}/BuildOutpu/d4e5f6",
    }
    (source,) = _stage(plan, service, "Source")["actions"]
    if source["provider"] == "S3":
        configuration = source["configuration"]
        owned.add(f"arn:aws:s3:::{configuration['S3Bucket']}/{configuration['S3ObjectKey']}")
    for rule in (deploy.get("onSuccess") or {}).get("condition", {}).get("rules", []):
        alarm = rule["configuration"]["AlarmName"]
        owned.add(f"arn:aws:cloudwatch:{REGION}:{account}:alarm:{alarm}")
    return owned


def _named(plan: LayerPlan, service: str) -> Iterator[tuple[str, dict[str, Any], str]]:
    """Every (duty, statement, ARN or pattern) the roles of ``service`` name: the resources of
    their policies' statements, and the ARNs their statements' and trust policies' conditions
    name (who may assume the role is part of what it can do)."""
    for duty in plan.exports["roleArns"][service]:
        statements = [*role_policy(plan, duty, service).values(), trust(plan, duty, service)]
        for statement in statements:
            resources = statement.get("Resource", [])
            for resource in [resources] if isinstance(resources, str) else resources:
                yield duty, statement, resource
            for values in (statement.get("Condition") or {}).values():
                for value in itertools.chain.from_iterable(
                    v if isinstance(v, list) else [v] for v in values.values()
                ):
                    if str(value).startswith("arn:"):
                        yield duty, statement, value


def _services(plans: dict[str, LayerPlan]) -> list[str]:
    return list(plans["pipeline"].exports["pipelineNames"])


def test_the_isolation_test_sees_every_service_and_role(plans):
    services = _services(plans)
    assert services[:2] == [APP, WORKER]
    assert len(services) in (2, 3)
    for service in services:
        assert set(plans["pipeline"].exports["roleArns"][service]) == set(DUTIES)
        assert len(_owned(plans, service)) >= 30


def test_no_role_of_a_service_names_or_matches_a_resource_of_another(plans):
    """For every ordered pair (A, B): no statement of A's roles names B's resource or uses a
    pattern that matches one (the IAM wildcards ``*`` and ``?``, as fnmatch reads them)."""
    services = _services(plans)
    owned = {service: _owned(plans, service) for service in services}
    pairs = list(itertools.permutations(services, 2))
    assert len(pairs) == len(services) * (len(services) - 1)
    for a, b in pairs:
        for duty, statement, named in _named(plans["pipeline"], a):
            if named == "*":
                continue  # test_a_wildcard_is_only_for_actions_without_a_resource_type
            touched = sorted(arn for arn in owned[b] if fnmatch.fnmatchcase(arn, named))
            assert not touched, f"{a}'s {duty} role ({statement.get('Sid')}) names {b}'s {touched}"


def test_a_role_of_a_service_names_only_its_own_resources_or_the_shared_ones(plans):
    """Each resource a service's role names is its own, or one the platform shares (the reasons
    in SHARED and _cluster_patterns), or ``*`` for actions without a resource type."""
    foundation = plans["foundation"].exports
    shared = {foundation[key]: reason for key, reason in SHARED.items()}
    for service in _services(plans):
        own = _owned(plans, service)
        (ecs,) = [
            a
            for a in _stage(plans["pipeline"], service, "Deploy")["actions"]
            if a["provider"] == "ECS"
        ]
        patterns = _cluster_patterns(
            ecs["configuration"]["ClusterName"], ACCOUNTS[plans["pipeline"].environment]
        )
        for duty, statement, named in _named(plans["pipeline"], service):
            where = f"{service}'s {duty} role ({statement.get('Sid')}): {named}"
            if named == "*":
                actions = statement["Action"]
                assert set(actions) <= set(WILDCARD_ACTIONS), where
            elif named in shared:
                if named in (foundation["artifactBucketArn"], foundation["sourceBucketArn"]):
                    assert set(statement["Action"]) <= BUCKET_ACTIONS, where
            elif named not in patterns:
                assert any(fnmatch.fnmatchcase(arn, named) for arn in own), where


def test_every_resource_of_a_service_runs_as_a_role_of_that_service(plans):
    """Its projects, pipeline, deploy handler and rule targets assume its own roles, and each of
    its inline policies is attached to one of them: a role of another service never acts for it."""
    plan = plans["pipeline"]
    for service in _services(plans):
        own = set(plan.exports["roleArns"][service].values())
        seen = 0
        for resource in _children(plan, service):
            for key in ("serviceRole", "roleArn", "role"):
                value = resource.inputs.get(key)
                if value is None:
                    continue
                account = ACCOUNTS[plan.environment]
                arn = value if value.startswith("arn:") else f"arn:aws:iam::{account}:role/{value}"
                assert arn in own, f"{resource.urn}: {key} {value}"
                seen += 1
        # four projects, the pipeline, the deploy handler, one target per rule that starts the
        # pipeline (through the events role), and one inline policy per role
        rules = sum(
            1
            for r in _children(plan, service)
            if r.type == "aws:cloudwatch/eventTarget:EventTarget" and "roleArn" in r.inputs
        )
        assert ("events" in plan.exports["roleArns"][service]) == (rules > 0)
        assert seen == 4 + 1 + 1 + rules + len(own)


def test_widening_a_role_to_the_bucket_would_be_seen(dev):
    """The check is not vacuous: the pattern a role had before services had folders matches the
    other service's artifacts, and so does a repository wildcard."""
    owned = _owned(dev, WORKER)
    bucket = dev["foundation"].exports["artifactBucketArn"]
    for pattern in (f"{bucket}/*", f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/*"):
        assert any(fnmatch.fnmatchcase(arn, pattern) for arn in owned), pattern
    # and a role's own folder pattern does not reach a service whose name extends its own
    assert not fnmatch.fnmatchcase(f"{bucket}/app-api-acme-dev/x", f"{bucket}/app-acme-dev/*")


def test_the_third_service_has_the_full_path_too(three):
    plan = three["pipeline"]
    assert [s["name"] for s in stages(plan, THIRD)] == STAGES
    assert plan.exports["pipelineNames"][THIRD] == "app-api-acme-dev"
    assert three["registry"].exports["repositoryArns"][THIRD] == (
        f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/acme-registry-app-api-dev"
    )
    assert role_policy(plan, "pipeline", THIRD)["ReadSourceObject"]["Resource"] == [
        "arn:aws:s3:::acme-foundation-source-111111111111-dev/source/app-api.zip"
    ]
    assert role_policy(plan, "pipeline", THIRD)["WatchBakeAlarms"]["Resource"] == [
        f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:app-api-5xx"
    ]
    assert role_policy(plan, "pipeline", APP)["ReadArtifacts"]["Resource"] == [
        "arn:aws:s3:::acme-foundation-artifacts-111111111111-dev/app-acme-dev/*"
    ]
    assert role_policy(plan, "pipeline", THIRD)["ReadArtifacts"]["Resource"] == [
        "arn:aws:s3:::acme-foundation-artifacts-111111111111-dev/app-api-acme-dev/*"
    ]
    assert role_arn(plan, "events", THIRD) == (
        f"arn:aws:iam::{ACCOUNT}:role/acme-pipeline-app-api-events-dev"
    )


# -- one service: the seed's shape --------------------------------------------------------------


def test_the_application_alone_has_the_seeds_shape(alone):
    plan, registry = alone["pipeline"], alone["registry"]
    (only,) = plan.of_type("aws:codepipeline/pipeline:Pipeline")
    assert only.inputs["name"] == "app-acme-dev"
    assert [s["name"] for s in only.inputs["stages"]] == STAGES
    (repository,) = registry.of_type("aws:ecr/repository:Repository")
    assert repository.inputs["name"] == "acme-registry-app-dev"
    assert registry.exports["repositoryNames"] == {APP: "acme-registry-app-dev"}
    assert plan.exports["pipelineNames"] == {APP: "app-acme-dev"}
    assert len(plan.of_type(PROJECT)) == 4
    assert len(plan.of_type(ROLE)) == 7  # the six duties and the recorder
    assert len(plan.of_type(FUNCTION)) == 2  # the recorder and the deploy handler
    assert pipeline(plan, APP).urn.endswith("::pipeline-app-codepipeline")


# -- bad services: one line naming the file and the key -----------------------------------------


def _refused(config_copy: Path, services: dict[str, Any], environment: str = "dev") -> str:
    """The one-line error planning ``services`` gives, without its file part (checked here)."""
    from toolbox.offline import plan_all

    platform = config_copy / "platform.yaml"
    data = yaml.safe_load(platform.read_text(encoding="utf-8"))
    data["services"] = services
    platform.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        plan_all(environment)
    return _without_file(str(error.value))


def _without_file(message: str) -> str:
    assert "\n" not in message
    file, rest = message.split(": ", 1)
    assert Path(file).name == "platform.yaml", message
    return rest


def test_two_services_deploying_one_ecs_service_are_refused(config_copy):
    assert _refused(config_copy, {"app": {}, "worker": {"ecsService": "app"}}) == (
        "services.worker.ecsService: services app and worker: both deploy ECS service app of"
        " cluster app (allowed: a service of its own (ecsCluster/ecsService) for each)"
    )


def test_two_services_in_different_clusters_may_share_a_service_name(config_copy):
    from toolbox.offline import plan_all

    platform = config_copy / "platform.yaml"
    data = yaml.safe_load(platform.read_text(encoding="utf-8"))
    data["services"] = {"app": {}, "worker": {"ecsService": "app", "ecsCluster": "batch"}}
    platform.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    plan = plan_all("dev", only="pipeline")["pipeline"]
    assert role_policy(plan, "pipeline", WORKER)["UpdateService"]["Resource"] == [
        f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/batch/app"
    ]


def test_two_services_whose_pipelines_share_an_artifact_folder_are_refused(config_copy):
    # payments-gateway-acme-dev and payments-gateway-acm-acme-dev: the same first 20 characters
    assert _refused(config_copy, {"payments-gateway": {}, "payments-gateway-acm": {}}) == (
        "services: services payments-gateway and payments-gateway-acm: their pipelines' names"
        " start with the same 20 characters (payments-gateway-acm), which CodePipeline names"
        " their artifact folder after (allowed: service names that differ within their first"
        " characters)"
    )


def test_two_services_started_by_one_source_zip_are_refused(config_copy):
    same = {"sourceProvider": "s3", "sourceKey": "source/shared.zip"}
    assert _refused(config_copy, {"app": same, "worker": same}) == (
        "services.worker.sourceKey: services app and worker: both are started by the source zip"
        " source/shared.zip (allowed: a source key of its own for each)"
    )


def test_a_service_stated_value_of_the_wrong_type_is_blamed_on_its_line(config_copy):
    assert _refused(config_copy, {"app": {}, "worker": {"requireApproval": "yes"}}) == (
        "services.worker.requireApproval: must be a boolean, got 'yes' (allowed: a boolean, as"
        " stacks/pipeline/Pulumi.yaml declares requireApproval)"
    )


def test_a_service_whose_name_makes_a_name_too_long_is_blamed(config_copy):
    # The longest namespace (12) and environment (8) leave a 20-character service 64 - 45
    # characters for a role's duty: security-scan needs 13, one too many.
    platform = config_copy / "platform.yaml"
    data = yaml.safe_load(platform.read_text(encoding="utf-8"))
    data["namespace"] = "acmeplatform"
    data["environments"] = {"sandbox1": data["environments"]["dev"]}
    platform.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    for layer in ("foundation", "registry", "pipeline"):
        folder = config_copy / "stacks" / layer
        shutil.move(folder / "Pulumi.dev.yaml", folder / "Pulumi.sandbox1.yaml")
        (folder / "Pulumi.prod.yaml").unlink()
    assert _refused(config_copy, {"app": {}, "payments-gateway-eu1": {}}, "sandbox1") == (
        "services.payments-gateway-eu1: the iam role name"
        " 'acmeplatform-pipeline-payments-gateway-eu1-security-scan-sandbox1' is 65 chars, over"
        " the limit of 64 (allowed: a shorter value; 1-64 chars: A-Z a-z 0-9 + = , . @ _ -)"
    )


def test_a_service_written_twice_is_refused(config_copy):
    from shared.settings import load_platform

    platform = config_copy / "platform.yaml"
    text = platform.read_text(encoding="utf-8")
    platform.write_text(text + "  app:\n    requireApproval: true\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_platform("dev", platform)
    message = _without_file(str(error.value))
    assert message.startswith("app: is written twice (lines ")
    assert message.endswith(
        "; YAML would silently keep only the last (allowed: each key once per mapping)"
    )

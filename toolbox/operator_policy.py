"""The operators' AWS roles (CI deploy, read-only preview and drift roles), generated, not
hand-written.

:data:`ACCESS` (data: ``operator_access.yaml`` beside this module; this module only assembles
the policies) is keyed by every Pulumi resource type the layers plan (a test compares it with
the dev and prod plans and the source-provider variants, so a new type without an entry fails).
Each entry gives the IAM actions the pulumi-aws provider (the Terraform AWS provider underneath)
calls to READ the resource, which is what a refresh needs, and to CREATE/UPDATE/DELETE/TAG it,
which a deploy needs besides the reads (the provider reads every resource back after writing it).

Resources are named by ARN patterns scoped to the platform: the ``namespace`` prefix every
physical name starts with (``shared.naming.Label``), the environment's account and Region from
``platform.yaml``. A ``*`` resource only for the actions in :data:`UNSCOPED`, each with the reason
AWS allows nothing narrower. ``iam:PassRole`` names the role ARNs the plan passes (a service's by
its duty, for every service: :func:`passed_roles`), each with ``iam:PassedToService``.
Sources: the Service Authorization Reference page of each service (listed in docs/iam.md) and
the provider's resource code
(github.com/hashicorp/terraform-provider-aws, ``internal/service/<service>/<resource>.go``):
docs/iam.md ("The operators' roles") has the table with the links.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from shared.errors import ConfigError
from shared.iam import VERSION, Condition, Statement
from shared.keys import check_keys
from shared.settings import PARTITION, Platform, read_yaml, relative
from toolbox.quotas import QUOTAS

ANY = "*"
"""The scope of an action AWS documents without resource-level permissions (see UNSCOPED)."""

DRIFT = "drift"
PREVIEW = "preview"
DEPLOY = "deploy"
ROLES = (DRIFT, PREVIEW, DEPLOY)

READ_VERBS = ("Describe", "Get", "List", "BatchGet")
"""What a read action's name starts with; the drift role holds nothing else (but the lock)."""


@dataclass(frozen=True)
class Grant:
    """Actions on the resources of some scopes (names in :func:`scopes`), maybe conditioned."""

    actions: tuple[str, ...]
    on: tuple[str, ...]
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Access:
    """What the provider calls for one resource type."""

    read: tuple[Grant, ...]
    """The provider's Read (refresh, and after every write)."""
    write: tuple[Grant, ...]
    """Create, Update, Delete and tagging."""
    source: str
    """The provider file whose Read/Create/Update/Delete the actions come from."""
    passes_role: tuple[str, str] | None = None
    """``(input, service principal)``: the input naming a role the service is handed."""


@dataclass(frozen=True)
class NoAws:
    """A type the engine plans that makes no AWS call, with the reason."""

    reason: str


# -- the access tables: data in operator_access.yaml --------------------------------------------

ACCESS_FILE = Path(__file__).with_name("operator_access.yaml")
"""Per resource type and per invoke, the actions the provider calls; the actions allowed on
``*`` with their reasons. Data, so each entry can be checked against AWS's own (the SAR)."""
_SECTIONS = ("grants", "resources", "invokes", "unscoped")
_ENTRY_KEYS = ("source", "read", "write", "passesRole", "noAws")
_GRANT_KEYS = ("scopes", "actions", "when")


def _strings(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def _grant(data: Any, shared: Mapping[str, Grant], where: str, key: str) -> Grant:
    """One grant: ``{scopes, actions, when}``, or the name of one of the shared ``grants``."""
    if isinstance(data, str):
        if data not in shared:
            raise ConfigError(where, key, f"'{data}' is not a shared grant", ", ".join(shared))
        return shared[data]
    allowed = "scopes and actions (lists of strings), maybe when (IAM conditions)"
    if not isinstance(data, dict):
        raise ConfigError(where, key, "must be a grant or a shared grant's name", allowed)
    check_keys(data, _GRANT_KEYS, where, f"{key}.")
    if not _strings(data.get("scopes")) or not _strings(data.get("actions")):
        raise ConfigError(where, key, "needs scopes and actions", allowed)
    when = data.get("when") or {}
    conditions = tuple(
        Condition(str(test), str(variable), tuple(str(value) for value in values))
        for test, variables in when.items()
        for variable, values in variables.items()
    )
    return Grant(tuple(data["actions"]), tuple(data["scopes"]), conditions)


def _entry(data: Any, shared: Mapping[str, Grant], where: str, key: str) -> Access | NoAws:
    """One resource type's (or invoke's) entry: its grants, or why it makes no AWS call."""
    if not isinstance(data, dict):
        raise ConfigError(where, key, "must be a mapping", ", ".join(_ENTRY_KEYS))
    check_keys(data, _ENTRY_KEYS, where, f"{key}.")
    if "noAws" in data:
        return NoAws(str(data["noAws"]))
    source, passes = data.get("source"), data.get("passesRole")
    if not isinstance(source, str) or not source:
        raise ConfigError(where, f"{key}.source", "is required", "the provider's resource file")
    grants = {
        part: tuple(
            _grant(grant, shared, where, f"{key}.{part}[{n}]")
            for n, grant in enumerate(data.get(part) or ())
        )
        for part in ("read", "write")
    }
    return Access(
        read=grants["read"],
        write=grants["write"],
        source=source,
        passes_role=(str(passes["input"]), str(passes["to"])) if passes else None,
    )


def load_access(
    path: Path = ACCESS_FILE,
) -> tuple[dict[str, Access | NoAws], dict[str, Access | NoAws], dict[str, str]]:
    """The resource types' entries, the invokes' entries and the unscoped actions of ``path``."""
    where = relative(path)
    data = read_yaml(path)
    check_keys(data, _SECTIONS, where)
    shared = {
        str(name): _grant(grant, {}, where, f"grants.{name}")
        for name, grant in (data.get("grants") or {}).items()
    }
    resources, invokes = (
        {str(t): _entry(e, shared, where, f"{section}.{t}") for t, e in data[section].items()}
        for section in ("resources", "invokes")
    )
    unscoped = {str(action): str(reason) for action, reason in data["unscoped"].items()}
    return resources, invokes, unscoped


ACCESS, INVOKES, UNSCOPED = load_access()
"""``ACCESS``: per Pulumi resource type the layers plan, what the provider calls, or why it calls
none; ``INVOKES``: the same per invoke (data source) the programs call, which only a preview or
an up runs, so only the preview and deploy roles hold them; ``UNSCOPED``: the actions the roles
may hold on ``Resource: "*"``, each with the reason."""


STATE_LOCK_ACTIONS = ("s3:DeleteObject", "s3:PutObject")
"""The only writes the drift role holds: the stack lock a DIY backend takes even for a refresh
preview (pulumi/pulumi ``pkg/backend/diy/backend.go``: ``Refresh`` locks the stack)."""


# -- what the toolbox itself calls with the role ------------------------------------------------


NO_PERMISSION = "no-permission"
"""The scope of a call AWS authorises without any policy (STS GetCallerIdentity)."""
STATE = "state-bucket"
"""The scope of a call on the state backend's bucket, granted by the ``StateBucket`` statement."""


@dataclass(frozen=True)
class Call:
    """One AWS API call a toolbox command makes with the operator's credentials (boto3)."""

    service: str
    """The boto3 client; its name is also the IAM service prefix but for ``service-quotas``
    (prefix ``servicequotas``), whose calls name their ``action``."""
    operation: str
    """The API operation, as botocore names it (``GetFunctionConfiguration``)."""
    on: str
    """The scope (:func:`scopes`) of the resource it names; NO_PERMISSION, or STATE."""
    action: str = ""
    """The IAM action when it is not ``<service>:<operation>``: the SAR's API-operations table
    (S3 names most bucket reads after the subresource, e.g. ``s3:GetLifecycleConfiguration``)."""

    @property
    def iam_action(self) -> str:
        """The action IAM checks for the call."""
        return self.action or f"{self.service}:{self.operation}"


VERIFY_READS: tuple[Call, ...] = (
    Call("kms", "GetKeyRotationStatus", "kms-key"),
    Call("s3", "GetPublicAccessBlock", "s3-bucket", "s3:GetBucketPublicAccessBlock"),
    Call("s3", "GetBucketVersioning", "s3-bucket"),
    Call("s3", "GetBucketLifecycleConfiguration", "s3-bucket", "s3:GetLifecycleConfiguration"),
    Call("s3", "GetBucketEncryption", "s3-bucket", "s3:GetEncryptionConfiguration"),
    Call("s3", "GetBucketNotificationConfiguration", "s3-bucket", "s3:GetBucketNotification"),
    Call("secretsmanager", "DescribeSecret", "secret"),
    Call("sns", "GetTopicAttributes", "sns-topic"),
    Call("sns", "ListSubscriptionsByTopic", "sns-topic"),
    Call("ecr", "DescribeRepositories", "ecr-repository"),
    Call("ecr", "GetLifecyclePolicy", "ecr-repository"),
    Call("dynamodb", "DescribeContinuousBackups", "dynamodb-table"),
    Call("dynamodb", "DescribeTable", "dynamodb-table"),
    Call("lambda", "GetFunctionConfiguration", "lambda-function"),
    Call("lambda", "GetPolicy", "lambda-function"),
    Call("cloudwatch", "DescribeAlarmsForMetric", ANY),
    Call("logs", "DescribeLogGroups", ANY),
    Call("codebuild", "BatchGetProjects", "codebuild-project"),
    Call("codepipeline", "GetPipeline", "pipeline"),
)
"""What verify reads: every call of ``toolbox/verify.py``'s checks, on the platform's resources.
A test runs verify against moto, records each call, and fails on one missing here."""

PREFLIGHT_READS: tuple[Call, ...] = (
    Call("s3", "HeadBucket", STATE, "s3:ListBucket"),
    Call("kms", "DescribeKey", "kms-key"),  # an awskms:// secrets provider's key
    Call("sts", "GetCallerIdentity", NO_PERMISSION),
    Call("ecs", "DescribeClusters", "ecs-cluster"),
    Call("ecs", "DescribeServices", "ecs-service"),
    Call("iam", "GetRole", "ecs-role"),
    Call("codecommit", "GetRepository", "codecommit-repository"),
    Call("codeconnections", "GetConnection", "connection"),
    Call("codestar-connections", "GetConnection", "codestar-connection"),
    Call("secretsmanager", "DescribeSecret", "secret"),  # the GitHub token
    Call("secretsmanager", "GetSecretValue", "secret"),
    # With reserveConcurrency: the account's limit, and what the layer's functions reserve.
    Call("lambda", "GetAccountSettings", ANY),
    Call("lambda", "GetFunctionConcurrency", "lambda-function"),
)
"""What the preflight reads (``toolbox/preflight.py``, before preview, deploy, refresh and destroy,
and the token check a deploy makes before the pipeline layer): the state bucket, the secrets
provider's key, the account, and what the pipeline layer points at but does not create."""

USAGE_SCOPES = {"ecr": "ecr-every-repository"}
"""The scope of a quota's usage call (:data:`toolbox.quotas.QUOTAS`) when the SAR gives it a
resource type: ECR's DescribeRepositories lists the account's repositories, not only the
platform's; every other usage call has none (``operator_access.yaml``, ``unscoped``)."""

QUOTA_READS: tuple[Call, ...] = (
    Call("service-quotas", "GetServiceQuota", "service-quota", "servicequotas:GetServiceQuota"),
    Call(
        "service-quotas",
        "GetAWSDefaultServiceQuota",
        ANY,
        "servicequotas:GetAWSDefaultServiceQuota",
    ),
    *(
        Call(quota.usage.service, quota.usage.action, USAGE_SCOPES.get(quota.usage.service, ANY))
        for quota in QUOTAS
    ),
)
"""What the preflight's ``quotas`` check reads (``toolbox/quotas.py``): each quota's applied
value (or AWS's default), and the account's usage of it. The check runs before a deploy and by
``./dev preflight``, not before a preview: only the deploy role needs these."""

TOOLBOX_READS: dict[str, tuple[Call, ...]] = {
    DEPLOY: VERIFY_READS + PREFLIGHT_READS + QUOTA_READS,
    PREVIEW: PREFLIGHT_READS,
    DRIFT: (),
}
"""Per role, the toolbox calls it makes. CI's deploy role (``AWS_ROLE_ARN``) runs ``./dev deploy``
then ``./dev verify`` (Deploy), so the preflight and verify; the preview role
(``PREVIEW_ROLE_ARN``) runs ``./dev preview`` (Build), so the preflight; the drift role
(``DRIFT_ROLE_ARN``) runs only ``./dev drift``, which runs neither."""

_CALLS_ELSEWHERE = {
    NO_PERMISSION: "STS GetCallerIdentity needs no permission (STS API reference)",
    STATE: "the StateBucket statement grants s3:ListBucket on the backend's bucket",
}


def toolbox_grants(role: str) -> list[Grant]:
    """The grants of the calls ``role`` makes through the toolbox (:data:`TOOLBOX_READS`)."""
    return [
        Grant((call.iam_action,), (call.on,))
        for call in TOOLBOX_READS[role]
        if call.on not in _CALLS_ELSEWHERE
    ]


@dataclass(frozen=True)
class Outside:
    """What the pipeline layer points at but does not create, as ARNs: the preflight reads each."""

    ecs_clusters: tuple[str, ...]
    ecs_services: tuple[str, ...]
    ecs_roles: tuple[str, ...]
    """The task roles and task execution roles."""
    codecommit_repositories: tuple[str, ...] = ()
    """The mirrors whose pushes start a pipeline (of the services with the CodeCommit trigger)."""
    connections: tuple[str, ...] = ()
    """The CodeConnections (or codestar-connections) ARNs of the services that use one."""

    def scopes(self) -> dict[str, tuple[str, ...]]:
        """The scopes of :data:`PREFLIGHT_READS` these ARNs fill (an empty one grants nothing)."""

        def of(service: str) -> tuple[str, ...]:
            return tuple(arn for arn in self.connections if arn.split(":")[2] == service)

        return {
            "ecs-cluster": self.ecs_clusters,
            "ecs-service": self.ecs_services,
            "ecs-role": self.ecs_roles,
            "codecommit-repository": self.codecommit_repositories,
            "connection": of("codeconnections"),
            "codestar-connection": of("codestar-connections"),
        }


def outside_of(args: Any) -> Outside:
    """The :class:`Outside` of the pipeline layer's config (a ``LayerArgs``: every service's
    pipeline), under the same conditions the preflight checks each one; each ARN once."""

    def each(arns: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted(set(filter(None, arns))))

    pipelines = args.pipelines
    return Outside(
        ecs_clusters=each(p.ecs_cluster_arn for p in pipelines),
        ecs_services=each(
            p.arn("ecs", f"service/{p.ecs_cluster}/{p.ecs_service}") for p in pipelines
        ),
        ecs_roles=each(arn for p in pipelines for arn in p.ecs_role_arns),
        codecommit_repositories=each(
            p.codecommit_repository_arn for p in pipelines if p.source.codecommit_trigger
        ),
        connections=each(
            p.connection_arn for p in pipelines if p.source_provider == "codeconnections"
        ),
    )


def scopes(
    platform: Platform,
    secret_values: Iterable[str] | None = None,
    outside: Outside | None = None,
) -> dict[str, tuple[str, ...]]:
    """The ARN patterns of each scope: the platform's names in its account and Region.

    Every physical name starts with ``<namespace>-`` (``shared.naming.Label``); KMS keys are
    named by a generated id, so the key scope is every key of the account and Region, and the
    key policy (foundation) confines who may use it. ``secret_values`` are the secrets whose
    value a stack manages (:func:`managed_secrets`); without them, every platform secret.
    ``outside`` adds what the pipeline layer points at (the preflight's reads).
    """
    part, region, account, ns = PARTITION, platform.region, platform.account_id, platform.namespace
    here = f"{region}:{account}"
    every_secret = f"arn:{part}:secretsmanager:{here}:secret:{ns}-*"
    return {
        "secret-value": (every_secret,) if secret_values is None else tuple(secret_values),
        ANY: ("*",),
        "kms-key": (f"arn:{part}:kms:{here}:key/*",),
        "kms-alias": (f"arn:{part}:kms:{here}:alias/{ns}-*",),
        "s3-bucket": (f"arn:{part}:s3:::{ns}-*",),
        "s3-object": (f"arn:{part}:s3:::{ns}-*/*",),
        "secret": (every_secret,),
        "sns-topic": (f"arn:{part}:sns:{here}:{ns}-*",),
        "dynamodb-table": (f"arn:{part}:dynamodb:{here}:table/{ns}-*",),
        "ecr-repository": (f"arn:{part}:ecr:{here}:repository/{ns}-*",),
        "iam-role": (f"arn:{part}:iam::{account}:role/{ns}-*",),
        "codebuild-project": (f"arn:{part}:codebuild:{here}:project/{ns}-*",),
        "codebuild-report-group": (f"arn:{part}:codebuild:{here}:report-group/{ns}-*",),
        # A service's pipeline is <service>-<namespace>-<env> (stacks/pipeline/names.py: the
        # service first, for its artifact folder); <namespace>-* is the one-application name an
        # upgrade deletes.
        "pipeline": (
            f"arn:{part}:codepipeline:{here}:*-{ns}-{platform.environment}",
            f"arn:{part}:codepipeline:{here}:{ns}-*",
        ),
        "webhook": (f"arn:{part}:codepipeline:{here}:webhook:{ns}-*",),
        "events-rule": (f"arn:{part}:events:{here}:rule/{ns}-*",),
        "log-group": (
            f"arn:{part}:logs:{here}:log-group:/aws/codebuild/{ns}-*",
            f"arn:{part}:logs:{here}:log-group:/aws/lambda/{ns}-*",
        ),
        "alarm": (f"arn:{part}:cloudwatch:{here}:alarm:{ns}-*",),
        "lambda-function": (f"arn:{part}:lambda:{here}:function:{ns}-*",),
        "sqs-queue": (f"arn:{part}:sqs:{here}:{ns}-*",),
        # The quota check reads each quota and counts the account's repositories (QUOTA_READS).
        "service-quota": tuple(
            f"arn:{part}:servicequotas:{quota.region(region)}:{account}:"
            f"{quota.service_code}/{quota.quota_code}"
            for quota in QUOTAS
        ),
        "ecr-every-repository": (f"arn:{part}:ecr:{here}:repository/*",),
        **(outside.scopes() if outside else {}),
    }


# -- the state backend --------------------------------------------------------------------------


@dataclass(frozen=True)
class StateBucket:
    """Where an S3 backend keeps the stacks: ``s3://<bucket>/<prefix>``."""

    bucket: str
    prefix: str

    @property
    def bucket_arn(self) -> str:
        return f"arn:{PARTITION}:s3:::{self.bucket}"

    def objects(self, below: str = "") -> str:
        """The ARN of the objects under the prefix (and ``below`` it)."""
        path = "/".join(part for part in (self.prefix, below) if part)
        return f"{self.bucket_arn}/{path}/*" if path else f"{self.bucket_arn}/*"


def state_bucket(backend_url: str) -> StateBucket | None:
    """The S3 bucket and prefix of ``PULUMI_BACKEND_URL``; None for a file or Pulumi Cloud one."""
    parsed = urlparse(backend_url)
    if parsed.scheme != "s3" or not parsed.netloc:
        return None
    return StateBucket(parsed.netloc, parsed.path.strip("/"))


def _state_statements(role: str, state: StateBucket) -> list[Statement]:
    """The state backend's statements: the deploy role reads and writes the stacks; the drift
    role reads them and writes its lock (a refresh locks the stack); the preview role only reads
    them, as ``pulumi preview`` takes no lock and writes no checkpoint or history on a DIY backend
    (pulumi/pulumi ``pkg/backend/diy/backend.go``: ``Preview`` applies with ``DryRun`` and no
    ``Lock``, unlike ``Update``, ``Refresh`` and ``Destroy``; pulumi/pulumi#8642, "Allow preview
    on locked stack")."""
    bucket = Statement(
        "StateBucket", ("s3:GetBucketLocation", "s3:ListBucket"), (state.bucket_arn,)
    )
    if role == DEPLOY:
        return [
            bucket,
            Statement(
                "StateReadWrite",
                ("s3:DeleteObject", "s3:GetObject", "s3:PutObject"),
                (state.objects(),),
            ),
        ]
    read = Statement("StateRead", ("s3:GetObject",), (state.objects(),))
    if role == PREVIEW:
        return [bucket, read]
    return [
        bucket,
        read,
        Statement("StateLockOnly", STATE_LOCK_ACTIONS, (state.objects(".pulumi/locks"),)),
    ]


# -- assembling a role's policy -----------------------------------------------------------------


def _sid(scope_names: Iterable[str], conditions: Iterable[Condition]) -> str:
    """A statement id from its scopes and conditions, e.g. ``KmsKeyViaSecretsmanager``."""
    words = ["Unscoped" if name == ANY else name.title().replace("-", "") for name in scope_names]
    for condition in conditions:
        if condition.variable == "kms:ViaService":
            words += ["Via", *(str(value).split(".")[0].title() for value in condition.values)]
        else:
            words.append(condition.variable.split(":")[-1].replace("AWS", "Aws"))
    return "".join(words)


def _resolve(condition: Condition, platform: Platform) -> Condition:
    values = tuple(str(value).replace("{region}", platform.region) for value in condition.values)
    return Condition(condition.test, condition.variable, values)


def uncovered(types: Iterable[str]) -> list[str]:
    """The resource types without an entry in :data:`ACCESS`, sorted (a test fails on any)."""
    return sorted(set(types) - set(ACCESS))


def grants_of(role: str, types: Iterable[str] | None = None) -> list[Grant]:
    """The grants ``role`` needs for ``types`` (every type in :data:`ACCESS` by default).

    The preview role gets the invokes' reads and no resource's: ``./dev preview`` runs
    ``pulumi preview`` without ``--refresh`` (``toolbox/automation.py``), which diffs the program
    against the state and calls no provider Read; the programs' invokes are the AWS calls it makes.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    grants: list[Grant] = []
    chosen: Iterable[str] = () if role == PREVIEW else ACCESS if types is None else types
    for type_ in sorted(set(chosen)):
        entry = ACCESS[type_]
        if isinstance(entry, NoAws):
            continue
        grants += entry.read
        if role == DEPLOY:
            grants += entry.write
    if role in (DEPLOY, PREVIEW):
        for invoke in INVOKES.values():
            if isinstance(invoke, Access):
                grants += invoke.read
    return grants


def passed_roles(plans: Iterable[Any], platform: Platform | None = None) -> dict[str, list[str]]:
    """Per service principal, the role ARNs the plans hand to it (``passes_role`` inputs).

    With ``platform``, a role of one of its services (``<ns>-pipeline-<service>-<duty>-<env>``)
    is named by its duty for every service (``<ns>-pipeline-*-<duty>-<env>``): one ARN a duty
    however many services there are, where naming each would outgrow the 20 managed policies a
    role may have at about 90 services (tests/test_scale.py). It grants nothing the deploy role
    lacks: that role may create, and write the policy of, any role named so anyway; the pattern
    still ends in the duty and the environment, and ``iam:PassedToService`` still pairs each
    duty with its one AWS service.
    """
    passed: dict[str, set[str]] = {}
    for plan in plans:
        for resource in plan.resources:
            entry = ACCESS.get(resource.type)
            if not isinstance(entry, Access) or entry.passes_role is None:
                continue
            key, service = entry.passes_role
            arn = resource.inputs.get(key)
            if isinstance(arn, str) and arn:
                passed.setdefault(service, set()).add(_by_duty(arn, platform))
    return {service: sorted(arns) for service, arns in sorted(passed.items())}


def _by_duty(arn: str, platform: Platform | None) -> str:
    """``arn`` with its service's name replaced by ``*``, when it is one of ``platform``'s."""
    if platform is None:
        return arn
    prefix, _, name = arn.partition(":role/")
    for service in platform.services:
        start = f"{platform.namespace}-pipeline-{service.name}-"
        if name.startswith(start):
            return f"{prefix}:role/{platform.namespace}-pipeline-*-{name[len(start) :]}"
    return arn


_SECRET_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")


def managed_secrets(plans: Iterable[Any]) -> list[str]:
    """The secrets whose value the plans manage (``SecretVersion``), as ARN patterns.

    Secrets Manager ends a secret's ARN with ``-`` and six random characters, unknown before it
    is created, so the pattern ends with ``-??????`` (Secrets Manager: "ARN of a secret").
    """
    secrets = set()
    for plan in plans:
        for resource in plan.resources:
            if resource.type == "aws:secretsmanager/secretVersion:SecretVersion":
                secrets.add(_SECRET_SUFFIX.sub("", resource.inputs["secretId"]) + "-??????")
    return sorted(secrets)


def policy(
    role: str,
    platform: Platform,
    *,
    passed: Mapping[str, Iterable[str]] | None = None,
    state: StateBucket | None = None,
    secret_values: Iterable[str] | None = None,
    outside: Outside | None = None,
) -> dict[str, Any]:
    """The IAM policy document of ``role`` for one environment.

    The deploy and drift roles cover every type in :data:`ACCESS`, not only the environment's
    current plan: a refresh reads what the state holds (which may predate a config change) and a
    deploy must delete what a config change drops (the GitHub webhook when ``sourceProvider``
    changes); the preview role reads no resource (:func:`grants_of`).
    Besides, each role may make the toolbox's own calls it runs (:data:`TOOLBOX_READS`: what
    verify and the preflight read), on the platform's resources and on ``outside``'s.
    """
    arns = scopes(platform, secret_values, outside)
    merged: dict[tuple[tuple[str, ...], tuple[Condition, ...]], set[str]] = {}
    for grant in grants_of(role) + toolbox_grants(role):
        merged.setdefault((grant.on, grant.conditions), set()).update(grant.actions)
    statements = _state_statements(role, state) if state else []
    for (on, conditions), actions in sorted(merged.items(), key=lambda item: _sid(*item[0])):
        if ANY in on:
            extra = sorted(actions - set(UNSCOPED))
            if extra:
                raise ValueError(f"Resource '*' for {extra}, which are not in UNSCOPED")
        resources = [arn for name in on for arn in arns.get(name, ())]
        if not resources:  # a scope this environment does not use (no connection, no mirror)
            continue
        statements.append(
            Statement(
                _sid(on, conditions),
                tuple(sorted(actions)),
                tuple(resources),
                conditions=tuple(_resolve(c, platform) for c in conditions),
            )
        )
    if role == DEPLOY:
        for service, roles in (passed or {}).items():
            statements.append(
                Statement(
                    "PassRoleTo" + service.split(".")[0].title(),
                    ("iam:PassRole",),
                    tuple(roles),
                    conditions=(Condition("StringEquals", "iam:PassedToService", (service,)),),
                )
            )
    return {"Version": VERSION, "Statement": [s.to_dict() for s in statements]}


def for_environment(
    environment: str, role: str, backend_url: str = ""
) -> tuple[dict[str, Any], StateBucket | None]:
    """The policy of ``role`` in ``environment``: its plan, its settings, the state backend."""
    from shared.settings import load_platform
    from toolbox.plancache import plan_all

    if role not in ROLES:
        raise ValueError(f"--role must be one of {', '.join(ROLES)}, not {role!r}")
    platform = load_platform(environment)
    # The preview role's grants name no planned resource: it needs no plan.
    plans = [] if role == PREVIEW else list(plan_all(environment, reuse="all").values())
    passed = passed_roles(plans, platform) if role == DEPLOY else {}
    state = state_bucket(backend_url)
    # Only the drift role is confined to the managed secret values: the deploy role may update
    # any platform secret anyway (UpdateSecret sets a value), and its program reads the token.
    secret_values = managed_secrets(plans) if role == DRIFT else None
    outside = None
    if TOOLBOX_READS[role]:
        from toolbox.layer_config import read_pipeline_args

        outside = outside_of(read_pipeline_args(environment))
    document = policy(
        role,
        platform,
        passed=passed,
        state=state,
        secret_values=secret_values,
        outside=outside,
    )
    return document, state


MANAGED_POLICY_CHARACTERS = 6_144
"""IAM quota: one managed policy's size, white space not counted (IAM and AWS STS quotas)."""
MANAGED_POLICIES_PER_ROLE = 10
"""IAM quota: managed policies attached to one role, by default."""
MANAGED_POLICIES_PER_ROLE_MAX = 20
"""IAM quota: managed policies attached to one role, at most (on request)."""


def characters(document: Mapping[str, Any]) -> int:
    """A policy's size as IAM counts it: the characters of its JSON that are not white space."""
    return sum(not c.isspace() for c in json.dumps(document, separators=(",", ":")))


def _fitting(statement: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    """``statement`` alone if a policy of it fits ``limit``, else split by its resources."""
    resources = statement.get("Resource", [])
    if characters({"Version": VERSION, "Statement": [statement]}) <= limit:
        return [statement]
    if isinstance(resources, str) or len(resources) < 2:
        raise ValueError(f"statement {statement['Sid']} alone is more than {limit} characters")
    half = len(resources) // 2
    pieces = [
        *_fitting({**statement, "Resource": resources[:half]}, limit),
        *_fitting({**statement, "Resource": resources[half:]}, limit),
    ]
    return [{**piece, "Sid": f"{statement['Sid']}{n}"} for n, piece in enumerate(pieces, 1)]


def managed_policies(
    document: Mapping[str, Any],
    most: int = MANAGED_POLICIES_PER_ROLE,
    limit: int = MANAGED_POLICY_CHARACTERS,
) -> list[dict[str, Any]]:
    """``document`` as at most ``most`` managed policies of ``limit`` characters each, in order.

    A role's inline policies may total 10,240 characters, which the deploy role outgrows with a
    handful of services (each adds a role to its ``iam:PassRole`` statement); a role may have 10
    managed policies of 6,144 characters each. Statements are kept whole and in order, one part
    filled before the next; a statement too large for one part is split by its resources.
    """
    parts: list[list[dict[str, Any]]] = [[]]
    for whole in document["Statement"]:
        for statement in _fitting(whole, limit):
            trial = {"Version": VERSION, "Statement": [*parts[-1], statement]}
            if parts[-1] and characters(trial) > limit:
                parts.append([])
            parts[-1].append(statement)
    if len(parts) > most:
        raise ValueError(
            f"the policy needs {len(parts)} managed policies of {limit} characters, more than"
            f" --max-policies {most} (IAM attaches {MANAGED_POLICIES_PER_ROLE} to a role by"
            f" default): ask AWS for a higher 'Managed policies per role' quota (at most"
            f" {MANAGED_POLICIES_PER_ROLE_MAX}) and"
            f" pass --max-policies {len(parts)}"
        )
    return [{"Version": VERSION, "Statement": part} for part in parts]


def write_managed_policies(
    folder: Path, prefix: str, parts: list[dict[str, Any]], environment: str
) -> str:
    """Write ``parts`` as PREFIX-N.json in ``folder`` (replacing a former run's); the next steps.

    The files of a former run with more parts are removed, so the folder never holds a part
    that is no longer part of the policy.
    """
    from shared.settings import load_platform

    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f"{prefix}-*.json"):
        stale.unlink()
    account = load_platform(environment).account_id
    lines = [f"wrote {len(parts)} managed polic{'y' if len(parts) == 1 else 'ies'} to {folder}:"]
    commands = []
    for number, part in enumerate(parts, 1):
        name = f"{prefix}-{number}"
        path = folder / f"{name}.json"
        path.write_text(render(part) + "\n", encoding="utf-8")
        lines.append(f"  {path} ({characters(part):,} characters)")
        commands += [
            f"aws iam create-policy --policy-name {name} --policy-document file://{path}",
            f"aws iam attach-role-policy --role-name ROLE"
            f" --policy-arn arn:{PARTITION}:iam::{account}:policy/{name}",
        ]
    lines += [
        "create and attach each to the role (ROLE: its name); to update one, `aws iam"
        " create-policy-version --policy-arn ARN --policy-document file://PATH --set-as-default`:",
        *commands,
    ]
    return "\n".join(lines)


def render(document: Mapping[str, Any]) -> str:
    """The policy as the JSON to paste or pass to ``aws iam put-role-policy``."""
    return json.dumps(document, indent=2)

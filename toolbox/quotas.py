"""The account's quotas that many services reach, checked against what the offline plan creates.

Each service of a company adds a pipeline, its build projects, its rules on the default event
bus, a repository, log groups and roles; a hundred of them reach AWS's per-Region (and, for IAM,
per-account) quotas. The preflight counts what the plan creates, by Pulumi resource type
(:func:`needed`), so the count holds whatever shape the layers take; then, per quota, it reads
the account's applied value from Service Quotas and the account's current usage from the
service's own list call, and names each quota the deploy would exceed (:func:`check`).

What the plan names is not counted twice: a resource already in the account under a name the
plan gives it is the plan's own (a redeploy), so usage counts only the others.

Quota codes come from Service Quotas (``ListAWSDefaultServiceQuotas``) and each service's quota
page in the AWS documentation, linked per quota below; docs/operations.md has the table. The
defaults are on those pages and in each account; none is written here, since the check reads
the account's value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

GLOBAL_REGION = "us-east-1"
"""Where Service Quotas answers for a global service's quotas (IAM) in the aws partition: the
Service Quotas user guide, and terraform-provider-aws's servicequotas docs ("Global quotas ...
can only be accessed in us-east-1")."""

DEFAULT_BUS = "default"
"""The bus of a rule that names none (EventBridge PutRule: ``EventBusName`` defaults to it)."""

DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation")
"""The error codes AWS answers a call the caller's policies do not allow with."""


@dataclass(frozen=True)
class Usage:
    """How to count what the account already has: one paginated list call."""

    service: str
    """The boto3 client."""
    operation: str
    """The paginated operation, as boto3 names the method (``list_pipelines``)."""
    items: str
    """The answer's list of resources."""
    name: str | None
    """The name of each item, or None when the items are the names."""
    action: str
    """The IAM action the call needs (named in a refusal)."""
    bus_parameter: str | None = None
    """The parameter the quota's scope (an event bus) is passed in, if any."""


@dataclass(frozen=True)
class Quota:
    """One quota: Service Quotas' codes, the resource type the plan counts, where AWS states it."""

    title: str
    """What it limits, as a line names it."""
    service_code: str
    """Service Quotas' service code."""
    quota_code: str
    """Service Quotas' quota code."""
    resource_type: str
    """The Pulumi type token of the resources that count against it."""
    docs: str
    """The AWS page that states the default."""
    usage: Usage
    per_bus: bool = False
    """Counted per event bus (the rule's ``eventBusName``, the default bus when absent)."""
    global_quota: bool = False
    """Account-wide (IAM): Service Quotas answers in :data:`GLOBAL_REGION`."""

    def region(self, region: str) -> str:
        """Where Service Quotas answers for this quota."""
        return GLOBAL_REGION if self.global_quota else region


QUOTAS: tuple[Quota, ...] = (
    Quota(
        title="CodePipeline pipelines per Region",
        service_code="codepipeline",
        quota_code="L-78D200AD",  # "Total pipelines"
        resource_type="aws:codepipeline/pipeline:Pipeline",
        docs="https://docs.aws.amazon.com/codepipeline/latest/userguide/limits.html",
        usage=Usage("codepipeline", "list_pipelines", "pipelines", "name", "ListPipelines"),
    ),
    Quota(
        title="CodeBuild build projects per Region",
        service_code="codebuild",
        quota_code="L-ACCF6C0D",  # "Build projects"
        resource_type="aws:codebuild/project:Project",
        docs="https://docs.aws.amazon.com/codebuild/latest/userguide/limits.html",
        usage=Usage("codebuild", "list_projects", "projects", None, "ListProjects"),
    ),
    Quota(
        title="EventBridge rules per event bus",
        service_code="events",
        quota_code="L-244521F2",  # "Number of rules": "rules an account can have per event bus"
        resource_type="aws:cloudwatch/eventRule:EventRule",
        docs="https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html",
        usage=Usage("events", "list_rules", "Rules", "Name", "ListRules", "EventBusName"),
        per_bus=True,
    ),
    Quota(
        title="ECR repositories per Region",
        service_code="ecr",
        quota_code="L-CFEB8E8D",  # "Registered repositories"
        resource_type="aws:ecr/repository:Repository",
        docs="https://docs.aws.amazon.com/AmazonECR/latest/userguide/service-quotas.html",
        usage=Usage(
            "ecr", "describe_repositories", "repositories", "repositoryName", "DescribeRepositories"
        ),
    ),
    Quota(
        title="CloudWatch Logs log groups per Region",
        service_code="logs",
        quota_code="L-C7B9AAAB",  # "Log groups"
        resource_type="aws:cloudwatch/logGroup:LogGroup",
        docs="https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/cloudwatch_limits_cwl.html",
        usage=Usage(
            "logs", "describe_log_groups", "logGroups", "logGroupName", "DescribeLogGroups"
        ),
    ),
    Quota(
        title="IAM roles per account",
        service_code="iam",
        quota_code="L-FE177D64",  # "Roles per account"
        resource_type="aws:iam/role:Role",
        docs="https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html",
        usage=Usage("iam", "list_roles", "Roles", "RoleName", "ListRoles"),
        global_quota=True,
    ),
)
"""The quotas a platform of many services reaches. Lambda's concurrency has its own check
(``lambda-concurrency``); Lambda has no quota on the number of functions."""


class Planned(Protocol):
    """What the count reads of a planned resource (:class:`toolbox.offline.PlannedResource`)."""

    @property
    def type(self) -> str: ...

    @property
    def inputs(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Demand:
    """A quota in one scope: the Region (or account), or one event bus for a per-bus quota."""

    quota: Quota
    scope: str = ""
    """The event bus's name for a per-bus quota; empty otherwise."""

    def describe(self) -> str:
        """The quota as a line names it, with its bus."""
        where = f" (bus {self.scope})" if self.scope else ""
        return f"{self.quota.title}{where}"


def _bus(inputs: Mapping[str, Any]) -> str:
    """The bus a rule is on: a name, or the name in a bus ARN (``...:event-bus/NAME``)."""
    bus = inputs.get("eventBusName")
    if not isinstance(bus, str) or not bus:
        return DEFAULT_BUS
    return bus.rsplit("event-bus/", 1)[-1] if bus.startswith("arn:") else bus


def _demand(quota: Quota, inputs: Mapping[str, Any]) -> Demand:
    return Demand(quota, _bus(inputs) if quota.per_bus else "")


def names(resources: Iterable[Planned]) -> dict[Demand, set[str]]:
    """Per demand, the names the plan gives its resources (a resource with no literal name,
    one the provider generates, is counted by :func:`needed` but can match nothing)."""
    by_type = {quota.resource_type: quota for quota in QUOTAS}
    found: dict[Demand, set[str]] = {}
    for resource in resources:
        quota = by_type.get(resource.type)
        if quota is None:
            continue
        named = found.setdefault(_demand(quota, resource.inputs), set())
        name = resource.inputs.get("name")
        if isinstance(name, str) and name:
            named.add(name)
    return found


def needed(resources: Iterable[Planned]) -> dict[Demand, int]:
    """Per quota (and per bus for a per-bus quota), how many resources the plan creates."""
    by_type = {quota.resource_type: quota for quota in QUOTAS}
    counts: dict[Demand, int] = {}
    for resource in resources:
        quota = by_type.get(resource.type)
        if quota is not None:
            demand = _demand(quota, resource.inputs)
            counts[demand] = counts.get(demand, 0) + 1
    return counts


def increase_command(quota: Quota, desired: int, region: str) -> str:
    """The AWS CLI command that asks for ``desired``."""
    return (
        "aws service-quotas request-service-quota-increase"
        f" --service-code {quota.service_code} --quota-code {quota.quota_code}"
        f" --desired-value {desired} --region {quota.region(region)}"
    )


@dataclass(frozen=True)
class Finding:
    """One quota the deploy would exceed, or one that could not be read."""

    demand: Demand
    detail: str
    exceeded: bool = True
    """False when the limit or the usage could not be read (``detail`` says why)."""


@dataclass(frozen=True)
class Room:
    """One quota with room for the plan."""

    demand: Demand
    limit: int
    in_use: int
    adds: int


Clients = Callable[[str, str], Any]
"""A boto3 client for ``(service, region)``."""


class QuotaReadError(Exception):
    """A limit or a usage could not be read; the message is the line."""


def _refusal(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _error(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
    return str(exc)


def limit_of(quota: Quota, clients: Clients, region: str) -> int:
    """The account's applied value of ``quota``; AWS's default when no value is applied
    (GetServiceQuota answers NoSuchResourceException for a quota "whose applied value is not
    available": botocore's service-quotas model)."""
    client = clients("service-quotas", quota.region(region))
    codes = {"ServiceCode": quota.service_code, "QuotaCode": quota.quota_code}
    action = "servicequotas:GetServiceQuota"
    try:
        try:
            found = client.get_service_quota(**codes)
        except ClientError as exc:
            if _refusal(exc) != "NoSuchResourceException":
                raise
            action = "servicequotas:GetAWSDefaultServiceQuota"
            found = client.get_aws_default_service_quota(**codes)
    except ClientError as exc:
        raise QuotaReadError(_read_failure(quota, action, exc)) from None
    except BotoCoreError as exc:
        raise QuotaReadError(f"Service Quotas cannot be reached ({_error(exc)})") from None
    return int(found["Quota"]["Value"])


def in_use(demand: Demand, clients: Clients, region: str) -> set[str]:
    """The names of the resources of ``demand``'s kind the account has (every page read)."""
    usage = demand.quota.usage
    extra = {usage.bus_parameter: demand.scope} if usage.bus_parameter else {}
    client = clients(usage.service, region)
    found: set[str] = set()
    try:
        for page in client.get_paginator(usage.operation).paginate(**extra):
            for item in page.get(usage.items, []):
                found.add(str(item if usage.name is None else item[usage.name]))
    except ClientError as exc:
        raise QuotaReadError(
            _read_failure(demand.quota, f"{usage.service}:{usage.action}", exc)
        ) from None
    except BotoCoreError as exc:
        raise QuotaReadError(f"{usage.service} cannot be reached ({_error(exc)})") from None
    return found


def _read_failure(quota: Quota, action: str, exc: ClientError) -> str:
    if _refusal(exc) in DENIED:
        return (
            f"the caller may not read it: {action} was refused ({_error(exc)}); attach the"
            " policy of `./dev operator-policy --role deploy`, which holds it"
        )
    return f"{action} failed ({_error(exc)})"


def check(
    resources: Iterable[Planned], clients: Clients, region: str
) -> tuple[list[Room], list[Finding]]:
    """Each quota the plan draws on: the room left, or why the deploy would not fit.

    A quota is exceeded when the account's resources the plan does not name, plus every resource
    the plan creates, are more than the applied value.
    """
    planned = list(resources)
    wanted = needed(planned)
    named = names(planned)
    limits: dict[Quota, int] = {}
    rooms: list[Room] = []
    findings: list[Finding] = []
    for demand in sorted(wanted, key=lambda d: (QUOTAS.index(d.quota), d.scope)):
        adds = wanted[demand]
        try:
            if demand.quota not in limits:
                limits[demand.quota] = limit_of(demand.quota, clients, region)
            limit = limits[demand.quota]
            others = len(in_use(demand, clients, region) - named.get(demand, set()))
        except QuotaReadError as exc:
            findings.append(Finding(demand, f"{_named(demand)}: {exc}", exceeded=False))
            continue
        if others + adds <= limit:
            rooms.append(Room(demand, limit, others, adds))
            continue
        findings.append(
            Finding(
                demand,
                f"{_named(demand)}: limit {limit}, {others} in use besides this plan's,"
                f" the plan adds {adds}: {others + adds} needed; request them"
                f" (`{increase_command(demand.quota, others + adds, region)}`), see"
                f" {demand.quota.docs}",
            )
        )
    return rooms, findings


def _named(demand: Demand) -> str:
    quota = demand.quota
    return f"{demand.describe()} ({quota.service_code} {quota.quota_code})"


def summary(rooms: Sequence[Room]) -> str:
    """One line: each quota's limit, what else uses it, and what the plan adds."""
    return "; ".join(
        f"{room.demand.describe()} {room.in_use}+{room.adds} of {room.limit}" for room in rooms
    )


__all__ = [
    "DEFAULT_BUS",
    "GLOBAL_REGION",
    "QUOTAS",
    "Demand",
    "Finding",
    "Quota",
    "QuotaReadError",
    "Room",
    "Usage",
    "check",
    "in_use",
    "increase_command",
    "limit_of",
    "names",
    "needed",
    "summary",
]

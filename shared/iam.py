"""Typed builders for IAM policy documents, and the one allow-list of wildcard resources.

Policies are built from the ARNs of the resources they guard (Outputs welcome) and serialised by
Pulumi, never assembled as JSON strings. A statement with ``Resource: "*"`` is refused at build
time unless every action in it is in :data:`WILDCARD_ALLOWED`, where each entry says why AWS
allows nothing narrower; a test and the policy pack check the whole plan against the same list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

VERSION = "2012-10-17"

WILDCARD_ALLOWED: dict[str, str] = {
    "ecr:GetAuthorizationToken": "ECR auth tokens are account-wide: the action has no resource.",
    "ecs:DescribeTaskDefinition": "ECS does not support resource-level permissions for it.",
    "ecs:ListTasks": (
        "its only resource type is container-instance, which Fargate tasks have none of;"
        " the ecs:cluster condition confines it to one cluster instead."
    ),
    "codepipeline:PutJobSuccessResult": (
        "job results name a job id, not a resource: the Service Authorization Reference lists"
        " no resource type for it."
    ),
    "codepipeline:PutJobFailureResult": (
        "job results name a job id, not a resource: the Service Authorization Reference lists"
        " no resource type for it."
    ),
    "inspector2:ListFindings": (
        "enhanced-scanning findings are read from Amazon Inspector, whose ListFindings has no"
        " resource type in the Service Authorization Reference."
    ),
    "inspector2:ListCoverage": (
        "Amazon Inspector's ListCoverage (which ECR's enhanced-scanning policy grants beside"
        " ListFindings) has no resource type in the Service Authorization Reference."
    ),
}
"""Actions that may be granted on ``Resource: "*"``, each with the reason AWS forces it."""

KEY_POLICY_WILDCARD_REASON = (
    'in a KMS key policy, Resource "*" means the key the policy is attached to, and nothing else'
)


@dataclass(frozen=True)
class Condition:
    """One IAM condition: ``{test: {variable: values}}``."""

    test: str
    variable: str
    values: Sequence[pulumi.Input[str]]


@dataclass(frozen=True)
class Statement:
    """One IAM policy statement."""

    sid: str
    actions: Sequence[str]
    resources: Sequence[pulumi.Input[str]] = ()
    effect: str = "Allow"
    principals: Mapping[str, Sequence[pulumi.Input[str]]] = field(default_factory=dict)
    """``{"Service": [...]}``, ``{"AWS": [...]}``; empty for identity policies."""
    conditions: Sequence[Condition] = ()

    def to_dict(self) -> dict[str, Any]:
        """The statement as IAM JSON (Outputs left for Pulumi to resolve)."""
        body: dict[str, Any] = {"Sid": self.sid, "Effect": self.effect}
        if self.principals:
            body["Principal"] = {kind: list(values) for kind, values in self.principals.items()}
        body["Action"] = sorted(self.actions)
        if self.resources:
            body["Resource"] = list(self.resources)
        if self.conditions:
            grouped: dict[str, dict[str, list[Any]]] = {}
            for condition in self.conditions:
                grouped.setdefault(condition.test, {})[condition.variable] = list(condition.values)
            body["Condition"] = grouped
        return body


class WildcardError(ValueError):
    """A ``*`` resource or action that the allow-list does not name."""


def _check(statements: Sequence[Statement], *, key_policy: bool) -> None:
    for statement in statements:
        if statement.effect != "Allow":
            continue  # a Deny is as wide as it needs to be; only grants are least-privilege
        if any(action == "*" or action.endswith(":*") for action in statement.actions):
            raise WildcardError(
                f"statement {statement.sid}: wildcard action in {list(statement.actions)}"
            )
        if "*" in statement.resources and not key_policy:
            extra = sorted(set(statement.actions) - set(WILDCARD_ALLOWED))
            if extra:
                raise WildcardError(
                    f"statement {statement.sid}: Resource '*' for {extra}, which are not in"
                    " shared.iam.WILDCARD_ALLOWED; name the resources' ARNs instead"
                )


def document(*statements: Statement) -> pulumi.Output[str]:
    """An identity or resource policy as JSON; wildcards only as the allow-list permits."""
    _check(statements, key_policy=False)
    return pulumi.Output.json_dumps(
        {"Version": VERSION, "Statement": [s.to_dict() for s in statements]}
    )


def key_policy(*statements: Statement) -> pulumi.Output[str]:
    """A KMS key policy, where ``Resource: "*"`` is the key itself."""
    _check(statements, key_policy=True)
    return pulumi.Output.json_dumps(
        {"Version": VERSION, "Statement": [s.to_dict() for s in statements]}
    )


SOURCE_KEYS = ("aws:SourceAccount", "aws:SourceArn")
"""The global keys that confine a service principal to this account's resources."""

TRUST_CONDITION_KEYS: dict[str, tuple[str, ...]] = {
    # https://docs.aws.amazon.com/codebuild/latest/userguide/cross-service-confused-deputy-prevention.html
    "codebuild.amazonaws.com": ("aws:SourceAccount", "aws:SourceArn"),
    # https://docs.aws.amazon.com/eventbridge/latest/userguide/policy-keys-eventbridge.html
    "events.amazonaws.com": ("aws:SourceAccount", "aws:SourceArn"),
    # AWS documents no source key CodePipeline presents when it assumes its service role
    # (pipelines-create-service-role-cli.html shows the trust policy without a condition); a
    # condition it does not send would make the role unusable and the pipeline fail at creation.
    "codepipeline.amazonaws.com": (),
    # The same for Lambda's execution role: lambda-intro-execution-role.html documents a trust
    # policy that names only the service principal, and no source key at role assumption.
    "lambda.amazonaws.com": (),
}
"""Per service principal, the source condition keys AWS documents at role-assumption time.

The trust policies use exactly these, and the policy rule ``iam-trust-source-conditions``
checks every trust policy against the same table (docs/iam.md has the table and the links).
"""


def trust_conditions(
    service: str, *, account_id: str, source_arns: Sequence[pulumi.Input[str]] = ()
) -> list[Condition]:
    """The documented source conditions for ``service``; a service not in the table is an error."""
    if service not in TRUST_CONDITION_KEYS:
        raise ValueError(
            f"{service} is not in shared.iam.TRUST_CONDITION_KEYS: look up which source keys AWS"
            " documents for it at role assumption and add it with the link"
        )
    keys = TRUST_CONDITION_KEYS[service]
    conditions = []
    if "aws:SourceAccount" in keys:
        conditions.append(Condition("StringEquals", "aws:SourceAccount", [account_id]))
    if "aws:SourceArn" in keys and source_arns:
        conditions.append(Condition("ArnLike", "aws:SourceArn", list(source_arns)))
    return conditions


def service_trust(
    service: str, *, account_id: str, source_arns: Sequence[pulumi.Input[str]] = ()
) -> pulumi.Output[str]:
    """A role trust policy for an AWS service, with the source conditions AWS documents for it."""
    conditions = trust_conditions(service, account_id=account_id, source_arns=source_arns)
    return document(
        Statement(
            sid="TrustService",
            actions=["sts:AssumeRole"],
            principals={"Service": [service]},
            conditions=conditions,
        )
    )


def pass_role(sid: str, role_arns: Sequence[pulumi.Input[str]], service: str) -> Statement:
    """``iam:PassRole`` on the named roles, only to ``service``."""
    return Statement(
        sid=sid,
        actions=["iam:PassRole"],
        resources=list(role_arns),
        conditions=[Condition("StringEquals", "iam:PassedToService", [service])],
    )


def arn(service: str, region: str, account_id: str, resource: str, partition: str = "aws") -> str:
    """An ARN from its parts, for resources that are referenced before they exist."""
    return f"arn:{partition}:{service}:{region}:{account_id}:{resource}"


def statements(document: Mapping[str, Any]) -> list[Any]:
    """A parsed policy document's statements (IAM allows one as an object rather than a list);
    for every reader of a plan's documents: the policy pack, the specs checks, the plan diff."""
    found = document.get("Statement")
    return as_list(found)


def as_list(value: Any) -> list[Any]:
    """The values of a policy element, which IAM allows as one value or a list (None: none)."""
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]

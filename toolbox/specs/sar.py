"""Every IAM statement against the Service Authorization Reference (SAR).

Per statement and action: the action exists (a wildcard such as ``logs:Describe*`` matches at
least one); one of the statement's Resources can name a resource of a type the SAR lists for it,
or the Resource is ``*`` and either the SAR lists no resource type for the action or the
statement is scoped by a condition key the action supports; and each condition key is global
(``aws:``) or listed for the action or one of its resource types. Per Resource: at least one of
the statement's actions applies to it (a Resource no action can use grants nothing).

A KMS key policy's ``*`` is the key itself (KMS: key policies), so it is checked as a key ARN. A
trust policy has no Resource: the role it is attached to. Exceptions are ``[sar]`` entries of
``allow.toml``, each with its reason and source.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from shared.iam import as_list, statements
from toolbox.specs.arns import intersects
from toolbox.specs.data import Sar, Service
from toolbox.specs.findings import Finding, allow_list

KEY_ITSELF = "arn:aws:kms:us-east-1:111111111111:key/00000000-0000-0000-0000-000000000000"
"""What ``*`` names in a key policy: the key the policy is attached to (any key ARN will do)."""

TRUST_INPUTS = frozenset({"assumeRolePolicy"})
KEY_TYPES = frozenset({"aws:kms/key:Key"})


@dataclass(frozen=True)
class Document:
    """One policy document of the plan (or of an operator role), and where it is."""

    layer: str
    resource: str
    kind: str
    """``identity``, ``resource``, ``key`` or ``trust``."""
    body: Mapping[str, Any]


@dataclass(frozen=True)
class Action:
    """An action of a statement, resolved in the SAR: the privileges it names (several for a
    wildcard), each with its service."""

    name: str
    privileges: tuple[tuple[Service, dict[str, Any]], ...]


def documents(layer: str, resources: Iterable[Any]) -> Iterator[Document]:
    """The policy documents among planned resources' inputs (JSON strings with a Statement),
    and Lambda permissions as the one statement each is."""
    for resource in resources:
        for key, value in resource.inputs.items():
            if not isinstance(value, str) or '"Statement"' not in value:
                continue
            try:
                body = json.loads(value)
            except ValueError:
                continue
            kind = (
                "trust"
                if key in TRUST_INPUTS
                else "key"
                if resource.type in KEY_TYPES
                else "identity"
                if resource.type.startswith("aws:iam/")
                else "resource"
            )
            yield Document(layer, resource.name, kind, body)
        if resource.type == "aws:lambda/permission:Permission":
            action = resource.inputs.get("action")
            if isinstance(action, str):
                statement = {"Sid": "permission", "Action": action}
                yield Document(layer, resource.name, "trust", {"Statement": [statement]})


def prefixes(docs: Iterable[Document]) -> set[str]:
    """The services the documents' actions name (to load only those)."""
    found: set[str] = set()
    for doc in docs:
        for statement in statements(doc.body):
            for action in _list(statement.get("Action")) + _list(statement.get("NotAction")):
                if ":" in action:
                    found.add(action.split(":", 1)[0].lower())
    return found


def _list(value: Any) -> list[str]:
    return [str(v) for v in as_list(value)]


def resolve(sar: Sar, name: str) -> Action | None:
    """The privileges ``name`` names (wildcards expanded); None for a malformed name."""
    if name == "*":
        return None
    if ":" not in name:
        return None
    prefix, rest = name.split(":", 1)
    service = sar.service(prefix)
    if service is None:
        return Action(name, ())
    if "*" in rest or "?" in rest:
        pattern = re.compile(fnmatch.translate(rest.lower()))
        matched = [p for n, p in service.privileges().items() if pattern.match(n.lower())]
        return Action(name, tuple((service, p) for p in matched))
    privilege = service.privilege(rest)
    return Action(name, ((service, privilege),) if privilege else ())


def resource_formats(service: Service, privilege: dict[str, Any]) -> dict[str, str]:
    """The ARN templates of the resource types the SAR lists for the action, by type."""
    out: dict[str, str] = {}
    for name in privilege.get("resource_types", {}):
        if name:
            arn = service.resource_arn(name.rstrip("*"))
            if arn:
                out[name.rstrip("*")] = arn
    return out


def condition_keys(service: Service, privilege: dict[str, Any]) -> list[str]:
    """Keys the SAR lists for the action, and for each of its resource types."""
    keys: list[str] = []
    for name, entry in privilege.get("resource_types", {}).items():
        keys += entry.get("condition_keys", [])
        if name:
            keys += service.resource_condition_keys(name.rstrip("*"))
    return keys


def _key_matches(key: str, template: str) -> bool:
    """Whether a condition key is the SAR's ``template`` (``${TagKey}`` and the like: any text);
    keys are case-insensitive."""
    return _key_regex(template).fullmatch(key.lower()) is not None


@cache
def _key_regex(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\$\\\{[^}]*\\\}", ".+", re.escape(template.lower())))


def _allowed(rule: str, action: str, detail: str = "") -> bool:
    entry = allow_list().get("sar", {}).get(rule, {}).get(action)
    if entry is None:
        return False
    only = entry.get("only")
    return not only or any(fnmatch.fnmatchcase(detail, pattern) for pattern in only)


def check(doc: Document, sar: Sar) -> list[Finding]:
    """The findings of one document."""
    findings: list[Finding] = []
    for number, statement in enumerate(statements(doc.body)):
        where = f"statement {statement.get('Sid') or number}"
        findings += [
            Finding("sar", doc.layer, doc.resource, where, message)
            for message in _check_statement(doc, statement, sar)
        ]
    return findings


def _check_statement(  # noqa: PLR0912 - one rule per branch, in the SAR's order
    doc: Document, statement: Mapping[str, Any], sar: Sar
) -> Iterator[str]:
    names = _list(statement.get("Action"))
    negated = bool(statement.get("NotAction"))
    names += _list(statement.get("NotAction"))
    conditions = {
        key: operator
        for operator, block in (statement.get("Condition") or {}).items()
        for key in block
    }
    resources = _list(statement.get("Resource"))
    if doc.kind == "key":
        resources = [KEY_ITSELF if r == "*" else r for r in resources]
    resolved: list[Action] = []
    for name in names:
        if name == "*":
            continue  # every action: the pack's iam-no-wildcard-action rule refuses it
        action = resolve(sar, name)
        if action is None:
            yield f"action {name!r} is not service:action (the SAR names every action so)"
            continue
        if not action.privileges:
            prefix = name.split(":", 1)[0]
            service = sar.service(prefix)
            if service is None:
                yield f"action {name!r}: the SAR has no service with the prefix {prefix!r}"
            else:
                yield f"action {name!r} does not exist (SAR: {service.url})"
            continue
        resolved.append(action)
        for key, operator in conditions.items():
            if key.lower().startswith("aws:"):
                continue
            listed = [k for s, p in action.privileges for k in condition_keys(s, p)]
            if not any(_key_matches(key, template) for template in listed):
                if _allowed("condition-key", action.name, key):
                    continue
                service = action.privileges[0][0]
                yield (
                    f"condition key {key!r} ({operator}) is not one the SAR lists for"
                    f" {name!r} or its resource types, nor global (SAR: {service.url})"
                )
    if negated or doc.kind == "trust":
        return  # NotAction's resources are not the actions'; a trust policy's is its role
    used: set[str] = set()
    for action in resolved:
        yield from _check_resources(action, resources, conditions, used)
    typed = [a for a in resolved if any(resource_formats(s, p) for s, p in a.privileges)]
    for resource in resources:
        if resource != "*" and resource not in used and typed:  # the typeless are reported
            if any(_allowed("resource-type", a.name, resource) for a in resolved):
                continue
            yield (
                f"resource {resource!r} is not of a type any of the statement's actions"
                f" ({', '.join(a.name for a in resolved)}) applies to in the SAR: it grants nothing"
            )


def _check_resources(
    action: Action, resources: list[str], conditions: Mapping[str, str], used: set[str]
) -> Iterator[str]:
    formats = {
        kind: template
        for service, privilege in action.privileges
        for kind, template in resource_formats(service, privilege).items()
    }
    # an action without resource types (or a wildcard reaching one) takes '*'
    typeless = any(not resource_formats(s, p) for s, p in action.privileges)
    matched = False
    for resource in resources:
        if resource == "*":
            matched = True
            if typeless or _allowed("wildcard", action.name):
                continue
            supported = [k for s, p in action.privileges for k in condition_keys(s, p)]
            if any(
                not key.lower().startswith("aws:")
                and any(_key_matches(key, template) for template in supported)
                for key in conditions
            ):
                continue
            yield (
                f"Resource '*' for {action.name!r}, which has resource-level permissions in the"
                f" SAR ({', '.join(sorted(formats))}): name them, or scope it with a condition key"
                f" the action supports"
            )
        elif any(intersects(resource, template) for template in formats.values()):
            used.add(resource)
            matched = True
    if matched or not resources:
        return
    if any(_allowed("resource-type", action.name, r) for r in resources):
        used.update(resources)
        return
    if not formats:
        yield (
            f"{action.name!r} has no resource-level permissions in the SAR: its Resource must be"
            f" '*', {', '.join(resources)} grants nothing"
        )
        return
    kinds = "; ".join(f"{k}: {t}" for k, t in sorted(formats.items()))
    yield (
        f"{action.name!r} applies to none of {', '.join(resources)}: the SAR lists its resource"
        f" types as {kinds}"
    )

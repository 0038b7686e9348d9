"""Each planned resource's inputs against its CloudFormation resource schema.

pulumi-aws names inputs in camelCase after the Terraform provider; CloudFormation in PascalCase
after the API. The default maps ``fooBar`` to ``FooBar`` at every depth; :data:`NAMES` holds the
names that differ, per type (``None``: no CloudFormation counterpart, left unchecked). Each
scalar value that reaches a schema property is checked against its ``enum``, ``pattern``,
``minLength``/``maxLength`` and ``minimum``/``maximum``, each list against ``minItems``/
``maxItems``, and the top-level ``required`` properties must be set. The schema's
``createOnlyProperties`` are recorded per resource, for a plan diff: changing one replaces it.

Coverage: of the plan's scalar input values, how many reached a schema property (secrets and
values under unmapped names or of another shape, such as tags as a map, are not checked).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from toolbox.specs.data import cfn_schema
from toolbox.specs.findings import Finding
from toolbox.specs.types import cfn_type, no_cfn_type

REDACTED = "[secret]"

NAMES: dict[str, dict[str, str | None]] = {
    "aws:cloudwatch/eventRule:EventRule": {},
    "aws:cloudwatch/logGroup:LogGroup": {"name": "LogGroupName"},
    "aws:cloudwatch/metricAlarm:MetricAlarm": {
        "name": "AlarmName",
        "alarmDescription": "AlarmDescription",
    },
    "aws:codebuild/project:Project": {
        "buildTimeout": "TimeoutInMinutes",
        "encryptionKey": "EncryptionKey",
    },
    "aws:codebuild/reportGroup:ReportGroup": {},
    "aws:codepipeline/pipeline:Pipeline": {"artifactStores": None},
    "aws:codepipeline/webhook:Webhook": {"filters": "Filters", "authentication": "Authentication"},
    "aws:dynamodb/table:Table": {"name": "TableName", "hashKey": None, "attributes": None},
    "aws:ecr/repository:Repository": {"name": "RepositoryName"},
    "aws:iam/role:Role": {"name": "RoleName", "assumeRolePolicy": "AssumeRolePolicyDocument"},
    "aws:iam/rolePolicy:RolePolicy": {
        "name": "PolicyName",
        "role": "RoleName",
        "policy": "PolicyDocument",
    },
    "aws:kms/alias:Alias": {"name": "AliasName", "targetKeyId": "TargetKeyId"},
    "aws:kms/key:Key": {"policy": "KeyPolicy", "deletionWindowInDays": "PendingWindowInDays"},
    "aws:lambda/function:Function": {"name": "FunctionName", "role": "Role"},
    "aws:lambda/permission:Permission": {
        "function": "FunctionName",
        "principalOrgId": "PrincipalOrgID",
    },
    "aws:s3/bucket:Bucket": {"bucket": "BucketName"},
    "aws:s3/bucketPolicy:BucketPolicy": {"policy": "PolicyDocument"},
    "aws:secretsmanager/secret:Secret": {},
    "aws:sns/topic:Topic": {"name": "TopicName", "kmsMasterKeyId": "KmsMasterKeyId"},
    "aws:sns/topicPolicy:TopicPolicy": {"arn": "Topics", "policy": "PolicyDocument"},
    "aws:sns/topicSubscription:TopicSubscription": {"topic": "TopicArn"},
    "aws:sqs/queue:Queue": {
        "name": "QueueName",
        "messageRetentionSeconds": "MessageRetentionPeriod",
        "kmsMasterKeyId": "KmsMasterKeyId",
    },
    "aws:sqs/queuePolicy:QueuePolicy": {"queueUrl": "Queues", "policy": "PolicyDocument"},
}
"""Per pulumi-aws type, the input names the default does not map (a name -> None: no match)."""

_BUCKET = "#/properties/BucketName"
PARTS: dict[str, dict[str, str]] = {
    "aws:s3/bucketVersioning:BucketVersioning": {
        "bucket": _BUCKET,
        "versioningConfiguration": "#/definitions/VersioningConfiguration",
    },
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": {
        "bucket": _BUCKET,
        "rules": "#/definitions/BucketEncryption/properties/ServerSideEncryptionConfiguration",
    },
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": {
        "bucket": _BUCKET,
        "*": "#/definitions/PublicAccessBlockConfiguration",
    },
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": {
        "bucket": _BUCKET,
        "rule": "#/definitions/OwnershipControlsRule",
    },
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": {
        "bucket": _BUCKET,
        "rules": "#/definitions/LifecycleConfiguration/properties/Rules",
    },
    "aws:s3/bucketNotification:BucketNotification": {
        "bucket": _BUCKET,
        "eventbridge": "#/definitions/EventBridgeConfiguration/properties/EventBridgeEnabled",
    },
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": {
        "repository": "#/properties/RepositoryName",
        "policy": "#/definitions/LifecyclePolicy/properties/LifecyclePolicyText",
    },
    "aws:cloudwatch/eventTarget:EventTarget": {
        "rule": "#/properties/Name",
        "*": "#/definitions/Target",
    },
}
"""pulumi-aws types that are a property of a CloudFormation type: per input, the JSON pointer of
its schema in that type's (``*``: the object whose properties the other inputs are)."""

NESTED: dict[str, str | None] = {
    "applyServerSideEncryptionByDefault": "ServerSideEncryptionByDefault",
    "sseAlgorithm": "SSEAlgorithm",
    "kmsMasterKeyId": "KMSMasterKeyID",
    "targetId": "Id",
    "inputPaths": "InputPathsMap",
    "expiration": None,
    "filter": None,
}
"""Names below the top level (or of a part's inputs) the default does not map, for every type."""

REQUIRED_ELSEWHERE: dict[str, dict[str, str]] = {
    "aws:sns/topicPolicy:TopicPolicy": {"Topics": "pulumi-aws takes one topic, as 'arn'"},
    "aws:sqs/queuePolicy:QueuePolicy": {"Queues": "pulumi-aws takes one queue, as 'queueUrl'"},
    "aws:dynamodb/table:Table": {
        "KeySchema": "pulumi-aws sets it from 'hashKey' (and 'rangeKey')",
    },
}
"""CloudFormation's required properties that pulumi-aws takes under another shape, with how."""


def _camel_to_cfn(name: str) -> str:
    return name[:1].upper() + name[1:]


def _nested(name: str) -> str | None:
    return NESTED[name] if name in NESTED else _camel_to_cfn(name)


@dataclass
class Result:
    """One resource's outcome."""

    findings: list[Finding] = field(default_factory=list)
    scalars: int = 0
    checked: int = 0
    create_only: list[str] = field(default_factory=list)


@cache
def _pattern(text: str) -> re.Pattern[str] | None:
    try:
        return re.compile(text)
    except re.error:  # an ECMA-only construct Python's re lacks: not checked
        return None


class _Walker:
    def __init__(self, schema: Mapping[str, Any], names: Mapping[str, str | None]) -> None:
        self.schema = schema
        self.names = names
        self.result = Result()
        self.problems: list[tuple[str, str]] = []

    def resolve(self, sub: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        seen = 0
        while sub is not None and "$ref" in sub and seen < 20:
            ref = str(sub["$ref"])
            if not ref.startswith("#/"):
                return None
            node: Any = self.schema
            for part in ref[2:].split("/"):
                node = node.get(part) if isinstance(node, Mapping) else None
            sub = node if isinstance(node, Mapping) else None
            seen += 1
        return sub

    def walk(self, value: Any, sub: Mapping[str, Any] | None, path: str, top: bool = False) -> None:
        sub = self.resolve(sub)
        if isinstance(value, Mapping):
            props = sub.get("properties") if sub is not None else None
            for key, item in value.items():
                name = self.names.get(key, _nested(key)) if top else _nested(key)
                prop = props.get(name) if isinstance(props, Mapping) and name else None
                self.walk(item, prop, f"{path}.{key}" if path else key)
            return
        if isinstance(value, list):
            if sub is not None and sub.get("type") == "array":
                self._items(value, sub, path)
                for index, item in enumerate(value):
                    self.walk(item, sub.get("items"), f"{path}[{index}]")
            else:
                for index, item in enumerate(value):
                    self.walk(item, None, f"{path}[{index}]")
            return
        if value is None:
            return
        self.result.scalars += 1
        if sub is None or value == REDACTED or not isinstance(value, str | int | float | bool):
            return
        if sub.get("type") in ("object", "array"):
            return  # another shape (a policy as JSON text, one ARN for a list): not checked
        self.result.checked += 1
        self._scalar(value, sub, path)

    def _items(self, value: list[Any], sub: Mapping[str, Any], path: str) -> None:
        low, high = sub.get("minItems"), sub.get("maxItems")
        if isinstance(low, int) and len(value) < low:
            self.problems.append((path, f"{len(value)} items, the schema's minItems is {low}"))
        if isinstance(high, int) and len(value) > high:
            self.problems.append((path, f"{len(value)} items, the schema's maxItems is {high}"))

    def _scalar(self, value: str | float | bool, sub: Mapping[str, Any], path: str) -> None:
        enum = sub.get("enum")
        if isinstance(enum, list) and enum:
            text = str(value).lower() if isinstance(value, bool) else value
            if text not in enum and str(text) not in [str(e) for e in enum]:
                shown = ", ".join(str(e) for e in enum[:12]) + (", ..." if len(enum) > 12 else "")
                self.problems.append((path, f"{value!r} is not one of the schema's enum: {shown}"))
        if isinstance(value, str):
            pattern = sub.get("pattern")
            regex = _pattern(pattern) if isinstance(pattern, str) else None
            if regex is not None and not regex.search(value):
                self.problems.append((path, f"{value!r} does not match the pattern {pattern}"))
            low, high = sub.get("minLength"), sub.get("maxLength")
            if isinstance(low, int) and len(value) < low:
                self.problems.append(
                    (path, f"{value!r} is {len(value)} characters, minLength is {low}")
                )
            if isinstance(high, int) and len(value) > high:
                self.problems.append(
                    (path, f"{value!r} is {len(value)} characters, maxLength is {high}")
                )
        elif not isinstance(value, bool):
            low, high = sub.get("minimum"), sub.get("maximum")
            if isinstance(low, int | float) and value < low:
                self.problems.append((path, f"{value} is below the schema's minimum {low}"))
            if isinstance(high, int | float) and value > high:
                self.problems.append((path, f"{value} is above the schema's maximum {high}"))


def _count(value: Any) -> int:
    if isinstance(value, Mapping):
        return sum(_count(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count(v) for v in value)
    return 0 if value is None else 1


def check(layer: str, resource: Any, region: str = "us-east-1") -> Result:
    """The findings, coverage and create-only properties of one planned resource."""
    if not resource.custom or not resource.type.startswith("aws:"):
        return Result(scalars=0)
    target = cfn_type(resource.type, region)
    schema = cfn_schema(target, region) if target else None
    if schema is None:
        result = Result(scalars=_count(resource.inputs))
        if no_cfn_type(resource.type) is None:
            result.findings.append(
                Finding(
                    "schemas",
                    layer,
                    resource.name,
                    resource.type,
                    "no CloudFormation type: map it in toolbox/specs/types.py or say why it has"
                    " none in allow.toml [schemas-none]",
                )
            )
        return result
    if resource.type in PARTS:
        return _check_part(layer, resource, schema, str(target), PARTS[resource.type])
    names = NAMES.get(resource.type, {})
    walker = _Walker(schema, names)
    walker.walk(resource.inputs, schema, "", top=True)
    result = walker.result
    reverse: dict[str, str] = {cfn: key for key, cfn in names.items() if cfn is not None}
    elsewhere = REQUIRED_ELSEWHERE.get(resource.type, {})
    for required in schema.get("required", []):
        wanted = str(reverse.get(required, required[:1].lower() + required[1:]))
        if wanted not in resource.inputs and required not in elsewhere:
            walker.problems.append((wanted, f"missing: the schema of {target} requires {required}"))
    for path, problem in walker.problems:
        result.findings.append(
            Finding("schemas", layer, resource.name, f"property {path}", f"{problem} ({target})")
        )
    result.create_only.extend(_create_only_inputs(schema, reverse))
    return result


def _check_part(
    layer: str, resource: Any, schema: Mapping[str, Any], target: str, parts: Mapping[str, str]
) -> Result:
    """A resource that is a property of ``target``: each input against its piece of the schema.
    (Required and create-only properties are the whole type's, so not checked here.)"""
    walker = _Walker(schema, {})
    rest = walker.resolve({"$ref": parts["*"]}) if "*" in parts else None
    props = rest.get("properties", {}) if rest is not None else {}
    for key, value in resource.inputs.items():
        if key in parts:
            sub: Mapping[str, Any] | None = {"$ref": parts[key]}
        else:
            name = _nested(key)
            sub = props.get(name) if name else None
        walker.walk(value, sub, key)
    result = walker.result
    for path, problem in walker.problems:
        result.findings.append(
            Finding("schemas", layer, resource.name, f"property {path}", f"{problem} ({target})")
        )
    return result


def _create_only_pointers(schema: Mapping[str, Any]) -> list[list[str]]:
    """The schema's ``createOnlyProperties`` as property paths (``["EncryptionConfiguration",
    "KmsKey"]``)."""
    out: list[list[str]] = []
    for pointer in schema.get("createOnlyProperties", []):
        parts = str(pointer).split("/")
        if len(parts) >= 3 and parts[1] == "properties":
            out.append(parts[2:])
    return out


def _create_only_inputs(schema: Mapping[str, Any], reverse: Mapping[str, str]) -> list[str]:
    """The create-only properties as pulumi-aws input paths (``encryptionConfiguration.kmsKey``)."""
    return [
        ".".join(
            [reverse.get(top, top[:1].lower() + top[1:])] + [p[:1].lower() + p[1:] for p in rest]
        )
        for top, *rest in _create_only_pointers(schema)
    ]


@dataclass(frozen=True)
class Replacement:
    """What one pulumi-aws type's CloudFormation schema says about replacing a resource: the
    plan diff's source (a change to a create-only property replaces the resource)."""

    cfn_type: str
    properties: frozenset[str]
    """The schema's top-level properties."""
    create_only: frozenset[str]
    """Top-level properties that cannot be updated in place."""
    nested_create_only: frozenset[str]
    """Top-level properties with a create-only part (``EncryptionConfiguration/KmsKey``)."""
    names: Mapping[str, str | None]

    def property_for(self, pulumi_input: str) -> str | None:
        """The schema property a top-level input sets (the same names :func:`check` uses), or
        None when it sets none."""
        name = self.names.get(pulumi_input, _nested(pulumi_input))
        return name if name in self.properties else None


@cache
def replacement(pulumi_type: str, region: str = "us-east-1") -> Replacement | None:
    """The replacement facts of ``pulumi_type``; None when it has no schema of its own (no
    CloudFormation type, or a property of one: :data:`PARTS`, whose create-only properties are
    the whole type's)."""
    if not pulumi_type.startswith("aws:") or pulumi_type in PARTS:
        return None
    target = cfn_type(pulumi_type, region)
    schema = cfn_schema(target, region) if target else None
    if target is None or schema is None:
        return None
    paths = _create_only_pointers(schema)
    return Replacement(
        cfn_type=target,
        properties=frozenset(schema.get("properties", {})),
        create_only=frozenset(p[0] for p in paths if len(p) == 1),
        nested_create_only=frozenset(p[0] for p in paths if len(p) > 1),
        names=NAMES.get(pulumi_type, {}),
    )

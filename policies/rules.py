"""The platform's guardrails as plain functions over planned resources.

One definition serves twice: ``policies/pack.py`` wraps each rule as a pulumi-policy
``ResourceValidationPolicy`` / ``StackValidationPolicy`` for ``pulumi preview --policy-pack``,
and ``toolbox/verdicts.py`` runs the same rules over the offline plan inside ``./dev synth``.
Props use the engine's camelCase names; policy documents are JSON strings. Each violation names
the resource and the fix.
"""

from __future__ import annotations

import importlib
import inspect
import json
import keyword
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from shared.iam import (
    KEY_POLICY_WILDCARD_REASON,
    SOURCE_KEYS,
    TRUST_CONDITION_KEYS,
    WILDCARD_ALLOWED,
    as_list,
    statements,
)
from shared.naming import REQUIRED_TAGS
from shared.services import PRODUCTION_TAG

STAGES = ("Source", "Build", "Test", "SecurityScan", "Deploy")
"""The five stages every pipeline has, in this order (the seed's hard constraint)."""

MAX_LOG_RETENTION_DAYS = 7
"""Default longest retention for CodeBuild logs (the seed's 7 days); pack config can raise it."""

COMPUTE_TYPE = "BUILD_GENERAL1_SMALL"
COMPUTE_ALLOWLIST: dict[str, str] = {}
"""CodeBuild project names allowed a bigger compute type, each with the reason. None yet."""


@dataclass(frozen=True)
class Resource:
    """What a rule sees of one resource (a planned one offline, or the engine's in a preview)."""

    type: str
    urn: str
    name: str
    props: Mapping[str, Any]


@dataclass(frozen=True)
class Rule:
    """One mandatory policy."""

    name: str
    description: str
    types: tuple[str, ...] = ()
    """Resource rule: the types it applies to (empty: every type). Stack rule: the types of the
    resources it guards (what it counts as examined)."""
    check: Callable[..., Iterable[str]] | None = None
    """Resource rule: the violations of one resource; called with the rule's config as keywords."""
    stack_check: Callable[[Sequence[Resource]], Iterable[tuple[Resource, str]]] | None = None
    """Stack rule: (resource, violation) pairs over all resources of a stack."""
    config: Mapping[str, Any] = field(default_factory=dict)
    applies: Callable[[Resource], bool] | None = None
    """Resource rule: a narrower test than ``types`` (e.g. the type takes tags); None: all."""


def _say(resource: Resource, problem: str, fix: str) -> str:
    return f"{resource.name} ({resource.type}): {problem}; fix: {fix}"


def _doc(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


# --- S3 -----------------------------------------------------------------------------------

BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
BUCKET_COMPANIONS = (PUBLIC_ACCESS_BLOCK, VERSIONING, LIFECYCLE, ENCRYPTION, BUCKET_POLICY)
BLOCKS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def public_access_blocked(r: Resource) -> Iterator[str]:
    off = [key for key in BLOCKS if r.props.get(key) is not True]
    if off:
        yield _say(r, f"public access not blocked: {', '.join(off)}", "set all four to true")


def versioning_enabled(r: Resource) -> Iterator[str]:
    status = (r.props.get("versioningConfiguration") or {}).get("status")
    if status != "Enabled":
        yield _say(
            r, f"versioning is {status or 'unset'}", "versioning_configuration status Enabled"
        )


def lifecycle_expires(r: Resource) -> Iterator[str]:
    rules = r.props.get("rules") or []
    if not any(
        rule.get("status") == "Enabled" and (rule.get("expiration") or {}).get("days")
        for rule in rules
    ):
        yield _say(r, "no enabled rule expires objects", "add an enabled rule with expiration days")


def sse_kms(r: Resource) -> Iterator[str]:
    rules = r.props.get("rules") or []
    defaults = [(rule.get("applyServerSideEncryptionByDefault") or {}) for rule in rules]
    if not any(d.get("sseAlgorithm") == "aws:kms" and d.get("kmsMasterKeyId") for d in defaults):
        yield _say(
            r,
            "objects are not encrypted with a customer-managed KMS key",
            "sse_algorithm aws:kms with kms_master_key_id set to the platform key",
        )


def tls_only(r: Resource) -> Iterator[str]:
    doc = _doc(r.props.get("policy"))
    if doc is None:
        return
    for statement in statements(doc):
        condition = statement.get("Condition") or {}
        secure = (condition.get("Bool") or {}).get("aws:SecureTransport")
        if statement.get("Effect") == "Deny" and "false" in [
            str(v).lower() for v in as_list(secure)
        ]:
            return
    yield _say(
        r,
        "the bucket policy does not deny non-TLS requests",
        'add a Deny statement with Condition Bool aws:SecureTransport "false"',
    )


def bucket_companions(resources: Sequence[Resource]) -> Iterator[tuple[Resource, str]]:
    buckets = [r for r in resources if r.type == BUCKET]
    for companion in BUCKET_COMPANIONS:
        found = [r for r in resources if r.type == companion]
        targets = {r.props.get("bucket") for r in found}
        for bucket in buckets:
            name = bucket.props.get("bucket")
            # In a real preview a new bucket's name may be unknown: then count instead.
            if (name in targets) if name else len(found) >= len(buckets):
                continue
            kind = companion.rsplit(":", 1)[1]
            yield bucket, _say(bucket, f"has no {kind}", f"add an aws.s3.{kind} for it")


# --- KMS, Secrets Manager, SNS ---------------------------------------------------------------


def _customer_key(value: Any) -> bool:
    return bool(value) and not str(value).startswith("alias/aws/")


def key_rotates(r: Resource) -> Iterator[str]:
    if r.props.get("enableKeyRotation") is not True:
        yield _say(r, "key rotation is off", "enable_key_rotation=True")


def secret_uses_cmk(r: Resource) -> Iterator[str]:
    if not _customer_key(r.props.get("kmsKeyId")):
        yield _say(
            r,
            "the secret is not encrypted with a customer-managed key",
            "kms_key_id set to the platform key ARN",
        )


def topic_uses_cmk(r: Resource) -> Iterator[str]:
    if not _customer_key(r.props.get("kmsMasterKeyId")):
        yield _say(
            r,
            "the topic is not encrypted with a customer-managed key",
            "kms_master_key_id set to the platform key ARN",
        )


# --- ECR -------------------------------------------------------------------------------------

REPOSITORY = "aws:ecr/repository:Repository"
ECR_LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"


def scan_on_push(r: Resource) -> Iterator[str]:
    if (r.props.get("imageScanningConfiguration") or {}).get("scanOnPush") is not True:
        yield _say(r, "images are not scanned on push", "image_scanning_configuration scan_on_push")


MUTABLE_TAGS_ALLOWED = (PRODUCTION_TAG,)
"""Tags that may move in an otherwise immutable repository: the deploy handler's promotion."""


def immutable_tags(r: Resource) -> Iterator[str]:
    mutability = r.props.get("imageTagMutability")
    if mutability == "IMMUTABLE":
        return
    if mutability != "IMMUTABLE_WITH_EXCLUSION":
        yield _say(r, "image tags are mutable", 'image_tag_mutability="IMMUTABLE"')
        return
    # The exclusions must name exact tags (no wildcard), each one allowed to move.
    filters = [f.get("filter") for f in r.props.get("imageTagMutabilityExclusionFilters") or []]
    wide = [f for f in filters if f not in MUTABLE_TAGS_ALLOWED]
    if wide or not filters:
        yield _say(
            r,
            f"tags matching {wide or filters} are mutable",
            f"exclude only exact tags from {list(MUTABLE_TAGS_ALLOWED)}",
        )


def _count_rules(policy: Any) -> list[dict[str, Any]]:
    doc = _doc(policy)
    rules = (doc or {}).get("rules") or []
    return [
        rule
        for rule in rules
        if isinstance(rule, dict)
        and (rule.get("selection") or {}).get("countType") == "imageCountMoreThan"
        and (rule.get("action") or {}).get("type") == "expire"
    ]


def repository_lifecycle(resources: Sequence[Resource]) -> Iterator[tuple[Resource, str]]:
    """Each repository has a lifecycle policy that keeps a count of images (any or per family)."""
    policies = [r for r in resources if r.type == ECR_LIFECYCLE]
    counted = {r.props.get("repository") for r in policies if _count_rules(r.props.get("policy"))}
    covered = {r.props.get("repository") for r in policies}
    repos = [r for r in resources if r.type == REPOSITORY]
    for repo in repos:
        name = repo.props.get("name")
        if not ((name in covered) if name else len(covered) >= len(repos)):
            yield (
                repo,
                _say(repo, "has no lifecycle policy", "add an aws.ecr.LifecyclePolicy for it"),
            )
        elif not ((name in counted) if name else len(counted) >= len(repos)):
            yield (
                repo,
                _say(
                    repo,
                    "its lifecycle policy keeps no count of images",
                    "add imageCountMoreThan expire rules (one per image family's tag prefix)",
                ),
            )


# --- CloudWatch Logs, CodeBuild, CodePipeline ------------------------------------------------


def log_retention(r: Resource, maxRetentionDays: int = MAX_LOG_RETENTION_DAYS) -> Iterator[str]:
    """``maxRetentionDays`` is the rule's config: the pack's, or the layer's configured value."""
    maximum = int(maxRetentionDays)
    days = r.props.get("retentionInDays")
    if not days:
        yield _say(r, "logs are kept forever", f"retention_in_days of at most {maximum}")
    elif int(days) > maximum:
        yield _say(r, f"logs are kept {days} days", f"retention_in_days of at most {maximum}")
    if not r.props.get("kmsKeyId"):
        yield _say(r, "logs are not encrypted with the platform key", "kms_key_id set")


def codebuild_small(r: Resource) -> Iterator[str]:
    compute = (r.props.get("environment") or {}).get("computeType")
    if compute != COMPUTE_TYPE and r.props.get("name") not in COMPUTE_ALLOWLIST:
        yield _say(
            r,
            f"compute type {compute}",
            f"{COMPUTE_TYPE}, or add the project to"
            " policies.rules.COMPUTE_ALLOWLIST with the reason",
        )


def codebuild_logs(r: Resource) -> Iterator[str]:
    logs = (r.props.get("logsConfig") or {}).get("cloudwatchLogs") or {}
    if logs.get("status") == "DISABLED" or not logs.get("groupName"):
        yield _say(
            r,
            "build logs do not go to its own log group",
            "logs_config.cloudwatch_logs with group_name",
        )


def codebuild_encrypted(r: Resource) -> Iterator[str]:
    if not r.props.get("encryptionKey"):
        yield _say(
            r,
            "build artifacts are not encrypted with the platform key",
            "encryption_key set to the platform key ARN",
        )


def five_stages(r: Resource) -> Iterator[str]:
    names = tuple(stage.get("name") for stage in r.props.get("stages") or [])
    if names != STAGES:
        yield _say(r, f"stages are {list(names)}", f"exactly {list(STAGES)} in this order")


def artifacts_encrypted(r: Resource) -> Iterator[str]:
    stores = r.props.get("artifactStores") or []
    if not stores or not all((s.get("encryptionKey") or {}).get("id") for s in stores):
        yield _say(
            r,
            "the artifact store is not encrypted with the platform key",
            "artifact_stores[].encryption_key {type: KMS, id: key ARN}",
        )


# --- DynamoDB, Lambda --------------------------------------------------------------------------

TABLE = "aws:dynamodb/table:Table"
FUNCTION = "aws:lambda/function:Function"
PERMISSION = "aws:lambda/permission:Permission"
INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"


def table_pitr_and_kms(r: Resource) -> Iterator[str]:
    """PITR on and SSE with a customer-managed key; left unset, AWS turns PITR off and encrypts
    with a key of its own, so an absent setting is a violation like one set off."""
    pitr = r.props.get("pointInTimeRecovery") or {}
    if pitr.get("enabled") is None:
        yield _say(
            r,
            "point-in-time recovery is not set (AWS's default is off)",
            "point_in_time_recovery enabled=True",
        )
    elif pitr.get("enabled") is not True:
        yield _say(r, "point-in-time recovery is off", "point_in_time_recovery enabled=True")
    sse = r.props.get("serverSideEncryption") or {}
    if sse.get("enabled") is not True or not _customer_key(sse.get("kmsKeyArn")):
        yield _say(
            r,
            "the table is not encrypted with a customer-managed key",
            "server_side_encryption enabled=True with kms_key_arn the platform key",
        )


def function_log_group(r: Resource) -> Iterator[str]:
    if not (r.props.get("loggingConfig") or {}).get("logGroup"):
        yield _say(
            r,
            "the function logs to a default group (no retention, no key)",
            "logging_config.log_group set to its own log group",
        )


ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DEAD_LETTERS_METRIC = ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
"""The metric that says a message waits in a queue (dimension ``QueueName``)."""


def sqs_queue_name(arn: Any) -> str | None:
    """The queue name of an SQS ARN (``arn:<partition>:sqs:<region>:<account>:<name>``); None for
    anything else (an SNS topic, another service)."""
    parts = str(arn or "").split(":")
    return parts[5] if len(parts) == 6 and parts[2] == "sqs" and parts[5] else None


def _alarmed_queues(resources: Sequence[Resource]) -> set[Any]:
    """The queues an alarm with an action watches for messages waiting."""
    return {
        (r.props.get("dimensions") or {}).get("QueueName")
        for r in resources
        if r.type == ALARM
        and (r.props.get("namespace"), r.props.get("metricName")) == DEAD_LETTERS_METRIC
        and r.props.get("alarmActions")
        and r.props.get("actionsEnabled") is not False
    }


def functions_have_dead_letters(resources: Sequence[Resource]) -> Iterator[tuple[Resource, str]]:
    """A function keeps what it failed on (a dead-letter queue or an on-failure destination), and
    an SQS queue that keeps it has an alarm on messages waiting, so someone hears of it."""
    destinations = {
        r.props.get("functionName"): (
            (r.props.get("destinationConfig") or {}).get("onFailure") or {}
        ).get("destination")
        for r in resources
        if r.type == INVOKE_CONFIG
    }
    alarmed = _alarmed_queues(resources)
    for function in (r for r in resources if r.type == FUNCTION):
        kept = [
            (function.props.get("deadLetterConfig") or {}).get("targetArn"),
            destinations.get(function.props.get("name")),
        ]
        if not any(kept):
            yield (
                function,
                _say(
                    function,
                    "failed invocations are dropped",
                    "dead_letter_config.target_arn (SQS) or an on-failure destination",
                ),
            )
        for queue in (sqs_queue_name(arn) for arn in kept):
            if queue is not None and queue not in alarmed:
                yield (
                    function,
                    _say(
                        function,
                        f"nobody hears of failed invocations waiting in its queue {queue}",
                        "an aws.cloudwatch.MetricAlarm on AWS/SQS"
                        f" ApproximateNumberOfMessagesVisible, dimension QueueName={queue}, with an"
                        " alarm action",
                    ),
                )


def not_publicly_invokable(r: Resource) -> Iterator[str]:
    principal = str(r.props.get("principal") or "")
    if principal == "*":
        yield _say(r, "anyone may invoke the function", "name the service or account principal")
    elif principal.endswith(".amazonaws.com") and not (
        r.props.get("sourceArn") or r.props.get("sourceAccount")
    ):
        yield _say(
            r,
            f"{principal} may invoke the function for any account's resources",
            "source_arn (the rule or resource) and source_account",
        )


# --- IAM -------------------------------------------------------------------------------------

POLICY_PROPS: dict[str, str] = {
    "aws:iam/role:Role": "assumeRolePolicy",
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/policy:Policy": "policy",
    BUCKET_POLICY: "policy",
    "aws:sns/topicPolicy:TopicPolicy": "policy",
    "aws:ecr/repositoryPolicy:RepositoryPolicy": "policy",
    "aws:kms/key:Key": "policy",
    "aws:sqs/queuePolicy:QueuePolicy": "policy",
}
"""Where each resource type keeps a policy document."""


def _allows(r: Resource) -> Iterator[dict[str, Any]]:
    key = POLICY_PROPS.get(r.type)
    doc = _doc(r.props.get(key)) if key else None
    if doc is None:
        return
    for statement in statements(doc):
        if statement.get("Effect") == "Allow":
            yield statement


def no_wildcard_action(r: Resource) -> Iterator[str]:
    for statement in _allows(r):
        wild = [a for a in as_list(statement.get("Action")) if a == "*" or str(a).endswith(":*")]
        if wild:
            yield _say(
                r,
                f"statement {statement.get('Sid', '?')} allows {wild}",
                "list the actions the role needs",
            )


def no_wildcard_resource(r: Resource) -> Iterator[str]:
    if r.type == "aws:kms/key:Key":
        return  # KEY_POLICY_WILDCARD_REASON: in a key policy, "*" is the key itself
    for statement in _allows(r):
        if "*" not in as_list(statement.get("Resource")):
            continue
        extra = sorted(set(as_list(statement.get("Action"))) - set(WILDCARD_ALLOWED))
        if extra:
            yield _say(
                r,
                f"statement {statement.get('Sid', '?')} grants {extra} on '*'",
                "name the resources' ARNs (only shared.iam.WILDCARD_ALLOWED may use '*')",
            )


def trust_has_source_conditions(r: Resource) -> Iterator[str]:
    """Each service principal carries the source keys AWS documents for it, and no others.

    The table is ``shared.iam.TRUST_CONDITION_KEYS``: a service that documents keys must be
    confined by at least one of them; a key it does not document would make the role unusable.
    """
    if r.type != "aws:iam/role:Role":
        return
    for statement in _allows(r):
        services = as_list((statement.get("Principal") or {}).get("Service"))
        if not services:
            continue
        keys = {k for test in (statement.get("Condition") or {}).values() for k in test}
        for service in services:
            if service not in TRUST_CONDITION_KEYS:
                yield _say(
                    r,
                    f"the trust policy names {service}, whose source keys are not looked up",
                    "add it to shared.iam.TRUST_CONDITION_KEYS with the AWS page that documents"
                    " them",
                )
                continue
            documented = set(TRUST_CONDITION_KEYS[service])
            undocumented = sorted((keys & set(SOURCE_KEYS)) - documented)
            if undocumented:
                yield _say(
                    r,
                    f"{service} is not documented to send {undocumented} when it assumes a role",
                    f"use only {sorted(documented) or 'no source keys'} for {service}",
                )
            if documented and not keys & documented:
                yield _say(
                    r,
                    f"the trust policy lets {service} assume it for any account",
                    f"add {' or '.join(sorted(documented))} conditions",
                )


def passrole_scoped(r: Resource) -> Iterator[str]:
    for statement in _allows(r):
        if "iam:PassRole" not in as_list(statement.get("Action")):
            continue
        keys = {k for test in (statement.get("Condition") or {}).values() for k in test}
        if "iam:PassedToService" not in keys:
            yield _say(
                r,
                f"statement {statement.get('Sid', '?')} passes roles to any service",
                "add a StringEquals iam:PassedToService condition",
            )


# --- Tags ------------------------------------------------------------------------------------


@cache
def takes_tags(type_: str) -> bool:
    """Whether a pulumi_aws resource type accepts a ``tags`` input, from its own signature."""
    parts = type_.split(":")
    if len(parts) != 3 or parts[0] != "aws":
        return False
    name = parts[1].split("/")[0]
    # A module named for a Python keyword gets a trailing underscore (aws:lambda -> lambda_).
    module = importlib.import_module(
        f"pulumi_aws.{name}_" if keyword.iskeyword(name) else f"pulumi_aws.{name}"
    )
    cls = getattr(module, parts[2], None)
    init = getattr(cls, "_internal_init", None)
    return init is not None and "tags" in inspect.signature(init).parameters


def _taggable(r: Resource) -> bool:
    return takes_tags(r.type)


def required_tags(r: Resource) -> Iterator[str]:
    tags = r.props.get("tags") or {}
    missing = [key for key in REQUIRED_TAGS if not tags.get(key)]
    if missing:
        yield _say(r, f"missing tags {missing}", "let shared.tagging tag it (never tag by hand)")


RULES: tuple[Rule, ...] = (
    Rule(
        "s3-public-access-blocked",
        "Buckets block all four kinds of public access.",
        (PUBLIC_ACCESS_BLOCK,),
        public_access_blocked,
    ),
    Rule("s3-versioning-enabled", "Buckets are versioned.", (VERSIONING,), versioning_enabled),
    Rule(
        "s3-lifecycle-expires",
        "Buckets expire objects with a lifecycle rule.",
        (LIFECYCLE,),
        lifecycle_expires,
    ),
    Rule("s3-sse-kms", "Buckets encrypt with a customer-managed KMS key.", (ENCRYPTION,), sse_kms),
    Rule("s3-tls-only", "Bucket policies deny requests without TLS.", (BUCKET_POLICY,), tls_only),
    Rule(
        "s3-bucket-guarded",
        "Every bucket has its public-access block, versioning, lifecycle, encryption and policy.",
        (BUCKET,),
        stack_check=bucket_companions,
    ),
    Rule("kms-rotation", "KMS keys rotate.", ("aws:kms/key:Key",), key_rotates),
    Rule(
        "secret-cmk",
        "Secrets are encrypted with a customer-managed key.",
        ("aws:secretsmanager/secret:Secret",),
        secret_uses_cmk,
    ),
    Rule(
        "sns-cmk",
        "Topics are encrypted with a customer-managed key.",
        ("aws:sns/topic:Topic",),
        topic_uses_cmk,
    ),
    Rule("ecr-scan-on-push", "Repositories scan images on push.", (REPOSITORY,), scan_on_push),
    Rule("ecr-immutable-tags", "Repository tags are immutable.", (REPOSITORY,), immutable_tags),
    Rule(
        "ecr-lifecycle",
        "Every repository has a lifecycle policy with image-count rules (per family or any).",
        (REPOSITORY,),
        stack_check=repository_lifecycle,
    ),
    Rule(
        "dynamodb-pitr-kms",
        "DynamoDB tables have point-in-time recovery and a customer-managed key.",
        (TABLE,),
        table_pitr_and_kms,
    ),
    Rule(
        "lambda-log-group",
        "Lambda functions log to their own log group.",
        (FUNCTION,),
        function_log_group,
    ),
    Rule(
        "lambda-dead-letters",
        "Lambda functions have a dead-letter queue or an on-failure destination; an SQS one has"
        " an alarm on messages waiting.",
        (FUNCTION,),
        stack_check=functions_have_dead_letters,
    ),
    Rule(
        "lambda-not-public",
        "Lambda permissions name a principal and, for a service, the source ARN or account.",
        (PERMISSION,),
        not_publicly_invokable,
    ),
    Rule(
        "logs-retention-and-kms",
        "Log groups expire within the limit and use the platform key.",
        ("aws:cloudwatch/logGroup:LogGroup",),
        log_retention,
        config={"maxRetentionDays": MAX_LOG_RETENTION_DAYS},
    ),
    Rule(
        "codebuild-small",
        f"CodeBuild projects use {COMPUTE_TYPE} unless allow-listed.",
        ("aws:codebuild/project:Project",),
        codebuild_small,
    ),
    Rule(
        "codebuild-logs",
        "CodeBuild projects log to CloudWatch.",
        ("aws:codebuild/project:Project",),
        codebuild_logs,
    ),
    Rule(
        "codebuild-encrypted",
        "CodeBuild projects encrypt artifacts with the platform key.",
        ("aws:codebuild/project:Project",),
        codebuild_encrypted,
    ),
    Rule(
        "codepipeline-five-stages",
        "Pipelines have exactly Source, Build, Test, SecurityScan, Deploy.",
        ("aws:codepipeline/pipeline:Pipeline",),
        five_stages,
    ),
    Rule(
        "codepipeline-artifacts-encrypted",
        "Pipeline artifact stores are KMS-encrypted.",
        ("aws:codepipeline/pipeline:Pipeline",),
        artifacts_encrypted,
    ),
    Rule(
        "iam-no-wildcard-action",
        "No policy allows '*' or 'service:*' actions.",
        tuple(POLICY_PROPS),
        no_wildcard_action,
    ),
    Rule(
        "iam-no-wildcard-resource",
        "'*' resources only for the allow-listed actions"
        f" ({KEY_POLICY_WILDCARD_REASON.split(',')[0]} excepted).",
        tuple(POLICY_PROPS),
        no_wildcard_resource,
    ),
    Rule(
        "iam-trust-source-conditions",
        "Service trust policies carry the source keys AWS documents for the service, no others.",
        ("aws:iam/role:Role",),
        trust_has_source_conditions,
    ),
    Rule(
        "iam-passrole-scoped",
        "iam:PassRole is limited by iam:PassedToService.",
        tuple(POLICY_PROPS),
        passrole_scoped,
    ),
    Rule(
        "tags-required",
        "Every taggable resource carries the required tags.",
        (),
        required_tags,
        applies=_taggable,
    ),
)
"""Every policy of the pack, all mandatory."""


def check_resource(
    rule: Rule,
    resource: Resource,
    config: Mapping[str, Any] | None = None,
    examined: Counter[str] | None = None,
) -> list[str]:
    """The violations of ``rule`` by one resource.

    A resource the rule does not apply to (another type, or ``applies`` says no) is not
    examined; one it does is counted in ``examined`` under the rule's name, as the check runs.
    """
    if rule.check is None or (rule.types and resource.type not in rule.types):
        return []
    if rule.applies is not None and not rule.applies(resource):
        return []
    if examined is not None:
        examined[rule.name] += 1
    return list(rule.check(resource, **{**rule.config, **(config or {})}))


def check_stack(
    rule: Rule,
    resources: Sequence[Resource],
    examined: Counter[str] | None = None,
) -> list[tuple[Resource, str]]:
    """The (resource, violation) pairs of a stack rule over a whole stack.

    What it examined is the resources of the types it guards (``rule.types``), counted in
    ``examined`` as the check runs.
    """
    if rule.stack_check is None:
        return []
    if examined is not None:
        examined[rule.name] += sum(1 for r in resources if r.type in rule.types)
    return list(rule.stack_check(resources))

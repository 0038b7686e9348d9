"""``./dev verify``: check the live resources behind the deployed stacks' outputs, with boto3.

The offline plan and the policy pack check what Pulumi is asked to create; this checks what
exists, after a deploy or at any time, so drift (a console change, a half-applied update) shows.
Each check reads one promise of the platform back from the AWS API and passes or fails; an API
error fails the check with its code instead of stopping the run. The registry and the pipeline
export their resources by service (``shared/contracts.py``): each service's repository, pipeline,
projects, log groups and handlers are checked, one line each.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from policies.rules import (
    DEAD_LETTERS_METRIC,
    MAX_LOG_RETENTION_DAYS,
    MUTABLE_TAGS_ALLOWED,
    STAGES,
    sqs_queue_name,
)

Outputs = Mapping[str, Any]
Finding = tuple[str, bool, str]
"""(resource, ok, detail)."""

BATCH = 100
"""Names per ECR DescribeRepositories and CodeBuild BatchGetProjects call (each API's maximum)."""


def names_of(value: Any) -> list[str]:
    """Every name in a by-service export, in the exports' order: a name itself, or the names
    nested in a mapping (``{service: name}``, ``{service: {key: name}}``)."""
    if isinstance(value, Mapping):
        return [name for nested in value.values() for name in names_of(nested)]
    return [str(value)] if value else []


def _batches(names: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(names), BATCH):
        yield names[start : start + BATCH]


@dataclass(frozen=True)
class CheckResult:
    """One check of one live resource."""

    layer: str
    check: str
    resource: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Check:
    """A named promise of one layer, checked against AWS."""

    layer: str
    name: str
    run: Callable[[Any, Outputs], Iterator[Finding]]
    """(boto3 session, the layer's outputs) -> findings."""


def _kms_rotation(session: Any, out: Outputs) -> Iterator[Finding]:
    arn = out["kmsKeyArn"]
    on = session.client("kms").get_key_rotation_status(KeyId=arn)["KeyRotationEnabled"]
    yield arn, on, "rotation enabled" if on else "rotation is off"


def _api_error(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'error')}: {error.get('Message', '')}"


BucketRead = Callable[[Any, str], tuple[bool, str]]
"""(S3 client, bucket name) -> (ok, detail)."""


def _each_bucket(read: BucketRead) -> Callable[[Any, Outputs], Iterator[Finding]]:
    """A check of both foundation buckets, artifacts then source: one builder gives them the same
    guards (``_bucket`` in stacks/foundation/component.py). An API error (say, no lifecycle
    configuration) fails that bucket's finding with its code and still checks the other."""

    def run(session: Any, out: Outputs) -> Iterator[Finding]:
        s3 = session.client("s3")
        for bucket in (out["artifactBucketName"], out["sourceBucketName"]):
            try:
                ok, detail = read(s3, bucket)
            except ClientError as exc:
                yield bucket, False, _api_error(exc)
            else:
                yield bucket, ok, detail

    return run


def _public_access(s3: Any, bucket: str) -> tuple[bool, str]:
    blocks = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    off = sorted(k for k, v in blocks.items() if v is not True)
    return not off and len(blocks) == 4, f"not blocked: {off}" if off else "all four blocked"


def _versioning(s3: Any, bucket: str) -> tuple[bool, str]:
    status = s3.get_bucket_versioning(Bucket=bucket).get("Status", "never")
    return status == "Enabled", f"versioning {status}"


def _lifecycle(s3: Any, bucket: str) -> tuple[bool, str]:
    """Current objects expire (after artifactExpiryDays or sourceExpiryDays: the days differ per
    bucket and per stack, so the check asks for an enabled expiring rule, not a number)."""
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    expiring = [r for r in rules if r.get("Status") == "Enabled" and r.get("Expiration")]
    return bool(expiring), f"{len(expiring)} expiring rule(s)"


def _bucket_encryption(s3: Any, bucket: str) -> tuple[bool, str]:
    config = s3.get_bucket_encryption(Bucket=bucket)
    defaults = [
        r["ApplyServerSideEncryptionByDefault"]
        for r in config["ServerSideEncryptionConfiguration"]["Rules"]
    ]
    ok = any(d.get("SSEAlgorithm") == "aws:kms" and d.get("KMSMasterKeyID") for d in defaults)
    return ok, "SSE-KMS" if ok else f"encryption {defaults}"


def _source_events(session: Any, out: Outputs) -> Iterator[Finding]:
    """The source bucket sends its object events to EventBridge, where the pipeline layer's rule
    starts an S3-sourced pipeline on a new zip; switched off, the pipeline silently never starts.

    The foundation always turns them on (whatever the pipeline's ``sourceProvider``, which the
    foundation does not know), so this is checked always. GetBucketNotificationConfiguration
    answers an ``EventBridgeConfiguration`` element (empty) only while delivery is on.
    """
    bucket = out["sourceBucketName"]
    config = session.client("s3").get_bucket_notification_configuration(Bucket=bucket)
    on = "EventBridgeConfiguration" in config
    yield bucket, on, "events sent to EventBridge" if on else "EventBridge notifications off"


def _secret_kms(session: Any, out: Outputs) -> Iterator[Finding]:
    arn = out["githubTokenSecretArn"]
    key = session.client("secretsmanager").describe_secret(SecretId=arn).get("KmsKeyId")
    yield arn, bool(key), f"key {key}" if key else "default AWS key"


def _topic_kms(session: Any, out: Outputs) -> Iterator[Finding]:
    arn = out["failureTopicArn"]
    attrs = session.client("sns").get_topic_attributes(TopicArn=arn)["Attributes"]
    key = attrs.get("KmsMasterKeyId")
    yield arn, bool(key) and not key.startswith("alias/aws/"), f"key {key}"


def _topic_email(session: Any, out: Outputs) -> Iterator[Finding]:
    arn = out["failureTopicArn"]
    subs = session.client("sns").list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
    emails = [s for s in subs if s.get("Protocol") == "email"]
    yield arn, bool(emails), f"{len(emails)} email subscription(s)"


def _repositories(session: Any, out: Outputs) -> Iterator[dict[str, Any]]:
    """Each service's repository, described (every batch)."""
    ecr = session.client("ecr")
    for batch in _batches(names_of(out["repositoryNames"])):
        found = ecr.describe_repositories(repositoryNames=batch)["repositories"]
        by_name = {repo["repositoryName"]: repo for repo in found}
        yield from (by_name[name] for name in batch)


def _scan_on_push(session: Any, out: Outputs) -> Iterator[Finding]:
    for repo in _repositories(session, out):
        on = repo["imageScanningConfiguration"]["scanOnPush"]
        yield repo["repositoryName"], on is True, "scan on push" if on else "scan on push is off"


def _immutable(session: Any, out: Outputs) -> Iterator[Finding]:
    for repo in _repositories(session, out):
        mutability = repo["imageTagMutability"]
        filters = [f["filter"] for f in repo.get("imageTagMutabilityExclusionFilters") or []]
        ok = mutability == "IMMUTABLE" or (
            mutability == "IMMUTABLE_WITH_EXCLUSION"
            and bool(filters)
            and set(filters) <= set(MUTABLE_TAGS_ALLOWED)
        )
        yield (
            repo["repositoryName"],
            ok,
            f"tags {mutability}" + (f" except {filters}" if filters else ""),
        )


def _ledger(session: Any, out: Outputs) -> Iterator[Finding]:
    name = out["ledgerTableName"]
    dynamodb = session.client("dynamodb")
    backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    pitr = backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
    sse = dynamodb.describe_table(TableName=name)["Table"].get("SSEDescription") or {}
    ok = pitr == "ENABLED" and sse.get("SSEType") == "KMS" and bool(sse.get("KMSMasterKeyArn"))
    yield name, ok, f"PITR {pitr or 'off'}, encryption {sse.get('SSEType') or 'AWS owned key'}"


def _functions(out: Outputs) -> list[str]:
    return sorted(names_of(out.get("handlerArns") or {}))


def _lambda_logs_and_dead_letters(session: Any, out: Outputs) -> Iterator[Finding]:
    client = session.client("lambda")
    for arn in _functions(out):
        config = client.get_function_configuration(FunctionName=arn)
        group = (config.get("LoggingConfig") or {}).get("LogGroup")
        dlq = (config.get("DeadLetterConfig") or {}).get("TargetArn")
        yield arn, bool(group and dlq), f"log group {group or 'default'}, DLQ {dlq or 'none'}"


def _dead_letters_alarmed(session: Any, out: Outputs) -> Iterator[Finding]:
    """Each handler's SQS dead-letter queue has an alarm with enabled actions on messages waiting
    in it (AWS/SQS ApproximateNumberOfMessagesVisible, QueueName), as the plan made it."""
    functions, cloudwatch = session.client("lambda"), session.client("cloudwatch")
    for arn in _functions(out):
        config = functions.get_function_configuration(FunctionName=arn)
        queue = sqs_queue_name((config.get("DeadLetterConfig") or {}).get("TargetArn"))
        if queue is None:  # lambda-logs-and-dead-letters fails it: nothing here to watch
            yield arn, True, "no SQS dead-letter queue to watch"
            continue
        found = cloudwatch.describe_alarms_for_metric(
            Namespace=DEAD_LETTERS_METRIC[0],
            MetricName=DEAD_LETTERS_METRIC[1],
            Dimensions=[{"Name": "QueueName", "Value": queue}],
        )["MetricAlarms"]
        watching = [
            alarm["AlarmName"]
            for alarm in found
            if {"Name": "QueueName", "Value": queue} in (alarm.get("Dimensions") or [])
            and alarm.get("ActionsEnabled")
            and alarm.get("AlarmActions")
        ]
        yield (
            queue,
            bool(watching),
            f"alarm {', '.join(watching)}" if watching else "no alarm with actions on its messages",
        )


def _lambda_not_public(session: Any, out: Outputs) -> Iterator[Finding]:
    client = session.client("lambda")
    for arn in _functions(out):
        try:
            policy = json.loads(client.get_policy(FunctionName=arn)["Policy"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            yield arn, True, "no resource policy (invoked through a role)"
            continue
        open_to = [
            str(s.get("Principal"))
            for s in policy.get("Statement", [])
            if s.get("Effect") == "Allow" and _public(s)
        ]
        yield arn, not open_to, f"open to {open_to}" if open_to else "named principals only"


def _public(statement: Mapping[str, Any]) -> bool:
    principal = statement.get("Principal")
    service = principal.get("Service") if isinstance(principal, dict) else None
    if principal == "*" or (isinstance(principal, dict) and principal.get("AWS") == "*"):
        return True
    keys = {k for test in (statement.get("Condition") or {}).values() for k in test}
    return bool(service) and not keys & {
        "AWS:SourceArn",
        "aws:SourceArn",
        "AWS:SourceAccount",
        "aws:SourceAccount",
    }


def _ecr_lifecycle(session: Any, out: Outputs) -> Iterator[Finding]:
    for name in names_of(out["repositoryNames"]):
        policy = session.client("ecr").get_lifecycle_policy(repositoryName=name)
        yield name, bool(policy.get("lifecyclePolicyText")), "lifecycle policy present"


def _log_groups(session: Any, out: Outputs) -> Iterator[Finding]:
    logs = session.client("logs")
    for name in sorted(names_of(out.get("logGroupNames") or {})):
        groups = [
            g
            for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
            if g["logGroupName"] == name
        ]
        if not groups:
            yield name, False, "missing"
            continue
        days, key = groups[0].get("retentionInDays"), groups[0].get("kmsKeyId")
        ok = bool(days) and days <= MAX_LOG_RETENTION_DAYS and bool(key)
        yield name, ok, f"retention {days or 'never expires'}, key {key or 'none'}"


def _codebuild(session: Any, out: Outputs) -> Iterator[Finding]:
    names = sorted(names_of(out.get("projectNames") or {}))
    codebuild = session.client("codebuild")
    by_name = {
        p["name"]: p
        for batch in _batches(names)
        for p in codebuild.batch_get_projects(names=batch)["projects"]
    }
    for name in names:
        project = by_name.get(name)
        compute = project["environment"]["computeType"] if project else None
        yield name, compute == "BUILD_GENERAL1_SMALL", f"compute {compute or 'missing'}"


def _stages(session: Any, out: Outputs) -> Iterator[Finding]:
    for name in names_of(out["pipelineNames"]):
        stages = session.client("codepipeline").get_pipeline(name=name)["pipeline"]["stages"]
        names = tuple(s["name"] for s in stages)
        yield name, names == STAGES, " -> ".join(names)


CHECKS: tuple[Check, ...] = (
    Check("foundation", "kms-rotation", _kms_rotation),
    Check("foundation", "bucket-public-access-blocked", _each_bucket(_public_access)),
    Check("foundation", "bucket-versioning", _each_bucket(_versioning)),
    Check("foundation", "bucket-lifecycle", _each_bucket(_lifecycle)),
    Check("foundation", "bucket-sse-kms", _each_bucket(_bucket_encryption)),
    Check("foundation", "source-bucket-eventbridge", _source_events),
    Check("foundation", "secret-kms", _secret_kms),
    Check("foundation", "topic-kms", _topic_kms),
    Check("foundation", "topic-email-subscription", _topic_email),
    Check("foundation", "ledger-pitr-and-kms", _ledger),
    Check("registry", "ecr-scan-on-push", _scan_on_push),
    Check("registry", "ecr-immutable-tags", _immutable),
    Check("registry", "ecr-lifecycle", _ecr_lifecycle),
    Check("pipeline", "log-groups-retention-and-kms", _log_groups),
    Check("pipeline", "codebuild-compute", _codebuild),
    Check("pipeline", "pipeline-five-stages", _stages),
    Check("pipeline", "lambda-logs-and-dead-letters", _lambda_logs_and_dead_letters),
    Check("pipeline", "lambda-dead-letters-alarmed", _dead_letters_alarmed),
    Check("pipeline", "lambda-not-public", _lambda_not_public),
)
"""Every post-deploy check, by layer."""


class _Clients:
    """A session that makes one client per service for a whole run, not one per check.

    Creating a boto3 client reads its service model and copies the session's event hooks
    (tens of milliseconds each); nineteen checks need only eleven services.
    """

    def __init__(self, session: Any) -> None:
        self._session = session
        self._made: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._made:
            self._made[service] = self._session.client(service)
        return self._made[service]


def verify(outputs_by_layer: Mapping[str, Outputs | None], session: Any) -> list[CheckResult]:
    """Run the checks of every layer whose outputs are given (None: stack not deployed)."""
    clients = _Clients(session)
    results: list[CheckResult] = []
    for check in CHECKS:
        if check.layer not in outputs_by_layer:
            continue
        outputs = outputs_by_layer[check.layer]
        if outputs is None:
            results.append(CheckResult(check.layer, check.name, "-", False, "stack not deployed"))
            continue
        try:
            results.extend(
                CheckResult(check.layer, check.name, resource, ok, detail)
                for resource, ok, detail in check.run(clients, outputs)
            )
        except ClientError as exc:
            results.append(CheckResult(check.layer, check.name, "-", False, _api_error(exc)))
        except (BotoCoreError, KeyError, ValueError) as exc:
            results.append(CheckResult(check.layer, check.name, "-", False, str(exc)))
    return results


def table(results: list[CheckResult]) -> str:
    """A pass/fail table, one line per checked resource, and a count."""
    width = max((len(r.check) for r in results), default=5)
    lines = [
        f"{'PASS' if r.ok else 'FAIL'}  {r.layer:<10} {r.check:<{width}}  {r.resource}"
        f"  ({r.detail})"
        for r in results
    ]
    failed = sum(not r.ok for r in results)
    lines.append(f"{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)

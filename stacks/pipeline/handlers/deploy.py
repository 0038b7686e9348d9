"""Deploy handler: validate the deployed image, promote it to ``production``, record the release.

Invoked by the Deploy stage after the ECS deploy action (a CodePipeline ``Invoke``/``Lambda``
action), one per service. Its UserParameters are JSON: ``service``, ``repository``,
``imageTag``, ``commit``, ``executionId`` (CodePipeline resolves the ``#{...}`` variables in them)
and ``threshold``. It

1. claims the job's own ledger row (key ``job#<job id>``); a job delivered again (Lambda retries
   an asynchronous invocation, CodePipeline may redeliver) finds the answer recorded there and
   sends it again, promoting nothing;
2. finds the image by its tag in ECR (DescribeImages) and takes its digest;
3. reads its scan (DescribeImageScanFindings; basic and enhanced scanning) and fails on any
   finding at or above the threshold, or on a scan that is not complete (fail closed);
4. tags that digest ``production`` (BatchGetImage for the manifest, PutImage with it): the
   repository keeps commit tags immutable and lets only this tag move;
5. writes the release (service, commit, digest, execution id, time, state) to the ledger, best
   effort;
6. reports PutJobSuccessResult, or on any failure (any exception, a success report that fails)
   PutJobFailureResult and a message to the failure topic, so the stage fails and rolls back.
   Without an answer the action would wait until it times out.

Event shape: https://docs.aws.amazon.com/codepipeline/latest/userguide/actions-invoke-lambda-function.html
The event carries temporary artifact credentials: it is never logged.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

PARTITION_KEY = "executionId"
SORT_KEY = "time"
KIND_KEY = "kind"
SERVICE_KEY = "service"

JOB_PREFIX = "job#"
JOB_SORT_KEY = "answer"
"""A job's own row: partition ``job#<job id>``, sort key ``answer``. It holds the answer the job
was given and when it was first delivered; it has no ``kind``, so the by-kind index (the release
listing) never sees it."""
FINAL_STATES = ("SUCCEEDED", "FAILED")

PRODUCTION_TAG = "production"
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
"""Most severe first; a threshold blocks itself and everything above it."""
SCAN_DONE = ("COMPLETE", "ACTIVE")
"""Basic scanning reports COMPLETE; enhanced (continuous) scanning reports ACTIVE."""
PARAMETERS = ("service", "repository", "imageTag", "commit", "executionId", "threshold")
"""Every key the action's UserParameters must give (``stacks/pipeline/releases.py``)."""
MANIFEST_TYPES = [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
]

log = logging.getLogger()
log.setLevel(logging.INFO)


class ReleaseRefused(Exception):
    """The image may not go to production; the message says why (it reaches the console)."""


@dataclass(frozen=True)
class Clients:
    """What the handler talks to; tests pass moto-backed or stubbed ones."""

    ecr: Any
    codepipeline: Any
    sns: Any
    table: Any
    topic_arn: str

    @classmethod
    def from_environment(cls) -> Clients:
        """The clients of this execution environment (made on its first invocation)."""
        return clients_for(os.environ["LEDGER_TABLE"], os.environ["FAILURE_TOPIC_ARN"])


@functools.cache
def clients_for(table_name: str, topic_arn: str) -> Clients:
    """Clients made once per execution environment, not once per invocation.

    Lambda reuses an environment for later invocations; clients made outside the handler's own
    work are reused with it (https://docs.aws.amazon.com/lambda/latest/dg/best-practices.html).
    """
    session = boto3.Session()
    dynamodb: Any = session.resource("dynamodb")
    return Clients(
        ecr=session.client("ecr"),
        codepipeline=session.client("codepipeline"),
        sns=session.client("sns"),
        table=dynamodb.Table(table_name),
        topic_arn=topic_arn,
    )


def handler(event: dict[str, Any], context: Any = None) -> dict[str, str]:
    """Lambda entry point: ``SERVICE`` names the service whose handler this function is."""
    return release(event, Clients.from_environment(), service=os.environ.get("SERVICE", ""))


def release(event: dict[str, Any], clients: Clients, *, service: str = "") -> dict[str, str]:
    """Run the job in ``event``; report its result to CodePipeline and return the release row.

    ``service`` is the service this handler deploys (its ``SERVICE`` variable): a job whose
    UserParameters name another service is refused, and a job whose UserParameters cannot be
    read is still recorded under it. Empty: the UserParameters' service is taken as it is.

    Every outcome answers the job: a refusal, any exception of the checks or the promotion, and
    a success report that fails all end in PutJobFailureResult with the reason. The ledger and
    the failure topic are best effort: neither can keep the answer from being sent. Only when
    PutJobFailureResult itself fails does the invocation fail, so that Lambda retries it.

    CodePipeline invokes the function asynchronously, so a job can arrive more than once. The
    first delivery claims the job's own row (its key is the job id); a later one finds it, sends
    the answer recorded there again, writes the same release row and promotes nothing.
    """
    job = event["CodePipeline.job"]
    job_id = job["id"]
    at = now()
    params: dict[str, str] = {"service": service} if service else {}
    replay = False
    try:
        previous = _claim(clients.table, job_id, at)
        if previous:
            at = str(previous.get("recordedAt") or at)
        params = parameters(job, service)
        if previous and previous.get("state") in FINAL_STATES:
            replay = True
            answer = Answer(
                str(previous["state"]),
                str(previous.get("imageDigest", "")),
                str(previous.get("reason", "")),
            )
            log.info("job %s was answered before (%s): same answer", job_id, answer.state)
        else:
            digest = image_digest(clients.ecr, params["repository"], params["imageTag"])
            check_scan(clients.ecr, params["repository"], digest, params["threshold"])
            promote(clients.ecr, params["repository"], digest)
            answer = Answer("SUCCEEDED", digest)
    except Exception as exc:  # every failure answers the job; the reason says what it was
        answer = Answer("FAILED", reason=failure_reason(exc))
    return _answer(clients, job_id, params, at, answer, replay=replay)


@dataclass(frozen=True)
class Answer:
    """What the job is told: SUCCEEDED with the promoted digest, or FAILED with the reason."""

    state: str
    digest: str = ""
    reason: str = ""


def failure_reason(exc: Exception) -> str:
    """The reason a job fails: a refusal's own words; the type and message of anything else."""
    if isinstance(exc, (ReleaseRefused, ClientError, BotoCoreError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _answer(
    clients: Clients,
    job_id: str,
    params: dict[str, str],
    at: str,
    answer: Answer,
    *,
    replay: bool,
) -> dict[str, str]:
    """Record ``answer`` (best effort), then report it; a failed success report fails the job."""
    if answer.state == "SUCCEEDED":
        item = _record(clients.table, job_id, params, at, answer)
        try:
            clients.codepipeline.put_job_success_result(
                jobId=job_id,
                executionDetails={
                    "summary": f"{params['imageTag']} ({answer.digest}) tagged {PRODUCTION_TAG}",
                    "percentComplete": 100,
                },
                outputVariables={"IMAGE_DIGEST": answer.digest},
            )
        except Exception as exc:
            if _answered_already(exc, job_id):
                return item
            answer = Answer("FAILED", reason=f"the success report failed: {failure_reason(exc)}")
            replay = False
        else:
            done = "answered again" if replay else f"promoted to {PRODUCTION_TAG}"
            log.info("job %s: %s %s", job_id, answer.digest, done)
            return item
    log.warning("job %s refused: %s", job_id, answer.reason)
    item = _record(clients.table, job_id, params, at, answer)
    if not replay:
        notify(clients, params, answer.reason)
    try:
        clients.codepipeline.put_job_failure_result(
            jobId=job_id, failureDetails={"type": "JobFailed", "message": answer.reason[:5000]}
        )
    except Exception as exc:
        if not _answered_already(exc, job_id):
            raise  # nothing else can answer the job: fail the invocation so Lambda retries it
    return item


def _answered_already(exc: Exception, job_id: str) -> bool:
    """True when CodePipeline says the job is no longer waiting (answered, or timed out)."""
    if isinstance(exc, ClientError) and exc.response["Error"]["Code"] == "InvalidJobStateException":
        log.info("job %s is no longer in progress: %s", job_id, exc)
        return True
    return False


def _claim(table: Any, job_id: str, at: str) -> dict[str, Any] | None:
    """Claim the job's row; the row an earlier delivery of the same job left, if any.

    One conditional PutItem (the row is written only if absent; when present, DynamoDB returns
    it), so no read permission is needed. A ledger that cannot be written claims nothing and
    the job goes on: the ledger never keeps the job from its answer.
    """
    try:
        table.put_item(
            Item={
                PARTITION_KEY: JOB_PREFIX + job_id,
                SORT_KEY: JOB_SORT_KEY,
                "jobId": job_id,
                "state": "STARTED",
                "recordedAt": at,
            },
            ConditionExpression="attribute_not_exists(#key)",
            ExpressionAttributeNames={"#key": PARTITION_KEY},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return _plain(exc.response.get("Item", {}))
        log.error("could not claim job %s in the ledger: %s", job_id, exc)
    except Exception as exc:
        log.error("could not claim job %s in the ledger: %s", job_id, exc)
    return None


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """An item from an error response (DynamoDB's typed JSON, ``{"S": ...}``) as plain values."""
    deserialize = TypeDeserializer().deserialize
    return {key: deserialize(value) for key, value in item.items()}


def _record(
    table: Any, job_id: str, params: dict[str, str], at: str, answer: Answer
) -> dict[str, str]:
    """Write the release row and the job's answer (best effort); the release row."""
    item = ledger_row(
        params, job_id, answer.state, digest=answer.digest, reason=answer.reason, at=at
    )
    job_row = {
        PARTITION_KEY: JOB_PREFIX + job_id,
        SORT_KEY: JOB_SORT_KEY,
        "jobId": job_id,
        "state": answer.state,
        "imageDigest": answer.digest,
        "recordedAt": at,
        "release": f"{item[PARTITION_KEY]} {item[SORT_KEY]}",
    }
    if answer.reason:
        job_row["reason"] = answer.reason[:5000]  # the whole message the job was given
    for row in (item, job_row):
        try:
            table.put_item(Item=row)
        except Exception as exc:
            log.error("could not record job %s in the ledger: %s", job_id, exc)
    return item


def parameters(job: dict[str, Any], service: str = "") -> dict[str, str]:
    """The action's UserParameters, checked: every key present, a known threshold, and the
    handler's own ``service`` (when it is given)."""
    raw = job["data"]["actionConfiguration"]["configuration"].get("UserParameters", "")
    try:
        params = json.loads(raw)
    except ValueError:
        raise ReleaseRefused(f"UserParameters is not JSON: {raw[:200]!r}") from None
    if not isinstance(params, dict):
        raise ReleaseRefused("UserParameters must be a JSON object")
    missing = [key for key in PARAMETERS if not params.get(key)]
    if missing:
        raise ReleaseRefused(f"UserParameters lacks {', '.join(missing)}")
    if params["threshold"] not in SEVERITIES:
        raise ReleaseRefused(f"threshold {params['threshold']!r} is not one of {SEVERITIES}")
    if service and params["service"] != service:
        raise ReleaseRefused(
            f"UserParameters name service {params['service']!r}; this handler deploys {service!r}"
        )
    return {key: str(params[key]) for key in PARAMETERS}


def image_digest(ecr: Any, repository: str, tag: str) -> str:
    """The digest of ``repository:tag``; ReleaseRefused if ECR does not have it."""
    try:
        found = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ImageNotFoundException":
            raise ReleaseRefused(f"image {repository}:{tag} is not in ECR") from None
        raise
    details = found.get("imageDetails", [])
    if len(details) != 1:
        raise ReleaseRefused(f"ECR returned {len(details)} images for {repository}:{tag}, not 1")
    return details[0]["imageDigest"]


def blocking(threshold: str) -> tuple[str, ...]:
    """The severities a threshold blocks: itself and every more severe one."""
    return SEVERITIES[: SEVERITIES.index(threshold) + 1]


def check_scan(ecr: Any, repository: str, digest: str, threshold: str) -> None:
    """ReleaseRefused unless the image's scan is done and has no finding at the threshold."""
    counts: dict[str, int] = {}
    status = ""
    try:
        pages = ecr.get_paginator("describe_image_scan_findings").paginate(
            repositoryName=repository, imageId={"imageDigest": digest}
        )
        for page in pages:
            status = page.get("imageScanStatus", {}).get("status", "")
            findings = page.get("imageScanFindings", {})
            if "findingSeverityCounts" in findings:
                counts = dict(findings["findingSeverityCounts"])
                break
            # Without the summary, count each finding (basic `findings`, enhanced ones too).
            for finding in [*findings.get("findings", []), *findings.get("enhancedFindings", [])]:
                severity = finding.get("severity", "UNDEFINED")
                counts[severity] = counts.get(severity, 0) + 1
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ScanNotFoundException":
            raise ReleaseRefused(f"image {digest} in {repository} was never scanned") from None
        raise
    if status not in SCAN_DONE:
        raise ReleaseRefused(f"the scan of {digest} is {status or 'unknown'}, not complete")
    found = {s: counts[s] for s in blocking(threshold) if counts.get(s)}
    if found:
        summary = ", ".join(f"{count} {severity}" for severity, count in found.items())
        raise ReleaseRefused(f"{digest} has findings at or above {threshold}: {summary}")


def promote(ecr: Any, repository: str, digest: str) -> None:
    """Point the ``production`` tag at ``digest`` (PutImage with the image's own manifest)."""
    got = ecr.batch_get_image(
        repositoryName=repository,
        imageIds=[{"imageDigest": digest}],
        acceptedMediaTypes=MANIFEST_TYPES,
    )
    if len(got.get("images", [])) != 1:
        failures = "; ".join(
            f"{failure.get('failureCode', '?')}: {failure.get('failureReason', '')}"
            for failure in got.get("failures", [])
        )
        raise ReleaseRefused(
            f"BatchGetImage did not return {digest} from {repository}: {failures or 'no image'}"
        )
    image = got["images"][0]
    put: dict[str, Any] = {
        "repositoryName": repository,
        "imageManifest": image["imageManifest"],
        "imageTag": PRODUCTION_TAG,
        "imageDigest": digest,
    }
    if image.get("imageManifestMediaType"):
        put["imageManifestMediaType"] = image["imageManifestMediaType"]
    try:
        ecr.put_image(**put)
    except ClientError as exc:
        # Already production (a retried job, or a rollback to the image that is there): done.
        if exc.response["Error"]["Code"] != "ImageAlreadyExistsException":
            raise


def ledger_row(
    params: dict[str, str], job_id: str, state: str, *, digest: str, reason: str = "", at: str
) -> dict[str, str]:
    """The release row: what was deployed, of which service, by which execution, when, and how
    it ended.

    ``at`` is when the job was first delivered, so every delivery of a job writes the same row.
    """
    item = {
        PARTITION_KEY: params.get("executionId") or f"job-{job_id}",
        SORT_KEY: f"{at}#release",
        KIND_KEY: "release",
        "state": state,
        "stage": "Deploy",
        "commit": params.get("commit", ""),
        "imageTag": params.get("imageTag", ""),
        "imageDigest": digest,
        "repository": params.get("repository", ""),
        "jobId": job_id,
        "recordedAt": at,
    }
    if params.get("service"):  # unknown only when the UserParameters could not be read
        item[SERVICE_KEY] = params["service"]
    if reason:
        item["reason"] = reason[:1000]
    return item


def notify(clients: Clients, params: dict[str, str], reason: str) -> None:
    """Tell the failure topic the release was refused (best effort: the job result matters)."""
    image = f"{params.get('repository', '?')}:{params.get('imageTag', '?')}"
    try:
        clients.sns.publish(
            TopicArn=clients.topic_arn,
            Subject="Deploy refused: image not promoted to production"[:100],
            Message=(
                f"The deploy handler of service {params.get('service', '?')} refused {image}"
                f" (execution"
                f" {params.get('executionId', '?')}, commit {params.get('commit', '?')}):"
                f" {reason}. The Deploy stage fails and rolls back."
            ),
        )
    except Exception as exc:
        log.error("could not notify the failure topic: %s", exc)


def now() -> str:
    """The current time, ISO-8601 UTC with milliseconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

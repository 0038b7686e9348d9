"""Deploy handler: validate the deployed image, promote it to ``production``, record the release.

Invoked by the Deploy stage after the ECS deploy action (a CodePipeline ``Invoke``/``Lambda``
action). Its UserParameters are JSON: ``repository``, ``imageTag``, ``commit``, ``executionId``
(CodePipeline resolves the ``#{...}`` variables in them) and ``threshold``. It

1. finds the image by its tag in ECR (DescribeImages) and takes its digest;
2. reads its scan (DescribeImageScanFindings; basic and enhanced scanning) and fails on any
   finding at or above the threshold, or on a scan that is not complete (fail closed);
3. tags that digest ``production`` (BatchGetImage for the manifest, PutImage with it): the
   repository keeps commit tags immutable and lets only this tag move;
4. writes the release (commit, digest, execution id, time, state) to the ledger;
5. reports PutJobSuccessResult, or on any failure PutJobFailureResult and a message to the
   failure topic, so the stage fails and rolls back.

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
from botocore.exceptions import BotoCoreError, ClientError

PARTITION_KEY = "executionId"
SORT_KEY = "time"
KIND_KEY = "kind"

PRODUCTION_TAG = "production"
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
"""Most severe first; a threshold blocks itself and everything above it."""
SCAN_DONE = ("COMPLETE", "ACTIVE")
"""Basic scanning reports COMPLETE; enhanced (continuous) scanning reports ACTIVE."""
PARAMETERS = ("repository", "imageTag", "commit", "executionId", "threshold")
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
    """Lambda entry point."""
    return release(event, Clients.from_environment())


def release(event: dict[str, Any], clients: Clients) -> dict[str, str]:
    """Run the job in ``event``; report its result to CodePipeline and return the release row."""
    job = event["CodePipeline.job"]
    job_id = job["id"]
    params: dict[str, str] = {}
    try:
        params = parameters(job)
        digest = image_digest(clients.ecr, params["repository"], params["imageTag"])
        check_scan(clients.ecr, params["repository"], digest, params["threshold"])
        promote(clients.ecr, params["repository"], digest)
    except (ReleaseRefused, ClientError, BotoCoreError) as exc:
        reason = str(exc)
        log.warning("job %s refused: %s", job_id, reason)
        item = ledger_row(params, job_id, "FAILED", digest="", reason=reason)
        notify(clients, params, reason)
        _record(clients.table, item)
        clients.codepipeline.put_job_failure_result(
            jobId=job_id, failureDetails={"type": "JobFailed", "message": reason[:5000]}
        )
        return item
    item = ledger_row(params, job_id, "SUCCEEDED", digest=digest)
    clients.table.put_item(Item=item)
    clients.codepipeline.put_job_success_result(
        jobId=job_id,
        executionDetails={
            "summary": f"{params['imageTag']} ({digest}) tagged {PRODUCTION_TAG}",
            "percentComplete": 100,
        },
        outputVariables={"IMAGE_DIGEST": digest},
    )
    log.info("job %s: %s promoted to %s", job_id, digest, PRODUCTION_TAG)
    return item


def parameters(job: dict[str, Any]) -> dict[str, str]:
    """The action's UserParameters, checked: every key present, a known threshold."""
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
    return {key: str(params[key]) for key in PARAMETERS}


def image_digest(ecr: Any, repository: str, tag: str) -> str:
    """The digest of ``repository:tag``; ReleaseRefused if ECR does not have it."""
    try:
        found = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ImageNotFoundException":
            raise ReleaseRefused(f"image {repository}:{tag} is not in ECR") from None
        raise
    (detail,) = found["imageDetails"]
    return detail["imageDigest"]


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
    (image,) = ecr.batch_get_image(
        repositoryName=repository,
        imageIds=[{"imageDigest": digest}],
        acceptedMediaTypes=MANIFEST_TYPES,
    )["images"]
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
    params: dict[str, str], job_id: str, state: str, *, digest: str, reason: str = ""
) -> dict[str, str]:
    """The release row: what was deployed, by which execution, when, and how it ended."""
    at = now()
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
                f"The deploy handler refused {image} (execution"
                f" {params.get('executionId', '?')}, commit {params.get('commit', '?')}):"
                f" {reason}. The Deploy stage fails and rolls back."
            ),
        )
    except (ClientError, BotoCoreError) as exc:
        log.error("could not notify the failure topic: %s", exc)


def _record(table: Any, item: dict[str, str]) -> None:
    try:
        table.put_item(Item=item)
    except (ClientError, BotoCoreError) as exc:
        log.error("could not record the refused release: %s", exc)


def now() -> str:
    """The current time, ISO-8601 UTC with milliseconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

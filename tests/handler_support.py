"""Stand-ins for the handlers' tests: a moto account with the ledger, topic and repository."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from shared import ledger

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
TABLE = "acme-foundation-ledger-dev"
REPO = "acme-registry-app-dev"
EVENTS = Path(__file__).resolve().parent / "events"


def fake_credentials(monkeypatch: Any, region: str = REGION) -> None:
    """Credentials moto accepts, and the region, in the environment boto3 reads."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
    }.items():
        monkeypatch.setenv(name, value)


def event(name: str) -> dict[str, Any]:
    """An AWS-documented event sample from tests/events/."""
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))


def create_ledger(session: Any) -> Any:
    """The ledger table as the foundation declares it (keys and index from shared.ledger)."""
    dynamodb = session.resource("dynamodb")
    return dynamodb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": ledger.PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": ledger.SORT_KEY, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": ledger.PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": ledger.SORT_KEY, "AttributeType": "S"},
            {"AttributeName": ledger.KIND_KEY, "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": ledger.KIND_INDEX,
                "KeySchema": [
                    {"AttributeName": ledger.KIND_KEY, "KeyType": "HASH"},
                    {"AttributeName": ledger.SORT_KEY, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


def rows(table: Any) -> list[dict[str, Any]]:
    """Every row of the ledger, sorted by (executionId, time)."""
    items = table.scan()["Items"]
    return sorted(items, key=lambda i: (i[ledger.PARTITION_KEY], i[ledger.SORT_KEY]))


def manifest(layer: str) -> str:
    """A Docker image manifest whose digest differs per ``layer``."""
    digest = "sha256:" + hashlib.sha256(layer.encode()).hexdigest()
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 7023,
                "digest": digest,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 32654,
                    "digest": digest,
                }
            ],
        }
    )


def create_repository(session: Any) -> Any:
    """The registry's repository: commit tags immutable, only ``production`` may move."""
    ecr = session.client("ecr")
    ecr.create_repository(
        repositoryName=REPO,
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=[{"filter": "production", "filterType": "WILDCARD"}],
        imageScanningConfiguration={"scanOnPush": True},
    )
    return ecr


def push(ecr: Any, tag: str, *, scan: bool = True) -> str:
    """Push an image tagged ``tag`` (and scan it, as scan on push does); its digest."""
    digest = ecr.put_image(repositoryName=REPO, imageManifest=manifest(tag), imageTag=tag)["image"][
        "imageId"
    ]["imageDigest"]
    if scan:
        ecr.start_image_scan(repositoryName=REPO, imageId={"imageDigest": digest})
    return digest


def topic_with_inbox(session: Any) -> tuple[str, Any, str]:
    """The failure topic with an SQS queue subscribed, to read what was published."""
    sns, sqs = session.client("sns"), session.client("sqs")
    topic = sns.create_topic(Name="acme-foundation-pipeline-failures-dev")["TopicArn"]
    url = sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return topic, sqs, url


def inbox(sqs: Any, url: str) -> list[dict[str, Any]]:
    """The SNS notifications delivered to the inbox queue."""
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def releases(table: Any) -> list[dict[str, Any]]:
    """The ledger's release rows (what ``./dev releases`` lists), by (executionId, time)."""
    return [row for row in rows(table) if row.get(ledger.KIND_KEY) == "release"]


class Calls:
    """A boto3 client (or Table) whose named calls are replaced, every other call its own.

    The handlers take their clients as arguments; a test passes one of these to make a single
    call fail (or answer) the way moto cannot, and leaves the rest to moto.
    """

    def __init__(self, real: Any, **calls: Any) -> None:
        self._real = real
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        return self._calls[name] if name in self._calls else getattr(self._real, name)


def client_error(code: str, operation: str, message: str = "") -> Exception:
    """The ClientError botocore raises for AWS's error ``code`` from ``operation``."""
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": message or code}}, operation)


def raising(error: Exception) -> Any:
    """A call that raises ``error``."""

    def call(*args: Any, **kwargs: Any) -> Any:
        raise error

    return call


def scan_result(account_id: str, digest: str, status: str, findings: dict[str, Any]) -> None:
    """Make moto's DescribeImageScanFindings answer ``status`` and ``findings`` for ``digest``.

    Through moto's documented API for custom scan results; the answer is first checked against
    the shape botocore's ECR model gives DescribeImageScanFindings, so a test cannot feed the
    handler something ECR would never return.
    """
    import requests
    from botocore.validate import ParamValidator

    result = {
        "registryId": account_id,
        "repositoryName": REPO,
        "imageId": {"imageDigest": digest},
        "imageScanStatus": {"status": status, "description": f"scan {status}"},
        "imageScanFindings": findings,
    }
    report = ParamValidator().validate(result, _scan_findings_shape())
    if report.has_errors():
        raise AssertionError(report.generate_report())
    statuses = scan_statuses()
    if status not in statuses:
        raise AssertionError(f"ECR has no scan status {status!r}: {statuses}")
    answer = requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/ecr/scan-finding-results",
        json={"results": [result], "region": REGION, "account_id": account_id},
        timeout=5,
    )
    answer.raise_for_status()


def _scan_findings_shape() -> Any:
    """The output shape of ECR's DescribeImageScanFindings, from botocore's service model."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("ecr")
    return model.operation_model("DescribeImageScanFindings").output_shape


def scan_statuses() -> list[str]:
    """Every scan status ECR's API model lists for an image."""
    return list(_scan_findings_shape().members["imageScanStatus"].members["status"].enum)

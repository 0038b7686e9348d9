"""Recorder: writes every state change of the pipelines, their stages and builds to the ledger.

One recorder for the layer, invoked by two EventBridge rules (the execution and stage state
changes of every service's pipeline; the build state changes of the layer's CodeBuild projects).
Each event becomes one ledger row: the execution id (a build's id for a build), the time, the
service, what changed (kind, stage or project, state) and the commit. The sort key is the event's
time, ``#`` and the event id, so a redelivered event (EventBridge delivers at least once)
overwrites its own row and never adds a second one.

The service is the pipeline's name without the layer's common ending (pipelines are named
``<service>-<namespace>-<env>``; the ending ``-<namespace>-<env>`` is ``PIPELINE_SUFFIX``). A
build started by a pipeline names it in ``initiator`` (``codepipeline/<pipeline name>``, as
CodeBuild's API reference documents ``Build.initiator``); a build started otherwise (by hand, by
another tool) gets no service, nor does a pipeline whose name does not end so.

Event shapes: https://docs.aws.amazon.com/codepipeline/latest/userguide/detect-state-changes-cloudwatch-events.html
and https://docs.aws.amazon.com/codebuild/latest/userguide/sample-build-notifications.html

Packaged alone (no Pulumi, nothing from this repository); the ledger's key names are spelled here
and held to ``shared/ledger.py`` by a test.
"""

from __future__ import annotations

import functools
import logging
import os
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

PARTITION_KEY = "executionId"
SORT_KEY = "time"
KIND_KEY = "kind"
SERVICE_KEY = "service"
PIPELINE_INITIATOR = "codepipeline/"
"""How CodeBuild's ``initiator`` starts for a build a pipeline started."""

PIPELINE_EXECUTION = "CodePipeline Pipeline Execution State Change"
STAGE_EXECUTION = "CodePipeline Stage Execution State Change"
BUILD_STATE = "CodeBuild Build State Change"

log = logging.getLogger()
log.setLevel(logging.INFO)


def handler(event: dict[str, Any], context: Any = None) -> dict[str, str]:
    """Lambda entry point: record one event (the table, the clients and the pipelines' common
    ending come from the environment)."""
    table, codepipeline = aws(os.environ["LEDGER_TABLE"])
    return record(event, table, codepipeline, os.environ["PIPELINE_SUFFIX"])


@functools.cache
def aws(table_name: str) -> tuple[Any, Any]:
    """The ledger table and a CodePipeline client, made once per execution environment.

    Lambda reuses an environment for later invocations; clients made outside the handler's own
    work are reused with it (https://docs.aws.amazon.com/lambda/latest/dg/best-practices.html).
    """
    session = boto3.Session()
    dynamodb: Any = session.resource("dynamodb")
    return dynamodb.Table(table_name), session.client("codepipeline")


def record(event: dict[str, Any], table: Any, codepipeline: Any, suffix: str) -> dict[str, str]:
    """Write ``event`` to ``table`` as one row; the row's keys are returned.

    ``suffix`` is how every pipeline of the layer ends (``-<namespace>-<env>``).
    """
    item = row(event, codepipeline, suffix)
    table.put_item(Item=item)
    log.info(
        "recorded %s %s %s of %s (service %s)",
        item[KIND_KEY],
        item.get("stage", ""),
        item["state"],
        item[PARTITION_KEY],
        item.get(SERVICE_KEY, "none"),
    )
    return {PARTITION_KEY: item[PARTITION_KEY], SORT_KEY: item[SORT_KEY]}


def row(event: dict[str, Any], codepipeline: Any, suffix: str) -> dict[str, str]:
    """The ledger row for one documented event; ValueError for any other shape."""
    detail_type = event.get("detail-type")
    detail = event.get("detail") or {}
    base = {
        SORT_KEY: f"{iso_time(event['time'])}#{event['id']}",
        "eventId": event["id"],
        "recordedAt": now(),
    }
    if detail_type == PIPELINE_EXECUTION:
        pipeline, execution = detail["pipeline"], detail["execution-id"]
        return {
            **base,
            **service_of(pipeline, suffix),
            PARTITION_KEY: execution,
            KIND_KEY: "pipeline",
            "pipeline": pipeline,
            "state": detail["state"],
            "commit": commit_of(codepipeline, pipeline, execution),
        }
    if detail_type == STAGE_EXECUTION:
        return {
            **base,
            **service_of(detail["pipeline"], suffix),
            PARTITION_KEY: detail["execution-id"],
            KIND_KEY: "stage",
            "pipeline": detail["pipeline"],
            "stage": detail["stage"],
            "state": detail["state"],
        }
    if detail_type == BUILD_STATE:
        info = detail.get("additional-information") or {}
        initiator = str(info.get("initiator", ""))
        started_by = initiator.removeprefix(PIPELINE_INITIATOR)
        return {
            **base,
            **(service_of(started_by, suffix) if started_by != initiator else {}),
            PARTITION_KEY: detail["build-id"],
            KIND_KEY: "build",
            "stage": detail["project-name"],
            "state": detail["build-status"],
            "commit": info.get("resolved-source-version") or info.get("source-version") or "",
            "initiator": initiator,
        }
    raise ValueError(f"not an event the recorder handles: detail-type {detail_type!r}")


def service_of(pipeline: str, suffix: str) -> dict[str, str]:
    """``{"service": name}`` for a pipeline named ``<name><suffix>``; ``{}`` for any other name
    (no service is better than a wrong one)."""
    service = pipeline.removesuffix(suffix) if suffix else ""
    if service and service != pipeline:
        return {SERVICE_KEY: service}
    return {}


def commit_of(codepipeline: Any, pipeline: str, execution: str) -> str:
    """The source revision (the commit) of an execution; '' when CodePipeline cannot say.

    A missing commit never loses the event: the row is written without it.
    """
    try:
        found = codepipeline.get_pipeline_execution(
            pipelineName=pipeline, pipelineExecutionId=execution
        )
    except (ClientError, BotoCoreError) as exc:
        log.warning("no commit for %s: %s", execution, exc)
        return ""
    revisions = found["pipelineExecution"].get("artifactRevisions") or []
    return revisions[0].get("revisionId", "") if revisions else ""


def iso_time(value: str) -> str:
    """An event's time as ISO-8601 UTC (``2017-09-01T16:14:28Z``), refusing anything else."""
    parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> str:
    """The current time, ISO-8601 UTC with milliseconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

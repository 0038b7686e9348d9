"""The Lambda handlers, called with the event samples AWS documents, against moto.

moto stands in for DynamoDB, ECR, SNS and SQS; CodePipeline's job-result and execution calls go
through botocore's Stubber (moto does not implement PutJob*Result), which also checks the exact
parameters the handler sends.
"""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto.ecr.models import ecr_backends

from shared import ledger
from stacks.pipeline.handlers import deploy, recorder
from tests.handler_support import (
    REGION,
    REPO,
    TABLE,
    create_ledger,
    create_repository,
    event,
    inbox,
    manifest,
    push,
    rows,
    topic_with_inbox,
)
from tests.moto_support import fresh_account, moto_for_the_module

EXECUTION = "12345678-1234-5678-abcd-12345678abcd"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
JOB = "11111111-abcd-1111-abcd-111111abcdef"


moto_session = moto_for_the_module(REGION)


@pytest.fixture
def account_id(monkeypatch) -> str:
    """An empty moto account of this test's own: the ledger, repository and topic are new."""
    return fresh_account(monkeypatch)


@pytest.fixture
def session(moto_session, account_id):
    """The module's session (one client per service), its requests going to ``account_id``."""
    return moto_session


@pytest.fixture(autouse=True)
def fresh_environment():
    """Each test is a new Lambda execution environment: no clients kept from another test."""
    recorder.aws.cache_clear()
    deploy.clients_for.cache_clear()
    yield
    recorder.aws.cache_clear()
    deploy.clients_for.cache_clear()


@pytest.fixture
def sessions_made(monkeypatch):
    """How many boto3 Sessions the handlers made."""
    made = []

    def counted(*args, **kwargs):
        made.append(1)
        return real(*args, **kwargs)

    real = boto3.Session
    monkeypatch.setattr(recorder.boto3, "Session", counted)
    return made


@pytest.fixture
def table(session):
    return create_ledger(session)


def test_handlers_and_the_table_spell_the_ledger_keys_alike():
    expected = ("executionId", "time", "kind")
    assert expected == (ledger.PARTITION_KEY, ledger.SORT_KEY, ledger.KIND_KEY)
    for module in (recorder, deploy):
        assert expected == (module.PARTITION_KEY, module.SORT_KEY, module.KIND_KEY)


# --- recorder ----------------------------------------------------------------------------------


def _execution_lookup(client, commit=COMMIT):
    stub = Stubber(client)
    stub.add_response(
        "get_pipeline_execution",
        {
            "pipelineExecution": {
                "pipelineName": "acme-pipeline-app-dev",
                "pipelineExecutionId": EXECUTION,
                "status": "InProgress",
                "artifactRevisions": [{"name": "SourceOutput", "revisionId": commit}],
            }
        },
        {"pipelineName": "acme-pipeline-app-dev", "pipelineExecutionId": EXECUTION},
    )
    return stub


def test_recorder_writes_a_pipeline_execution_with_its_commit(session, table):
    codepipeline = session.client("codepipeline")
    with _execution_lookup(codepipeline) as stub:
        keys = recorder.record(event("pipeline-execution-started"), table, codepipeline)
        stub.assert_no_pending_responses()
    (row,) = rows(table)
    assert keys == {
        "executionId": EXECUTION,
        "time": "2024-06-01T12:00:00Z#01234567-0123-0123-0123-012345678901",
    }
    assert row["kind"] == "pipeline"
    assert row["state"] == "STARTED"
    assert row["pipeline"] == "acme-pipeline-app-dev"
    assert row["commit"] == COMMIT


def test_recorder_writes_a_stage_execution(session, table):
    recorder.record(event("stage-execution-started"), table, session.client("codepipeline"))
    (row,) = rows(table)
    assert (row["executionId"], row["kind"], row["stage"], row["state"]) == (
        EXECUTION,
        "stage",
        "Deploy",
        "STARTED",
    )
    assert row["time"].startswith("2024-06-01T12:00:00Z#")


def test_recorder_writes_a_build_with_its_project_and_source_version(session, table):
    recorder.record(event("codebuild-build-state-change"), table, session.client("codepipeline"))
    (row,) = rows(table)
    assert row["executionId"] == (
        "arn:aws:codebuild:us-east-1:111111111111:build/acme-pipeline-service-billing-dev:"
        "8745a7a9-c340-456a-9166-edf953571bEX"
    )
    assert (row["kind"], row["stage"], row["state"]) == (
        "build",
        "acme-pipeline-service-billing-dev",
        "FAILED",
    )
    assert row["commit"] == COMMIT
    assert row["time"] == "2017-09-01T16:14:28Z#c030038d-8c4d-6141-9545-00ff7b7153EX"


def test_a_redelivered_event_is_one_row(session, table):
    sample = event("stage-execution-started")
    for _ in range(3):  # EventBridge delivers at least once
        recorder.record(sample, table, session.client("codepipeline"))
    assert len(rows(table)) == 1


def test_two_events_in_the_same_second_are_two_rows(session, table):
    first, second = event("stage-execution-started"), event("stage-execution-started")
    second["id"], second["detail"]["state"] = "other-event-id", "SUCCEEDED"
    for sample in (first, second):
        recorder.record(sample, table, session.client("codepipeline"))
    assert [r["state"] for r in rows(table)] == ["STARTED", "SUCCEEDED"]


def test_a_pipeline_event_is_recorded_even_when_its_commit_is_unknown(session, table):
    codepipeline = session.client("codepipeline")
    with Stubber(codepipeline) as stub:
        stub.add_client_error("get_pipeline_execution", "AccessDeniedException")
        recorder.record(event("pipeline-execution-started"), table, codepipeline)
    (row,) = rows(table)
    assert (row["state"], row["commit"]) == ("STARTED", "")


def test_an_event_of_another_kind_is_refused_not_written(session, table):
    other = {**event("stage-execution-started"), "detail-type": "EC2 Instance State-change"}
    with pytest.raises(ValueError, match="EC2 Instance State-change"):
        recorder.record(other, table, session.client("codepipeline"))
    assert rows(table) == []


def test_the_recorder_entry_point_reads_its_table_from_the_environment(
    session, table, monkeypatch, sessions_made
):
    monkeypatch.setenv("LEDGER_TABLE", TABLE)
    # moto has no such pipeline execution: the commit lookup fails and the row is still written.
    recorder.handler(event("pipeline-execution-started"), None)
    recorder.handler(event("stage-execution-started"), None)
    assert [(r["executionId"], r["kind"], r["state"]) for r in rows(table)] == [
        (EXECUTION, "pipeline", "STARTED"),
        (EXECUTION, "stage", "STARTED"),
    ]
    assert len(sessions_made) == 1  # the second invocation reuses the environment's clients


def test_the_deploy_handler_makes_its_clients_once_per_environment(
    session, table, monkeypatch, sessions_made
):
    monkeypatch.setenv("LEDGER_TABLE", TABLE)
    monkeypatch.setenv("FAILURE_TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:failures")
    first, second = deploy.Clients.from_environment(), deploy.Clients.from_environment()
    assert second is first
    assert len(sessions_made) == 1
    assert (first.table.name, first.topic_arn) == (
        TABLE,
        "arn:aws:sns:us-east-1:123456789012:failures",
    )


# --- deploy handler ----------------------------------------------------------------------------


def _job(threshold="HIGH", **changes):
    sample = event("codepipeline-job")
    configuration = sample["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]
    params = {**json.loads(configuration["UserParameters"]), "threshold": threshold, **changes}
    configuration["UserParameters"] = json.dumps(params)
    return sample


@pytest.fixture
def account(session, table):
    ecr = create_repository(session)
    topic, sqs, url = topic_with_inbox(session)
    codepipeline = session.client("codepipeline")
    clients = deploy.Clients(
        ecr=ecr, codepipeline=codepipeline, sns=session.client("sns"), table=table, topic_arn=topic
    )
    return clients, lambda: inbox(sqs, url)


def _production(ecr):
    found = ecr.describe_images(repositoryName=REPO, imageIds=[{"imageTag": "production"}])
    return found["imageDetails"][0]["imageDigest"]


def test_a_clean_image_is_tagged_production_recorded_and_reported(account):
    clients, notifications = account
    digest = push(clients.ecr, COMMIT)
    # moto's basic scan reports one HIGH finding: a CRITICAL threshold lets it through.
    with Stubber(clients.codepipeline) as stub:
        stub.add_response(
            "put_job_success_result",
            {},
            {
                "jobId": JOB,
                "executionDetails": {"summary": ANY, "percentComplete": 100},
                "outputVariables": {"IMAGE_DIGEST": digest},
            },
        )
        deploy.release(_job("CRITICAL"), clients)
        stub.assert_no_pending_responses()
    assert _production(clients.ecr) == digest
    (row,) = rows(clients.table)
    assert row["executionId"] == EXECUTION
    assert (row["kind"], row["state"], row["commit"], row["imageDigest"]) == (
        "release",
        "SUCCEEDED",
        COMMIT,
        digest,
    )
    assert row["time"].endswith("#release")
    assert notifications() == []


def test_a_finding_at_the_threshold_fails_the_job_notifies_and_tags_nothing(account):
    clients, notifications = account
    push(clients.ecr, COMMIT)
    with Stubber(clients.codepipeline) as stub:
        stub.add_response(
            "put_job_failure_result",
            {},
            {"jobId": JOB, "failureDetails": {"type": "JobFailed", "message": ANY}},
        )
        deploy.release(_job("HIGH"), clients)
        stub.assert_no_pending_responses()
    with pytest.raises(clients.ecr.exceptions.ImageNotFoundException):
        _production(clients.ecr)
    (row,) = rows(clients.table)
    assert (row["state"], row["imageDigest"]) == ("FAILED", "")
    assert "1 HIGH" in row["reason"]
    (message,) = notifications()
    assert message["Subject"] == "Deploy refused: image not promoted to production"
    assert f"{REPO}:{COMMIT}" in message["Message"]
    assert "1 HIGH" in message["Message"]


def _refused(clients, job):
    with Stubber(clients.codepipeline) as stub:
        stub.add_response(
            "put_job_failure_result",
            {},
            {"jobId": JOB, "failureDetails": {"type": "JobFailed", "message": ANY}},
        )
        return deploy.release(job, clients)


def test_an_image_missing_from_ecr_fails_the_job(account):
    clients, notifications = account
    row = _refused(clients, _job("CRITICAL"))
    assert row["state"] == "FAILED"
    assert "is not in ECR" in row["reason"]
    assert len(notifications()) == 1


def test_an_image_never_scanned_fails_closed(account):
    clients, _ = account
    push(clients.ecr, COMMIT, scan=False)
    row = _refused(clients, _job("CRITICAL"))
    assert "never scanned" in row["reason"]


def test_enhanced_scan_findings_count_too(account, account_id):
    clients, _ = account
    digest = push(clients.ecr, COMMIT)
    ecr_backends[account_id][REGION].scan_finding_results.append(
        {
            "registryId": account_id,
            "repositoryName": REPO,
            "imageId": {"imageDigest": digest},
            "imageScanStatus": {"status": "ACTIVE", "description": "Continuous scan is active"},
            "imageScanFindings": {
                "enhancedFindings": [{"severity": "CRITICAL", "type": "PACKAGE_VULNERABILITY"}],
                "findingSeverityCounts": {"CRITICAL": 1},
            },
        }
    )
    row = _refused(clients, _job("CRITICAL"))
    assert "1 CRITICAL" in row["reason"]


def test_bad_user_parameters_fail_the_job_with_what_is_missing(account):
    clients, _ = account
    row = _refused(clients, _job("HIGH", repository=""))
    assert row["reason"] == "UserParameters lacks repository"
    row = _refused(clients, _job("SEVERE"))
    assert "threshold 'SEVERE'" in row["reason"]


def test_production_moves_to_the_next_image_and_commit_tags_stay_immutable(account):
    clients, _ = account
    first, second = push(clients.ecr, "a" * 40), push(clients.ecr, "b" * 40)
    for tag in ("a" * 40, "b" * 40):
        with Stubber(clients.codepipeline) as stub:
            stub.add_response("put_job_success_result", {}, None)
            deploy.release(_job("CRITICAL", imageTag=tag, commit=tag), clients)
    assert _production(clients.ecr) == second != first
    refused = (
        clients.ecr.exceptions.ImageTagAlreadyExistsException,
        clients.ecr.exceptions.ImageAlreadyExistsException,  # what moto raises
    )
    with pytest.raises(refused):
        clients.ecr.put_image(
            repositoryName=REPO, imageManifest=manifest("another build"), imageTag="a" * 40
        )
    tagged = clients.ecr.describe_images(repositoryName=REPO, imageIds=[{"imageTag": "a" * 40}])
    assert tagged["imageDetails"][0]["imageDigest"] == first


def test_promoting_the_image_already_in_production_succeeds(account):
    clients, _ = account
    digest = push(clients.ecr, COMMIT)
    for _ in range(2):  # a retried job, or a rollback to the image that is there
        with Stubber(clients.codepipeline) as stub:
            stub.add_response("put_job_success_result", {}, None)
            deploy.release(_job("CRITICAL"), clients)
    assert _production(clients.ecr) == digest
    assert [r["state"] for r in rows(clients.table)] == ["SUCCEEDED", "SUCCEEDED"]


def test_the_job_event_credentials_are_never_logged(account, caplog):
    clients, _ = account
    push(clients.ecr, COMMIT)
    with Stubber(clients.codepipeline) as stub:
        stub.add_response("put_job_success_result", {}, None)
        deploy.release(_job("CRITICAL"), clients)
    assert "EXAMPLEKEY" not in caplog.text
    assert "AKIAIOSFODNN7EXAMPLE" not in caplog.text

"""The Lambda handlers, called with the event samples AWS documents, against moto.

moto stands in for DynamoDB, ECR, SNS and SQS; CodePipeline's job-result and execution calls go
through botocore's Stubber (moto does not implement PutJob*Result), which also checks the exact
parameters the handler sends.
"""

from __future__ import annotations

import dataclasses
import json

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from shared import ledger
from stacks.pipeline.handlers import deploy, recorder
from tests.handler_support import (
    REGION,
    REPO,
    TABLE,
    Calls,
    client_error,
    create_ledger,
    create_repository,
    event,
    inbox,
    manifest,
    push,
    raising,
    releases,
    rows,
    scan_result,
    scan_statuses,
    topic_with_inbox,
)
from tests.moto_support import fresh_account, moto_for_the_module
from tests.pipeline_support import APP, WORKER, named, stages

EXECUTION = "12345678-1234-5678-abcd-12345678abcd"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
JOB = "11111111-abcd-1111-abcd-111111abcdef"
SUFFIX = "-acme-dev"
"""How the pipelines of the samples' layer end (``<service>-acme-dev``): the recorder's
PIPELINE_SUFFIX."""
FUNCTION = "aws:lambda/function:Function"


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
    expected = ("executionId", "time", "kind", "service")
    assert expected == (ledger.PARTITION_KEY, ledger.SORT_KEY, ledger.KIND_KEY, ledger.SERVICE_KEY)
    for module in (recorder, deploy):
        assert expected == (
            module.PARTITION_KEY,
            module.SORT_KEY,
            module.KIND_KEY,
            module.SERVICE_KEY,
        )


# --- recorder ----------------------------------------------------------------------------------


def _execution_lookup(client, commit=COMMIT):
    stub = Stubber(client)
    stub.add_response(
        "get_pipeline_execution",
        {
            "pipelineExecution": {
                "pipelineName": "app-acme-dev",
                "pipelineExecutionId": EXECUTION,
                "status": "InProgress",
                "artifactRevisions": [{"name": "SourceOutput", "revisionId": commit}],
            }
        },
        {"pipelineName": "app-acme-dev", "pipelineExecutionId": EXECUTION},
    )
    return stub


def test_recorder_writes_a_pipeline_execution_with_its_commit_and_service(session, table):
    codepipeline = session.client("codepipeline")
    with _execution_lookup(codepipeline) as stub:
        keys = recorder.record(event("pipeline-execution-started"), table, codepipeline, SUFFIX)
        stub.assert_no_pending_responses()
    (row,) = rows(table)
    assert keys == {
        "executionId": EXECUTION,
        "time": "2024-06-01T12:00:00Z#01234567-0123-0123-0123-012345678901",
    }
    assert row["kind"] == "pipeline"
    assert row["state"] == "STARTED"
    assert row["pipeline"] == "app-acme-dev"
    assert row["service"] == "app"
    assert row["commit"] == COMMIT


def test_recorder_writes_a_stage_execution_with_its_service(session, table):
    recorder.record(event("stage-execution-started"), table, session.client("codepipeline"), SUFFIX)
    (row,) = rows(table)
    assert (row["executionId"], row["kind"], row["stage"], row["state"]) == (
        EXECUTION,
        "stage",
        "Deploy",
        "STARTED",
    )
    assert row["service"] == "app"
    assert row["time"].startswith("2024-06-01T12:00:00Z#")


def test_recorder_writes_a_build_with_its_project_and_source_version(session, table):
    recorder.record(
        event("codebuild-build-state-change"), table, session.client("codepipeline"), SUFFIX
    )
    (row,) = rows(table)
    assert row["executionId"] == (
        "arn:aws:codebuild:us-east-1:111111111111:build/acme-pipeline-app-unit-tests-dev:"
        "8745a7a9-c340-456a-9166-edf953571bEX"
    )
    assert (row["kind"], row["stage"], row["state"]) == (
        "build",
        "acme-pipeline-app-unit-tests-dev",
        "FAILED",
    )
    assert row["commit"] == COMMIT
    assert row["time"] == "2017-09-01T16:14:28Z#c030038d-8c4d-6141-9545-00ff7b7153EX"
    # A user started it (the documented sample's initiator): no pipeline, so no service.
    assert row["initiator"] == "MyCodeBuildDemoUser"
    assert "service" not in row


def test_a_build_a_pipeline_started_is_recorded_under_that_pipelines_service(session, table):
    recorder.record(
        event("codebuild-build-state-change-pipeline"),
        table,
        session.client("codepipeline"),
        SUFFIX,
    )
    (row,) = rows(table)
    assert (row["kind"], row["stage"], row["state"]) == (
        "build",
        "acme-pipeline-worker-docker-build-dev",
        "SUCCEEDED",
    )
    assert row["initiator"] == "codepipeline/worker-acme-dev"
    assert row["service"] == "worker"


def test_the_pipeline_initiator_sample_is_the_form_codebuild_documents():
    model = botocore.session.get_session().get_service_model("codebuild")
    documented = model.shape_for("Build").members["initiator"].documentation
    assert "If CodePipeline started the build, the pipeline's name" in documented
    assert "<code>codepipeline/my-demo-pipeline</code>" in documented
    info = event("codebuild-build-state-change-pipeline")["detail"]["additional-information"]
    assert info["initiator"] == "codepipeline/worker-acme-dev"
    assert info["source"]["type"] in model.shape_for("SourceType").enum


@pytest.mark.parametrize(
    ("sample", "pipeline"),
    [
        ("stage-execution-started", "app-acme-prod"),  # another environment's
        ("stage-execution-started", "-acme-dev"),  # nothing before the ending
        ("codebuild-build-state-change-pipeline", "worker-other-dev"),
    ],
)
def test_a_pipeline_not_named_as_the_layers_gives_no_service(session, table, sample, pipeline):
    other = event(sample)
    if "pipeline" in other["detail"]:
        other["detail"]["pipeline"] = pipeline
    else:
        other["detail"]["additional-information"]["initiator"] = f"codepipeline/{pipeline}"
    recorder.record(other, table, session.client("codepipeline"), SUFFIX)
    (row,) = rows(table)
    assert "service" not in row


def test_a_build_a_user_started_gives_no_service_whatever_the_users_name(session, table):
    sample = event("codebuild-build-state-change")
    sample["detail"]["additional-information"]["initiator"] = "ops-acme-dev"
    recorder.record(sample, table, session.client("codepipeline"), SUFFIX)
    (row,) = rows(table)
    assert row["initiator"] == "ops-acme-dev"
    assert "service" not in row


def test_the_recorder_is_told_the_ending_of_every_services_pipeline(dev):
    plan = dev["pipeline"]
    function = named(plan, FUNCTION, "acme-pipeline-recorder-dev").inputs
    suffix = function["environment"]["variables"]["PIPELINE_SUFFIX"]
    assert suffix == "-acme-dev"
    pipelines = plan.exports["pipelineNames"]
    assert pipelines == {APP: "app-acme-dev", WORKER: "worker-acme-dev"}
    for service, name in pipelines.items():
        assert recorder.service_of(name, suffix) == {"service": service}


def test_a_redelivered_event_is_one_row(session, table):
    sample = event("stage-execution-started")
    for _ in range(3):  # EventBridge delivers at least once
        recorder.record(sample, table, session.client("codepipeline"), SUFFIX)
    assert len(rows(table)) == 1


def test_two_events_in_the_same_second_are_two_rows(session, table):
    first, second = event("stage-execution-started"), event("stage-execution-started")
    second["id"], second["detail"]["state"] = "other-event-id", "SUCCEEDED"
    for sample in (first, second):
        recorder.record(sample, table, session.client("codepipeline"), SUFFIX)
    assert [r["state"] for r in rows(table)] == ["STARTED", "SUCCEEDED"]


def test_a_pipeline_event_is_recorded_even_when_its_commit_is_unknown(session, table):
    codepipeline = session.client("codepipeline")
    with Stubber(codepipeline) as stub:
        stub.add_client_error("get_pipeline_execution", "AccessDeniedException")
        recorder.record(event("pipeline-execution-started"), table, codepipeline, SUFFIX)
    (row,) = rows(table)
    assert (row["state"], row["commit"]) == ("STARTED", "")


def test_an_event_of_another_kind_is_refused_not_written(session, table):
    other = {**event("stage-execution-started"), "detail-type": "EC2 Instance State-change"}
    with pytest.raises(ValueError, match="EC2 Instance State-change"):
        recorder.record(other, table, session.client("codepipeline"), SUFFIX)
    assert rows(table) == []


def test_the_recorder_entry_point_reads_its_table_from_the_environment(
    session, table, monkeypatch, sessions_made
):
    monkeypatch.setenv("LEDGER_TABLE", TABLE)
    monkeypatch.setenv("PIPELINE_SUFFIX", SUFFIX)
    # moto has no such pipeline execution: the commit lookup fails and the row is still written.
    recorder.handler(event("pipeline-execution-started"), None)
    recorder.handler(event("stage-execution-started"), None)
    assert [(r["executionId"], r["kind"], r["state"], r["service"]) for r in rows(table)] == [
        (EXECUTION, "pipeline", "STARTED", "app"),
        (EXECUTION, "stage", "STARTED", "app"),
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


def _job(threshold="HIGH", job_id=JOB, **changes):
    """The documented job event, with this test's UserParameters (and job id)."""
    sample = event("codepipeline-job")
    sample["CodePipeline.job"]["id"] = job_id
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
    (row,) = releases(clients.table)
    assert row["executionId"] == EXECUTION
    assert (row["kind"], row["service"], row["state"], row["commit"], row["imageDigest"]) == (
        "release",
        "app",
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
    (row,) = releases(clients.table)
    assert (row["state"], row["imageDigest"]) == ("FAILED", "")
    assert "1 HIGH" in row["reason"]
    (message,) = notifications()
    assert message["Subject"] == "Deploy refused: image not promoted to production"
    assert "The deploy handler of service app refused" in message["Message"]
    assert f"{REPO}:{COMMIT}" in message["Message"]
    assert "1 HIGH" in message["Message"]


def _refused(clients, job, service=""):
    with Stubber(clients.codepipeline) as stub:
        stub.add_response(
            "put_job_failure_result",
            {},
            {
                "jobId": job["CodePipeline.job"]["id"],
                "failureDetails": {"type": "JobFailed", "message": ANY},
            },
        )
        return deploy.release(job, clients, service=service)


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
    scan_result(
        account_id,
        digest,
        "ACTIVE",
        {"enhancedFindings": [_enhanced("CRITICAL")], "findingSeverityCounts": {"CRITICAL": 1}},
    )
    row = _refused(clients, _job("CRITICAL"))
    assert "1 CRITICAL" in row["reason"]


def test_bad_user_parameters_fail_the_job_with_what_is_missing(account):
    clients, _ = account
    row = _refused(clients, _job("HIGH", repository=""))
    assert row["reason"] == "UserParameters lacks repository"
    row = _refused(clients, _job("HIGH", job_id="job-2", service=""))
    assert row["reason"] == "UserParameters lacks service"
    assert "service" not in row  # nothing says whose it was
    row = _refused(clients, _job("SEVERE", job_id="job-3"))
    assert "threshold 'SEVERE'" in row["reason"]


def test_a_job_for_another_service_is_refused_and_recorded_under_the_handlers_own(account):
    clients, notifications = account
    push(clients.ecr, COMMIT)
    row = _refused(clients, _job("CRITICAL"), service="worker")
    assert row["reason"] == "UserParameters name service 'app'; this handler deploys 'worker'"
    assert (row["state"], row["service"]) == ("FAILED", "worker")
    with pytest.raises(clients.ecr.exceptions.ImageNotFoundException):
        _production(clients.ecr)
    assert "The deploy handler of service worker refused" in notifications()[0]["Message"]


def test_a_job_whose_parameters_cannot_be_read_is_recorded_under_the_handlers_service(account):
    clients, _ = account
    job = _job("CRITICAL")
    configuration = job["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]
    configuration["UserParameters"] = "not json"
    row = _refused(clients, job, service="app")
    assert row["reason"] == "UserParameters is not JSON: 'not json'"
    assert row["service"] == "app"


def test_the_deploy_entry_point_deploys_only_its_own_service(monkeypatch, account):
    clients, _ = account
    push(clients.ecr, COMMIT)
    monkeypatch.setenv("LEDGER_TABLE", TABLE)
    monkeypatch.setenv("FAILURE_TOPIC_ARN", clients.topic_arn)
    monkeypatch.setenv("SERVICE", "worker")
    made = deploy.Clients.from_environment()  # the environment's clients, which handler reuses
    with Stubber(made.codepipeline) as stub:
        _failure_expected(stub, "UserParameters name service 'app'; this handler deploys 'worker'")
        row = deploy.handler(_job("CRITICAL"), None)
        stub.assert_no_pending_responses()
    assert row["service"] == "worker"
    with pytest.raises(clients.ecr.exceptions.ImageNotFoundException):
        _production(clients.ecr)


@pytest.mark.parametrize("service", [APP, WORKER])
def test_each_services_pipeline_gives_its_handler_every_parameter_it_requires(dev, service):
    plan = dev["pipeline"]
    (deploy_stage,) = [s for s in stages(plan, service) if s["name"] == "Deploy"]
    (action,) = [a for a in deploy_stage["actions"] if a["provider"] == "Lambda"]
    given = json.loads(action["configuration"]["UserParameters"])
    assert set(given) == set(deploy.PARAMETERS)
    assert given["service"] == service
    handler = named(plan, FUNCTION, action["configuration"]["FunctionName"]).inputs
    assert handler["environment"]["variables"]["SERVICE"] == service


def test_production_moves_to_the_next_image_and_commit_tags_stay_immutable(account):
    clients, _ = account
    first, second = push(clients.ecr, "a" * 40), push(clients.ecr, "b" * 40)
    for job_id, tag in (("job-a", "a" * 40), ("job-b", "b" * 40)):
        with Stubber(clients.codepipeline) as stub:
            stub.add_response("put_job_success_result", {}, None)
            deploy.release(_job("CRITICAL", job_id, imageTag=tag, commit=tag), clients)
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
    for job_id in ("deploy-job", "rollback-job"):  # a rollback to the image that is there
        with Stubber(clients.codepipeline) as stub:
            stub.add_response("put_job_success_result", {}, None)
            deploy.release(_job("CRITICAL", job_id), clients)
    assert _production(clients.ecr) == digest
    assert [r["state"] for r in releases(clients.table)] == ["SUCCEEDED", "SUCCEEDED"]


def test_the_job_event_credentials_are_never_logged(account, caplog):
    clients, _ = account
    push(clients.ecr, COMMIT)
    with Stubber(clients.codepipeline) as stub:
        stub.add_response("put_job_success_result", {}, None)
        deploy.release(_job("CRITICAL"), clients)
    assert "EXAMPLEKEY" not in caplog.text
    assert "AKIAIOSFODNN7EXAMPLE" not in caplog.text


# --- the deploy handler always answers the job -------------------------------------------------


def _success_expected(stub, digest, tag=COMMIT, job_id=JOB):
    stub.add_response(
        "put_job_success_result",
        {},
        {
            "jobId": job_id,
            "executionDetails": {
                "summary": f"{tag} ({digest}) tagged production",
                "percentComplete": 100,
            },
            "outputVariables": {"IMAGE_DIGEST": digest},
        },
    )


def _failure_expected(stub, message=ANY, job_id=JOB):
    stub.add_response(
        "put_job_failure_result",
        {},
        {"jobId": job_id, "failureDetails": {"type": "JobFailed", "message": message}},
    )


def _with(clients, **changes):
    return dataclasses.replace(clients, **changes)


def test_batch_get_image_failures_fail_the_job_with_ecrs_reason(account):
    clients, notifications = account
    digest = push(clients.ecr, COMMIT)
    failures = {
        "images": [],
        "failures": [
            {
                "imageId": {"imageDigest": digest},
                "failureCode": "ImageNotFound",
                "failureReason": "Requested image not found",
            }
        ],
    }
    ecr = Calls(clients.ecr, batch_get_image=lambda **_: failures)
    row = _refused(_with(clients, ecr=ecr), _job("CRITICAL"))
    assert row["state"] == "FAILED"
    assert "ImageNotFound: Requested image not found" in row["reason"]
    assert len(notifications()) == 1
    with pytest.raises(clients.ecr.exceptions.ImageNotFoundException):
        _production(clients.ecr)


@pytest.mark.parametrize(
    ("call", "code"),
    [
        ("describe_images", "AccessDeniedException"),
        ("batch_get_image", "ThrottlingException"),
        ("put_image", "KmsException"),
    ],
)
def test_an_aws_error_the_handler_does_not_translate_still_answers(account, call, code):
    clients, notifications = account
    push(clients.ecr, COMMIT)
    ecr = Calls(clients.ecr, **{call: raising(client_error(code, call))})
    row = _refused(_with(clients, ecr=ecr), _job("CRITICAL"))
    assert row["state"] == "FAILED"
    assert code in row["reason"]
    (message,) = notifications()
    assert code in message["Message"]
    with pytest.raises(clients.ecr.exceptions.ImageNotFoundException):
        _production(clients.ecr)


def test_a_throttled_scan_lookup_still_answers(account):
    clients, notifications = account
    digest = push(clients.ecr, COMMIT)
    with Stubber(clients.ecr) as ecr:  # the paginator's call: moto cannot throttle
        ecr.add_response(
            "describe_images",
            {"imageDetails": [{"imageDigest": digest}]},
            {"repositoryName": REPO, "imageIds": [{"imageTag": COMMIT}]},
        )
        ecr.add_client_error("describe_image_scan_findings", "ThrottlingException")
        row = _refused(clients, _job("CRITICAL"))
    assert "ThrottlingException" in row["reason"]
    assert len(notifications()) == 1


def test_an_exception_that_is_not_an_aws_error_still_answers(account):
    clients, notifications = account
    push(clients.ecr, COMMIT)
    ecr = Calls(clients.ecr, describe_images=raising(KeyError("imageDetails")))
    row = _refused(_with(clients, ecr=ecr), _job("CRITICAL"))
    assert row["reason"] == "KeyError: 'imageDetails'"
    assert len(notifications()) == 1


def test_a_ledger_that_cannot_be_written_does_not_keep_the_answer(account):
    clients, _ = account
    digest = push(clients.ecr, COMMIT)
    table = Calls(clients.table, put_item=raising(client_error("AccessDeniedException", "PutItem")))
    with Stubber(clients.codepipeline) as stub:
        _success_expected(stub, digest)
        row = deploy.release(_job("CRITICAL"), _with(clients, table=table))
        stub.assert_no_pending_responses()
    assert row["state"] == "SUCCEEDED"
    assert _production(clients.ecr) == digest
    assert rows(clients.table) == []


def test_a_ledger_that_cannot_be_written_does_not_keep_a_refusal_from_its_answer(account):
    clients, notifications = account
    push(clients.ecr, COMMIT)
    table = Calls(clients.table, put_item=raising(RuntimeError("connection reset")))
    row = _refused(_with(clients, table=table), _job("HIGH"))
    assert "1 HIGH" in row["reason"]
    assert len(notifications()) == 1


def test_a_success_report_that_fails_fails_the_job(account):
    clients, notifications = account
    push(clients.ecr, COMMIT)
    with Stubber(clients.codepipeline) as stub:
        stub.add_client_error("put_job_success_result", "ThrottlingException")
        _failure_expected(stub)
        deploy.release(_job("CRITICAL"), clients)
        stub.assert_no_pending_responses()
    (row,) = releases(clients.table)
    assert row["state"] == "FAILED"
    assert row["reason"].startswith("the success report failed: ")
    assert "ThrottlingException" in row["reason"]
    (message,) = notifications()
    assert "the success report failed" in message["Message"]


def test_a_job_codepipeline_no_longer_waits_for_is_not_failed(account):
    clients, notifications = account
    digest = push(clients.ecr, COMMIT)
    with Stubber(clients.codepipeline) as stub:  # answered by an earlier delivery
        stub.add_client_error("put_job_success_result", "InvalidJobStateException")
        row = deploy.release(_job("CRITICAL"), clients)
        stub.assert_no_pending_responses()
    assert row["state"] == "SUCCEEDED"
    assert _production(clients.ecr) == digest
    assert notifications() == []


def test_a_redelivered_job_gets_the_same_answer_the_same_row_and_no_second_promotion(account):
    clients, notifications = account
    first, second = push(clients.ecr, "a" * 40), push(clients.ecr, "b" * 40)
    job_a = _job("CRITICAL", "job-a", imageTag="a" * 40, commit="a" * 40)
    with Stubber(clients.codepipeline) as stub:
        _success_expected(stub, first, "a" * 40, "job-a")
        deploy.release(job_a, clients)
    (before,) = releases(clients.table)
    with Stubber(clients.codepipeline) as stub:
        stub.add_response("put_job_success_result", {}, None)
        deploy.release(_job("CRITICAL", "job-b", imageTag="b" * 40, commit="b" * 40), clients)
    assert _production(clients.ecr) == second
    with Stubber(clients.codepipeline) as stub:  # job a again: Lambda's retry, a redelivery
        _success_expected(stub, first, "a" * 40, "job-a")
        again = deploy.release(job_a, clients)
        stub.assert_no_pending_responses()
    assert _production(clients.ecr) == second  # not moved back to a's image
    assert (again["executionId"], again["time"]) == (before["executionId"], before["time"])
    assert [(r["jobId"], r["imageDigest"]) for r in releases(clients.table)] == [
        ("job-a", first),
        ("job-b", second),
    ]
    assert notifications() == []


def test_a_redelivered_refusal_is_answered_alike_and_notified_once(account):
    clients, notifications = account
    push(clients.ecr, COMMIT)
    answers = []
    for _ in range(2):
        with Stubber(clients.codepipeline) as stub:
            _failure_expected(stub)
            answers.append(deploy.release(_job("HIGH"), clients))
            stub.assert_no_pending_responses()
    assert answers[0] == answers[1]
    assert "1 HIGH" in answers[0]["reason"]
    assert len(releases(clients.table)) == 1
    assert len(notifications()) == 1


def test_a_failure_report_that_fails_fails_the_invocation_and_the_retry_answers(account):
    clients, notifications = account
    push(clients.ecr, COMMIT)
    with Stubber(clients.codepipeline) as stub:
        stub.add_client_error("put_job_failure_result", "ThrottlingException")
        with pytest.raises(ClientError, match="ThrottlingException"):
            deploy.release(_job("HIGH"), clients)
    with Stubber(clients.codepipeline) as stub:  # Lambda retries the failed invocation
        _failure_expected(stub)
        row = deploy.release(_job("HIGH"), clients)
        stub.assert_no_pending_responses()
    assert "1 HIGH" in row["reason"]
    assert len(releases(clients.table)) == 1
    assert len(notifications()) == 1


# --- the deploy handler's refusals -------------------------------------------------------------

UNFINISHED = [status for status in scan_statuses() if status not in ("COMPLETE", "ACTIVE")]


def test_the_unfinished_scan_statuses_include_the_pending_ones():
    assert {"IN_PROGRESS", "PENDING", "FAILED"} <= set(UNFINISHED)


@pytest.mark.parametrize("status", UNFINISHED)
def test_an_image_whose_scan_is_not_complete_is_refused(account, account_id, status):
    clients, _ = account
    digest = push(clients.ecr, COMMIT)
    scan_result(account_id, digest, status, {})
    row = _refused(clients, _job("CRITICAL"))
    assert row["reason"] == f"the scan of {digest} is {status}, not complete"
    with pytest.raises(clients.ecr.exceptions.ImageNotFoundException):
        _production(clients.ecr)


def _enhanced(severity, status="ACTIVE"):
    """One Inspector finding as ECR's enhancedFindings list holds it (botocore's shape)."""
    return {
        "awsAccountId": "123456789012",
        "findingArn": f"arn:aws:inspector2:us-east-1:123456789012:finding/{severity.lower()}",
        "severity": severity,
        "status": status,
        "type": "PACKAGE_VULNERABILITY",
        "title": f"CVE-2024-0001 - a {severity} vulnerability",
    }


def test_enhanced_findings_without_a_summary_are_counted(account, account_id):
    clients, _ = account
    digest = push(clients.ecr, COMMIT)
    scan_result(
        account_id, digest, "ACTIVE", {"enhancedFindings": [_enhanced("HIGH"), _enhanced("LOW")]}
    )
    row = _refused(clients, _job("HIGH"))
    assert row["reason"] == f"{digest} has findings at or above HIGH: 1 HIGH"


def test_enhanced_findings_below_the_threshold_let_the_image_through(account, account_id):
    clients, _ = account
    digest = push(clients.ecr, COMMIT)
    scan_result(account_id, digest, "ACTIVE", {"enhancedFindings": [_enhanced("MEDIUM")]})
    with Stubber(clients.codepipeline) as stub:
        _success_expected(stub, digest)
        deploy.release(_job("HIGH"), clients)
        stub.assert_no_pending_responses()
    assert _production(clients.ecr) == digest


@pytest.mark.parametrize(
    "code", ["ImageTagAlreadyExistsException", "LimitExceededException", "ServerException"]
)
def test_any_error_tagging_production_but_already_there_fails_the_job(account, code):
    clients, notifications = account
    push(clients.ecr, COMMIT)
    ecr = Calls(clients.ecr, put_image=raising(client_error(code, "PutImage")))
    row = _refused(_with(clients, ecr=ecr), _job("CRITICAL"))
    assert code in row["reason"]
    assert len(notifications()) == 1


def test_production_already_on_the_image_is_a_success(account):
    clients, _ = account
    digest = push(clients.ecr, COMMIT)
    ecr = Calls(
        clients.ecr,
        put_image=raising(client_error("ImageAlreadyExistsException", "PutImage")),
    )
    with Stubber(clients.codepipeline) as stub:
        _success_expected(stub, digest)
        row = deploy.release(_job("CRITICAL"), _with(clients, ecr=ecr))
        stub.assert_no_pending_responses()
    assert row["state"] == "SUCCEEDED"


@pytest.mark.parametrize(
    "error",
    [client_error("AuthorizationErrorException", "Publish"), RuntimeError("connection reset")],
)
def test_a_topic_that_cannot_be_notified_does_not_keep_the_answer(account, error):
    clients, notifications = account
    push(clients.ecr, COMMIT)
    sns = Calls(clients.sns, publish=raising(error))
    row = _refused(_with(clients, sns=sns), _job("HIGH"))
    assert "1 HIGH" in row["reason"]
    assert [r["state"] for r in releases(clients.table)] == ["FAILED"]
    assert notifications() == []


class LambdaTimeout(BaseException):
    """Lambda ending the invocation mid-way: nothing in the handler sees it coming."""


def test_a_delivery_cut_off_before_its_answer_is_answered_by_the_retry_without_promoting(account):
    clients, _ = account
    first, second = push(clients.ecr, "a" * 40), push(clients.ecr, "b" * 40)
    job_a = _job("CRITICAL", "job-a", imageTag="a" * 40, commit="a" * 40)
    cut_off = Calls(clients.codepipeline, put_job_success_result=raising(LambdaTimeout()))
    with pytest.raises(LambdaTimeout):
        deploy.release(job_a, _with(clients, codepipeline=cut_off))
    assert _production(clients.ecr) == first
    with Stubber(clients.codepipeline) as stub:  # meanwhile another job moved production
        stub.add_response("put_job_success_result", {}, None)
        deploy.release(_job("CRITICAL", "job-b", imageTag="b" * 40, commit="b" * 40), clients)
    with Stubber(clients.codepipeline) as stub:  # Lambda's retry of job a
        _success_expected(stub, first, "a" * 40, "job-a")
        deploy.release(job_a, clients)
        stub.assert_no_pending_responses()
    assert _production(clients.ecr) == second
    assert [r["jobId"] for r in releases(clients.table)] == ["job-a", "job-b"]

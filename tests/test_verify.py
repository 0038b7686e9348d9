"""Post-deploy verification against moto: a conforming account passes, each drift is caught."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from moto import mock_aws

from tests.handler_support import fake_credentials
from toolbox.verify import CHECKS, names_of, table, verify

REGION = "us-east-1"
BUCKET = "acme-foundation-artifacts-111111111111-dev"
SOURCE_BUCKET = "acme-foundation-source-111111111111-dev"
REPO = "acme-registry-app-dev"
WORKER_REPO = "acme-registry-worker-dev"
LOG_GROUP = "/aws/codebuild/acme-pipeline-app-docker-build-dev"
PROJECT = "acme-pipeline-app-docker-build-dev"
PIPELINE = "app-acme-dev"
WORKER_PIPELINE = "worker-acme-dev"
LEDGER = "acme-foundation-ledger-dev"
DEAD_LETTERS = "acme-pipeline-recorder-dlq-dev"
DEAD_LETTERS_ALARM = "acme-pipeline-recorder-dead-letters-dev"
STAGES = ("Source", "Build", "Test", "SecurityScan", "Deploy")


def _trust(service):
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
            ],
        }
    )


def _stage(name, category, provider, owner="AWS"):
    return {
        "name": name,
        "actions": [
            {
                "name": name,
                "actionTypeId": {
                    "category": category,
                    "owner": owner,
                    "provider": provider,
                    "version": "1",
                },
                "configuration": {},
                "inputArtifacts": [],
                "outputArtifacts": [],
                "runOrder": 1,
            }
        ],
    }


def _build_project(session, role: str, compute: str) -> None:
    session.client("codebuild").create_project(
        name=PROJECT,
        # moto insists on a source location, so an S3 source stands in for CODEPIPELINE.
        source={"type": "S3", "location": f"{BUCKET}/source.zip"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": compute,
        },
        serviceRole=role,
    )


BLOCKED = {
    "BlockPublicAcls": True,
    "BlockPublicPolicy": True,
    "IgnorePublicAcls": True,
    "RestrictPublicBuckets": True,
}
EXPIRING = {
    "Rules": [{"ID": "expire", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 30}}]
}
SOURCE_EXPIRING = {  # sourceExpiryDays (365 by default), not the artifacts' 30
    "Rules": [{"ID": "expire", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 365}}]
}
LIFECYCLES = {BUCKET: EXPIRING, SOURCE_BUCKET: SOURCE_EXPIRING}
EVENTBRIDGE_ON = {"EventBridgeConfiguration": {}}
KEEP_TEN = json.dumps(
    {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {
                    "tagStatus": "any",
                    "countType": "imageCountMoreThan",
                    "countNumber": 10,
                },
                "action": {"type": "expire"},
            }
        ]
    }
)
ONLY_PRODUCTION_MOVES = [{"filter": "production", "filterType": "WILDCARD"}]


def _encrypt_bucket(session, bucket: str, key: str) -> None:
    session.client("s3").put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": key,
                    }
                }
            ]
        },
    )


def _pipeline(role: str, name: str = PIPELINE) -> dict:
    return {
        "name": name,
        "roleArn": role,
        "artifactStore": {"type": "S3", "location": BUCKET},
        "stages": [
            _stage("Source", "Source", "S3"),
            *[_stage(name, "Build", "CodeBuild") for name in STAGES[1:-1]],
            _stage("Deploy", "Deploy", "ECS"),
        ],
    }


def deploy_conforming_account(session) -> dict[str, dict]:
    """What `./dev deploy` leaves behind, created with boto3 in moto; returns stack outputs."""
    kms, s3 = session.client("kms"), session.client("s3")
    key = kms.create_key(Description="platform")["KeyMetadata"]["Arn"]
    kms.enable_key_rotation(KeyId=key)
    for bucket, lifecycle in LIFECYCLES.items():  # one builder, the same guards
        s3.create_bucket(Bucket=bucket)
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=BLOCKED)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=lifecycle)
        _encrypt_bucket(session, bucket, key)
    s3.put_bucket_notification_configuration(
        Bucket=SOURCE_BUCKET, NotificationConfiguration=EVENTBRIDGE_ON
    )
    secret = session.client("secretsmanager").create_secret(
        Name="acme-foundation-github-token-dev", KmsKeyId=key
    )["ARN"]
    sns = session.client("sns")
    topic = sns.create_topic(
        Name="acme-foundation-pipeline-failures-dev", Attributes={"KmsMasterKeyId": key}
    )["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="email", Endpoint="devops@company.com")

    ecr = session.client("ecr")
    for repository in (REPO, WORKER_REPO):
        ecr.create_repository(
            repositoryName=repository,
            imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
            imageTagMutabilityExclusionFilters=ONLY_PRODUCTION_MOVES,
            imageScanningConfiguration={"scanOnPush": True},
        )
        ecr.put_lifecycle_policy(repositoryName=repository, lifecyclePolicyText=KEEP_TEN)

    logs = session.client("logs")
    logs.create_log_group(logGroupName=LOG_GROUP, kmsKeyId=key)
    logs.put_retention_policy(logGroupName=LOG_GROUP, retentionInDays=7)
    iam = session.client("iam")
    build_role = iam.create_role(
        RoleName="build", AssumeRolePolicyDocument=_trust("codebuild.amazonaws.com")
    )["Role"]["Arn"]
    _build_project(session, build_role, "BUILD_GENERAL1_SMALL")
    pipeline_role = iam.create_role(
        RoleName="pipeline", AssumeRolePolicyDocument=_trust("codepipeline.amazonaws.com")
    )["Role"]["Arn"]
    for name in (PIPELINE, WORKER_PIPELINE):
        session.client("codepipeline").create_pipeline(pipeline=_pipeline(pipeline_role, name))
    dynamodb = session.client("dynamodb")
    dynamodb.create_table(
        TableName=LEDGER,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "executionId", "KeyType": "HASH"},
            {"AttributeName": "time", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "executionId", "AttributeType": "S"},
            {"AttributeName": "time", "AttributeType": "S"},
        ],
        SSESpecification={"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key},
    )
    dynamodb.update_continuous_backups(
        TableName=LEDGER,
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
    )
    recorder = _recorder(session, key)
    _alarm_on_dead_letters(session, topic)
    return {
        "foundation": {
            "kmsKeyArn": key,
            "artifactBucketName": BUCKET,
            "sourceBucketName": SOURCE_BUCKET,
            "githubTokenSecretArn": secret,
            "failureTopicArn": topic,
            "ledgerTableName": LEDGER,
        },
        # The exports by service (shared/contracts.py); the worker has a repository and a
        # pipeline here, the application the rest too.
        "registry": {"repositoryNames": {"app": REPO, "worker": WORKER_REPO}},
        "pipeline": {
            "pipelineNames": {"app": PIPELINE, "worker": WORKER_PIPELINE},
            "logGroupNames": {"app": {"docker-build": LOG_GROUP}},
            "projectNames": {"app": {"docker-build": PROJECT}},
            "handlerArns": {"": recorder},  # the layer's recorder
        },
    }


def _recorder(session, key) -> str:
    """The recorder as deployed: own log group, a DLQ, invokable only by its rule."""
    session.client("sqs").create_queue(QueueName=DEAD_LETTERS)
    queue_arn = _dead_letters_arn(session)
    role = session.client("iam").create_role(
        RoleName="recorder", AssumeRolePolicyDocument=_trust("lambda.amazonaws.com")
    )["Role"]["Arn"]
    group = "/aws/lambda/acme-pipeline-recorder-dev"
    session.client("logs").create_log_group(logGroupName=group, kmsKeyId=key)
    client = session.client("lambda")
    arn = client.create_function(
        FunctionName="acme-pipeline-recorder-dev",
        Runtime="python3.13",
        Role=role,
        Handler="recorder.handler",
        Code={"ZipFile": _zip()},
        DeadLetterConfig={"TargetArn": queue_arn},
        LoggingConfig={"LogFormat": "JSON", "LogGroup": group},
    )["FunctionArn"]
    client.add_permission(
        FunctionName=arn,
        StatementId="record-pipeline",
        Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com",
        SourceArn="arn:aws:events:us-east-1:123456789012:rule/acme-pipeline-record-pipeline-dev",
    )
    return arn


def _alarm_on_dead_letters(session, topic: str) -> None:
    """The alarm the pipeline layer puts on the recorder's DLQ, to the failure topic."""
    session.client("cloudwatch").put_metric_alarm(
        AlarmName=DEAD_LETTERS_ALARM,
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[{"Name": "QueueName", "Value": DEAD_LETTERS}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
        AlarmActions=[topic],
    )


def _dead_letters_arn(session) -> str:
    sqs = session.client("sqs")
    url = sqs.get_queue_url(QueueName=DEAD_LETTERS)["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("recorder.py", "def handler(event, context):\n    return None\n")
    return buffer.getvalue()


def _open_recorder(session, out):
    session.client("lambda").add_permission(
        FunctionName=out["pipeline"]["handlerArns"][""],
        StatementId="anyone",
        Action="lambda:InvokeFunction",
        Principal="*",
    )


def _drop_dead_letters(session, out):
    session.client("lambda").update_function_configuration(
        FunctionName=out["pipeline"]["handlerArns"][""],
        DeadLetterConfig={"TargetArn": ""},
    )


def _unsubscribe(session, out):
    sns = session.client("sns")
    for sub in sns.list_subscriptions_by_topic(TopicArn=out["foundation"]["failureTopicArn"])[
        "Subscriptions"
    ]:
        sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])


def _drop_a_stage(session, out):
    codepipeline = session.client("codepipeline")
    pipeline = codepipeline.get_pipeline(name=PIPELINE)["pipeline"]
    pipeline["stages"] = [s for s in pipeline["stages"] if s["name"] != "SecurityScan"]
    codepipeline.update_pipeline(pipeline=pipeline)


def _bigger_build(session, out):
    session.client("codebuild").delete_project(name=PROJECT)
    role = session.client("iam").get_role(RoleName="build")["Role"]["Arn"]
    _build_project(session, role, "BUILD_GENERAL1_LARGE")


def _bucket_drifts(bucket: str) -> dict:
    """check name -> how a bucket guard is switched off, on either foundation bucket."""
    return {
        "bucket-public-access-blocked": lambda s, o: s.client("s3").put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "BlockPublicPolicy": False,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
        ),
        "bucket-versioning": lambda s, o: s.client("s3").put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Suspended"}
        ),
        "bucket-lifecycle": lambda s, o: s.client("s3").delete_bucket_lifecycle(Bucket=bucket),
        "bucket-sse-kms": lambda s, o: s.client("s3").put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        ),
    }


def _bucket_restores(bucket: str) -> dict:
    """check name -> how the bucket guard is put back as deployed."""
    return {
        "bucket-public-access-blocked": lambda s, o: s.client("s3").put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=BLOCKED
        ),
        "bucket-versioning": lambda s, o: s.client("s3").put_bucket_versioning(
            Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
        ),
        "bucket-lifecycle": lambda s, o: s.client("s3").put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration=LIFECYCLES[bucket]
        ),
        "bucket-sse-kms": lambda s, o: _encrypt_bucket(s, bucket, o["foundation"]["kmsKeyArn"]),
    }


# check name -> how an operator (or a bad change) drifts the account from what was deployed
DRIFTS = {
    "kms-rotation": lambda s, o: s.client("kms").disable_key_rotation(
        KeyId=o["foundation"]["kmsKeyArn"]
    ),
    **_bucket_drifts(BUCKET),
    "source-bucket-eventbridge": lambda s, o: s.client("s3").put_bucket_notification_configuration(
        Bucket=SOURCE_BUCKET, NotificationConfiguration={}
    ),
    "secret-kms": lambda s, o: s.client("secretsmanager").update_secret(
        SecretId=o["foundation"]["githubTokenSecretArn"], KmsKeyId="alias/aws/secretsmanager"
    ),
    "topic-kms": lambda s, o: s.client("sns").set_topic_attributes(
        TopicArn=o["foundation"]["failureTopicArn"],
        AttributeName="KmsMasterKeyId",
        AttributeValue="",
    ),
    "topic-email-subscription": _unsubscribe,
    "ecr-scan-on-push": lambda s, o: s.client("ecr").put_image_scanning_configuration(
        repositoryName=REPO, imageScanningConfiguration={"scanOnPush": False}
    ),
    "ecr-immutable-tags": lambda s, o: s.client("ecr").put_image_tag_mutability(
        repositoryName=REPO, imageTagMutability="MUTABLE"
    ),
    "ecr-lifecycle": lambda s, o: s.client("ecr").delete_lifecycle_policy(repositoryName=REPO),
    "log-groups-retention-and-kms": lambda s, o: s.client("logs").delete_retention_policy(
        logGroupName=LOG_GROUP
    ),
    "codebuild-compute": _bigger_build,
    "pipeline-five-stages": _drop_a_stage,
    "ledger-pitr-and-kms": lambda s, o: s.client("dynamodb").update_continuous_backups(
        TableName=LEDGER,
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False},
    ),
    "lambda-logs-and-dead-letters": _drop_dead_letters,
    "lambda-dead-letters-alarmed": lambda s, o: s.client("cloudwatch").delete_alarms(
        AlarmNames=[DEAD_LETTERS_ALARM]
    ),
    "lambda-not-public": _open_recorder,
}


def _role(session, name: str) -> str:
    return session.client("iam").get_role(RoleName=name)["Role"]["Arn"]


def _resubscribe(session, out):
    session.client("sns").subscribe(
        TopicArn=out["foundation"]["failureTopicArn"],
        Protocol="email",
        Endpoint="devops@company.com",
    )


def _restore_build(session, out):
    session.client("codebuild").delete_project(name=PROJECT)
    _build_project(session, _role(session, "build"), "BUILD_GENERAL1_SMALL")


# check name -> how the operator puts back what was deployed (the account is shared by the tests
# of a module, so each drift test puts its drift back and checks the account conforms again)
RESTORES = {
    "kms-rotation": lambda s, o: s.client("kms").enable_key_rotation(
        KeyId=o["foundation"]["kmsKeyArn"]
    ),
    **_bucket_restores(BUCKET),
    "source-bucket-eventbridge": lambda s, o: s.client("s3").put_bucket_notification_configuration(
        Bucket=SOURCE_BUCKET, NotificationConfiguration=EVENTBRIDGE_ON
    ),
    "secret-kms": lambda s, o: s.client("secretsmanager").update_secret(
        SecretId=o["foundation"]["githubTokenSecretArn"], KmsKeyId=o["foundation"]["kmsKeyArn"]
    ),
    "topic-kms": lambda s, o: s.client("sns").set_topic_attributes(
        TopicArn=o["foundation"]["failureTopicArn"],
        AttributeName="KmsMasterKeyId",
        AttributeValue=o["foundation"]["kmsKeyArn"],
    ),
    "topic-email-subscription": _resubscribe,
    "ecr-scan-on-push": lambda s, o: s.client("ecr").put_image_scanning_configuration(
        repositoryName=REPO, imageScanningConfiguration={"scanOnPush": True}
    ),
    "ecr-immutable-tags": lambda s, o: s.client("ecr").put_image_tag_mutability(
        repositoryName=REPO,
        imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
        imageTagMutabilityExclusionFilters=ONLY_PRODUCTION_MOVES,
    ),
    "ecr-lifecycle": lambda s, o: s.client("ecr").put_lifecycle_policy(
        repositoryName=REPO, lifecyclePolicyText=KEEP_TEN
    ),
    "log-groups-retention-and-kms": lambda s, o: s.client("logs").put_retention_policy(
        logGroupName=LOG_GROUP, retentionInDays=7
    ),
    "codebuild-compute": _restore_build,
    "pipeline-five-stages": lambda s, o: s.client("codepipeline").update_pipeline(
        pipeline=_pipeline(_role(s, "pipeline"))
    ),
    "ledger-pitr-and-kms": lambda s, o: s.client("dynamodb").update_continuous_backups(
        TableName=LEDGER,
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
    ),
    "lambda-logs-and-dead-letters": lambda s, o: s.client("lambda").update_function_configuration(
        FunctionName=o["pipeline"]["handlerArns"][""],
        DeadLetterConfig={"TargetArn": _dead_letters_arn(s)},
    ),
    "lambda-dead-letters-alarmed": lambda s, o: _alarm_on_dead_letters(
        s, o["foundation"]["failureTopicArn"]
    ),
    "lambda-not-public": lambda s, o: s.client("lambda").remove_permission(
        FunctionName=o["pipeline"]["handlerArns"][""], StatementId="anyone"
    ),
}


@pytest.fixture(scope="module")
def account(aws_session):
    """One conforming account for the module: the tests read it, or drift it and put it back."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        fake_credentials(monkeypatch, REGION)
        with mock_aws():
            session = Session(aws_session(REGION))
            yield session, deploy_conforming_account(session)


class Session:
    """A boto3 session on moto that keeps the Lambda and S3 settings moto accepts but drops.

    moto's Lambda ignores ``LoggingConfig`` and ``DeadLetterConfig``; AWS returns them from
    GetFunctionConfiguration. moto 5.2.5's S3 stores a bucket's ``EventBridgeConfiguration`` but
    leaves it out of GetBucketNotificationConfiguration's answer (``get_bucket_notification`` in
    moto/s3/responses.py builds only the topic, queue and Lambda lists); AWS answers it, empty,
    while delivery is on. This stand-in remembers what create/update/put set and adds it back to
    moto's answer, so the check reads the same fields it reads from AWS.
    """

    def __init__(self, real):
        self._real = real
        self._kept: dict[str, dict] = {}
        self._eventbridge: dict[str, dict] = {}
        self._clients: dict[str, object] = {}

    def client(self, name, **kwargs):
        # One client per service, as a script would keep it: making one is not free.
        key = repr((name, sorted(kwargs.items())))
        if key not in self._clients:
            self._clients[key] = self._made(name, **kwargs)
        return self._clients[key]

    def _made(self, name, **kwargs):
        client = self._real.client(name, **kwargs)
        if name == "s3":
            return self._s3(client)
        if name != "lambda":
            return client
        kept, create, update, read = (
            self._kept,
            client.create_function,
            client.update_function_configuration,
            client.get_function_configuration,
        )

        def remember(arn, given):
            fields = {k: given[k] for k in ("LoggingConfig", "DeadLetterConfig") if k in given}
            kept.setdefault(arn, {}).update(fields)

        def create_function(**given):
            found = create(**given)
            remember(found["FunctionArn"], given)
            return found

        def update_function_configuration(**given):
            found = update(**given)
            remember(found["FunctionArn"], given)
            return found

        def get_function_configuration(**given):
            found = read(**given)
            return {**found, **kept.get(found["FunctionArn"], {})}

        client.create_function = create_function
        client.update_function_configuration = update_function_configuration
        client.get_function_configuration = get_function_configuration
        return client

    def _s3(self, client):
        kept, put, read = (
            self._eventbridge,
            client.put_bucket_notification_configuration,
            client.get_bucket_notification_configuration,
        )

        def put_bucket_notification_configuration(**given):
            found = put(**given)  # a put replaces the whole configuration
            config = given["NotificationConfiguration"]
            kept[given["Bucket"]] = {
                k: config[k] for k in ("EventBridgeConfiguration",) if k in config
            }
            return found

        def get_bucket_notification_configuration(**given):
            return {**read(**given), **kept.get(given["Bucket"], {})}

        client.put_bucket_notification_configuration = put_bucket_notification_configuration
        client.get_bucket_notification_configuration = get_bucket_notification_configuration
        return client

    def resource(self, name, **kwargs):
        return self._real.resource(name, **kwargs)


def test_every_check_has_a_drift():
    assert set(DRIFTS) == {check.name for check in CHECKS}


def test_a_conforming_account_passes_every_check(account):
    session, outputs = account
    results = verify(outputs, session)
    assert {r.check for r in results} == set(DRIFTS)
    # one resource per check, but two (artifact and source bucket) for each of the four bucket
    # checks, and two (app, worker) for each of the three repository checks and the stages:
    # 19 checks + 4 + 3 + 1
    assert len(results) == 27
    assert [(r.check, r.resource) for r in results if r.check.startswith(("ecr", "pipeline"))] == [
        ("ecr-scan-on-push", "acme-registry-app-dev"),
        ("ecr-scan-on-push", "acme-registry-worker-dev"),
        ("ecr-immutable-tags", "acme-registry-app-dev"),
        ("ecr-immutable-tags", "acme-registry-worker-dev"),
        ("ecr-lifecycle", "acme-registry-app-dev"),
        ("ecr-lifecycle", "acme-registry-worker-dev"),
        ("pipeline-five-stages", "app-acme-dev"),
        ("pipeline-five-stages", "worker-acme-dev"),
    ]
    assert [(r.check, r.resource) for r in results if "bucket" in r.check] == [
        ("bucket-public-access-blocked", "acme-foundation-artifacts-111111111111-dev"),
        ("bucket-public-access-blocked", "acme-foundation-source-111111111111-dev"),
        ("bucket-versioning", "acme-foundation-artifacts-111111111111-dev"),
        ("bucket-versioning", "acme-foundation-source-111111111111-dev"),
        ("bucket-lifecycle", "acme-foundation-artifacts-111111111111-dev"),
        ("bucket-lifecycle", "acme-foundation-source-111111111111-dev"),
        ("bucket-sse-kms", "acme-foundation-artifacts-111111111111-dev"),
        ("bucket-sse-kms", "acme-foundation-source-111111111111-dev"),
        ("source-bucket-eventbridge", "acme-foundation-source-111111111111-dev"),
    ]
    assert [r for r in results if not r.ok] == []
    assert table(results).endswith(f"{len(results)} passed, 0 failed")


def test_every_drift_can_be_put_back():
    assert set(RESTORES) == set(DRIFTS)


@pytest.mark.parametrize("check", sorted(DRIFTS))
def test_each_check_catches_its_drift(check, account):
    session, outputs = account
    DRIFTS[check](session, outputs)
    try:
        failed = {r.check for r in verify(outputs, session) if not r.ok}
    finally:
        RESTORES[check](session, outputs)
    assert failed == {check}
    # Put back, the account conforms again: the next test starts from a deployed account.
    assert [r for r in verify(outputs, session) if not r.ok] == []


SOURCE_DRIFTS = _bucket_drifts(SOURCE_BUCKET)
SOURCE_RESTORES = _bucket_restores(SOURCE_BUCKET)


@pytest.mark.parametrize("check", sorted(SOURCE_DRIFTS))
def test_each_bucket_check_catches_its_drift_on_the_source_bucket(check, account):
    session, outputs = account
    SOURCE_DRIFTS[check](session, outputs)
    try:
        failed = [(r.check, r.resource) for r in verify(outputs, session) if not r.ok]
    finally:
        SOURCE_RESTORES[check](session, outputs)
    assert failed == [(check, "acme-foundation-source-111111111111-dev")]
    assert [r for r in verify(outputs, session) if not r.ok] == []


def test_an_artifact_bucket_drift_names_the_artifact_bucket(account):
    session, outputs = account
    DRIFTS["bucket-lifecycle"](session, outputs)
    try:
        failed = [(r.check, r.resource, r.detail) for r in verify(outputs, session) if not r.ok]
    finally:
        RESTORES["bucket-lifecycle"](session, outputs)
    assert [(check, resource) for check, resource, _ in failed] == [
        ("bucket-lifecycle", "acme-foundation-artifacts-111111111111-dev")
    ]
    assert failed[0][2].startswith("NoSuchLifecycleConfiguration: ")


def test_a_drift_of_the_workers_repository_and_pipeline_names_the_workers(account):
    session, outputs = account
    ecr = session.client("ecr")
    ecr.put_image_scanning_configuration(
        repositoryName=WORKER_REPO, imageScanningConfiguration={"scanOnPush": False}
    )
    codepipeline = session.client("codepipeline")
    pipeline = codepipeline.get_pipeline(name=WORKER_PIPELINE)["pipeline"]
    pipeline["stages"] = [s for s in pipeline["stages"] if s["name"] != "SecurityScan"]
    codepipeline.update_pipeline(pipeline=pipeline)
    try:
        failed = [(r.check, r.resource, r.detail) for r in verify(outputs, session) if not r.ok]
    finally:
        ecr.put_image_scanning_configuration(
            repositoryName=WORKER_REPO, imageScanningConfiguration={"scanOnPush": True}
        )
        codepipeline.update_pipeline(
            pipeline=_pipeline(_role(session, "pipeline"), WORKER_PIPELINE)
        )
    assert failed == [
        ("ecr-scan-on-push", "acme-registry-worker-dev", "scan on push is off"),
        ("pipeline-five-stages", "worker-acme-dev", "Source -> Build -> Test -> Deploy"),
    ]
    assert [r for r in verify(outputs, session) if not r.ok] == []


def test_repositories_and_projects_are_read_in_batches_the_apis_take(account, monkeypatch):
    from toolbox import verify as verify_module

    session, outputs = account
    asked: list[tuple[str, int]] = []

    class Recording:
        def client(self, name, **kwargs):
            client = session.client(name, **kwargs)
            if name not in ("ecr", "codebuild"):
                return client

            class Wrapped:
                def __getattr__(self, attribute):
                    return getattr(client, attribute)

                def describe_repositories(self, **given):
                    asked.append(("ecr", len(given["repositoryNames"])))
                    return client.describe_repositories(**given)

                def batch_get_projects(self, **given):
                    asked.append(("codebuild", len(given["names"])))
                    return client.batch_get_projects(**given)

            return Wrapped()

    monkeypatch.setattr(verify_module, "BATCH", 1)
    results = verify(outputs, Recording())

    assert [r for r in results if not r.ok] == []
    # two checks read both repositories, one name per call; the one project likewise
    assert asked.count(("ecr", 1)) == 4
    assert [call for call in asked if call[1] != 1] == []


def test_names_of_reads_every_shape_of_the_by_service_exports():
    assert names_of({"app": "a", "worker": "w"}) == ["a", "w"]
    assert names_of({"app": {"docker-build": "a-d", "tests": "a-t"}, "": {"x": "r"}}) == [
        "a-d",
        "a-t",
        "r",
    ]
    assert names_of({"app": "", "worker": "w"}) == ["w"]  # no webhook URL, say


def _watch_another_queue(session, out):
    cloudwatch = session.client("cloudwatch")
    cloudwatch.delete_alarms(AlarmNames=[DEAD_LETTERS_ALARM])
    cloudwatch.put_metric_alarm(
        AlarmName="another-queue",
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=[{"Name": "QueueName", "Value": "acme-pipeline-other-dlq-dev"}],
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        AlarmActions=[out["foundation"]["failureTopicArn"]],
    )


def _put_back_the_dead_letters_alarm(session, out):
    cloudwatch = session.client("cloudwatch")
    cloudwatch.delete_alarms(AlarmNames=["another-queue"])
    _alarm_on_dead_letters(session, out["foundation"]["failureTopicArn"])


@pytest.mark.parametrize(
    "drift",
    [
        lambda s, o: s.client("cloudwatch").disable_alarm_actions(AlarmNames=[DEAD_LETTERS_ALARM]),
        _watch_another_queue,
    ],
    ids=["its actions disabled", "only another queue watched"],
)
def test_a_dead_letter_alarm_that_would_not_notify_fails(drift, account):
    session, outputs = account
    drift(session, outputs)
    try:
        failed = [(r.check, r.resource) for r in verify(outputs, session) if not r.ok]
    finally:
        _put_back_the_dead_letters_alarm(session, outputs)
    assert failed == [("lambda-dead-letters-alarmed", DEAD_LETTERS)]
    assert [r for r in verify(outputs, session) if not r.ok] == []


def test_a_run_makes_one_client_per_service(account):
    session, outputs = account
    made = []

    class Counting:
        def client(self, name, **kwargs):
            made.append(name)
            return session.client(name, **kwargs)

    assert all(r.ok for r in verify(outputs, Counting()))
    assert sorted(made) == [
        "cloudwatch",
        "codebuild",
        "codepipeline",
        "dynamodb",
        "ecr",
        "kms",
        "lambda",
        "logs",
        "s3",
        "secretsmanager",
        "sns",
    ]


def test_a_stack_not_deployed_fails_its_checks(account):
    session, outputs = account
    results = verify({**outputs, "pipeline": None}, session)
    assert [(r.check, r.detail) for r in results if not r.ok] == [
        ("log-groups-retention-and-kms", "stack not deployed"),
        ("codebuild-compute", "stack not deployed"),
        ("pipeline-five-stages", "stack not deployed"),
        ("lambda-logs-and-dead-letters", "stack not deployed"),
        ("lambda-dead-letters-alarmed", "stack not deployed"),
        ("lambda-not-public", "stack not deployed"),
    ]


def test_an_api_error_fails_the_check_with_its_code(account):
    session, _ = account
    missing = {"registry": {"repositoryNames": {"app": "not-there"}}}
    results = verify(missing, session)
    assert {r.check for r in results} == {"ecr-scan-on-push", "ecr-immutable-tags", "ecr-lifecycle"}
    assert all(not r.ok and "RepositoryNotFoundException" in r.detail for r in results)

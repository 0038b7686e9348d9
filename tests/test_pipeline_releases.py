"""The release flow in the pipeline plan: handlers, their rules, the Deploy gate and rollback."""

from __future__ import annotations

import ast
import fnmatch
import hashlib
import json

import pytest

from shared.errors import ConfigError
from shared.layers import REPO_ROOT
from tests.conftest import policy_of, real_upstream
from tests.pipeline_support import (
    ACCOUNT,
    APP,
    LAYER,
    LOG_GROUP,
    RULE,
    TARGET,
    WORKER,
    buildspec,
    named,
    role_policy,
    stages,
)

FUNCTION = "aws:lambda/function:Function"
PERMISSION = "aws:lambda/permission:Permission"
QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
KEY = "platform-pipeline:"
ALARMS = [
    "arn:aws:cloudwatch:us-east-1:111111111111:alarm:app-5xx",
    "arn:aws:cloudwatch:us-east-1:111111111111:alarm:app-latency",
]
HANDLER_DIR = REPO_ROOT / "stacks" / "pipeline" / "handlers"
HANDLERS = {
    (LAYER, "recorder"): ("acme-pipeline-recorder-dev", "recorder.py"),
    (APP, "deploy-handler"): ("acme-pipeline-app-deploy-handler-dev", "deploy.py"),
    (WORKER, "deploy-handler"): ("acme-pipeline-worker-deploy-handler-dev", "deploy.py"),
}
"""Every handler of the tests' plan, by (owner, key): the layer's recorder (its own key in the
by-service outputs) and each service's deploy handler."""
SERVICES = (APP, WORKER)


@pytest.fixture(scope="module")
def baked(dev):
    """The pipeline layer with two bake alarms and 15 minutes for every service (the worker
    states none for dev), on the real upstream; content-keyed in build/plancache."""
    from toolbox.plancache import plan_layer_cached

    return plan_layer_cached(
        "pipeline",
        "dev",
        real_upstream(dev, "foundation", "registry"),
        {f"{KEY}deployAlarmArns": json.dumps(ALARMS), f"{KEY}bakeMinutes": "15"},
        reuse=True,
    )


def _function(plan, handler):
    return named(plan, FUNCTION, HANDLERS[handler][0]).inputs


IDS = [owner or key for owner, key in HANDLERS]


@pytest.mark.parametrize("key", list(HANDLERS), ids=IDS)
def test_each_handler_is_its_own_file_on_python_313(dev, key):
    function = _function(dev["pipeline"], key)
    _, file = HANDLERS[key]
    assert function["runtime"] == "python3.13"
    assert function["handler"] == f"{file.removesuffix('.py')}.handler"
    digest = hashlib.sha256((HANDLER_DIR / file).read_bytes()).hexdigest()
    assert function["code"] == {
        "archive": {file: {"file": f"stacks/pipeline/handlers/{file}", "sha256": digest}}
    }
    imports = {
        node.names[0].name if isinstance(node, ast.Import) else node.module
        for node in ast.walk(ast.parse((HANDLER_DIR / file).read_text(encoding="utf-8")))
        if isinstance(node, ast.Import | ast.ImportFrom)
    }
    # Runs in Lambda alone: the standard library and boto3 (in the runtime), nothing of ours.
    ours = {"pulumi", "pulumi_aws", "shared", "stacks"}
    assert not {i for i in imports if i.split(".")[0] in ours}


@pytest.mark.parametrize("key", list(HANDLERS), ids=IDS)
def test_each_handler_logs_to_its_own_encrypted_group_kept_seven_days(dev, key):
    plan, key_arn = dev["pipeline"], dev["foundation"].exports["kmsKeyArn"]
    group_name = f"/aws/lambda/{HANDLERS[key][0]}"
    owner, handler = key
    assert plan.exports["logGroupNames"][owner][handler] == group_name
    group = named(plan, LOG_GROUP, group_name).inputs
    assert (group["retentionInDays"], group["kmsKeyId"]) == (7, key_arn)
    logging = _function(plan, key)["loggingConfig"]
    assert logging["logGroup"] == group_name
    assert logging["logFormat"] == "JSON"


@pytest.mark.parametrize("key", list(HANDLERS), ids=IDS)
def test_each_handler_has_an_encrypted_dead_letter_queue(dev, key):
    plan, key_arn = dev["pipeline"], dev["foundation"].exports["kmsKeyArn"]
    queue_name = f"{HANDLERS[key][0].removesuffix('-dev')}-dlq-dev"
    queue = named(plan, QUEUE, queue_name).inputs
    assert queue["kmsMasterKeyId"] == key_arn
    assert queue["messageRetentionSeconds"] == 1209600
    assert _function(plan, key)["deadLetterConfig"] == {
        "targetArn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:{queue_name}"
    }


DEAD_LETTER_ALARMS = {
    "acme-pipeline-recorder-dlq-dev": "acme-pipeline-recorder-dead-letters-dev",
    "acme-pipeline-app-deploy-handler-dlq-dev": "acme-pipeline-app-deploy-handler-dead-letters-dev",
    "acme-pipeline-worker-deploy-handler-dlq-dev": (
        "acme-pipeline-worker-deploy-handler-dead-letters-dev"
    ),
}
"""Each handler's dead-letter queue and the alarm on it, by name."""


def test_a_message_in_a_handler_dead_letter_queue_alarms_to_the_failure_topic(dev):
    plan, topic = dev["pipeline"], dev["foundation"].exports["failureTopicArn"]
    alarms = {
        a.inputs["dimensions"]["QueueName"]: a.inputs
        for a in plan.of_type(ALARM)
        if a.inputs["namespace"] == "AWS/SQS"
    }
    assert set(alarms) == set(DEAD_LETTER_ALARMS)
    for queue_name, alarm_name in DEAD_LETTER_ALARMS.items():
        alarm = alarms[queue_name]
        assert alarm["name"] == alarm_name
        assert alarm["metricName"] == "ApproximateNumberOfMessagesVisible"
        assert alarm["dimensions"] == {"QueueName": queue_name}
        assert alarm["statistic"] == "Maximum"
        assert alarm["period"] == 60
        assert alarm["evaluationPeriods"] == 1
        assert alarm["comparisonOperator"] == "GreaterThanThreshold"
        assert alarm["threshold"] == 0
        assert alarm["treatMissingData"] == "notBreaching"
        assert alarm["alarmActions"] == [topic]
    # The queues it watches are the handlers' own (their functions dead-letter into them).
    targets = {_function(plan, key)["deadLetterConfig"]["targetArn"] for key in HANDLERS}
    assert targets == {f"arn:aws:sqs:us-east-1:{ACCOUNT}:{queue}" for queue in DEAD_LETTER_ALARMS}


def test_the_failure_topic_admits_the_dead_letter_alarms(dev, baked):
    for plan in (dev["pipeline"], baked):
        topic = policy_of(plan.one("aws:sns/topicPolicy:TopicPolicy"))
        (alarms,) = [s for s in topic["Statement"] if s["Sid"] == "OnlyTheLayersAlarmsPublish"]
        (pattern,) = alarms["Condition"]["ArnLike"]["aws:SourceArn"]
        assert pattern == f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:acme-pipeline-*"
        for name in DEAD_LETTER_ALARMS.values():
            arn = f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{name}"
            assert fnmatch.fnmatchcase(arn, pattern), name
        assert alarms["Condition"]["StringEquals"] == {"aws:SourceAccount": [ACCOUNT]}


def test_by_default_the_handlers_reserve_no_concurrency_so_a_fresh_account_deploys(dev):
    plan = dev["pipeline"]
    for key in HANDLERS:
        assert "reservedConcurrentExecutions" not in _function(plan, key)


def test_reserve_concurrency_reserves_five_for_the_recorder_and_two_for_each_deploy(replan):
    plan = replan("pipeline", config={f"{KEY}reserveConcurrency": "true"})
    assert _function(plan, (LAYER, "recorder"))["reservedConcurrentExecutions"] == 5
    for service in SERVICES:
        deploy = _function(plan, (service, "deploy-handler"))
        assert deploy["reservedConcurrentExecutions"] == 2, service


def test_handlers_have_key_encrypted_environment(dev):
    plan, foundation = dev["pipeline"], dev["foundation"].exports
    recorder = _function(plan, (LAYER, "recorder"))
    assert recorder["kmsKeyArn"] == foundation["kmsKeyArn"]
    assert recorder["environment"]["variables"] == {
        "LEDGER_TABLE": "acme-foundation-ledger-dev",
        "PIPELINE_SUFFIX": "-acme-dev",
    }
    for service in SERVICES:
        deploy = _function(plan, (service, "deploy-handler"))
        assert deploy["kmsKeyArn"] == foundation["kmsKeyArn"]
        assert deploy["environment"]["variables"] == {
            "LEDGER_TABLE": "acme-foundation-ledger-dev",
            "FAILURE_TOPIC_ARN": foundation["failureTopicArn"],
            "SERVICE": service,
        }


def test_recorder_role_writes_the_ledger_and_reads_the_layers_pipelines_only(dev):
    plan, foundation = dev["pipeline"], dev["foundation"].exports
    policy = role_policy(plan, "recorder")
    assert set(policy) == {
        "HandlerLogs",
        "WriteLedger",
        "DeadLetters",
        "PlatformKey",
        "ReadExecutionCommit",
    }
    assert policy["WriteLedger"]["Action"] == ["dynamodb:PutItem"]
    assert policy["WriteLedger"]["Resource"] == [foundation["ledgerTableArn"]]
    # every pipeline of the layer, by the ending their names share (one line for any number)
    (pipelines,) = policy["ReadExecutionCommit"]["Resource"]
    assert pipelines == f"arn:aws:codepipeline:us-east-1:{ACCOUNT}:*-acme-dev"
    for arn in plan.exports["pipelineArns"].values():
        assert fnmatch.fnmatchcase(arn, pipelines), arn
    assert policy["HandlerLogs"]["Resource"] == [
        f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/acme-pipeline-recorder-dev",
        f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/acme-pipeline-recorder-dev:*",
    ]
    assert policy["PlatformKey"]["Resource"] == [foundation["kmsKeyArn"]]


@pytest.mark.parametrize("service", SERVICES)
def test_deploy_handler_role_tags_its_one_repository_and_reports_jobs(dev, service):
    plan, foundation = dev["pipeline"], dev["foundation"].exports
    repository = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/acme-registry-{service}-dev"
    policy = role_policy(plan, "deploy-handler", service)
    assert policy["ReadImageAndScan"] == {
        "Sid": "ReadImageAndScan",
        "Effect": "Allow",
        "Action": ["ecr:BatchGetImage", "ecr:DescribeImageScanFindings", "ecr:DescribeImages"],
        "Resource": [repository],
    }
    assert policy["TagProduction"] == {
        "Sid": "TagProduction",
        "Effect": "Allow",
        "Action": ["ecr:PutImage"],
        "Resource": [repository],
    }
    assert policy["NotifyFailure"]["Resource"] == [foundation["failureTopicArn"]]
    assert policy["HandlerLogs"]["Resource"] == [
        f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/acme-pipeline-{service}-deploy-handler-dev",
        f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/acme-pipeline-{service}-deploy-handler-dev:*",
    ]
    assert policy["DeadLetters"]["Resource"] == [
        f"arn:aws:sqs:us-east-1:{ACCOUNT}:acme-pipeline-{service}-deploy-handler-dlq-dev"
    ]
    # The only `*`: job results and Inspector's findings have no resource type.
    wild = [s for s in policy.values() if s["Resource"] == ["*"]]
    assert wild == [policy["ReadEnhancedFindings"], policy["ReportJobResult"]]
    assert policy["ReportJobResult"]["Action"] == [
        "codepipeline:PutJobFailureResult",
        "codepipeline:PutJobSuccessResult",
    ]


@pytest.mark.parametrize("service", SERVICES)
def test_pipeline_role_invokes_its_deploy_handler_only(dev, service):
    policy = role_policy(dev["pipeline"], "pipeline", service)
    assert policy["InvokeDeployHandler"]["Action"] == ["lambda:InvokeFunction"]
    handler = (
        f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:acme-pipeline-{service}-deploy-handler-dev"
    )
    assert policy["InvokeDeployHandler"]["Resource"] == [handler]
    assert dev["pipeline"].exports["handlerArns"][service] == handler
    assert "WatchBakeAlarms" not in policy


def test_recorder_rules_match_every_pipeline_and_project_of_the_layer(baked):
    plan = baked
    pipeline_rule = json.loads(
        named(plan, RULE, "acme-pipeline-record-pipeline-dev").inputs["eventPattern"]
    )
    # By the ending every pipeline name shares and the start every project name shares: one
    # line each, whatever the number of services.
    assert pipeline_rule == {
        "source": ["aws.codepipeline"],
        "detail-type": [
            "CodePipeline Pipeline Execution State Change",
            "CodePipeline Stage Execution State Change",
        ],
        "detail": {"pipeline": [{"suffix": "-acme-dev"}]},
    }
    builds_rule = json.loads(
        named(plan, RULE, "acme-pipeline-record-builds-dev").inputs["eventPattern"]
    )
    assert builds_rule["detail-type"] == ["CodeBuild Build State Change"]
    assert builds_rule["detail"]["project-name"] == [{"prefix": "acme-pipeline-"}]
    for service in SERVICES:
        assert plan.exports["pipelineNames"][service].endswith("-acme-dev")
        for name in plan.exports["projectNames"][service].values():
            assert name.startswith("acme-pipeline-"), name


def test_only_the_recorder_rules_may_invoke_the_recorder(dev):
    plan = dev["pipeline"]
    permissions = plan.of_type(PERMISSION)
    assert {p.inputs["sourceArn"] for p in permissions} == {
        f"arn:aws:events:us-east-1:{ACCOUNT}:rule/acme-pipeline-record-pipeline-dev",
        f"arn:aws:events:us-east-1:{ACCOUNT}:rule/acme-pipeline-record-builds-dev",
    }
    for permission in permissions:
        assert permission.inputs["principal"] == "events.amazonaws.com"
        assert permission.inputs["sourceAccount"] == ACCOUNT
        assert permission.inputs["function"] == "acme-pipeline-recorder-dev"


def test_recorder_targets_retry_then_park_events_in_their_own_dead_letter_queues(dev):
    plan = dev["pipeline"]
    targets = {
        t.inputs["rule"]: t.inputs
        for t in plan.of_type(TARGET)
        if t.inputs["targetId"] == "recorder"
    }
    assert sorted(targets) == [
        "acme-pipeline-record-builds-dev",
        "acme-pipeline-record-pipeline-dev",
    ]
    for rule, target in targets.items():
        purpose = rule.removeprefix("acme-pipeline-").removesuffix("-dev")
        queue_name = f"acme-pipeline-{purpose}-dlq-dev"
        assert target["arn"] == plan.exports["handlerArns"][LAYER]
        assert target["deadLetterConfig"] == {
            "arn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:{queue_name}"
        }
        assert target["retryPolicy"] == {
            "maximumEventAgeInSeconds": 3600,
            "maximumRetryAttempts": 10,
        }
        (policy,) = [
            q for q in plan.of_type(QUEUE_POLICY) if q.inputs["queueUrl"].endswith(f"/{queue_name}")
        ]
        (statement,) = policy_of(policy)["Statement"]
        assert statement["Principal"] == {"Service": ["events.amazonaws.com"]}
        assert statement["Condition"] == {
            "ArnEquals": {"aws:SourceArn": [f"arn:aws:events:us-east-1:{ACCOUNT}:rule/{rule}"]}
        }
    alarms = {
        a.inputs["dimensions"]["RuleName"]: a.inputs["name"]
        for a in plan.of_type(ALARM)
        if a.inputs["namespace"] == "AWS/Events"
    }
    assert alarms["acme-pipeline-record-pipeline-dev"] == (
        "acme-pipeline-record-pipeline-failed-invocations-dev"
    )
    assert alarms["acme-pipeline-record-builds-dev"] == (
        "acme-pipeline-record-builds-failed-invocations-dev"
    )


def test_email_notifications_stay_failed_executions_only(dev):
    rule = named(dev["pipeline"], RULE, "acme-pipeline-failed-dev")
    assert json.loads(rule.inputs["eventPattern"])["detail"]["state"] == ["FAILED"]


def _deploy(plan, service=APP):
    (deploy,) = [s for s in stages(plan, service) if s["name"] == "Deploy"]
    return deploy


@pytest.mark.parametrize(("service", "threshold"), [(APP, "HIGH"), (WORKER, "CRITICAL")])
def test_deploy_handler_runs_after_the_ecs_deploy_with_the_image_and_execution(
    dev, service, threshold
):
    deploy = _deploy(dev["pipeline"], service)
    ecs, promote = deploy["actions"][-2:]
    assert ecs["provider"] == "ECS"
    assert (promote["category"], promote["owner"], promote["provider"]) == (
        "Invoke",
        "AWS",
        "Lambda",
    )
    assert promote["runOrder"] == ecs["runOrder"] + 1
    configuration = promote["configuration"]
    assert configuration["FunctionName"] == f"acme-pipeline-{service}-deploy-handler-dev"
    assert json.loads(configuration["UserParameters"]) == {
        "service": service,
        "repository": f"acme-registry-{service}-dev",
        "imageTag": "#{BuildVariables.IMAGE_TAG}",
        "commit": "#{BuildVariables.COMMIT_ID}",
        "executionId": "#{codepipeline.PipelineExecutionId}",
        "threshold": threshold,
    }


def test_docker_build_exports_the_variables_the_deploy_handler_reads(dev):
    for service in SERVICES:
        (build,) = [s for s in stages(dev["pipeline"], service) if s["name"] == "Build"]
        assert build["actions"][0]["namespace"] == "BuildVariables"
    assert buildspec("docker-build.yml")["env"]["exported-variables"] == ["IMAGE_TAG", "COMMIT_ID"]


def test_deploy_stage_rolls_back_on_failure_and_has_no_bake_without_alarms(dev, prod):
    for plans in (dev, prod):
        for service in SERVICES:
            deploy = _deploy(plans["pipeline"], service)
            assert deploy["onFailure"] == {"result": "ROLLBACK"}
            if (service, plans["pipeline"].environment) == (WORKER, "prod"):
                continue  # the worker states a bake alarm for prod
            assert "onSuccess" not in deploy, service
            assert [s.get("onFailure") for s in stages(plans["pipeline"], service)[:-1]] == [
                None
            ] * 4


@pytest.mark.parametrize("service", SERVICES)
def test_alarms_bake_after_the_deploy_and_roll_it_back(baked, service):
    condition = _deploy(baked, service)["onSuccess"]["condition"]
    assert condition["result"] == "ROLLBACK"
    assert condition["rules"] == [
        {
            "name": f"Bake{index}",
            "ruleTypeId": {
                "category": "Rule",
                "owner": "AWS",
                "provider": "CloudWatchAlarm",
                "version": "1",
            },
            "configuration": {"AlarmName": name, "AlarmStates": "ALARM", "WaitTime": "15"},
        }
        for index, name in ((1, "app-5xx"), (2, "app-latency"))
    ]
    watch = role_policy(baked, "pipeline", service)["WatchBakeAlarms"]
    assert watch["Action"] == ["cloudwatch:DescribeAlarms"]
    assert watch["Resource"] == ALARMS


def test_a_service_bakes_on_the_alarms_it_states_for_its_environment(prod):
    condition = _deploy(prod["pipeline"], WORKER)["onSuccess"]["condition"]
    assert condition["result"] == "ROLLBACK"
    assert [rule["configuration"]["AlarmName"] for rule in condition["rules"]] == ["worker-5xx"]
    watch = role_policy(prod["pipeline"], "pipeline", WORKER)["WatchBakeAlarms"]
    assert watch["Resource"] == ["arn:aws:cloudwatch:us-east-1:222222222222:alarm:worker-5xx"]
    assert "onSuccess" not in _deploy(prod["pipeline"], APP)


@pytest.mark.parametrize("service", SERVICES)
def test_the_pipeline_keeps_exactly_five_stages(baked, service):
    assert [s["name"] for s in stages(baked, service)] == [
        "Source",
        "Build",
        "Test",
        "SecurityScan",
        "Deploy",
    ]


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("deployAlarmArns", json.dumps(["arn:aws:sns:us-east-1:1:topic"]), "CloudWatch alarm ARNs"),
        ("deployAlarmArns", json.dumps([ALARMS[0]] * 2), "unique alarm ARNs"),
        (
            "deployAlarmArns",
            json.dumps([f"{ALARMS[0]}{i}" for i in range(6)]),
            "at most 5 alarm ARNs",
        ),
        ("bakeMinutes", "0", "a whole number from 1 to 180"),
        (
            "deployAlarmArns",
            json.dumps(["arn:aws:cloudwatch:us-east-1:999999999999:alarm:app-5xx"]),
            "alarms of this account and Region only:"
            " arn:aws:cloudwatch:us-east-1:111111111111:alarm:<name>",
        ),
        (
            "deployAlarmArns",
            json.dumps([ALARMS[0], "arn:aws:cloudwatch:eu-west-1:111111111111:alarm:app-5xx"]),
            "is in account 111111111111, Region eu-west-1, not this environment's",
        ),
        ("reserveConcurrency", "7", "true or false"),
    ],
)
def test_bad_release_config_is_one_line_naming_file_and_key(replan, key, value, allowed):
    with pytest.raises(ConfigError) as error:
        replan("pipeline", config={f"{KEY}{key}": value})
    message = str(error.value)
    assert message.startswith(f"stacks/pipeline/Pulumi.dev.yaml: {KEY}{key}: ")
    assert allowed in message
    assert "\n" not in message


def test_outputs_name_the_handlers_and_the_production_images(dev):
    exports = dev["pipeline"].exports
    assert exports["handlerArns"] == {
        owner: f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"
        for (owner, _), (name, _) in HANDLERS.items()
    }
    assert exports["imageUris"] == {
        service: f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/acme-registry-{service}-dev:production"
        for service in SERVICES
    }

"""Sources and triggers: each provider planned in dev and prod, none polls, each starts the
pipeline its own way, and the pipeline role reads only the source it uses."""

from __future__ import annotations

import fnmatch
import json

import pytest

from shared.errors import ConfigError
from tests.conftest import real_upstream
from tests.pipeline_support import (
    ACCOUNT,
    APP,
    ROLE,
    RULE,
    TARGET,
    WORKER,
    pipeline,
    role_policy,
    stages,
    trust,
)
from toolbox.plancache import plan_layer_cached
from toolbox.verdicts import evaluate

CONNECTION = (
    "arn:aws:codeconnections:us-east-1:111111111111:connection/12345678-abcd-4ef0-9abc-1234567890ab"
)
SOURCE_BUCKET = "acme-foundation-source-{account}-{env}"
ACCOUNTS = {"dev": "111111111111", "prod": "222222222222"}
WEBHOOK = "aws:codepipeline/webhook:Webhook"
REPOSITORY_WEBHOOK = "github:index/repositoryWebhook:RepositoryWebhook"
PROVIDERS = {
    "github": {},
    "codeconnections": {
        "platform-pipeline:sourceProvider": "codeconnections",
        "platform-pipeline:connectionArn": CONNECTION,
    },
    "s3": {"platform-pipeline:sourceProvider": "s3"},
}


@pytest.fixture(scope="module")
def by_provider(dev, prod):
    """The pipeline layer of every source provider, in dev and prod, on the real upstream.

    Content-keyed in build/plancache like ``replan``'s plans: a module fixture is set up before
    any test's ``monkeypatch``, so nothing patched can shape these plans.
    """
    return {
        (provider, plans["pipeline"].environment): plan_layer_cached(
            "pipeline",
            plans["pipeline"].environment,
            real_upstream(plans, "foundation", "registry"),
            config,
            reuse=True,
        )
        for provider, config in PROVIDERS.items()
        for plans in (dev, prod)
    }


def _source(plan, service=APP):
    (stage,) = [s for s in stages(plan, service) if s["name"] == "Source"]
    (action,) = stage["actions"]
    return action


# -- every provider, both environments ----------------------------------------------------------


@pytest.mark.parametrize("env", ["dev", "prod"])
@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_every_provider_plans_five_stages_and_passes_the_policy_pack(by_provider, provider, env):
    plan = by_provider[(provider, env)]
    for service in (APP, WORKER):
        assert [s["name"] for s in stages(plan, service)] == [
            "Source",
            "Build",
            "Test",
            "SecurityScan",
            "Deploy",
        ]
    verdicts = evaluate(plan)
    assert verdicts.passed, verdicts.to_text()


@pytest.mark.parametrize("env", ["dev", "prod"])
@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_no_source_polls(by_provider, provider, env):
    for service in (APP, WORKER):
        configuration = _source(by_provider[(provider, env)], service)["configuration"]
        assert configuration.get("PollForSourceChanges", "false") == "false"
        assert configuration.get("DetectChanges", "false") == "false"


# -- github: the webhook ------------------------------------------------------------------------


def _webhook(plan, service):
    (webhook,) = [
        w.inputs
        for w in plan.of_type(WEBHOOK)
        if w.inputs["targetPipeline"] == plan.exports["pipelineNames"][service]
    ]
    return webhook


@pytest.mark.parametrize(
    ("service", "name", "pipeline_name"),
    [
        (APP, "acme-pipeline-app-github-dev", "app-acme-dev"),
        (WORKER, "acme-pipeline-worker-github-dev", "worker-acme-dev"),
    ],
)
def test_github_webhook_accepts_only_pushes_to_the_branch_signed_with_the_token(
    by_provider, service, name, pipeline_name
):
    plan = by_provider[("github", "dev")]
    source = _source(plan, service)
    assert source["configuration"]["PollForSourceChanges"] == "false"
    webhook = _webhook(plan, service)
    assert webhook["name"] == name
    assert webhook["targetPipeline"] == pipeline_name
    assert webhook["targetAction"] == source["name"] == "Source"
    assert webhook["authentication"] == "GITHUB_HMAC"
    assert webhook["authenticationConfiguration"] == {"secretToken": "[secret]"}
    assert webhook["filters"] == [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}]
    assert source["configuration"]["Branch"] == "main"  # what {Branch} stands for


@pytest.mark.parametrize(("service", "repository"), [(APP, "app"), (WORKER, "worker-service")])
def test_github_side_is_registered_with_the_same_secret_and_the_foundation_token(
    by_provider, service, repository
):
    plan = by_provider[("github", "dev")]
    (hook,) = [
        h
        for h in plan.of_type(REPOSITORY_WEBHOOK)
        if h.name == f"pipeline-{service}-webhook-repository"
    ]
    assert hook.inputs["repository"] == repository
    assert hook.inputs["events"] == ["push"]
    assert hook.inputs["active"] is True
    assert hook.inputs["configuration"] == {
        "url": plan.exports["githubWebhookUrls"][service],
        "contentType": "json",
        "insecureSsl": False,
        "secret": "[secret]",
    }
    (provider,) = [p for p in plan.of_type("pulumi:providers:github") if p.urn == hook.provider]
    assert provider.name == f"pipeline-{service}-webhook-github"
    assert provider.inputs["owner"] == "acme"
    assert provider.inputs["token"] == "[secret]"
    text = plan.to_text()
    assert "offline-placeholder-token" not in text  # the GitHub token, read as a secret
    assert plan.exports["githubWebhookUrls"][service].startswith(
        "https://us-east-1.webhooks.aws/trigger"
    )


def test_github_webhook_false_leaves_the_github_side_to_the_operator(replan):
    plan = replan("pipeline", config={"platform-pipeline:githubWebhook": "false"})
    assert plan.of_type(REPOSITORY_WEBHOOK) == []
    assert plan.of_type("pulumi:providers:github") == []
    for service in (APP, WORKER):
        assert _webhook(plan, service)["authentication"] == "GITHUB_HMAC"
        assert plan.exports["githubWebhookUrls"][service].startswith(
            "https://us-east-1.webhooks.aws/trigger"
        )


def test_the_webhook_urns_are_pinned(by_provider):
    urns = {r.urn for r in by_provider[("github", "dev")].resources}
    base = (
        "urn:pulumi:dev::platform-pipeline::acme:pipeline:Pipeline$acme:pipeline:ServicePipeline$"
    )
    for service in (APP, WORKER):
        assert f"{base}aws:codepipeline/webhook:Webhook::pipeline-{service}-webhook" in urns
        assert f"{base}{REPOSITORY_WEBHOOK}::pipeline-{service}-webhook-repository" in urns


@pytest.mark.parametrize("provider", ["codeconnections", "s3"])
def test_other_sources_have_no_webhook_and_export_an_empty_url(by_provider, provider):
    plan = by_provider[(provider, "dev")]
    assert plan.of_type(WEBHOOK) == []
    assert plan.of_type(REPOSITORY_WEBHOOK) == []
    assert plan.exports["githubWebhookUrls"] == {APP: "", WORKER: ""}


# -- codeconnections: the V2 trigger ------------------------------------------------------------


def test_codeconnections_pushes_to_the_branch_start_the_pipeline(by_provider):
    plan = by_provider[("codeconnections", "dev")]
    for service in (APP, WORKER):
        (trigger,) = pipeline(plan, service).inputs["triggers"]
        assert trigger == {
            "providerType": "CodeStarSourceConnection",
            "gitConfiguration": {
                "sourceActionName": "Source",
                "pushes": [{"branches": {"includes": ["main"]}}],
            },
        }
        assert _source(plan, service)["configuration"]["DetectChanges"] == "false"
    assert _source(plan, WORKER)["configuration"]["FullRepositoryId"] == "acme/worker-service"


def test_trigger_paths_filter_the_pushes_on_file_paths(replan):
    plan = replan(
        "pipeline",
        config={
            **PROVIDERS["codeconnections"],
            "platform-pipeline:githubBranch": "release/2",
            "platform-pipeline:triggerPaths": '["src/**", "Dockerfile"]',
        },
    )
    (trigger,) = pipeline(plan, APP).inputs["triggers"]
    (push,) = trigger["gitConfiguration"]["pushes"]
    assert push == {
        "branches": {"includes": ["release/2"]},
        "filePaths": {"includes": ["src/**", "Dockerfile"]},
    }


@pytest.mark.parametrize("provider", ["github", "s3"])
def test_only_codeconnections_has_a_pipeline_trigger(by_provider, provider):
    for service in (APP, WORKER):
        assert not pipeline(by_provider[(provider, "dev")], service).inputs.get("triggers")


# -- s3: the source zip and its event -----------------------------------------------------------


@pytest.mark.parametrize("env", ["dev", "prod"])
@pytest.mark.parametrize(
    ("service", "key"), [(APP, "source/app.zip"), (WORKER, "source/worker.zip")]
)
def test_s3_source_reads_the_source_key_from_the_foundation_source_bucket(
    by_provider, env, service, key
):
    source = _source(by_provider[("s3", env)], service)
    assert (source["owner"], source["provider"], source["version"]) == ("AWS", "S3", "1")
    assert source["configuration"] == {
        "S3Bucket": SOURCE_BUCKET.format(account=ACCOUNTS[env], env=env),
        "S3ObjectKey": key,
        "PollForSourceChanges": "false",
    }
    assert source["outputArtifacts"] == ["SourceOutput"]


def _rule(plan, name):
    (rule,) = [r for r in plan.of_type(RULE) if r.inputs["name"] == name]
    (target,) = [t for t in plan.of_type(TARGET) if t.inputs["rule"] == name]
    return json.loads(rule.inputs["eventPattern"]), target.inputs


@pytest.mark.parametrize("service", [APP, WORKER])
def test_a_new_source_zip_starts_the_pipeline_through_the_events_role(by_provider, service):
    plan = by_provider[("s3", "dev")]
    pattern, target = _rule(plan, f"acme-pipeline-{service}-source-dev")
    assert pattern == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [SOURCE_BUCKET.format(account=ACCOUNT, env="dev")]},
            "object": {"key": [f"source/{service}.zip"]},
        },
    }
    pipeline_arn = f"arn:aws:codepipeline:us-east-1:{ACCOUNT}:{service}-acme-dev"
    assert target["arn"] == pipeline_arn
    assert target["roleArn"] == f"arn:aws:iam::{ACCOUNT}:role/acme-pipeline-{service}-events-dev"
    statement = trust(plan, "events", service)
    assert sorted(statement["Condition"]["ArnLike"]["aws:SourceArn"]) == [
        f"arn:aws:events:us-east-1:{ACCOUNT}:rule/acme-pipeline-{service}-codecommit-dev",
        f"arn:aws:events:us-east-1:{ACCOUNT}:rule/acme-pipeline-{service}-source-dev",
    ]
    (only,) = role_policy(plan, "events", service).values()
    assert only["Action"] == ["codepipeline:StartPipelineExecution"]
    assert only["Resource"] == [pipeline_arn]


def test_the_source_key_comes_from_config(replan, config_copy):
    # Stated by one service: the layer's sourceKey is every service's, and two services started
    # by one zip are refused (test_pipeline_services.py).
    (config_copy / "platform.yaml").write_text(
        (config_copy / "platform.yaml")
        .read_text(encoding="utf-8")
        .replace("  app: {}", "  app:\n    sourceKey: drops/shop-api.zip"),
        encoding="utf-8",
    )
    plan = replan("pipeline", config=PROVIDERS["s3"])
    assert _source(plan)["configuration"]["S3ObjectKey"] == "drops/shop-api.zip"
    pattern, _ = _rule(plan, "acme-pipeline-app-source-dev")
    assert pattern["detail"]["object"]["key"] == ["drops/shop-api.zip"]
    reads = role_policy(plan, "pipeline")["ReadSourceObject"]
    assert reads["Resource"] == [
        f"arn:aws:s3:::{SOURCE_BUCKET.format(account=ACCOUNT, env='dev')}/drops/shop-api.zip"
    ]


# -- each role reads only its own source --------------------------------------------------------


def test_the_pipeline_role_reads_only_the_source_it_uses(by_provider):
    source_sids = {"UseSourceConnection", "ReadSourceObject", "ReadSourceBucket"}
    github = role_policy(by_provider[("github", "dev")], "pipeline")
    assert source_sids & set(github) == set()

    connection = role_policy(by_provider[("codeconnections", "dev")], "pipeline")
    assert source_sids & set(connection) == {"UseSourceConnection"}
    assert connection["UseSourceConnection"]["Resource"] == [CONNECTION]

    s3 = role_policy(by_provider[("s3", "dev")], "pipeline")
    assert source_sids & set(s3) == {"ReadSourceObject", "ReadSourceBucket"}
    bucket_arn = f"arn:aws:s3:::{SOURCE_BUCKET.format(account=ACCOUNT, env='dev')}"
    assert s3["ReadSourceObject"] == {
        "Sid": "ReadSourceObject",
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:GetObjectVersion"],
        "Resource": [f"{bucket_arn}/source/app.zip"],
    }
    assert s3["ReadSourceBucket"]["Action"] == [
        "s3:GetBucketAcl",
        "s3:GetBucketLocation",
        "s3:GetBucketVersioning",
    ]
    assert s3["ReadSourceBucket"]["Resource"] == [bucket_arn]


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_no_build_role_reaches_the_source(by_provider, provider):
    plan = by_provider[(provider, "dev")]
    for duty in ("docker-build", "tests", "security-scan", "events"):
        text = json.dumps(role_policy(plan, duty))
        assert "acme-foundation-source-" not in text, duty
        assert "connection/" not in text, duty


# -- the CodeCommit mirror rule -----------------------------------------------------------------


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_the_codecommit_mirror_rule_stays_by_default(by_provider, provider):
    names = {r.inputs["name"] for r in by_provider[(provider, "dev")].of_type(RULE)}
    assert {"acme-pipeline-app-codecommit-dev", "acme-pipeline-worker-codecommit-dev"} <= names


def test_codecommit_trigger_false_drops_the_rule_and_the_events_role(replan):
    plan = replan("pipeline", config={"platform-pipeline:codecommitTrigger": "false"})
    assert {r.inputs["name"] for r in plan.of_type(RULE)} == {
        "acme-pipeline-failed-dev",
        "acme-pipeline-record-pipeline-dev",
        "acme-pipeline-record-builds-dev",
    }
    assert "events" not in plan.exports["roleArns"][APP]
    assert "events" not in plan.exports["roleArns"][WORKER]
    # each service's four duties and deploy handler, and the recorder
    assert len(plan.of_type(ROLE)) == 11


def test_codecommit_trigger_false_with_s3_keeps_only_the_source_rule(replan):
    plan = replan(
        "pipeline", config={**PROVIDERS["s3"], "platform-pipeline:codecommitTrigger": "false"}
    )
    names = {r.inputs["name"] for r in plan.of_type(RULE)}
    assert names == {
        "acme-pipeline-failed-dev",
        "acme-pipeline-app-source-dev",
        "acme-pipeline-worker-source-dev",
        "acme-pipeline-record-pipeline-dev",
        "acme-pipeline-record-builds-dev",
    }
    for service in (APP, WORKER):
        assert trust(plan, "events", service)["Condition"]["ArnLike"]["aws:SourceArn"] == [
            f"arn:aws:events:us-east-1:{ACCOUNT}:rule/acme-pipeline-{service}-source-dev"
        ]


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {**PROVIDERS["s3"], "platform-pipeline:sourceKey": "/app.zip"},
            "platform-pipeline:sourceKey: '/app.zip' is not valid (allowed: an S3 key ending in"
            " .zip",
        ),
        (
            {**PROVIDERS["s3"], "platform-pipeline:sourceKey": "source/app.tar.gz"},
            "platform-pipeline:sourceKey: 'source/app.tar.gz' is not valid",
        ),
        (
            {**PROVIDERS["s3"], "platform-pipeline:sourceKey": "a//b.zip"},
            "platform-pipeline:sourceKey: 'a//b.zip' is not valid",
        ),
        (
            {"platform-pipeline:triggerPaths": '["src/**"]'},
            "platform-pipeline:triggerPaths: is only used by the codeconnections source, not"
            " github (allowed: remove it, or set sourceProvider: codeconnections)",
        ),
        (
            {
                **PROVIDERS["codeconnections"],
                "platform-pipeline:triggerPaths": json.dumps([f"d{i}/**" for i in range(9)]),
            },
            "platform-pipeline:triggerPaths: lists 9 globs (allowed: at most 8",
        ),
        (
            {"platform-pipeline:githubWebhook": "maybe"},
            "platform-pipeline:githubWebhook: 'maybe' is not a boolean (allowed: true or false)",
        ),
    ],
)
def test_bad_source_settings_are_one_line_naming_the_key(replan, config, expected):
    with pytest.raises(ConfigError) as error:
        replan("pipeline", config=config)
    message = str(error.value)
    assert message.startswith("stacks/pipeline/Pulumi.dev.yaml: platform-pipeline:")
    assert expected in message
    assert "\n" not in message


# -- the S3 source rule's target: retries, dead-letter queue, alarm -----------------------------


@pytest.mark.parametrize("service", [APP, WORKER])
def test_the_s3_source_target_retries_then_dead_letters_and_its_failures_alarm(
    by_provider, service
):
    plan = by_provider[("s3", "dev")]
    rule = f"acme-pipeline-{service}-source-dev"
    _, target = _rule(plan, rule)
    assert target["retryPolicy"] == {"maximumEventAgeInSeconds": 3600, "maximumRetryAttempts": 10}
    queue_name = f"acme-pipeline-{service}-source-dlq-dev"
    assert target["deadLetterConfig"] == {"arn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:{queue_name}"}
    (queue,) = [q for q in plan.of_type("aws:sqs/queue:Queue") if q.inputs["name"] == queue_name]
    assert queue.inputs["kmsMasterKeyId"].startswith(f"arn:aws:kms:us-east-1:{ACCOUNT}:key/")
    (policy,) = [
        p
        for p in plan.of_type("aws:sqs/queuePolicy:QueuePolicy")
        if p.inputs["queueUrl"].endswith(f"/{queue_name}")
    ]
    (statement,) = json.loads(policy.inputs["policy"])["Statement"]
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": [f"arn:aws:events:us-east-1:{ACCOUNT}:rule/{rule}"]}
    }
    alarms = {
        a.inputs["dimensions"]["RuleName"]: a.inputs
        for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        if a.inputs["namespace"] == "AWS/Events"
    }
    alarm = f"acme-pipeline-{service}-source-failed-invocations-dev"
    assert alarms[rule]["name"] == alarm
    assert alarms[rule]["metricName"] == "FailedInvocations"
    topic = json.loads(plan.one("aws:sns/topicPolicy:TopicPolicy").inputs["policy"])
    (publishers,) = [s for s in topic["Statement"] if s["Sid"] == "OnlyTheLayersAlarmsPublish"]
    (pattern,) = publishers["Condition"]["ArnLike"]["aws:SourceArn"]
    assert pattern == f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:acme-pipeline-*"
    assert fnmatch.fnmatchcase(f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{alarm}", pattern)


def test_codecommit_trigger_false_drops_its_queue_and_alarm_but_not_the_failure_ones(replan):
    plan = replan("pipeline", config={"platform-pipeline:codecommitTrigger": "false"})
    assert sorted(q.inputs["name"] for q in plan.of_type("aws:sqs/queue:Queue")) == [
        "acme-pipeline-app-deploy-handler-dlq-dev",
        "acme-pipeline-failed-dlq-dev",
        "acme-pipeline-record-builds-dlq-dev",
        "acme-pipeline-record-pipeline-dlq-dev",
        "acme-pipeline-recorder-dlq-dev",
        "acme-pipeline-worker-deploy-handler-dlq-dev",
    ]
    assert sorted(
        a.inputs["name"] for a in plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    ) == [
        "acme-pipeline-app-deploy-handler-dead-letters-dev",
        "acme-pipeline-failed-failed-invocations-dev",
        "acme-pipeline-record-builds-failed-invocations-dev",
        "acme-pipeline-record-pipeline-failed-invocations-dev",
        "acme-pipeline-recorder-dead-letters-dev",
        "acme-pipeline-worker-deploy-handler-dead-letters-dev",
    ]
    assert len(plan.of_type("aws:sns/topicPolicy:TopicPolicy")) == 1

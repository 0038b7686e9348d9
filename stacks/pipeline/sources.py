"""The Source stage of each provider and what starts the pipeline; nothing here polls.

- ``github``: the GitHub (OAuth app) v1 action with ``PollForSourceChanges: false``, started by
  a CodePipeline webhook (GitHub HMAC, its token generated and held by the foundation) that
  accepts only pushes to the configured branch; the GitHub side of the webhook is registered
  from this program with the pulumi-github provider, or by hand from the exported URL.
- ``codeconnections``: the CodeStarSourceConnection action, started by the V2 pipeline's own
  trigger: pushes to the branch and, with ``triggerPaths``, only those touching those globs.
- ``s3``: the S3 action on a versioned zip in the foundation's source bucket, started by an
  EventBridge rule on that object's "Object Created" event through the events role.

The pipeline role gets exactly what its one source needs (:func:`pipeline_statements`): the
connection, or the one source object and its bucket; the GitHub source needs no permission,
its token travels in the action's configuration.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_github as github

from shared import iam
from shared.contracts import FoundationOutputs
from stacks.pipeline import events
from stacks.pipeline import names as physical
from stacks.pipeline.config import PipelineArgs, event_rules

SOURCE_ACTION = "Source"
"""The Source stage's one action; webhooks and triggers name it."""
SOURCE_ARTIFACT = "SourceOutput"
BRANCH_REF = "refs/heads/{Branch}"
"""CodePipeline fills ``{Branch}`` from the action's configuration: the webhook accepts a push
only when the payload's ``$.ref`` is that branch (AWS's documented GitHub filter)."""
GITHUB_EVENTS = ["push"]
"""The GitHub events the repository webhook delivers: pushes only."""


def source_action(
    args: PipelineArgs,
    *,
    oauth_token: pulumi.Input[str] | None,
    source_bucket_name: pulumi.Input[str],
) -> aws.codepipeline.PipelineStageActionArgs:
    """The Source stage's action for the configured provider, never polling."""
    provider = args.source_provider
    if provider == "codeconnections":
        owner, action_provider = "AWS", "CodeStarSourceConnection"
        configuration: dict[str, pulumi.Input[str]] = {
            "ConnectionArn": args.connection_arn,
            "FullRepositoryId": f"{args.github_owner}/{args.github_repo}",
            "BranchName": args.github_branch,
            # The pipeline's trigger starts it; with a trigger AWS disables the default change
            # detection anyway, and "false" says so here too.
            "DetectChanges": "false",
            "OutputArtifactFormat": "CODE_ZIP",
        }
    elif provider == "s3":
        owner, action_provider = "AWS", "S3"
        configuration = {
            "S3Bucket": source_bucket_name,
            "S3ObjectKey": args.source.source_key,
            # The EventBridge rule on the object's creation starts the pipeline.
            "PollForSourceChanges": "false",
        }
    else:
        if oauth_token is None:
            raise ValueError("the GitHub source needs the OAuth token")
        owner, action_provider = "ThirdParty", "GitHub"
        configuration = {
            "Owner": args.github_owner,
            "Repo": args.github_repo,
            "Branch": args.github_branch,
            "OAuthToken": oauth_token,
            # The webhook starts it: polling stops silently after 30 idle days.
            "PollForSourceChanges": "false",
        }
    return aws.codepipeline.PipelineStageActionArgs(
        name=SOURCE_ACTION,
        category="Source",
        owner=owner,
        provider=action_provider,
        version="1",
        output_artifacts=[SOURCE_ARTIFACT],
        configuration=configuration,
        run_order=1,
    )


def triggers(args: PipelineArgs) -> list[aws.codepipeline.PipelineTriggerArgs] | None:
    """codeconnections: the V2 trigger on pushes to the branch (and the globs); else none."""
    if args.source_provider != "codeconnections":
        return None
    file_paths = (
        aws.codepipeline.PipelineTriggerGitConfigurationPushFilePathsArgs(
            includes=list(args.source.trigger_paths)
        )
        if args.source.trigger_paths
        else None
    )
    push = aws.codepipeline.PipelineTriggerGitConfigurationPushArgs(
        branches=aws.codepipeline.PipelineTriggerGitConfigurationPushBranchesArgs(
            includes=[args.github_branch]
        ),
        file_paths=file_paths,
    )
    return [
        aws.codepipeline.PipelineTriggerArgs(
            provider_type="CodeStarSourceConnection",
            git_configuration=aws.codepipeline.PipelineTriggerGitConfigurationArgs(
                source_action_name=SOURCE_ACTION, pushes=[push]
            ),
        )
    ]


def pipeline_statements(args: PipelineArgs, foundation: FoundationOutputs) -> list[iam.Statement]:
    """What the pipeline role needs for its one source, and nothing for the others."""
    if args.source_provider == "codeconnections":
        return [
            iam.Statement(
                # The connection may carry either service prefix; both actions name the one ARN.
                sid="UseSourceConnection",
                actions=["codeconnections:UseConnection", "codestar-connections:UseConnection"],
                resources=[args.connection_arn],
            )
        ]
    if args.source_provider == "s3":
        return [
            iam.Statement(
                sid="ReadSourceObject",
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[
                    pulumi.Output.concat(foundation.source_bucket_arn, "/", args.source.source_key)
                ],
            ),
            iam.Statement(
                sid="ReadSourceBucket",
                actions=["s3:GetBucketAcl", "s3:GetBucketLocation", "s3:GetBucketVersioning"],
                resources=[foundation.source_bucket_arn],
            ),
        ]
    return []


def start_rule_names(args: PipelineArgs) -> list[str]:
    """The EventBridge rules that start the pipeline through the events role: the service's own
    (:func:`~stacks.pipeline.config.event_rules`)."""
    rules = event_rules(args.source_provider, codecommit_trigger=args.source.codecommit_trigger)
    return [physical.rule(args.label, rule) for rule in rules]


# GitHub webhook ---------------------------------------------------------------------------------


def github_webhook(
    resource_name: str,
    args: PipelineArgs,
    *,
    pipeline: aws.codepipeline.Pipeline,
    secret_token: pulumi.Output[str],
    github_token: pulumi.Output[str],
    opts: pulumi.ResourceOptions,
) -> aws.codepipeline.Webhook:
    """The CodePipeline webhook on pushes to the branch, and (``githubWebhook``) its GitHub side.

    Both sides carry the same HMAC token, a Pulumi secret read from the foundation's secret.
    """
    webhook = aws.codepipeline.Webhook(
        resource_name,
        name=physical.webhook(args.label),
        target_pipeline=pipeline.name,
        target_action=SOURCE_ACTION,
        authentication="GITHUB_HMAC",
        authentication_configuration=aws.codepipeline.WebhookAuthenticationConfigurationArgs(
            secret_token=secret_token
        ),
        filters=[aws.codepipeline.WebhookFilterArgs(json_path="$.ref", match_equals=BRANCH_REF)],
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[pipeline])),
    )
    if args.source.github_webhook:
        provider = github.Provider(
            f"{resource_name}-github",
            owner=args.github_owner,
            token=github_token,
            opts=opts,
        )
        github.RepositoryWebhook(
            f"{resource_name}-repository",
            repository=args.github_repo,
            active=True,
            events=GITHUB_EVENTS,
            configuration=github.RepositoryWebhookConfigurationArgs(
                url=webhook.url,
                content_type="json",
                insecure_ssl=False,
                secret=secret_token,
            ),
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(provider=provider, depends_on=[webhook])
            ),
        )
    return webhook


# S3 source event -------------------------------------------------------------------------------


def s3_source_pattern(args: PipelineArgs, bucket_name: str) -> dict[str, Any]:
    """S3's "Object Created" event for the one source key of the one source bucket."""
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [bucket_name]},
            "object": {"key": [args.source.source_key]},
        },
    }


def s3_source_trigger(
    resource_name: str,
    args: PipelineArgs,
    *,
    bucket_name: pulumi.Input[str],
    pipeline_arn: pulumi.Input[str],
    role_arn: pulumi.Input[str],
    dead_letter_queue: aws.sqs.Queue,
    opts: pulumi.ResourceOptions,
) -> aws.cloudwatch.EventRule:
    """The rule on a new source zip, starting this pipeline through the events role.

    Its target retries and dead-letters like every other target (``stacks.pipeline.events``).
    """
    return events.starts_pipeline(
        resource_name,
        name=physical.rule(args.label, "source"),
        description=(
            f"A new s3 source zip ({args.source.source_key}) starts {physical.pipeline(args.label)}"
        ),
        event_pattern=pulumi.Output.from_input(bucket_name).apply(
            lambda name: json.dumps(s3_source_pattern(args, name), sort_keys=True)
        ),
        pipeline_arn=pipeline_arn,
        role_arn=role_arn,
        dead_letter_queue=dead_letter_queue,
        opts=opts,
    )

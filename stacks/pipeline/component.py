"""The pipeline layer: one five-stage pipeline per service, and what they share.

:class:`Pipeline` is the layer. It consumes the foundation contract (key, artifact bucket, token
secret, failure topic, ledger) and the registry contract (one repository per service). It builds
what the layer has once (the recorder and its two rules, the failure notification, the topic
policy) and one :class:`ServicePipeline` per service: its roles, CodeBuild projects, deploy
handler, the five-stage CodePipeline and what starts it. The pieces live in small modules:
``roles`` (IAM), ``codebuild``, ``codepipeline``, ``sources``, ``events`` and ``releases``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

from shared import services
from shared.contracts import (
    FoundationOutputs,
    PipelineOutputs,
    RegistryOutputs,
    Repository,
    by_key,
)
from shared.naming import Label
from shared.tagging import adding_tags
from stacks.pipeline import codebuild, codepipeline, events, names, releases, roles, sources
from stacks.pipeline.config import BuildProject, LayerArgs, PipelineArgs
from stacks.pipeline.releases import Releases

CODEBUILD = "codebuild.amazonaws.com"
DOCKER_CACHE = ["LOCAL_DOCKER_LAYER_CACHE", "LOCAL_SOURCE_CACHE"]
"""Docker layers and the source, kept on the build host between close builds."""
NPM_CACHE = ["LOCAL_SOURCE_CACHE", "LOCAL_CUSTOM_CACHE"]
"""The source and the buildspec's ``cache.paths`` (the npm cache)."""
LAYER = ""
"""The key of the layer's own resources (the recorder) in the by-service outputs."""


class Pipeline(pulumi.ComponentResource):
    """The pipeline layer: a :class:`ServicePipeline` per service, the recorder, the failure
    notification."""

    services: dict[str, ServicePipeline]
    """By service, the application's first."""
    recorder: Releases
    """The recorder Lambda, with its logs, role and queue."""
    outputs: PipelineOutputs
    """The layer's contract, exported by ``__main__``."""

    def __init__(
        self,
        name: str,
        args: LayerArgs,
        foundation: FoundationOutputs,
        registry: RegistryOutputs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("acme:pipeline:Pipeline", name, None, opts)
        self._name, self._args, self._foundation = name, args, foundation
        self._child = pulumi.ResourceOptions(parent=self)
        self.recorder = releases.recorder(name, args, foundation, parent=self)
        self.services = {
            pipeline.service: ServicePipeline(
                f"{name}-{pipeline.service}",
                pipeline,
                foundation,
                registry.repository(pipeline.service),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for pipeline in args.pipelines
        }
        self._events()

        def each(value: Callable[[ServicePipeline], pulumi.Input[Any]]) -> pulumi.Output[dict]:
            return by_key(self.services, value)

        def and_layer(
            own: pulumi.Input[Any], value: Callable[[ServicePipeline], pulumi.Input[Any]]
        ) -> pulumi.Output[dict]:
            """By service, and the layer's own (the recorder's) under :data:`LAYER`."""
            return pulumi.Output.all(
                **{LAYER: own}, **{s: value(p) for s, p in self.services.items()}
            )

        recorder = self.recorder
        self.outputs = PipelineOutputs(
            pipeline_names=each(lambda s: s.pipeline.name),
            pipeline_arns=each(lambda s: s.pipeline.arn),
            pipeline_console_urls=each(lambda s: s.console_url),
            project_names=each(lambda s: by_key(s.projects, lambda p: p.name)),
            role_arns=and_layer(
                by_key(recorder.roles, lambda r: r.arn), lambda s: by_key(s.roles, lambda r: r.arn)
            ),
            log_group_names=and_layer(
                by_key(recorder.log_groups, lambda g: g.name),
                lambda s: by_key(s.log_groups, lambda g: g.name),
            ),
            handler_arns=and_layer(
                recorder.functions["recorder"].arn,
                lambda s: s.releases.functions["deploy-handler"].arn,
            ),
            github_webhook_urls=each(
                lambda s: s.webhook.url if s.webhook else pulumi.Output.from_input("")
            ),
            image_uris=each(lambda s: s.image_uri),
        )
        self.register_outputs({"pipelineNames": self.outputs.pipeline_names})

    def _events(self) -> None:
        """The layer's rules (failed executions of every pipeline; the recorder's two), each
        target with retries and a dead-letter queue, an alarm on each rule's failed
        invocations, and the topic policy that lets exactly the failure rule and the layer's
        alarms publish."""
        a, f = self._args, self._foundation
        rules = {
            "failed": events.failure_notification(
                f"{self._name}-failed",
                a,
                f.failure_topic_arn,
                _dead_letter_queue(self._name, a.label, "failed", f, self._child),
                self._child,
            )
        }
        rules.update(
            releases.recorder_rules(
                self._name,
                a,
                self.recorder.functions["recorder"],
                dead_letter_queues={
                    rule: _dead_letter_queue(self._name, a.label, rule, f, self._child)
                    for rule in ("record-pipeline", "record-builds")
                },
                opts=self._child,
            )
        )
        _alarm_each(self._name, a.label, rules, f, self._child)
        events.failure_topic_policy(
            f"{self._name}-failure-topic-policy", a, f.failure_topic_arn, self._child
        )


class ServicePipeline(pulumi.ComponentResource):
    """One service's whole path: Source, Build, Test, SecurityScan, Deploy, and what starts it.

    Its roles reach only its own repository, ECS service, log groups, artifact folder and
    deploy handler; its resources carry the ``Service`` tag.
    """

    pipeline: aws.codepipeline.Pipeline
    """The V2 pipeline: Source, Build, Test, SecurityScan, Deploy."""
    projects: dict[str, aws.codebuild.Project]
    """CodeBuild projects by key (docker-build, unit-tests, integration-tests, security-scan)."""
    log_groups: dict[str, aws.cloudwatch.LogGroup]
    """Each project's own log group, by project key, and the deploy handler's."""
    roles: dict[str, aws.iam.Role]
    """Roles by duty: pipeline, docker-build, tests, security-scan, deploy-handler, events."""
    report_groups: dict[str, aws.codebuild.ReportGroup]
    """The JUnit report groups of unit-tests and integration-tests."""
    webhook: aws.codepipeline.Webhook | None
    """The GitHub source's webhook (None for the other sources)."""
    releases: Releases
    """The service's deploy handler, with its logs, role and queue."""
    console_url: str
    """The pipeline's page in the AWS console."""
    image_uri: pulumi.Output[str]
    """The image in production: the repository URL with the production tag."""

    def __init__(
        self,
        name: str,
        args: PipelineArgs,
        foundation: FoundationOutputs,
        repository: Repository,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            "acme:pipeline:ServicePipeline",
            name,
            None,
            pulumi.ResourceOptions.merge(
                # Every taggable resource of a service also carries its Service tag (cost
                # allocation per service); the stack's transformation adds the platform's beside.
                opts,
                pulumi.ResourceOptions(transformations=[adding_tags({"Service": args.service})]),
            ),
        )
        self._name, self._args = name, args
        self._foundation, self._repository = foundation, repository
        self._child = pulumi.ResourceOptions(parent=self)
        self.projects, self.log_groups, self.roles, self.report_groups = {}, {}, {}, {}

        docker, unit, integration, scan = args.projects
        self._docker_build(docker)
        self._tests(unit, integration)
        self._security_scan(scan)
        self._token = self._oauth_token()
        self.releases = releases.deploy_handler(name, args, foundation, repository, parent=self)
        self.roles.update(self.releases.roles)
        self.log_groups.update(self.releases.log_groups)
        self.pipeline = self._pipeline()
        self.webhook = self._webhook()
        self._starters()
        self.console_url = codepipeline.console_url(args)
        self.image_uri = pulumi.Output.concat(repository.url, ":", services.PRODUCTION_TAG)
        self.register_outputs(
            {"pipelineArn": self.pipeline.arn, "pipelineName": self.pipeline.name}
        )

    # CodeBuild -----------------------------------------------------------------------------

    def _codebuild(
        self,
        build: BuildProject,
        duty: roles.DutyRole,
        variables: Mapping[str, pulumi.Input[str]],
        *,
        privileged: bool,
        cache_modes: list[str],
    ) -> aws.codebuild.Project:
        """One project and its own log group; it waits for its group and its role's policy."""
        group = codebuild.log_group(
            f"{self._name}-{build.key}-logs",
            build,
            self._args,
            self._foundation.kms_key_arn,
            self._child,
        )
        project = codebuild.project(
            f"{self._name}-{build.key}",
            build,
            self._args,
            role_arn=duty.role.arn,
            key_arn=self._foundation.kms_key_arn,
            variables=variables,
            privileged=privileged,
            cache_modes=cache_modes,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[group, duty.policy]),
        )
        self.log_groups[build.key] = group
        self.projects[build.key] = project
        return project

    def _role(
        self, key: str, service: str, source_arns: list[str], statements: list
    ) -> roles.DutyRole:
        duty = roles.duty_role(
            f"{self._name}-{key}-role",
            names.role(self._args.label, key),
            service=service,
            account_id=self._args.account_id,
            source_arns=source_arns,
            statements=statements,
            opts=self._child,
        )
        self.roles[key] = duty.role
        return duty

    def _docker_build(self, build: BuildProject) -> None:
        """Build, tag with the commit, push to the service's repository."""
        a, repository = self._args, self._repository
        duty = self._role(
            build.role,
            CODEBUILD,
            roles.codebuild_trust_arns(a, [build]),
            roles.docker_build_statements(a, build, self._foundation, repository),
        )
        variables: dict[str, pulumi.Input[str]] = {
            "REPOSITORY_URL": repository.url,
            "REPOSITORY_NAME": repository.name,
            "AWS_ACCOUNT_ID": a.account_id,
            "ECR_REGION": a.region,
            "CONTAINER_NAME": a.container_name,
        }
        self._codebuild(build, duty, variables, privileged=True, cache_modes=DOCKER_CACHE)

    def _tests(self, unit: BuildProject, integration: BuildProject) -> None:
        """Unit and integration tests: one role (the same duty), one report group each."""
        a, f = self._args, self._foundation
        for build in (unit, integration):
            self.report_groups[build.key] = codebuild.report_group(
                f"{self._name}-{build.key}-reports",
                names.report_group(a.label, build.key),
                path=build.report_prefix,
                bucket_name=f.artifact_bucket_name,
                key_arn=f.kms_key_arn,
                opts=self._child,
            )
        duty = self._role(
            unit.role,
            CODEBUILD,
            roles.codebuild_trust_arns(a, [unit, integration]),
            roles.tests_statements(
                a, [unit, integration], f, [g.arn for g in self.report_groups.values()]
            ),
        )
        for build in (unit, integration):
            self._codebuild(
                build,
                duty,
                {"REPORT_GROUP_ARN": self.report_groups[build.key].arn},
                privileged=False,
                cache_modes=NPM_CACHE,
            )

    def _security_scan(self, build: BuildProject) -> None:
        """Wait for ECR's scan of the pushed image and fail on findings at the threshold."""
        a = self._args
        duty = self._role(
            build.role,
            CODEBUILD,
            roles.codebuild_trust_arns(a, [build]),
            roles.security_scan_statements(a, build, self._foundation, self._repository),
        )
        self._codebuild(
            build,
            duty,
            {
                "REPOSITORY_NAME": self._repository.name,
                "SCAN_SEVERITY_THRESHOLD": a.scan_severity_threshold,
            },
            privileged=False,
            cache_modes=["LOCAL_SOURCE_CACHE"],
        )

    # CodePipeline and events ---------------------------------------------------------------

    def _oauth_token(self) -> pulumi.Output[str] | None:
        """The GitHub token, read from the foundation secret at deploy time, kept secret."""
        if self._args.source_provider != "github":
            return None
        version = aws.secretsmanager.get_secret_version_output(
            secret_id=self._foundation.github_token_secret_arn,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        return pulumi.Output.secret(version.secret_string)

    def _pipeline(self) -> aws.codepipeline.Pipeline:
        a, f = self._args, self._foundation
        core = [build.key for build in a.projects]
        duty = self._role(
            "pipeline",
            "codepipeline.amazonaws.com",
            [names.pipeline_arn(a.label)],
            [
                *roles.pipeline_statements(
                    a, f, [names.project_arn(a.label, build.key) for build in a.projects]
                ),
                *releases.pipeline_statements(a),
            ],
        )
        source = sources.source_action(
            a, oauth_token=self._token, source_bucket_name=f.source_bucket_name
        )
        stage_list = codepipeline.stages(
            a,
            {key: names.project(a.label, key) for key in core},
            source,
            gate=releases.deploy_gate(a, self._repository),
        )
        return codepipeline.pipeline(
            f"{self._name}-codepipeline",
            a,
            role_arn=duty.role.arn,
            bucket_name=f.artifact_bucket_name,
            key_arn=f.kms_key_arn,
            stage_list=stage_list,
            triggers=sources.triggers(a),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[
                    duty.policy,
                    *(self.projects[key] for key in core),
                    self.releases.functions["deploy-handler"],
                ],
            ),
        )

    def _webhook(self) -> aws.codepipeline.Webhook | None:
        """The GitHub source's webhook, its HMAC token read from the foundation, kept secret."""
        token = self._token
        if token is None:
            return None
        version = aws.secretsmanager.get_secret_version_output(
            secret_id=self._foundation.github_webhook_secret_arn,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        return sources.github_webhook(
            f"{self._name}-webhook",
            self._args,
            pipeline=self.pipeline,
            secret_token=pulumi.Output.secret(version.secret_string),
            github_token=token,
            opts=self._child,
        )

    def _starters(self) -> None:
        """The service's own rules that start its pipeline (its CodeCommit mirror; a new S3
        source zip), through an events role that may start this pipeline only; each target
        retries and dead-letters, an alarm watches each rule's failed invocations."""
        a, f = self._args, self._foundation
        starters = sources.start_rule_names(a)
        if not starters:  # no events role when nothing starts the pipeline through EventBridge
            return
        duty = self._role(
            "events",
            "events.amazonaws.com",
            [a.arn("events", f"rule/{rule}") for rule in starters],
            roles.events_statements(self.pipeline.arn),
        )
        opts = pulumi.ResourceOptions(parent=self, depends_on=[duty.policy])
        rules: dict[str, aws.cloudwatch.EventRule] = {}
        if a.source.codecommit_trigger:
            rules["codecommit"] = events.codecommit_trigger(
                f"{self._name}-codecommit",
                a,
                self.pipeline.arn,
                duty.role.arn,
                dead_letter_queue=_dead_letter_queue(
                    self._name, a.label, "codecommit", f, self._child
                ),
                opts=opts,
            )
        if a.source_provider == "s3":
            rules["source"] = sources.s3_source_trigger(
                f"{self._name}-source",
                a,
                bucket_name=f.source_bucket_name,
                pipeline_arn=self.pipeline.arn,
                role_arn=duty.role.arn,
                dead_letter_queue=_dead_letter_queue(self._name, a.label, "source", f, self._child),
                opts=opts,
            )
        _alarm_each(self._name, a.label, rules, f, self._child)


def _alarm_each(
    name: str,
    label: Label,
    rules: Mapping[str, aws.cloudwatch.EventRule],
    foundation: FoundationOutputs,
    opts: pulumi.ResourceOptions,
) -> None:
    """An alarm to the failure topic on each rule's failed invocations."""
    for rule, resource in rules.items():
        events.failed_invocations_alarm(
            f"{name}-{rule}-alarm",
            names.rule_alarm(label, rule),
            resource.name,
            foundation.failure_topic_arn,
            opts,
        )


def _dead_letter_queue(
    name: str,
    label: Label,
    rule: str,
    foundation: FoundationOutputs,
    opts: pulumi.ResourceOptions,
) -> aws.sqs.Queue:
    """The dead-letter queue of the rule ``rule``'s target (the layer's or a service's)."""
    return events.dead_letter_queue(
        f"{name}-{rule}-dlq",
        names.queue(label, rule),
        names.arn(label, "events", f"rule/{names.rule(label, rule)}"),
        foundation.kms_key_arn,
        opts,
    )

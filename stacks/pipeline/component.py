"""The pipeline component: roles, CodeBuild, the five-stage CodePipeline and its events.

It consumes the foundation contract (key, artifact bucket, token secret, failure topic) and the
registry contract (the repository). The pieces live in small modules: ``roles`` (IAM),
``codebuild``, ``codepipeline`` and ``events``; this class wires them together.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from shared import families
from shared.contracts import FoundationOutputs, PipelineOutputs, RegistryOutputs
from stacks.pipeline import codebuild, codepipeline, events, names, releases, roles, sources
from stacks.pipeline.config import BuildProject, PipelineArgs
from stacks.pipeline.releases import Releases

CODEBUILD = "codebuild.amazonaws.com"
DOCKER_CACHE = ["LOCAL_DOCKER_LAYER_CACHE", "LOCAL_SOURCE_CACHE"]
"""Docker layers and the source, kept on the build host between close builds."""
NPM_CACHE = ["LOCAL_SOURCE_CACHE", "LOCAL_CUSTOM_CACHE"]
"""The source and the buildspec's ``cache.paths`` (the npm cache)."""


class Pipeline(pulumi.ComponentResource):
    """The production container pipeline and the standalone builds of extra services."""

    pipeline: aws.codepipeline.Pipeline
    """The V2 pipeline: Source, Build, Test, SecurityScan, Deploy."""
    projects: dict[str, aws.codebuild.Project]
    """CodeBuild projects by key (the four duties, then ``service-<name>``)."""
    log_groups: dict[str, aws.cloudwatch.LogGroup]
    """Each project's own log group, by project key."""
    roles: dict[str, aws.iam.Role]
    """Roles by duty: pipeline, docker-build, tests, security-scan, service-<name>, events."""
    report_groups: dict[str, aws.codebuild.ReportGroup]
    """The JUnit report groups of unit-tests and integration-tests."""
    webhook: aws.codepipeline.Webhook | None
    """The GitHub source's webhook (None for the other sources)."""
    releases: Releases
    """The recorder and deploy handler Lambdas, with their logs, roles and queues."""
    outputs: PipelineOutputs
    """The layer's contract, exported by ``__main__``."""

    def __init__(
        self,
        name: str,
        args: PipelineArgs,
        foundation: FoundationOutputs,
        registry: RegistryOutputs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("acme:pipeline:Pipeline", name, None, opts)
        self._name, self._args = name, args
        self._foundation, self._registry = foundation, registry
        self._child = pulumi.ResourceOptions(parent=self)
        self.projects, self.log_groups, self.roles, self.report_groups = {}, {}, {}, {}

        docker, unit, integration, scan = args.projects
        self._docker_build(docker)
        self._tests(unit, integration)
        self._security_scan(scan)
        for service in args.services:
            self._docker_build(service)
        self._token = self._oauth_token()
        self.releases = releases.build(name, args, foundation, registry, parent=self)
        self.roles.update(self.releases.roles)
        self.pipeline = self._pipeline()
        self.webhook = self._webhook()
        self._events()

        self.outputs = PipelineOutputs(
            pipeline_name=self.pipeline.name,
            pipeline_arn=self.pipeline.arn,
            pipeline_console_url=pulumi.Output.from_input(codepipeline.console_url(args)),
            project_names=pulumi.Output.all(
                **{key: project.name for key, project in self.projects.items()}
            ),
            role_arns=pulumi.Output.all(**{key: role.arn for key, role in self.roles.items()}),
            log_group_names=pulumi.Output.all(
                **{key: group.name for key, group in self.log_groups.items()},
                **{key: group.name for key, group in self.releases.log_groups.items()},
            ),
            handler_arns=pulumi.Output.all(
                **{key: function.arn for key, function in self.releases.functions.items()}
            ),
            github_webhook_url=(self.webhook.url if self.webhook else pulumi.Output.from_input("")),
            image_uri=pulumi.Output.concat(registry.repository_url, ":", families.PRODUCTION_TAG),
        )
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
            args=self._args,
            source_arns=source_arns,
            statements=statements,
            opts=self._child,
        )
        self.roles[key] = duty.role
        return duty

    def _docker_build(self, build: BuildProject) -> None:
        """Build, tag with the commit, push: the application's image, or an extra service's."""
        a, registry = self._args, self._registry
        duty = self._role(
            build.role,
            CODEBUILD,
            roles.codebuild_trust_arns(a, [build]),
            roles.docker_build_statements(a, build, self._foundation, registry),
        )
        variables: dict[str, pulumi.Input[str]] = {
            "REPOSITORY_URL": registry.repository_url,
            "REPOSITORY_NAME": registry.repository_name,
            "AWS_ACCOUNT_ID": a.account_id,
            "ECR_REGION": a.region,
            "CONTAINER_NAME": build.service or a.container_name,
        }
        # One repository: every image's tag starts with its family, which the registry's
        # lifecycle policy keeps the last images of (shared/families.py).
        variables["IMAGE_TAG_PREFIX"] = families.tag_prefix(build.image_family)
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
            roles.security_scan_statements(a, build, self._foundation, self._registry),
        )
        self._codebuild(
            build,
            duty,
            {
                "REPOSITORY_NAME": self._registry.repository_name,
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
            gate=releases.deploy_gate(a, self._registry),
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

    def _events(self) -> None:
        """The rules (failures; the CodeCommit mirror and the S3 source when on; the recorder's
        two; failed service builds when there are services), each target with retries and a
        dead-letter queue, an alarm on each rule's failed invocations, and the topic policy that
        lets exactly the failure rules and those alarms publish."""
        a, f = self._args, self._foundation
        rules = {
            "failed": events.failure_notification(
                f"{self._name}-failed",
                a,
                f.failure_topic_arn,
                self._dead_letter_queue("failed"),
                self._child,
            )
        }
        starters = sources.start_rule_names(a)
        if starters:  # no events role when nothing starts the pipeline through EventBridge
            duty = self._role(
                "events",
                "events.amazonaws.com",
                [a.arn("events", f"rule/{rule}") for rule in starters],
                roles.events_statements(self.pipeline.arn),
            )
            opts = pulumi.ResourceOptions(parent=self, depends_on=[duty.policy])
            if a.source.codecommit_trigger:
                rules["codecommit"] = events.codecommit_trigger(
                    f"{self._name}-codecommit",
                    a,
                    self.pipeline.arn,
                    duty.role.arn,
                    dead_letter_queue=self._dead_letter_queue("codecommit"),
                    opts=opts,
                )
            if a.source_provider == "s3":
                rules["source"] = sources.s3_source_trigger(
                    f"{self._name}-source",
                    a,
                    bucket_name=f.source_bucket_name,
                    pipeline_arn=self.pipeline.arn,
                    role_arn=duty.role.arn,
                    dead_letter_queue=self._dead_letter_queue("source"),
                    opts=opts,
                )
        rules.update(
            releases.recorder_rules(
                self._name,
                a,
                self.releases.functions["recorder"],
                [names.project(a.label, build.key) for build in a.projects],
                dead_letter_queues={
                    rule: self._dead_letter_queue(rule)
                    for rule in ("record-pipeline", "record-builds")
                },
                opts=self._child,
            )
        )
        if a.services:
            rules["service-failed"] = events.service_failures(
                f"{self._name}-service-failed",
                a,
                f.failure_topic_arn,
                dead_letter_queue=self._dead_letter_queue("service-failed"),
                opts=self._child,
            )
        for rule, resource in rules.items():
            events.failed_invocations_alarm(
                f"{self._name}-{rule}-alarm",
                names.rule_alarm(a.label, rule),
                resource.name,
                f.failure_topic_arn,
                self._child,
            )
        events.failure_topic_policy(
            f"{self._name}-failure-topic-policy", a, f.failure_topic_arn, self._child
        )

    def _dead_letter_queue(self, rule: str) -> aws.sqs.Queue:
        label = self._args.label
        return events.dead_letter_queue(
            f"{self._name}-{rule}-dlq",
            names.queue(label, rule),
            names.arn(label, "events", f"rule/{names.rule(label, rule)}"),
            self._foundation.kms_key_arn,
            self._child,
        )

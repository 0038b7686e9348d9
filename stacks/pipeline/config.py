"""Reads and validates the pipeline layer's config into :class:`PipelineArgs`.

The args hold what is configured; the physical names come from the label where the component
needs them (``names.py``). Reading checks that every name the configuration calls for fits, so
a value that would make a name too long or malformed is a ConfigError naming the stack file and
the key, before anything is registered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared import iam
from shared.errors import ConfigError
from shared.naming import Label
from shared.settings import PLATFORM_FILE, Platform, relative
from shared.stackconfig import ServiceConfig, StackConfig, StackValues
from stacks.pipeline import names

SOURCE_PROVIDERS = ("github", "codeconnections", "s3")
"""``github``: the GitHub (OAuth app) v1 action with the token from the foundation secret,
started by a webhook; ``codeconnections``: a CodeStarSourceConnection action started by the V2
pipeline's own push trigger (what AWS recommends); ``s3``: a versioned zip in the foundation's
source bucket, started by an EventBridge rule on its creation (no connection needed)."""

LAYER_RULES = ("failed", "record-pipeline", "record-builds")
"""The layer's EventBridge rules, one each whatever the number of services: failed executions
of every pipeline to the failure topic, and every state change to the recorder."""
SERVICE_RULES = ("codecommit", "source")
"""A service's own rules: pushes to its CodeCommit mirror (while ``codecommitTrigger`` is on) and
a new S3 source zip (the s3 provider) start its pipeline. Each target retries, then
dead-letters into its own queue, and an alarm watches each rule's failed invocations."""


def event_rules(provider: str, *, codecommit_trigger: bool) -> tuple[str, ...]:
    """A service's own rules for this configuration, in :data:`SERVICE_RULES` order."""
    present = {"codecommit": codecommit_trigger, "source": provider == "s3"}
    return tuple(rule for rule in SERVICE_RULES if present[rule])


SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW")
"""ECR scan severities, most severe first; the threshold blocks itself and everything above."""

LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip
"""The retention periods CloudWatch Logs accepts (never-expire is not offered)."""

MAX_CONDITION_RULES = 5
"""A stage condition holds 1-5 rules (CodePipeline API Condition.rules): one rule per alarm."""

MAX_BAKE_MINUTES = 180
"""The longest bake: the Deploy stage holds the pipeline (SUPERSEDED mode) while it waits."""

GITHUB_OWNER = r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}"
GITHUB_REPO = r"(?!\.{1,2}$)[A-Za-z0-9._-]{1,100}"
GIT_BRANCH = r"(?!.*\.\.)(?!.*//)(?!.*@\{)(?!.*\.lock$)[A-Za-z0-9_][A-Za-z0-9._/-]{0,254}(?<![./])"
CONNECTION_ARN = (
    r"arn:aws(?:-[a-z]+)*:(?:codestar-connections|codeconnections):[a-z0-9-]+:\d{12}:"
    r"connection/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)
ECS_NAME = r"[A-Za-z0-9_-]{1,255}"
IAM_ROLE_NAME = r"[A-Za-z0-9+=,.@_-]{1,64}"
CODECOMMIT_REPO = r"[A-Za-z0-9._-]{1,100}"
BUILD_IMAGE = r"aws/codebuild/[a-z0-9._-]+:[0-9]+\.[0-9]+"
CONTAINER_NAME = r"[A-Za-z0-9_-]{1,255}"
SOURCE_KEY = r"(?!/)(?!.*//)[A-Za-z0-9!_.*'()/-]{1,1020}\.zip"
"""An S3 key of the characters S3 calls safe, not starting with / nor holding //, ending .zip
(the S3 source action hands the object on as the source artifact: a zip)."""
TRIGGER_PATH = r"\S(?:[^\n]{0,253}\S)?"
"""A file-path glob of a V2 trigger's push filter: 1-255 characters (GitFilePathFilterCriteria)."""
MAX_TRIGGER_PATHS = 8
"""GitFilePathFilterCriteria takes at most 8 include patterns."""


@dataclass(frozen=True)
class SourceArgs:
    """How the Source stage gets its revision and what starts the pipeline, per provider."""

    github_webhook: bool
    """github: register the webhook on GitHub from this program (else by hand, from the URL)."""
    trigger_paths: tuple[str, ...]
    """codeconnections: only pushes touching these globs start the pipeline (empty: any)."""
    source_key: str
    """s3: the key of the source zip in the foundation's source bucket ('' otherwise)."""
    codecommit_trigger: bool
    """Whether pushes to the CodeCommit mirror also start the pipeline."""


@dataclass(frozen=True)
class BuildProject:
    """One CodeBuild project: its key (which its names are made from), buildspec and role."""

    key: str
    """Key in the layer's outputs (``docker-build``, ``unit-tests``, ...); the project and its
    log group are named from it and the service (``names.project``, ``names.log_group``)."""
    buildspec: str
    """File name under ``stacks/pipeline/buildspecs/``."""
    role: str
    """Key of the role it runs as (one role per duty)."""
    description: str
    """What the project does, shown in the console."""
    report_prefix: str = ""
    """For a test project: the key prefix in the artifact bucket its reports are exported to,
    inside its pipeline's artifact folder (``names.artifact_folder``)."""


ALARM_ARN = r"arn:aws(?:-[a-z]+)*:cloudwatch:[a-z0-9-]+:\d{12}:alarm:[^:]{1,255}"

RESERVED_CONCURRENCY = {"recorder": 5, "deploy-handler": 2}
"""With ``reserveConcurrency``: at most this many copies at once. The pipeline runs one execution
at a time (SUPERSEDED), so the recorder sees a handful of events per minute and the deploy
handler one job (two while a rollback overlaps); it also caps what a flood of events could cost."""

UNRESERVED_MINIMUM = 100
"""Lambda refuses a reservation that would leave fewer than this many concurrent executions
unreserved in the account (lambda/latest/dg/configuration-concurrency.html)."""


@dataclass(frozen=True)
class Handler:
    """One Lambda handler of the release flow: its key (which its names are made from), file."""

    key: str
    """``recorder`` or ``deploy-handler``: the key in the outputs and the role's duty."""
    file: str
    """The handler's file under ``stacks/pipeline/handlers/``."""


@dataclass(frozen=True)
class ReleaseArgs:
    """A service's release flow: its deploy handler and its Deploy stage's rollback and bake."""

    deploy_handler: Handler
    deploy_alarm_arns: tuple[str, ...]
    """CloudWatch alarms the Deploy stage watches after the deploy; empty: no bake."""
    bake_minutes: int
    """How long the Deploy stage watches those alarms before it succeeds."""
    reserved_concurrency: Mapping[str, int]
    """By handler key, the concurrent executions reserved for it; empty with
    ``reserveConcurrency`` off (the handlers share the account's unreserved pool)."""

    @property
    def alarm_names(self) -> tuple[str, ...]:
        """The alarms' names (the CloudWatchAlarm rule takes names, not ARNs)."""
        return tuple(arn.split(":alarm:", 1)[1] for arn in self.deploy_alarm_arns)


@dataclass(frozen=True)
class PipelineArgs:
    """One service's pipeline: everything it needs, validated and with its names checked."""

    service: str
    """The service (``services`` in platform.yaml) the pipeline builds and deploys."""
    account_id: str
    """The AWS account; ARNs of resources referenced before they exist are built from it."""
    region: str
    """The AWS region."""
    label: Label
    """The naming context of the service's resources in this layer and environment: every
    physical name comes from it (``names.py``)."""
    source_provider: str
    """One of :data:`SOURCE_PROVIDERS`."""
    github_owner: str
    """GitHub user or organisation that owns the application repository."""
    github_repo: str
    """The application repository."""
    github_branch: str
    """The branch the pipeline builds."""
    connection_arn: str
    """CodeConnections connection ARN ('' unless ``source_provider`` is codeconnections)."""
    ecs_cluster: str
    """Existing ECS cluster the Deploy stage updates."""
    ecs_service: str
    """Existing ECS service the Deploy stage updates."""
    ecs_task_family: str
    """The task definition family of that service: the deploy registers revisions of it only."""
    ecs_role_arns: tuple[str, str]
    """The task role and task execution role the deploy passes to ECS tasks."""
    container_name: str
    """Container in the task definition whose image the deploy replaces."""
    log_retention_days: int
    """Retention of every CodeBuild log group."""
    require_approval: bool
    """A manual approval before the ECS deploy, inside the Deploy stage."""
    scan_severity_threshold: str
    """The least severe ECR finding that fails the security scan."""
    build_timeout_minutes: int
    """Build timeout of every CodeBuild project."""
    build_image: str
    """The managed CodeBuild image."""
    codecommit_repository_arn: str
    """CodeCommit repository (an internal mirror) whose pushes start the pipeline."""
    codecommit_branch: str
    """Branch of that repository that starts the pipeline."""
    projects: tuple[BuildProject, ...]
    """The four projects of the pipeline: docker-build, unit-tests, integration-tests,
    security-scan."""
    source: SourceArgs
    """The provider-specific source and trigger settings."""
    releases: ReleaseArgs
    """The deploy handler, the rollback and the bake."""

    def arn(self, service: str, resource: str) -> str:
        """An ARN in this account and region, for a resource referenced before it exists."""
        return iam.arn(service, self.region, self.account_id, resource)

    @property
    def ecs_cluster_arn(self) -> str:
        """The ARN of the ECS cluster the Deploy stage updates."""
        return self.arn("ecs", f"cluster/{self.ecs_cluster}")


@dataclass(frozen=True)
class LayerArgs:
    """The pipeline layer: one pipeline per service and what they share."""

    account_id: str
    region: str
    label: Label
    """The naming context of the layer's shared resources (the recorder, the failure rules)."""
    log_retention_days: int
    """Retention of every log group of the layer."""
    recorder: Handler
    """The one recorder: every pipeline's state changes into the ledger."""
    reserved_concurrency: Mapping[str, int]
    """By handler key, the reservation of each copy (the recorder's once, each service's deploy
    handler's once per service); empty with ``reserveConcurrency`` off."""
    pipelines: tuple[PipelineArgs, ...]
    """One per service, the application's first."""

    def pipeline(self, service: str) -> PipelineArgs:
        """The pipeline of ``service``."""
        for pipeline in self.pipelines:
            if pipeline.service == service:
                return pipeline
        known = ", ".join(p.service for p in self.pipelines)
        raise ConfigError(
            relative(PLATFORM_FILE), "services", f"there is no service '{service}'", known
        )

    @property
    def reserved_total(self) -> int:
        """The concurrent executions all reservations take from the account together."""
        if not self.reserved_concurrency:
            return 0
        return (
            self.reserved_concurrency[self.recorder.key]
            + len(self.pipelines) * self.reserved_concurrency["deploy-handler"]
        )


def load(values: StackValues, platform: Platform, label: Label) -> LayerArgs:
    """Validate the pipeline config; a ConfigError naming file and key on bad input.

    Each service's pipeline reads the layer's config overlaid by what the service states in
    platform.yaml (``shared/services.py``); what the layer has once (log retention, the
    reservation) is read from the layer's files alone.
    """
    layer = StackConfig(values)
    names.check_layer(label, LAYER_RULES)
    retention = layer.integer("logRetentionDays", choices=LOG_RETENTION_DAYS)
    reserved = dict(RESERVED_CONCURRENCY) if layer.boolean("reserveConcurrency") else {}
    pipelines: list[PipelineArgs] = []
    taken: dict[tuple[str, ...], str] = {}
    for service in platform.services:
        config = ServiceConfig(values, service)
        pipeline = _pipeline(config, platform, label.of(service.name), retention, reserved)
        _check_apart(pipeline, taken, config)
        pipelines.append(pipeline)
    return LayerArgs(
        account_id=platform.account_id,
        region=platform.region,
        label=label,
        log_retention_days=retention,
        recorder=_handler("recorder"),
        reserved_concurrency=reserved,
        pipelines=tuple(pipelines),
    )


def _check_apart(
    pipeline: PipelineArgs, taken: dict[tuple[str, ...], str], config: StackConfig
) -> None:
    """Refuse a service that would share with an earlier one what must be its own: the ECS
    service it deploys, its pipeline's artifact folder, or the S3 source zip that starts it.

    ``taken`` maps what earlier services hold to the service holding it (one lookup a service,
    so a hundred services cost a hundred lookups, not every pair)."""
    folder = names.artifact_folder(pipeline.label)
    own = [
        (
            ("ecs", pipeline.ecs_cluster, pipeline.ecs_service),
            "ecsService",
            f"both deploy ECS service {pipeline.ecs_service} of cluster {pipeline.ecs_cluster}",
            "a service of its own (ecsCluster/ecsService) for each",
        ),
        (
            ("folder", folder),
            "services",
            "their pipelines' names start with the same 20 characters"
            f" ({folder}), which CodePipeline names their artifact folder after",
            "service names that differ within their first characters",
        ),
    ]
    if pipeline.source_provider == "s3":
        own.append(
            (
                ("s3", pipeline.source.source_key),
                "sourceKey",
                f"both are started by the source zip {pipeline.source.source_key}",
                "a source key of its own for each",
            )
        )
    for held, key, problem, allowed in own:
        other = taken.setdefault(held, pipeline.service)
        if other != pipeline.service:
            where = (
                config.where(key) if key != "services" else (relative(PLATFORM_FILE), "services")
            )
            raise ConfigError(
                *where, f"services {other} and {pipeline.service}: {problem}", allowed
            )


def _pipeline(
    config: ServiceConfig,
    platform: Platform,
    label: Label,
    log_retention_days: int,
    reserved: Mapping[str, int],
) -> PipelineArgs:
    """One service's pipeline from its view of the config, with the layer's own settings (log
    retention, the handlers' reservation) as :func:`load` read them once."""

    provider = config.choice("sourceProvider", SOURCE_PROVIDERS)
    connection_arn = ""
    if provider == "codeconnections":
        connection_arn = config.string(
            "connectionArn",
            pattern=CONNECTION_ARN,
            allowed="a connection ARN: arn:aws:codeconnections:<region>:<account>:connection/<id>"
            " (or codestar-connections)",
        )

    def role_arn(key: str) -> str:
        name = config.string(key, pattern=IAM_ROLE_NAME, allowed="an IAM role name")
        return f"arn:aws:iam::{platform.account_id}:role/{name}"

    def build(key: str, buildspec: str, role: str, description: str, **extra: str) -> BuildProject:
        return BuildProject(
            key=key,
            buildspec=buildspec,
            role=role,
            description=description,
            **extra,
        )

    service = label.service
    reports = f"{names.artifact_folder(label)}/test-reports"
    projects = (
        build(
            "docker-build",
            "docker-build.yml",
            "docker-build",
            f"Builds and pushes the {service} image",
        ),
        build(
            "unit-tests",
            "unit-tests.yml",
            "tests",
            f"Runs the {service} Node.js unit tests",
            report_prefix=f"{reports}/unit-tests",
        ),
        build(
            "integration-tests",
            "integration-tests.yml",
            "tests",
            f"Runs the {service} Node.js integration tests",
            report_prefix=f"{reports}/integration-tests",
        ),
        build(
            "security-scan",
            "security-scan.yml",
            "security-scan",
            f"Gates on the ECR scan of the {service} image",
        ),
    )
    source = _source(config, provider)
    names.check(
        label,
        rules=event_rules(provider, codecommit_trigger=source.codecommit_trigger),
        blame=(relative(PLATFORM_FILE), f"services.{service}"),
    )
    releases = _releases(config, platform, reserved)
    codecommit_repository = config.string(
        "codecommitRepository", pattern=CODECOMMIT_REPO, allowed="a CodeCommit repository name"
    )
    return PipelineArgs(
        service=service,
        account_id=platform.account_id,
        region=platform.region,
        label=label,
        source_provider=provider,
        github_owner=config.string(
            "githubOwner", pattern=GITHUB_OWNER, allowed="a GitHub user or organisation name"
        ),
        github_repo=config.string(
            "githubRepo", pattern=GITHUB_REPO, allowed="a GitHub repository name: A-Z a-z 0-9 . _ -"
        ),
        github_branch=config.string(
            "githubBranch", pattern=GIT_BRANCH, allowed="a git branch name such as main"
        ),
        connection_arn=connection_arn,
        ecs_cluster=config.string("ecsCluster", pattern=ECS_NAME, allowed="an ECS cluster name"),
        ecs_service=config.string("ecsService", pattern=ECS_NAME, allowed="an ECS service name"),
        ecs_task_family=config.string(
            "ecsTaskFamily", pattern=ECS_NAME, allowed="a task definition family name"
        ),
        ecs_role_arns=(role_arn("ecsTaskRoleName"), role_arn("ecsExecutionRoleName")),
        container_name=config.string(
            "containerName", pattern=CONTAINER_NAME, allowed="the container name in the task"
        ),
        log_retention_days=log_retention_days,
        require_approval=config.boolean("requireApproval"),
        scan_severity_threshold=config.choice("scanSeverityThreshold", SEVERITIES),
        build_timeout_minutes=config.integer("buildTimeoutMinutes", minimum=5, maximum=2160),
        build_image=config.string(
            "buildImage",
            pattern=BUILD_IMAGE,
            allowed="a managed image such as aws/codebuild/amazonlinux-x86_64-standard:5.0",
        ),
        codecommit_repository_arn=iam.arn(
            "codecommit", platform.region, platform.account_id, codecommit_repository
        ),
        codecommit_branch=config.string(
            "codecommitBranch", pattern=GIT_BRANCH, allowed="a git branch name such as main"
        ),
        projects=projects,
        source=source,
        releases=releases,
    )


def _handler(key: str) -> Handler:
    return Handler(key=key, file=f"{key.replace('-handler', '')}.py")


def _releases(config: StackConfig, platform: Platform, reserved: Mapping[str, int]) -> ReleaseArgs:
    """The release flow's handlers, and the alarms and bake time of the Deploy stage.

    The bake rule (CloudWatchAlarm) takes an alarm's name and looks for it in the pipeline's own
    account and Region, so an ARN anywhere else would watch an alarm that is not there (or
    another one of the same name): refused here, with what is allowed.
    """
    own = f"arn:aws:cloudwatch:{platform.region}:{platform.account_id}:alarm:<name>"
    alarms = config.string_list(
        "deployAlarmArns", pattern=ALARM_ARN, allowed=f"CloudWatch alarm ARNs: {own}"
    )
    for alarm in alarms:
        region, account = alarm.split(":")[3:5]
        if (region, account) != (platform.region, platform.account_id):
            raise ConfigError(
                *config.where("deployAlarmArns"),
                f"'{alarm}' is in account {account}, Region {region}, not this environment's"
                f" ({platform.account_id}, {platform.region}); the bake rule finds an alarm by"
                " name in the pipeline's own account and Region",
                f"alarms of this account and Region only: {own}",
            )
    if len(alarms) > MAX_CONDITION_RULES:
        raise ConfigError(
            *config.where("deployAlarmArns"),
            f"{len(alarms)} alarms, more than one condition holds",
            f"at most {MAX_CONDITION_RULES} alarm ARNs",
        )
    if len(set(alarms)) != len(alarms):
        raise ConfigError(
            *config.where("deployAlarmArns"),
            "an alarm is listed twice",
            "unique alarm ARNs",
        )
    return ReleaseArgs(
        deploy_handler=_handler("deploy-handler"),
        deploy_alarm_arns=alarms,
        bake_minutes=config.integer("bakeMinutes", minimum=1, maximum=MAX_BAKE_MINUTES),
        reserved_concurrency=reserved,
    )


def _source(config: StackConfig, provider: str) -> SourceArgs:
    """The settings of the chosen source provider; a setting of another provider is refused."""
    paths = config.string_list(
        "triggerPaths",
        pattern=TRIGGER_PATH,
        allowed="file-path globs of 1-255 characters such as src/** or Dockerfile",
    )
    if paths and provider != "codeconnections":
        raise ConfigError(
            *config.where("triggerPaths"),
            f"is only used by the codeconnections source, not {provider}",
            "remove it, or set sourceProvider: codeconnections",
        )
    if len(paths) > MAX_TRIGGER_PATHS:
        raise ConfigError(
            *config.where("triggerPaths"),
            f"lists {len(paths)} globs",
            f"at most {MAX_TRIGGER_PATHS} (the V2 trigger's limit)",
        )
    source_key = ""
    if provider == "s3":
        source_key = config.string(
            "sourceKey",
            pattern=SOURCE_KEY,
            allowed="an S3 key ending in .zip such as source/app.zip:"
            " A-Z a-z 0-9 ! _ . * ' ( ) / -, not starting with / nor holding //",
        )
    return SourceArgs(
        github_webhook=config.boolean("githubWebhook"),
        trigger_paths=paths,
        source_key=source_key,
        codecommit_trigger=config.boolean("codecommitTrigger"),
    )

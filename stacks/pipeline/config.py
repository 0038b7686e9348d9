"""Reads and validates the pipeline layer's config into :class:`PipelineArgs`.

The args hold what is configured; the physical names come from the label where the component
needs them (``names.py``). Reading checks that every name the configuration calls for fits, so
a value that would make a name too long or malformed is a ConfigError naming the stack file and
the key, before anything is registered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared import families, iam
from shared.errors import ConfigError
from shared.naming import Label
from shared.settings import PLATFORM_FILE, Platform
from shared.stackconfig import StackConfig, StackValues
from stacks.pipeline import names as physical

SOURCE_PROVIDERS = ("github", "codeconnections", "s3")
"""``github``: the GitHub (OAuth app) v1 action with the token from the foundation secret,
started by a webhook; ``codeconnections``: a CodeStarSourceConnection action started by the V2
pipeline's own push trigger (what AWS recommends); ``s3``: a versioned zip in the foundation's
source bucket, started by an EventBridge rule on its creation (no connection needed)."""

EVENT_RULES = (
    "failed",
    "codecommit",
    "source",
    "record-pipeline",
    "record-builds",
    "service-failed",
)
"""The layer's EventBridge rules, by purpose; each target retries, then dead-letters into its own
queue, and an alarm watches each rule's failed invocations. ``codecommit`` exists while
``codecommitTrigger`` is on, ``source`` for the s3 provider, ``service-failed`` with services."""


def event_rules(provider: str, *, codecommit_trigger: bool, services: bool) -> tuple[str, ...]:
    """The rules this configuration creates, in :data:`EVENT_RULES` order."""
    present = {
        "failed": True,
        "codecommit": codecommit_trigger,
        "source": provider == "s3",
        "record-pipeline": True,
        "record-builds": True,
        "service-failed": services,
    }
    return tuple(rule for rule in EVENT_RULES if present[rule])


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
SERVICE_NAME = r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*"
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
    """Key in the layer's outputs (``docker-build``, ``unit-tests``, ``service-<name>``); the
    project and its log group are named from it (``names.project``, ``names.log_group``)."""
    buildspec: str
    """File name under ``stacks/pipeline/buildspecs/``."""
    role: str
    """Key of the role it runs as (one role per duty)."""
    description: str
    """What the project does, shown in the console."""
    service: str = ""
    """For an extra service's Docker build: the service name."""
    image_family: str = ""
    """For a Docker build: the image family its tags start with (``<family>-<commit>``)."""
    report_prefix: str = ""
    """For a test project: the key prefix in the artifact bucket its reports are exported to."""


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
    """The release flow: the recorder and deploy handler, their rules, and the rollback."""

    recorder: Handler
    deploy_handler: Handler
    deploy_alarm_arns: tuple[str, ...]
    """CloudWatch alarms the Deploy stage watches after the deploy; empty: no bake."""
    bake_minutes: int
    """How long the Deploy stage watches those alarms before it succeeds."""
    reserved_concurrency: Mapping[str, int]
    """By handler key, the concurrent executions reserved for it; empty with
    ``reserveConcurrency`` off (the handlers share the account's unreserved pool)."""

    @property
    def handlers(self) -> tuple[Handler, Handler]:
        """Both handlers, recorder first."""
        return (self.recorder, self.deploy_handler)

    @property
    def alarm_names(self) -> tuple[str, ...]:
        """The alarms' names (the CloudWatchAlarm rule takes names, not ARNs)."""
        return tuple(arn.split(":alarm:", 1)[1] for arn in self.deploy_alarm_arns)


@dataclass(frozen=True)
class PipelineArgs:
    """Everything the pipeline component needs, validated and with its names checked."""

    account_id: str
    """The AWS account; ARNs of resources referenced before they exist are built from it."""
    region: str
    """The AWS region."""
    label: Label
    """The naming context of the layer in this environment: every physical name comes from it
    (``names.py``)."""
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
    services: tuple[BuildProject, ...]
    """One standalone Docker-build project per extra service."""
    source: SourceArgs
    """The provider-specific source and trigger settings."""
    releases: ReleaseArgs
    """The deployment ledger's writers, the deploy handler and the rollback."""

    def arn(self, service: str, resource: str) -> str:
        """An ARN in this account and region, for a resource referenced before it exists."""
        return iam.arn(service, self.region, self.account_id, resource)

    @property
    def ecs_cluster_arn(self) -> str:
        """The ARN of the ECS cluster the Deploy stage updates."""
        return self.arn("ecs", f"cluster/{self.ecs_cluster}")

    @property
    def rules(self) -> tuple[str, ...]:
        """The EventBridge rules this configuration creates (:func:`event_rules`)."""
        return event_rules(
            self.source_provider,
            codecommit_trigger=self.source.codecommit_trigger,
            services=bool(self.services),
        )


def load(values: StackValues, platform: Platform, label: Label) -> PipelineArgs:
    """Validate the pipeline config; a ConfigError naming file and key on bad input."""
    config = StackConfig(values)

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

    image_families = platform.image_families
    projects = (
        build(
            "docker-build",
            "docker-build.yml",
            "docker-build",
            "Builds and pushes the image",
            image_family=image_families[0],
        ),
        build(
            "unit-tests",
            "unit-tests.yml",
            "tests",
            "Runs the Node.js unit tests",
            report_prefix="test-reports/unit-tests",
        ),
        build(
            "integration-tests",
            "integration-tests.yml",
            "tests",
            "Runs the Node.js integration tests",
            report_prefix="test-reports/integration-tests",
        ),
        build("security-scan", "security-scan.yml", "security-scan", "Gates on the ECR scan"),
    )
    services = _services(config, image_families)
    source = _source(config, provider)
    rules = event_rules(
        provider, codecommit_trigger=source.codecommit_trigger, services=bool(services)
    )
    physical.check(
        label,
        rules=rules,
        services=[service.service for service in services],
        blame=config.where("services"),
    )
    releases = _releases(config, platform)
    codecommit_repository = config.string(
        "codecommitRepository", pattern=CODECOMMIT_REPO, allowed="a CodeCommit repository name"
    )
    return PipelineArgs(
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
        ecs_role_arns=(role_arn("ecsTaskRoleName"), role_arn("ecsExecutionRoleName")),
        container_name=config.string(
            "containerName", pattern=CONTAINER_NAME, allowed="the container name in the task"
        ),
        log_retention_days=config.integer("logRetentionDays", choices=LOG_RETENTION_DAYS),
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
        services=services,
        source=source,
        releases=releases,
    )


def _handler(key: str) -> Handler:
    return Handler(key=key, file=f"{key.replace('-handler', '')}.py")


def _releases(config: StackConfig, platform: Platform) -> ReleaseArgs:
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
            config.source,
            f"{config.layer.project}:deployAlarmArns",
            f"{len(alarms)} alarms, more than one condition holds",
            f"at most {MAX_CONDITION_RULES} alarm ARNs",
        )
    if len(set(alarms)) != len(alarms):
        raise ConfigError(
            config.source,
            f"{config.layer.project}:deployAlarmArns",
            "an alarm is listed twice",
            "unique alarm ARNs",
        )
    return ReleaseArgs(
        recorder=_handler("recorder"),
        deploy_handler=_handler("deploy-handler"),
        deploy_alarm_arns=alarms,
        bake_minutes=config.integer("bakeMinutes", minimum=1, maximum=MAX_BAKE_MINUTES),
        reserved_concurrency=dict(RESERVED_CONCURRENCY)
        if config.boolean("reserveConcurrency")
        else {},
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
            config.source,
            f"{config.layer.project}:triggerPaths",
            f"is only used by the codeconnections source, not {provider}",
            "remove it, or set sourceProvider: codeconnections",
        )
    if len(paths) > MAX_TRIGGER_PATHS:
        raise ConfigError(
            config.source,
            f"{config.layer.project}:triggerPaths",
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


def _services(config: StackConfig, image_families: tuple[str, ...]) -> tuple[BuildProject, ...]:
    """One Docker-build project per extra service (its names are checked by ``load``).

    Each service is one of the image families (``platform.yaml``; not the application's, the
    first), so the registry's lifecycle policy keeps its images by their own tag prefix.
    """
    names = config.string_list(
        "services",
        pattern=SERVICE_NAME,
        allowed="lowercase service names: a-z 0-9, words joined by single hyphens",
    )
    seen: set[str] = set()
    services: list[BuildProject] = []
    for name in names:
        if name in seen:
            raise ConfigError(
                *config.where("services"), f"'{name}' is listed twice", "unique names"
            )
        seen.add(name)
        if name not in image_families[1:]:
            raise ConfigError(
                *config.where("services"),
                f"'{name}' is not an image family ({families.KEY} in {PLATFORM_FILE.name}:"
                f" {list(image_families)})",
                f"a family other than '{image_families[0]}': add '{name}' to {families.KEY} in"
                f" {PLATFORM_FILE.name}, so the registry keeps its images too",
            )
        duty = f"service-{name}"
        services.append(
            BuildProject(
                key=duty,
                buildspec="docker-build.yml",
                role=duty,
                description=f"Builds and pushes the {name} service's image",
                service=name,
                image_family=name,
            )
        )
    return tuple(services)

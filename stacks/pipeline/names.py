"""The pipeline layer's physical names, made by the layer's label where the component needs them.

``config.py`` holds what is configured; every name here comes from the label
(``shared/naming.py``), which keeps each service's length and character limits. :func:`check`
makes every name the configuration calls for once, when the config is read, so a name that
cannot fit is a ConfigError naming the file and key before anything is registered.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared import iam
from shared.naming import Kind, Label

Blame = tuple[str, str] | None
"""The (file, key) an over-long name is blamed on; None: the namespace in platform.yaml."""

HANDLERS = ("recorder", "deploy-handler")
"""The release flow's Lambda handlers, by key (``stacks/pipeline/releases.py``): the recorder
once for the layer, a deploy handler per service."""
DUTIES = ("pipeline", "events", "docker-build", "tests", "security-scan", "deploy-handler")
"""Each service's IAM roles, by duty (with the service's label); the recorder's is the layer's."""
PROJECTS = ("docker-build", "unit-tests", "integration-tests", "security-scan")
"""Each service's CodeBuild projects."""
ARTIFACT_FOLDER_LENGTH = 20
"""CodePipeline keeps a pipeline's artifacts under a folder named after the first 20 characters
of its name (https://repost.aws/questions/QUI91tw7A9SUOMohJurNqmgA): the prefix a service's
roles may read and write in the artifact bucket."""
REPORTS = ("unit-tests", "integration-tests")
"""The projects with a JUnit report group."""


def arn(label: Label, service: str, resource: str) -> str:
    """An ARN in the label's account and Region, for a resource named before it exists."""
    return iam.arn(service, label.platform.region, label.platform.account_id, resource)


def pipeline(label: Label, blame: Blame = None) -> str:
    """The service's CodePipeline: ``<service>-<namespace>-<env>``.

    The service comes first, unlike every other name, because CodePipeline names the pipeline's
    artifact folder after the first 20 characters of its name (:data:`ARTIFACT_FOLDER_LENGTH`):
    so each service's artifacts have a folder of their own, which its roles are confined to.
    """
    return label.checked(Kind.CODEPIPELINE, f"{label.service}{pipeline_suffix(label)}", blame)


def pipeline_suffix(label: Label) -> str:
    """How every pipeline of the layer's environment ends (``-<namespace>-<env>``): the layer's
    rules select its pipelines' events by it, whatever the number of services."""
    return f"-{label.platform.namespace}-{label.platform.environment}"


def pipeline_arn(label: Label) -> str:
    """The pipeline's ARN, known before it exists (trust and events policies name it)."""
    return arn(label, "codepipeline", pipeline(label))


def every_pipeline_arn(label: Label) -> str:
    """The ARN pattern of every pipeline of the layer (the recorder reads each one's commit)."""
    return arn(label, "codepipeline", f"*{pipeline_suffix(label)}")


def artifact_folder(label: Label) -> str:
    """The service's folder in the artifact bucket: its pipeline's name, cut to 20 characters."""
    return pipeline(label)[:ARTIFACT_FOLDER_LENGTH]


def project_prefix(label: Label) -> str:
    """How every CodeBuild project of the layer starts (the recorder's rule selects by it)."""
    return label.prefix(Kind.CODEBUILD_PROJECT)


def project(label: Label, key: str, blame: Blame = None) -> str:
    """The CodeBuild project ``key`` (``docker-build``, ...) of the label's service."""
    return label.name(Kind.CODEBUILD_PROJECT, key, blame=blame)


def project_arn(label: Label, key: str) -> str:
    """The ARN of the CodeBuild project ``key``."""
    return arn(label, "codebuild", f"project/{project(label, key)}")


def log_group(label: Label, key: str, blame: Blame = None) -> str:
    """The CodeBuild project ``key``'s own log group."""
    return label.name(Kind.LOG_GROUP, key, blame=blame)


def role(label: Label, duty: str, blame: Blame = None) -> str:
    """The IAM role of ``duty`` (one of :data:`DUTIES`, or ``recorder`` for the layer's)."""
    return label.name(Kind.IAM_ROLE, duty, blame=blame)


def report_group(label: Label, key: str, blame: Blame = None) -> str:
    """The JUnit report group of the test project ``key``."""
    return label.name(Kind.REPORT_GROUP, key, blame=blame)


def rule(label: Label, purpose: str, blame: Blame = None) -> str:
    """The EventBridge rule of ``purpose`` (``config.LAYER_RULES``, ``config.SERVICE_RULES``)."""
    return label.name(Kind.EVENT_RULE, purpose, blame=blame)


def rule_alarm(label: Label, purpose: str, blame: Blame = None) -> str:
    """The alarm on the failed invocations of the rule of ``purpose``."""
    return label.name(Kind.CLOUDWATCH_ALARM, purpose, "failed-invocations", blame=blame)


def queue(label: Label, owner: str, blame: Blame = None) -> str:
    """The SQS dead-letter queue of a rule's target or a handler, by the rule or handler key."""
    return label.name(Kind.SQS_QUEUE, owner, "dlq", blame=blame)


def function(label: Label, handler: str, blame: Blame = None) -> str:
    """The Lambda function of ``handler`` (one of :data:`HANDLERS`)."""
    return label.name(Kind.LAMBDA_FUNCTION, handler, blame=blame)


def function_log_group(label: Label, handler: str, blame: Blame = None) -> str:
    """The log group of ``handler``'s function (``/aws/lambda/...``)."""
    return label.name(Kind.LAMBDA_LOG_GROUP, handler, blame=blame)


def function_alarm(label: Label, handler: str, blame: Blame = None) -> str:
    """The alarm on messages waiting in ``handler``'s dead-letter queue."""
    return label.name(Kind.CLOUDWATCH_ALARM, handler, "dead-letters", blame=blame)


def webhook(label: Label, blame: Blame = None) -> str:
    """The service's GitHub source's CodePipeline webhook."""
    return label.name(Kind.CODEPIPELINE_WEBHOOK, "github", blame=blame)


def alarm_arn_pattern(label: Label) -> str:
    """Every alarm of the layer, whatever its service (the topic policy admits them by it):
    each rule's failed invocations and each handler's dead-letter queue are named under it."""
    return arn(label, "cloudwatch", f"alarm:{label.prefix(Kind.CLOUDWATCH_ALARM)}*")


def check_layer(label: Label, rules: Iterable[str]) -> None:
    """Make every name the layer has once (the recorder, the layer's ``rules``): a ConfigError
    (blaming the namespace) if one cannot fit."""
    role(label, "recorder")
    _check_handler(label, "recorder", rules, None)


def check(label: Label, *, rules: Iterable[str], blame: Blame) -> None:
    """Make every name of the label's service: a ConfigError naming ``blame`` (the service's
    entry in platform.yaml) if one cannot fit."""
    pipeline(label, blame)
    webhook(label, blame)
    for key in PROJECTS:
        project(label, key, blame)
        log_group(label, key, blame)
    for key in REPORTS:
        report_group(label, key, blame)
    for duty in DUTIES:
        role(label, duty, blame)
    _check_handler(label, "deploy-handler", rules, blame)


def _check_handler(label: Label, handler: str, rules: Iterable[str], blame: Blame) -> None:
    """The names of ``handler`` (function, logs, dead-letter queue and its alarm) and of each
    of ``rules`` (the rule, its target's queue, the alarm on its failed invocations)."""
    function(label, handler, blame)
    function_log_group(label, handler, blame)
    queue(label, handler, blame)
    function_alarm(label, handler, blame)
    for purpose in rules:
        rule(label, purpose, blame)
        queue(label, purpose, blame)
        rule_alarm(label, purpose, blame)

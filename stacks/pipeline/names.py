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
"""The release flow's Lambda handlers, by key (``stacks/pipeline/releases.py``)."""
DUTIES = ("pipeline", "events", "docker-build", "tests", "security-scan", *HANDLERS)
"""The layer's IAM roles by duty, besides one per extra service (``service-<name>``)."""
PROJECTS = ("docker-build", "unit-tests", "integration-tests", "security-scan")
"""The pipeline's CodeBuild projects, besides one per extra service."""
REPORTS = ("unit-tests", "integration-tests")
"""The projects with a JUnit report group."""


def arn(label: Label, service: str, resource: str) -> str:
    """An ARN in the label's account and Region, for a resource named before it exists."""
    return iam.arn(service, label.platform.region, label.platform.account_id, resource)


def pipeline(label: Label) -> str:
    """The CodePipeline's name."""
    return label.name(Kind.CODEPIPELINE, "app")


def pipeline_arn(label: Label) -> str:
    """The pipeline's ARN, known before it exists (trust and events policies name it)."""
    return arn(label, "codepipeline", pipeline(label))


def project(label: Label, key: str, blame: Blame = None) -> str:
    """The CodeBuild project ``key`` (``docker-build``, ..., ``service-<name>``)."""
    return label.name(Kind.CODEBUILD_PROJECT, key, blame=blame)


def project_arn(label: Label, key: str) -> str:
    """The ARN of the CodeBuild project ``key``."""
    return arn(label, "codebuild", f"project/{project(label, key)}")


def log_group(label: Label, key: str, blame: Blame = None) -> str:
    """The CodeBuild project ``key``'s own log group."""
    return label.name(Kind.LOG_GROUP, key, blame=blame)


def role(label: Label, duty: str, blame: Blame = None) -> str:
    """The IAM role of ``duty`` (one of :data:`DUTIES`, or ``service-<name>``)."""
    return label.name(Kind.IAM_ROLE, duty, blame=blame)


def report_group(label: Label, key: str) -> str:
    """The JUnit report group of the test project ``key``."""
    return label.name(Kind.REPORT_GROUP, key)


def rule(label: Label, purpose: str) -> str:
    """The EventBridge rule of ``purpose`` (``config.EVENT_RULES``)."""
    return label.name(Kind.EVENT_RULE, purpose)


def rule_alarm(label: Label, purpose: str) -> str:
    """The alarm on the failed invocations of the rule of ``purpose``."""
    return label.name(Kind.CLOUDWATCH_ALARM, purpose, "failed-invocations")


def queue(label: Label, owner: str) -> str:
    """The SQS dead-letter queue of a rule's target or a handler, by the rule or handler key."""
    return label.name(Kind.SQS_QUEUE, owner, "dlq")


def function(label: Label, handler: str) -> str:
    """The Lambda function of ``handler`` (one of :data:`HANDLERS`)."""
    return label.name(Kind.LAMBDA_FUNCTION, handler)


def function_log_group(label: Label, handler: str) -> str:
    """The log group of ``handler``'s function (``/aws/lambda/...``)."""
    return label.name(Kind.LAMBDA_LOG_GROUP, handler)


def function_alarm(label: Label, handler: str) -> str:
    """The alarm on messages waiting in ``handler``'s dead-letter queue."""
    return label.name(Kind.CLOUDWATCH_ALARM, handler, "dead-letters")


def webhook(label: Label) -> str:
    """The GitHub source's CodePipeline webhook."""
    return label.name(Kind.CODEPIPELINE_WEBHOOK, "github")


def topic_alarms(label: Label, rules: Iterable[str]) -> tuple[str, ...]:
    """Every alarm of the layer that notifies the failure topic (the topic policy names each):
    one per rule's failed invocations, then one per handler's dead-letter queue."""
    return (
        *(rule_alarm(label, purpose) for purpose in rules),
        *(function_alarm(label, handler) for handler in HANDLERS),
    )


def check(label: Label, *, rules: Iterable[str], services: Iterable[str], blame: Blame) -> None:
    """Make every name the configuration calls for: a ConfigError if one cannot fit.

    A service's names are blamed on ``blame`` (the ``services`` key); the others depend only
    on the platform (the namespace and environment).
    """
    pipeline(label)
    webhook(label)
    for key in PROJECTS:
        project(label, key)
        log_group(label, key)
    for key in REPORTS:
        report_group(label, key)
    for duty in DUTIES:
        role(label, duty)
    for handler in HANDLERS:
        function(label, handler)
        function_log_group(label, handler)
        queue(label, handler)
        function_alarm(label, handler)
    for purpose in rules:
        rule(label, purpose)
        queue(label, purpose)
        rule_alarm(label, purpose)
    for name in services:
        duty = f"service-{name}"
        project(label, duty, blame)
        log_group(label, duty, blame)
        role(label, duty, blame)

"""The rules of ``policies/rules.py`` as pulumi-policy policies (all mandatory)."""

from __future__ import annotations

from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policies.rules import RULES, Resource, Rule, check_resource, check_stack

PACK_NAME = "container-platform"


def _resource_policy(rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        resource = Resource(args.resource_type, args.urn, args.name, args.props)
        config = args.get_config() if rule.config else None
        for message in check_resource(rule, resource, config):
            report_violation(message, None)

    schema = None
    if rule.config:
        schema = PolicyConfigSchema(
            properties={
                key: {"type": "integer", "default": value} for key, value in rule.config.items()
            }
        )
    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=schema,
    )


def _stack_policy(rule: Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [Resource(r.resource_type, r.urn, r.name, r.props) for r in args.resources]
        for resource, message in check_stack(rule, resources):
            report_violation(message, resource.urn)

    return StackValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def policies() -> list[Any]:
    """Every rule as a pulumi-policy policy."""
    return [_stack_policy(rule) if rule.stack_check else _resource_policy(rule) for rule in RULES]

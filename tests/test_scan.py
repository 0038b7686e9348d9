"""`./dev scan`: bandit on the code, and the dependency audit's fallback and verdicts.

The vulnerability services are online (safety's and PyPI's), so the verdicts are tested on the
tools' own report formats; bandit runs for real.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from invoke import Context, Exit

import tasks
from toolbox import checks


def test_bandit_finds_nothing_in_the_code():
    result = checks.bandit()
    assert result.ok, "\n".join(result.lines())


def completed(code: int, stdout: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess([], code, stdout, "")


def audit(monkeypatch, dependencies: list[dict], allow_unaudited: bool = False):
    report = json.dumps({"dependencies": dependencies, "fixes": []})
    monkeypatch.setattr(checks, "execute", lambda argv, cwd=None: completed(1, report))
    return checks.pip_audit(Path("requirements.txt"), allow_unaudited)


def test_pip_audit_fails_on_a_known_vulnerability(monkeypatch):
    result = audit(
        monkeypatch,
        [
            {"name": "ok", "version": "1.0", "vulns": []},
            {"name": "bad", "version": "2.0", "vulns": [{"id": "PYSEC-1", "fix_versions": []}]},
        ],
    )
    assert not result.ok
    assert result.output == "bad==2.0: PYSEC-1"


def test_pip_audit_that_could_audit_nothing_fails_unless_allowed(monkeypatch):
    unreachable = [{"name": "a", "version": "1", "skip_reason": "not found on PyPI"}]

    refused = audit(monkeypatch, unreachable)
    warned = audit(monkeypatch, unreachable, allow_unaudited=True)

    assert not refused.ok
    assert "none of 1 locked packages audited" in refused.note
    assert warned.ok
    assert warned.warning
    assert "WARN" in warned.lines()[0]


def test_pip_audit_passes_when_every_package_was_audited_clean(monkeypatch):
    result = audit(monkeypatch, [{"name": "a", "version": "1", "vulns": []}])
    assert result.ok
    assert not result.warning
    assert result.note == "1 locked packages audited, no known vulnerabilities"


@pytest.mark.parametrize(("code", "verdict"), [(0, True), (64, False), (1, None)])
def test_safety_verdict_by_exit_code(monkeypatch, code, verdict):
    monkeypatch.setattr(checks, "execute", lambda argv, cwd=None: completed(code, "report"))
    result = checks.safety(Path("requirements.txt"))
    assert (None if result is None else result.ok) is verdict


def test_dependencies_fall_back_to_pip_audit_when_safety_cannot_run(monkeypatch):
    ran: list[str] = []

    def fake(argv, cwd=None):
        tool = Path(argv[0]).name
        ran.append(tool)
        if tool == "uv":
            Path(argv[argv.index("--output-file") + 1]).write_text("a==1\n", encoding="utf-8")
            return completed(0)
        if tool == "safety":
            return completed(1, "ConnectError")
        report = {"dependencies": [{"name": "a", "version": "1", "vulns": []}]}
        return completed(0, json.dumps(report))

    monkeypatch.setattr(checks, "execute", fake)

    result = checks.dependencies()

    assert ran == ["uv", "safety", "pip-audit"]
    assert result.ok
    assert "safety could not run" in result.note


def test_invoke_scan_runs_bandit_and_the_dependency_audit(monkeypatch, capsys):
    """The task runs both tools, whatever the list in the code says: recorded as they run."""
    ran: list[list[str]] = []

    def record(argv, cwd=None):
        ran.append([Path(argv[0]).name, *argv[1:]])
        if Path(argv[0]).name == "uv":
            Path(argv[argv.index("--output-file") + 1]).write_text("a==1\n", encoding="utf-8")
        return completed(0, "")

    monkeypatch.setattr(checks, "execute", record)

    tasks.scan(Context())

    tools = [argv[0] for argv in ran]
    assert tools == ["bandit", "uv", "safety"]
    bandit = ran[0]
    assert bandit[bandit.index("-r") + 1] == "."
    assert ran[1][1:3] == ["export", "--frozen"]
    assert ran[2][1:3] == ["check", "--file"]
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["ok    bandit", "ok    safety"]


def test_invoke_scan_fails_when_the_dependency_audit_finds_a_vulnerability(monkeypatch):
    def record(argv, cwd=None):
        tool = Path(argv[0]).name
        if tool == "uv":
            Path(argv[argv.index("--output-file") + 1]).write_text("a==1\n", encoding="utf-8")
        return completed(64 if tool == "safety" else 0, "a==1: CVE-1")

    monkeypatch.setattr(checks, "execute", record)

    with pytest.raises(Exit) as stopped:
        tasks.scan(Context())
    assert stopped.value.message == "error: scan failed: safety"


def test_invoke_scan_fails_when_bandit_finds_an_issue(monkeypatch):
    def record(argv, cwd=None):
        tool = Path(argv[0]).name
        if tool == "uv":
            Path(argv[argv.index("--output-file") + 1]).write_text("a==1\n", encoding="utf-8")
        return completed(1 if tool == "bandit" else 0, ">> Issue: [B602]")

    monkeypatch.setattr(checks, "execute", record)

    with pytest.raises(Exit) as stopped:
        tasks.scan(Context())
    assert stopped.value.message == "error: scan failed: bandit"

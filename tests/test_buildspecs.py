"""Every buildspec: nothing lets a failing command pass, and each one runs in the harness.

Two guards, because each misses what the other sees. The static check reads the YAML: a phase
with ``on-failure: CONTINUE`` (build-spec-ref allows ABORT | CONTINUE) or a command that swallows
its own failure (``|| true``, ``set +e``, ``; exit 0``) fails here. The harness
(``tests/pipeline_support.run_buildspec``) runs each file in bash with fake aws/docker/npm, with
the variables its CodeBuild project sets: green when the tools succeed, red when the tool that
matters fails. Every file in the folder must have a harness run below, so a new buildspec
without one fails a test.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.layers import REPO_ROOT
from tests import pipeline_support
from tests.pipeline_support import APP, WORKER, project, run_buildspec, variables

FOLDER = REPO_ROOT / "stacks" / "pipeline" / "buildspecs"
FILES = sorted(p.name for p in FOLDER.iterdir() if p.suffix in (".yml", ".yaml"))
PHASE_NAMES = ("install", "pre_build", "build", "post_build")
IMAGE = "111111111111.dkr.ecr.us-east-1.amazonaws.com/acme-registry-app-dev:c0ffee"

SWALLOWS = {
    "|| true": re.compile(r"\|\|\s*true\b"),
    "|| :": re.compile(r"\|\|\s*:(?=\s|;|\)|$)", re.M),
    "|| echo": re.compile(r"\|\|\s*echo\b"),
    "exit 0": re.compile(r"\bexit\s+0\b"),
    "set +e": re.compile(r"\bset\s+[^\n;|&]*\+e\b"),
    "set +o errexit": re.compile(r"\bset\s+\+o\s+errexit\b"),
    "; true": re.compile(r";\s*true\s*$", re.M),
}
"""Shell that turns a failed command into a passing one."""


def lenient(spec: dict[str, Any]) -> list[str]:
    """What in a parsed buildspec lets a failing command pass, one line each."""
    found: list[str] = []
    phases = spec.get("phases") or {}
    for phase, given in phases.items():
        block = given or {}
        on_failure = block.get("on-failure", "ABORT")
        if on_failure != "ABORT":
            found.append(f"{phase}: on-failure {on_failure} (only ABORT, the default, may be set)")
        for part in ("commands", "finally"):
            for command in block.get(part) or []:
                for name, pattern in SWALLOWS.items():
                    if pattern.search(str(command)):
                        found.append(f"{phase}/{part}: {name!r} in {str(command).strip()!r}")
    return found


def parsed(file: str) -> dict[str, Any]:
    return yaml.safe_load((FOLDER / file).read_text(encoding="utf-8"))


def test_the_folder_has_buildspecs():
    assert len(FILES) >= 4, FILES


@pytest.mark.parametrize("file", FILES)
def test_no_buildspec_lets_a_failing_command_pass(file):
    spec = parsed(file)
    assert str(spec["version"]) == "0.2"
    assert set(spec["phases"]) <= set(PHASE_NAMES)
    assert lenient(spec) == []


UNIT = {
    "version": 0.2,
    "phases": {"pre_build": {"commands": ["npm ci"]}, "build": {"commands": ["npm test"]}},
}


def _with(phase: str, **block: Any) -> dict[str, Any]:
    return {**UNIT, "phases": {**UNIT["phases"], phase: {**UNIT["phases"].get(phase, {}), **block}}}


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        (_with("build", **{"on-failure": "CONTINUE"}), "build: on-failure CONTINUE"),
        (_with("pre_build", **{"on-failure": "CONTINUE"}), "pre_build: on-failure CONTINUE"),
        (_with("build", commands=["npm test || true"]), "'|| true'"),
        (_with("build", commands=["npm test || :"]), "'|| :'"),
        (_with("build", commands=["npm test || echo tests failed"]), "'|| echo'"),
        (_with("build", commands=["npm test; exit 0"]), "'exit 0'"),
        (_with("build", commands=["set +e", "npm test"]), "'set +e'"),
        (_with("build", commands=["set -x +e\nnpm test"]), "'set +e'"),
        (_with("build", commands=["set +o errexit; npm test"]), "'set +o errexit'"),
        (_with("build", commands=["npm test; true"]), "'; true'"),
        (
            _with("build", **{"finally": ["exit 0"]}),
            "finally",
        ),
    ],
)
def test_the_static_check_catches_each_way_to_swallow_a_failure(spec, says):
    found = lenient(spec)
    assert len(found) == 1 and says in found[0], found


def test_the_static_check_passes_conditions_that_still_fail():
    spec = _with(
        "build",
        commands=['if [ "$A" = "None" ] || [ -z "$A" ]; then A=0; fi', "npm test || exit 1"],
    )
    assert lenient(spec) == []


# -- the harness runs every buildspec ---------------------------------------------------------


@dataclass(frozen=True)
class HarnessRun:
    """How the harness runs one buildspec: its project, and the tool that must fail it."""

    project: str
    """The CodeBuild project (key in a service's ``projectNames``) whose variables it gets."""
    must_call: list[str]
    """A call the green run makes (the command the stage exists for)."""
    failing: dict[str, str]
    """FAKE_* settings under which that command fails, and so must the build."""
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


HARNESS = {
    "docker-build.yml": HarnessRun(
        "docker-build",
        ["docker", "push"],
        {"FAKE_DOCKER_FAILS": "push"},
        env={"CODEBUILD_RESOLVED_SOURCE_VERSION": "c0ffee"},
    ),
    "unit-tests.yml": HarnessRun("unit-tests", ["npm", "test"], {"FAKE_NPM_TEST_STATUS": "1"}),
    "integration-tests.yml": HarnessRun(
        "integration-tests", ["npm", "run", "test:integration"], {"FAKE_NPM_TEST_STATUS": "1"}
    ),
    "security-scan.yml": HarnessRun(
        "security-scan",
        ["aws", "ecr", "describe-image-scan-findings"],
        # A finished basic scan with one CRITICAL finding (the ECR API reference's shape).
        {"FAKE_SCAN_RESPONSE": "scan-critical.json"},
        env={"FAKE_SCAN_RESPONSE": "scan-clean.json", "SCAN_POLL_SECONDS": "0"},
        files={
            "imagedefinitions.json": json.dumps([{"name": "app", "imageUri": IMAGE}]),
            "scan-clean.json": json.dumps(
                {"imageScanStatus": {"status": "COMPLETE"}, "imageScanFindings": {"findings": []}}
            ),
            "scan-critical.json": json.dumps(
                {
                    "imageScanStatus": {"status": "COMPLETE"},
                    "imageScanFindings": {
                        "findings": [{"name": "CVE-0000-1", "severity": "CRITICAL"}],
                        "findingSeverityCounts": {"CRITICAL": 1},
                    },
                }
            ),
        },
    ),
}
"""One harness run per buildspec file."""


def test_every_buildspec_in_the_folder_has_a_harness_run():
    assert set(FILES) == set(HARNESS)


def _run(dev, tmp_path: Path, file: str, service: str = APP, **fake: str):
    if file not in HARNESS:
        pytest.fail(f"{file} has no harness run: add it to HARNESS in tests/test_buildspecs.py")
    how = HARNESS[file]
    built = project(dev["pipeline"], how.project, service)
    assert built.inputs["source"]["buildspec"] == (FOLDER / file).read_text(encoding="utf-8")
    env = {**variables(built), **how.env, **fake}
    return run_buildspec(FOLDER / file, env, tmp_path, how.files)


@pytest.mark.parametrize("service", [APP, WORKER])
@pytest.mark.parametrize("file", FILES)
def test_each_buildspec_passes_in_the_harness_when_its_tools_do(file, service, dev, tmp_path):
    run = _run(dev, tmp_path, file, service)
    assert run.returncode == 0, run.output
    assert HARNESS[file].must_call in [call[: len(HARNESS[file].must_call)] for call in run.calls]


@pytest.mark.parametrize("file", FILES)
def test_each_buildspec_fails_when_the_command_it_exists_for_fails(file, dev, tmp_path):
    run = _run(dev, tmp_path, file, **HARNESS[file].failing)
    assert run.returncode != 0, run.output


@pytest.mark.parametrize("file", ["unit-tests.yml", "integration-tests.yml"])
def test_a_failing_npm_test_fails_the_build(file, dev, tmp_path):
    run = _run(dev, tmp_path, file, FAKE_NPM_TEST_STATUS="1")
    assert run.returncode != 0, run.output
    assert [c for c in run.calls if c[0] == "npm"][-1][:2] == [
        "npm",
        "test" if "unit" in file else "run",
    ]


@pytest.mark.parametrize("file", ["unit-tests.yml", "integration-tests.yml"])
def test_a_failing_npm_ci_stops_before_the_tests(file, dev, tmp_path):
    run = _run(dev, tmp_path, file, FAKE_NPM_CI_STATUS="1")
    assert run.returncode != 0, run.output
    assert [c[:2] for c in run.calls] == [["npm", "ci"]]


# -- the harness sequences phases as CodeBuild does ------------------------------------------


def _spec_run(tmp_path: Path, phases: dict[str, Any], **env: str):
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "spec.yml"
    path.write_text(yaml.safe_dump({"version": 0.2, "phases": phases}), encoding="utf-8")
    return run_buildspec(path, env, tmp_path)


def _echo(word: str) -> str:
    """A command that succeeds and is recorded (the fake npm's ``run step:`` script)."""
    return f"npm run step:{word}"


def test_harness_a_failed_build_still_runs_post_build_and_finally_and_fails(tmp_path):
    run = _spec_run(
        tmp_path,
        {
            "build": {"commands": ["npm test", _echo("after-test")], "finally": [_echo("finally")]},
            "post_build": {"commands": ['npm run "step:post-$CODEBUILD_BUILD_SUCCEEDING"']},
        },
        FAKE_NPM_TEST_STATUS="0",
    )
    assert run.returncode == 0
    assert [c[-1] for c in run.calls] == ["test", "step:after-test", "step:finally", "step:post-1"]

    failed = _spec_run(
        tmp_path / "again",
        {
            "build": {"commands": ["npm test", _echo("after-test")], "finally": [_echo("finally")]},
            "post_build": {"commands": ['npm run "step:post-$CODEBUILD_BUILD_SUCCEEDING"']},
        },
        FAKE_NPM_TEST_STATUS="1",
    )
    assert failed.returncode != 0
    assert [c[-1] for c in failed.calls] == ["test", "step:finally", "step:post-0"]


def test_harness_a_failed_pre_build_runs_no_later_phase(tmp_path):
    run = _spec_run(
        tmp_path,
        {"pre_build": {"commands": ["npm ci"]}, "build": {"commands": [_echo("build")]}},
        FAKE_NPM_CI_STATUS="1",
    )
    assert run.returncode != 0
    assert [c[:2] for c in run.calls] == [["npm", "ci"]]


def test_harness_on_failure_continue_goes_on_but_the_build_still_fails(tmp_path):
    run = _spec_run(
        tmp_path,
        {
            "pre_build": {"on-failure": "CONTINUE", "commands": ["npm ci"]},
            "build": {"commands": [_echo("build")]},
        },
        FAKE_NPM_CI_STATUS="1",
    )
    assert run.returncode != 0
    assert [c[-1] for c in run.calls] == ["ci", "step:build"]


# -- the harness answers scan queries like the CLI and never hangs ---------------------------


def test_harness_scan_queries_are_jmespath_and_a_bad_one_fails_the_call(tmp_path):
    response = tmp_path / "response.json"
    response.write_text(json.dumps({"imageScanFindings": {"findingSeverityCounts": {"HIGH": 3}}}))
    findings = "aws ecr describe-image-scan-findings --output text --query"
    run = _spec_run(
        tmp_path,
        {
            "build": {
                "commands": [
                    f"test \"$({findings} 'imageScanFindings.findingSeverityCounts.HIGH')\" = 3",
                    f"{findings} '[['",
                ]
            }
        },
        FAKE_SCAN_RESPONSE=str(response),
    )
    assert run.returncode != 0
    assert "fake aws: IncompleteExpressionError" in run.output
    assert len(run.calls) == 2


def test_harness_a_fake_aws_without_an_answer_gives_up_with_a_message(tmp_path):
    silent = tmp_path / "silent.fifo"
    os.mkfifo(silent)
    held = os.open(silent, os.O_RDWR)  # a reader that never answers
    try:
        run = _spec_run(
            tmp_path,
            {"build": {"commands": ["aws ecr describe-image-scan-findings --output text"]}},
            FAKE_SCAN_FIFO=str(silent),
            FAKE_ANSWER_SECONDS="0.2",
        )
    finally:
        os.close(held)
    assert run.returncode != 0
    assert "fake aws: no answer from the harness in 0.2 s" in run.output


def test_harness_kills_a_run_that_overstays_with_everything_it_started(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline_support, "RUN_SECONDS", 0.5)
    with pytest.raises(AssertionError, match=r"ran over 0\.5 s and was killed"):
        _spec_run(
            tmp_path,
            {"build": {"commands": ["sleep 600 >/dev/null 2>&1 & echo $! > sleeper", "wait"]}},
        )
    pid = int((tmp_path / "src" / "sleeper").read_text())
    for _ in range(200):  # SIGKILL was sent; give the kernel a moment to end it
        if _gone(pid):
            break
        time.sleep(0.01)
    assert _gone(pid), f"the background sleep {pid} outlived the run"


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (reaped, or a zombie waiting to be)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except FileNotFoundError:
        return True

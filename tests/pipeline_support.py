"""Helpers for the pipeline layer's tests: find resources, read buildspecs, run them for real.

``run_buildspec`` runs a buildspec's phases in one bash shell the way CodeBuild runs a version
0.2 buildspec (build-spec-ref, "Build phase transitions" in the CodeBuild user guide):

- variables persist from command to command; a failing command ends its phase's ``commands``,
  then the phase's ``finally`` commands run, and the phase fails;
- after a failed ``install`` or ``pre_build`` no later phase runs; after a failed ``build``,
  ``post_build`` still runs (with ``CODEBUILD_BUILD_SUCCEEDING=0``); a phase with
  ``on-failure: CONTINUE`` goes on to the next phase instead;
- the build fails when any phase failed. A command that runs ``exit`` ends the whole run
  with its code (CodeBuild would still run ``finally``; no buildspec here has one).

Fake ``aws``, ``docker`` and ``npm`` commands on the PATH record their calls and answer as ECR,
Docker and an npm project would (``FAKE_*`` variables pick failures).
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from shared.layers import REPO_ROOT
from toolbox.offline import LayerPlan, PlannedResource

PROJECT = "aws:codebuild/project:Project"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
PIPELINE = "aws:codepipeline/pipeline:Pipeline"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
REPORT_GROUP = "aws:codebuild/reportGroup:ReportGroup"
ACCOUNT = "111111111111"
PHASES = ("install", "pre_build", "build", "post_build")
BUILDSPEC_FOLDER = REPO_ROOT / "stacks" / "pipeline" / "buildspecs"


def named(plan: LayerPlan, type_: str, name: str) -> PlannedResource:
    """The resource of ``type_`` whose physical ``name`` input is ``name``."""
    found = [r for r in plan.of_type(type_) if r.inputs.get("name") == name]
    assert len(found) == 1, f"{type_} named {name}: {len(found)} found"
    return found[0]


def project(plan: LayerPlan, key: str) -> PlannedResource:
    """The CodeBuild project exported under ``key`` (docker-build, unit-tests, ...)."""
    return named(plan, PROJECT, plan.exports["projectNames"][key])


def variables(resource: PlannedResource) -> dict[str, str]:
    """A CodeBuild project's environment variables."""
    return {v["name"]: v["value"] for v in resource.inputs["environment"]["environmentVariables"]}


def role_policy(plan: LayerPlan, duty: str) -> dict[str, Any]:
    """The inline policy of the role of ``duty``, parsed, by statement id."""
    role_name = plan.exports["roleArns"][duty].rsplit("/", 1)[1]
    role = named(plan, ROLE, role_name)
    (policy,) = [p for p in plan.of_type(ROLE_POLICY) if p.name == f"{role.name}-policy"]
    return {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}


def trust(plan: LayerPlan, duty: str) -> dict[str, Any]:
    """The single trust statement of the role of ``duty``."""
    role_name = plan.exports["roleArns"][duty].rsplit("/", 1)[1]
    (statement,) = json.loads(named(plan, ROLE, role_name).inputs["assumeRolePolicy"])["Statement"]
    return statement


def stages(plan: LayerPlan) -> list[dict[str, Any]]:
    """The pipeline's stages as planned."""
    return plan.one(PIPELINE).inputs["stages"]


def buildspec(file: str) -> dict[str, Any]:
    """A buildspec file, parsed."""
    return yaml.safe_load((BUILDSPEC_FOLDER / file).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Run:
    """What a buildspec run did."""

    returncode: int
    output: str
    calls: list[list[str]]
    workdir: Path


FAKE = """#!/bin/bash
printf '%s\\n' "$(basename "$0") $*" >> "$CALLS"
tool=$(basename "$0")
case "$tool $*" in
  "aws ecr get-login-password"*) echo fake-password ;;
  "aws ecr describe-images"*) [ -n "$FAKE_IMAGE_EXISTS" ] || exit 254 ;;
  "aws ecr wait image-scan-complete"*) exit "${FAKE_SCAN_WAIT_STATUS:-0}" ;;
  "aws ecr describe-image-scan-findings"*) exec "$FAKE_PYTHON" "$(dirname "$0")/scan.py" "$@" ;;
  "docker "*) [ "$1" != "${FAKE_DOCKER_FAILS:-}" ] ;;
  "npm run step:"*) exit 0 ;;
  "npm ci"*) exit "${FAKE_NPM_CI_STATUS:-0}" ;;
  "npm test"*|"npm run test"*) echo "npm: $*"; exit "${FAKE_NPM_TEST_STATUS:-0}" ;;
  *) echo "unexpected call: $tool $*" >&2; exit 99 ;;
esac
"""


SCAN = """
import json, os, sys
import jmespath

args = sys.argv[1:]
query = args[args.index("--query") + 1] if "--query" in args else None
output = args[args.index("--output") + 1] if "--output" in args else "json"
with open(os.environ["FAKE_SCAN_RESPONSE"], encoding="utf-8") as f:
    response = json.load(f)
statuses = [s for s in os.environ.get("FAKE_SCAN_STATUSES", "").split(",") if s]
if statuses:  # one status per call, the last one repeating
    counter = os.environ["CALLS"] + ".status"
    seen = int(open(counter).read()) if os.path.exists(counter) else 0
    open(counter, "w").write(str(seen + 1))
    response["imageScanStatus"] = {"status": statuses[min(seen, len(statuses) - 1)]}
value = jmespath.search(query, response) if query else response
if output == "text":
    print("None" if value is None else value)
else:
    print(json.dumps(value))
"""
"""The fake ``aws ecr describe-image-scan-findings``: evaluates ``--query`` (JMESPath, as the
CLI does) on the response in ``FAKE_SCAN_RESPONSE``; ``FAKE_SCAN_STATUSES`` replays statuses."""


def run_buildspec(
    file: str | Path, env: dict[str, str], tmp_path: Path, files: dict[str, str] | None = None
) -> Run:
    """Run ``file``'s phases in one bash shell with fake aws/docker/npm; what it ran and wrote.

    ``file`` is a name in the buildspec folder, or the path of any buildspec.
    """
    spec = buildspec(str(file))
    bin_dir, work = tmp_path / "bin", tmp_path / "src"
    bin_dir.mkdir()
    work.mkdir()
    for tool in ("aws", "docker", "npm"):
        path = bin_dir / tool
        path.write_text(FAKE, encoding="utf-8")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    (bin_dir / "scan.py").write_text(SCAN, encoding="utf-8")
    for name, text in (files or {}).items():
        (work / name).write_text(text, encoding="utf-8")
    calls = tmp_path / "calls.txt"
    calls.touch()
    result = subprocess.run(
        ["/bin/bash", "-c", script(spec)],
        cwd=work,
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "CALLS": str(calls),
            "HOME": str(tmp_path),
            "FAKE_PYTHON": sys.executable,
            **env,
        }
        | {k: v for k, v in os.environ.items() if k == "LANG"},
        capture_output=True,
        text=True,
        check=False,
    )
    return Run(
        returncode=result.returncode,
        output=result.stdout + result.stderr,
        calls=[line.split(" ") for line in calls.read_text().splitlines()],
        workdir=work,
    )


def script(spec: dict[str, Any]) -> str:
    """The bash script that runs a parsed buildspec's phases as CodeBuild sequences them."""
    lines = [
        f"export {name}={shlex.quote(str(value))}"
        for name, value in ((spec.get("env") or {}).get("variables") or {}).items()
    ]
    lines += ["__build_ok=1", "export CODEBUILD_BUILD_SUCCEEDING=1"]
    for phase in PHASES:
        block = (spec.get("phases") or {}).get(phase) or {}
        lines.append("__ok=1")
        for command in block.get("commands") or []:
            lines.append(f"[ $__ok = 1 ] && {{ eval {shlex.quote(command)} || __ok=0; }}")
        lines.append("__done=1")
        for command in block.get("finally") or []:
            lines.append(
                f"[ $__done = 1 ] && {{ eval {shlex.quote(command)} || __ok=0 __done=0; }}"
            )
        lines.append(
            f'if [ $__ok = 0 ]; then echo "harness: phase {phase} failed" >&2;'
            " __build_ok=0; export CODEBUILD_BUILD_SUCCEEDING=0; fi"
        )
        if phase in ("install", "pre_build") and block.get("on-failure") != "CONTINUE":
            lines.append("[ $__ok = 1 ] || exit 1")
    lines.append("[ $__build_ok = 1 ] || exit 1")
    return "\n".join(lines)

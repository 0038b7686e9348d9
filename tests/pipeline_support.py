"""Helpers for the pipeline layer's tests: find resources, read buildspecs, run them for real.

``run_buildspec`` runs a buildspec's phase commands in one bash shell, the way CodeBuild runs a
version 0.2 buildspec (variables persist, a failing command fails the build), with fake ``aws``
and ``docker`` commands on the PATH that record their calls and answer as ECR and Docker would.
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

from stacks.pipeline.codebuild import BUILDSPEC_DIR
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
    return yaml.safe_load((BUILDSPEC_DIR / file).read_text(encoding="utf-8"))


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
  "docker "*) exit 0 ;;
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
    file: str, env: dict[str, str], tmp_path: Path, files: dict[str, str] | None = None
) -> Run:
    """Run ``file``'s phases in one bash shell with fake aws/docker; what it ran and wrote."""
    spec = buildspec(file)
    bin_dir, work = tmp_path / "bin", tmp_path / "src"
    bin_dir.mkdir()
    work.mkdir()
    for tool in ("aws", "docker"):
        path = bin_dir / tool
        path.write_text(FAKE, encoding="utf-8")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    (bin_dir / "scan.py").write_text(SCAN, encoding="utf-8")
    for name, text in (files or {}).items():
        (work / name).write_text(text, encoding="utf-8")
    lines = [
        f"export {name}={shlex.quote(str(value))}"
        for name, value in (spec.get("env", {}).get("variables") or {}).items()
    ]
    for phase in PHASES:
        for command in (spec["phases"].get(phase) or {}).get("commands", []):
            lines.append(f"eval {shlex.quote(command)} || exit 17")
    calls = tmp_path / "calls.txt"
    calls.touch()
    result = subprocess.run(
        ["/bin/bash", "-c", "\n".join(lines)],
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

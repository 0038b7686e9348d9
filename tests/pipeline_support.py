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
Docker and an npm project would (``FAKE_*`` variables pick failures); ECR's scan findings are
answered by :class:`ScanServer`, a thread of the test process, through FIFOs.
"""

from __future__ import annotations

import json
import os
import select
import shlex
import shutil
import signal
import stat
import subprocess
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jmespath
import pytest
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
APP = "app"
"""The first service of tests/fixtures/config/platform.yaml (the application)."""
WORKER = "worker"
"""The second service of tests/fixtures/config/platform.yaml."""
LAYER = ""
"""The key of the layer's own resources (the recorder) in the by-service exports."""
PHASES = ("install", "pre_build", "build", "post_build")
BUILDSPEC_FOLDER = REPO_ROOT / "stacks" / "pipeline" / "buildspecs"


def named(plan: LayerPlan, type_: str, name: str) -> PlannedResource:
    """The resource of ``type_`` whose physical ``name`` input is ``name``."""
    found = [r for r in plan.of_type(type_) if r.inputs.get("name") == name]
    assert len(found) == 1, f"{type_} named {name}: {len(found)} found"
    return found[0]


def project(plan: LayerPlan, key: str, service: str = APP) -> PlannedResource:
    """``service``'s CodeBuild project exported under ``key`` (docker-build, unit-tests, ...)."""
    return named(plan, PROJECT, plan.exports["projectNames"][service][key])


def variables(resource: PlannedResource) -> dict[str, str]:
    """A CodeBuild project's environment variables."""
    return {v["name"]: v["value"] for v in resource.inputs["environment"]["environmentVariables"]}


def role_arn(plan: LayerPlan, duty: str, service: str = APP) -> str:
    """The ARN of ``service``'s role of ``duty`` (the recorder's: the layer's own)."""
    return plan.exports["roleArns"][LAYER if duty == "recorder" else service][duty]


def role_policy(plan: LayerPlan, duty: str, service: str = APP) -> dict[str, Any]:
    """The inline policy of ``service``'s role of ``duty``, parsed, by statement id."""
    role_name = role_arn(plan, duty, service).rsplit("/", 1)[1]
    role = named(plan, ROLE, role_name)
    (policy,) = [p for p in plan.of_type(ROLE_POLICY) if p.name == f"{role.name}-policy"]
    return {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}


def trust(plan: LayerPlan, duty: str, service: str = APP) -> dict[str, Any]:
    """The single trust statement of ``service``'s role of ``duty``."""
    role_name = role_arn(plan, duty, service).rsplit("/", 1)[1]
    (statement,) = json.loads(named(plan, ROLE, role_name).inputs["assumeRolePolicy"])["Statement"]
    return statement


def pipeline(plan: LayerPlan, service: str = APP) -> PlannedResource:
    """``service``'s pipeline as planned."""
    return named(plan, PIPELINE, plan.exports["pipelineNames"][service])


def stages(plan: LayerPlan, service: str = APP) -> list[dict[str, Any]]:
    """``service``'s pipeline's stages as planned."""
    return pipeline(plan, service).inputs["stages"]


@contextmanager
def platform_yaml(root: Path, edit: Mapping[str, Any]) -> Iterator[Path]:
    """The tests' configuration copied to ``root`` with ``edit`` written over the top-level keys
    of its ``platform.yaml`` (``{"services": {...}}``), read in its place while inside.

    For a plan of a what-if configuration wider than one test (a module fixture); a test of its
    own uses the ``config_copy`` fixture. The copy is a real file read by the real checks.
    """
    from shared import layers, settings
    from tests.conftest import FIXTURE_CONFIG

    shutil.copytree(FIXTURE_CONFIG, root)
    platform = root / "platform.yaml"
    data = yaml.safe_load(platform.read_text(encoding="utf-8"))
    data.update(edit)
    platform.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(layers, "CONFIG_ROOT", root)
        monkeypatch.setattr(settings, "PLATFORM_FILE", platform)
        yield root


def plan_services(root: Path, services: Mapping[str, Any], environment: str = "dev"):
    """Every layer's plan (fresh, never stored) as if ``platform.yaml`` listed ``services``."""
    from toolbox.offline import plan_all

    with platform_yaml(root, {"services": dict(services)}):
        return plan_all(environment)


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
tool=${0##*/}
printf '%s\\n' "$tool $*" >> "$CALLS"
case "$tool $*" in
  "aws ecr get-login-password"*) echo fake-password ;;
  "aws ecr describe-images"*) [ -n "$FAKE_IMAGE_EXISTS" ] || exit 254 ;;
  "aws ecr wait image-scan-complete"*) exit "${FAKE_SCAN_WAIT_STATUS:-0}" ;;
  "aws ecr describe-image-scan-findings"*)
    # Answered by ScanServer in the test process: the request is its field count, then the
    # fields, each NUL-ended; the answer, on this call's reply FIFO (opened read-write so that
    # opening never blocks), is an exit status line, then the output, NUL-ended.
    reply="$CALLS.$$.$RANDOM"
    mkfifo "$reply" || exit 97
    exec 4<>"$reply"
    printf '%s\\0' "$(($# + 4))" "$reply" "$PWD" "${FAKE_SCAN_RESPONSE-}" \\
      "${FAKE_SCAN_STATUSES-}" "$@" > "$FAKE_SCAN_FIFO"
    if ! read -r -t "$FAKE_ANSWER_SECONDS" status <&4 ||
      ! IFS= read -r -d '' -t "$FAKE_ANSWER_SECONDS" out <&4; then
      echo "fake aws: no answer from the harness in $FAKE_ANSWER_SECONDS s" >&2
      exit 98
    fi
    if [ "$status" = 0 ]; then printf '%s' "$out"; else printf '%s' "$out" >&2; fi
    exit "$status" ;;
  "docker "*) [ "$1" != "${FAKE_DOCKER_FAILS:-}" ] ;;
  "npm run step:"*) exit 0 ;;
  "npm ci"*) exit "${FAKE_NPM_CI_STATUS:-0}" ;;
  "npm test"*|"npm run test"*) echo "npm: $*"; exit "${FAKE_NPM_TEST_STATUS:-0}" ;;
  *) echo "unexpected call: $tool $*" >&2; exit 99 ;;
esac
"""
"""The fake ``aws``, ``docker`` and ``npm`` (plain bash; the one tool they run is mkfifo)."""

RUN_SECONDS = 60
"""The longest a buildspec run may take before the harness kills it (a test fails, no hang)."""
ANSWER_SECONDS = 30
"""The longest the fake ``aws`` waits for ScanServer's answer before it fails the call."""


class ScanServer:
    """The fake ``aws ecr describe-image-scan-findings``, answered from a thread of this process.

    Evaluates ``--query`` with the jmespath library (as the CLI does) on the response in the
    file ``FAKE_SCAN_RESPONSE`` (relative to the caller's directory); ``FAKE_SCAN_STATUSES``
    replays one status per call, the last one repeating. A Python started per call cost ~80 ms
    of CPU (interpreter and ``import jmespath``) several times per run.

    Nothing here blocks on the fake: the request FIFO is opened read-write (Linux never blocks
    that open, and writers never block on a missing reader), the reply FIFO is opened without
    blocking (a caller that went away is skipped) and written to only while the caller reads
    (it stops after ``ANSWER_SECONDS``), and a stop pipe ends the thread.
    """

    def __init__(self, fifo: Path) -> None:
        os.mkfifo(fifo)
        self.fifo = fifo
        self._requests = os.open(fifo, os.O_RDWR)
        self._stop_read, self._stop_write = os.pipe()
        self._status_calls = 0
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name=f"scan-server {fifo}", daemon=True)

    def __enter__(self) -> ScanServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        os.write(self._stop_write, b".")
        self._thread.join(timeout=ANSWER_SECONDS)
        if self._thread.is_alive():
            raise AssertionError(f"the scan server of {self.fifo} did not stop")
        for fd in (self._requests, self._stop_read, self._stop_write):
            os.close(fd)
        if self._error is not None:
            raise AssertionError(f"the scan server of {self.fifo} failed") from self._error

    def _serve(self) -> None:
        pending = b""
        try:
            while True:
                ready, _, _ = select.select([self._requests, self._stop_read], [], [])
                if self._stop_read in ready:
                    return
                pending += os.read(self._requests, 65536)
                requests, pending = _requests(pending)
                for fields in requests:
                    self._answer(*fields)
        except BaseException as error:  # reported by __exit__; the fake times out meanwhile
            self._error = error

    def _answer(self, reply: str, cwd: str, response: str, statuses: str, *args: str) -> None:
        try:
            out, status = self._scan(Path(cwd) / response, statuses, list(args)), 0
        except Exception as error:  # 255, the CLI's "command failed" (AWS CLI user guide,
            # cli-usage-returncodes.html), for a bad query or response file
            out, status = f"fake aws: {type(error).__name__}: {error}\n", 255
        try:
            fd = os.open(reply, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # the caller is gone (killed): nobody to answer
            return
        os.set_blocking(fd, True)  # a caller that stops reading times out and closes its end
        answer = f"{status}\n{out}\0".encode()
        try:
            while answer:
                answer = answer[os.write(fd, answer) :]
        except BrokenPipeError:  # the caller went away while reading
            pass
        finally:
            os.close(fd)

    def _scan(self, response_file: Path, statuses: str, args: list[str]) -> str:
        query = args[args.index("--query") + 1] if "--query" in args else None
        output = args[args.index("--output") + 1] if "--output" in args else "json"
        response = json.loads(response_file.read_text(encoding="utf-8"))
        replay = [s for s in statuses.split(",") if s]
        if replay:  # one status per call, the last one repeating
            seen, self._status_calls = self._status_calls, self._status_calls + 1
            response["imageScanStatus"] = {"status": replay[min(seen, len(replay) - 1)]}
        value = jmespath.search(query, response) if query else response
        if output == "text":
            return f"{'None' if value is None else value}\n"
        return json.dumps(value) + "\n"


def _requests(pending: bytes) -> tuple[list[list[str]], bytes]:
    """The complete requests at the start of ``pending`` (field count, then the fields, each
    NUL-ended), and what is left of an incomplete one."""
    requests = []
    while True:
        head, found, rest = pending.partition(b"\0")
        if not found:
            return requests, pending
        count = int(head)
        if count < 4:
            raise ValueError(f"a request of {count} fields: {pending[:200]!r}")
        fields = rest.split(b"\0", count)
        if len(fields) <= count:
            return requests, pending
        requests.append([field.decode() for field in fields[:count]])
        pending = fields[count]


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
    for name, text in (files or {}).items():
        (work / name).write_text(text, encoding="utf-8")
    calls = tmp_path / "calls.txt"
    calls.touch()
    with ScanServer(tmp_path / "scan.fifo") as server:
        process = subprocess.Popen(
            ["/bin/bash", "-c", script(spec)],
            cwd=work,
            env={
                "PATH": f"{bin_dir}:/usr/bin:/bin",
                "CALLS": str(calls),
                "HOME": str(tmp_path),
                "FAKE_SCAN_FIFO": str(server.fifo),
                "FAKE_ANSWER_SECONDS": str(ANSWER_SECONDS),
                **env,
            }
            | {k: v for k, v in os.environ.items() if k == "LANG"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, so a timeout kills every fake too
        )
        try:
            stdout, stderr = process.communicate(timeout=RUN_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            raise AssertionError(
                f"{file} ran over {RUN_SECONDS} s and was killed:\n{stdout}{stderr}"
            ) from None
    return Run(
        returncode=process.returncode,
        output=stdout + stderr,
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

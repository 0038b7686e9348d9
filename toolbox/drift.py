"""Drift: what changed in AWS behind the stacks' backs, and the issue that tracks it.

``./dev drift`` runs a refresh preview of each layer's stack (``pulumi refresh --preview-only
--expect-no-changes`` through the Automation API, :func:`refresh_preview`): Pulumi reads every
resource from AWS and compares it with the state, changing neither. Each resource whose live
state differs is reported with its properties (from the engine's events: a refresh step's
outputs event carries the result, ``update`` or ``delete``, and the property diff). The exit code
is the report's: 0 clean, 2 drifted, 1 when a stack could not be checked.

In CI (``.github/workflows/drift.yml``) one job per layer writes its report as JSON; a last job,
the only one allowed to write issues, merges them and keeps one issue per environment current
(:func:`sync_issue`): opened or updated with the report while something drifts, closed when every
layer is clean, left alone when a layer could not be checked (no news is not good news).
"""

from __future__ import annotations

import json
import shutil
import subprocess  # nosec B404 - runs the gh CLI with fixed arguments, never through a shell
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.contracts import stack_name
from shared.errors import PlatformError
from shared.layers import names, selection
from shared.settings import load_platform

if TYPE_CHECKING:
    from pulumi.automation import EngineEvent

    from toolbox.automation import Runner

DRIFT_OPS = frozenset(
    {"update", "delete", "replace", "create", "create-replacement", "delete-replaced", "import"}
)
"""Result ops of a refresh step that mean the live resource left the state (``same`` does not)."""


class ExitCode(IntEnum):
    """What ``./dev drift`` exits with."""

    CLEAN = 0
    ERROR = 1
    DRIFTED = 2


@dataclass(frozen=True)
class DriftedResource:
    """One resource whose live state differs from the stack's state."""

    urn: str
    type: str
    op: str
    """``update`` (properties changed) or ``delete`` (gone from AWS), as the engine says."""
    properties: tuple[str, ...] = ()
    """``path (kind)`` for each drifted property, e.g. ``tags.Owner (update)``."""

    @property
    def name(self) -> str:
        """The resource's logical name: the last part of its URN."""
        return self.urn.rsplit("::", 1)[-1]

    def line(self) -> str:
        """``<op> <type> <name>: <properties>``."""
        head = f"{self.op} {self.type} {self.name}"
        return f"{head}: {', '.join(self.properties)}" if self.properties else head

    def as_dict(self) -> dict[str, Any]:
        return {"urn": self.urn, "type": self.type, "op": self.op, "properties": self.properties}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftedResource:
        return cls(data["urn"], data["type"], data["op"], tuple(data.get("properties", ())))


def _op(value: Any) -> str:
    return str(getattr(value, "value", value))


@dataclass
class EngineEvents:
    """Collects a refresh preview's engine events (pass it as ``on_event``)."""

    outputs: dict[str, Any] = field(default_factory=dict)
    """The last outputs event's metadata per URN: the refresh result of each resource."""
    failures: list[str] = field(default_factory=list)
    """URNs of resource operations that failed (a read denied, say)."""

    def __call__(self, event: EngineEvent) -> None:
        if event.res_outputs_event is not None:
            metadata = event.res_outputs_event.metadata
            self.outputs[metadata.urn] = metadata
        if event.res_op_failed_event is not None:
            self.failures.append(event.res_op_failed_event.metadata.urn)
        diagnostic = event.diagnostic_event
        if diagnostic is not None and diagnostic.severity == "error" and diagnostic.urn:
            self.failures.append(diagnostic.urn)

    def drifted(self) -> list[DriftedResource]:
        """The resources the refresh found changed or gone, in URN order."""
        found = []
        for urn, metadata in sorted(self.outputs.items()):
            op = _op(metadata.op)
            diffs = dict(metadata.detailed_diff or {})
            if op == "refresh":
                # An engine that reports the step itself rather than its result: a vanished
                # resource has no new state; a changed one carries a diff.
                if metadata.new is None:
                    op = "delete"
                elif diffs or metadata.diffs:
                    op = "update"
            if op not in DRIFT_OPS:
                continue
            if diffs:
                properties = tuple(
                    f"{path} ({_op(diff.diff_kind)})" for path, diff in sorted(diffs.items())
                )
            else:
                properties = tuple(sorted(metadata.diffs or ()))
            found.append(DriftedResource(urn, metadata.type, op, properties))
        return found


class Status(StrEnum):
    """One layer's drift result."""

    CLEAN = "clean"
    DRIFTED = "DRIFTED"
    FAILED = "FAILED"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class LayerDrift:
    """One stack's refresh preview."""

    layer: str
    stack: str
    status: Status
    resources: tuple[DriftedResource, ...] = ()
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "stack": self.stack,
            "status": self.status.value,
            "detail": self.detail,
            "resources": [resource.as_dict() for resource in self.resources],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerDrift:
        return cls(
            data["layer"],
            data["stack"],
            Status(data["status"]),
            tuple(DriftedResource.from_dict(r) for r in data.get("resources", ())),
            data.get("detail", ""),
        )


@dataclass(frozen=True)
class DriftReport:
    """Every checked layer of one environment, in dependency order."""

    environment: str
    layers: tuple[LayerDrift, ...]

    def with_status(self, status: Status) -> tuple[str, ...]:
        return tuple(entry.layer for entry in self.layers if entry.status is status)

    @property
    def exit_code(self) -> ExitCode:
        """1 if a layer could not be checked, else 2 if one drifted, else 0."""
        if self.with_status(Status.FAILED):
            return ExitCode.ERROR
        if self.with_status(Status.DRIFTED):
            return ExitCode.DRIFTED
        return ExitCode.CLEAN

    def lines(self) -> list[str]:
        """Per layer: its status, then one line per drifted resource."""
        width = max((len(entry.layer) for entry in self.layers), default=0)
        out = [f"drift {self.environment}:"]
        for entry in self.layers:
            line = f"  {entry.status.value:<8} {entry.layer:<{width}}  {entry.stack}"
            out.append(f"{line}: {entry.detail}" if entry.detail else line)
            out.extend(f"      {resource.line()}" for resource in entry.resources)
        return out

    def summary(self) -> str:
        """One line for the exit message."""
        failed = self.with_status(Status.FAILED)
        drifted = self.with_status(Status.DRIFTED)
        if failed:
            return f"drift check of {self.environment} failed for {', '.join(failed)}"
        if drifted:
            return f"drift in {self.environment}: {', '.join(drifted)} (see above)"
        return f"no drift in {self.environment}"

    def markdown(self, run_url: str = "") -> str:
        """The issue body: what drifted, per layer, and how to act on it."""
        out = [f"Live resources in **{self.environment}** differ from the Pulumi state.", ""]
        for entry in self.layers:
            out.append(f"### {entry.layer} (`{entry.stack}`): {entry.status.value}")
            if entry.detail:
                out.append(entry.detail)
            out.extend(
                f"- `{r.op}` `{r.type}` **{r.name}**"
                + (f": {', '.join(f'`{p}`' for p in r.properties)}" if r.properties else "")
                for r in entry.resources
            )
            out.append("")
        out += [
            f"Reproduce: `./dev drift --env {self.environment}`. Remediate with"
            f" `./dev deploy --env {self.environment} --layer <layer>` (the code wins), or adopt"
            " with `pulumi refresh` and a code change (docs/operations.md, Drift).",
        ]
        if run_url:
            out += ["", f"Found by {run_url}"]
        return "\n".join(out)

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "layers": [entry.as_dict() for entry in self.layers],
        }

    def save(self, path: Path) -> Path:
        """Write the report as JSON (the per-layer CI artifact)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")
        return path


def refresh_preview(runner: Runner, layer: str, env: str) -> list[DriftedResource]:
    """The resources whose live state left the stack's state, by a refresh preview of the stack.

    The preview exits non-zero on drift alone too (``expect_no_changes``), so a failure with
    drifted resources and no failed operation is drift; anything that failed on its own (a read
    denied, a provider error) is a PlatformError.
    """
    events = EngineEvents()
    try:
        runner.refresh_preview(layer, env, events)
    except PlatformError:
        if events.drifted() and not events.failures:
            return events.drifted()
        raise
    return events.drifted()


def detect(runner: Runner, env: str, layer: str | None = None) -> DriftReport:
    """Refresh-preview the selected stacks (all, in dependency order) and report the drift."""
    platform = load_platform(env)
    entries = []
    for current in selection(layer):
        stack = stack_name(platform.organization, current.name, env)
        try:
            if not runner.exists(current.name, env):
                entries.append(
                    LayerDrift(current.name, stack, Status.SKIPPED, detail="not deployed")
                )
                continue
            resources = tuple(refresh_preview(runner, current.name, env))
        except PlatformError as exc:
            entries.append(LayerDrift(current.name, stack, Status.FAILED, detail=str(exc)))
            continue
        if resources:
            detail = f"{len(resources)} resource(s) drifted"
            entries.append(LayerDrift(current.name, stack, Status.DRIFTED, resources, detail))
        else:
            entries.append(LayerDrift(current.name, stack, Status.CLEAN))
    return DriftReport(env, tuple(entries))


def merge_reports(folder: Path, env: str, expected: Iterable[str] | None = None) -> DriftReport:
    """One report from the per-layer JSON files under ``folder`` (CI: one per matrix job).

    A layer in ``expected`` (default: every layer) without a report counts as FAILED: its job
    ended before writing one (no credentials, no CLI, cancelled).
    """
    platform = load_platform(env)
    found: dict[str, LayerDrift] = {}
    for path in sorted(folder.rglob("*.json")) if folder.is_dir() else ():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PlatformError(f"{path}: not a drift report ({exc})") from None
        if data.get("environment") != env:
            raise PlatformError(
                f"{path}: a drift report of {data.get('environment')!r}, not of {env!r}"
            )
        for entry in data.get("layers", ()):
            found[entry["layer"]] = LayerDrift.from_dict(entry)
    wanted = tuple(expected) if expected is not None else names()
    for layer in wanted:
        found.setdefault(
            layer,
            LayerDrift(
                layer,
                stack_name(platform.organization, layer, env),
                Status.FAILED,
                detail="no report: its drift job ended before writing one",
            ),
        )
    return DriftReport(env, tuple(found[layer] for layer in names() if layer in found))


# -- the issue ------------------------------------------------------------------------------------

GitHubCli = Callable[..., str]
"""Runs ``gh <args>`` and returns its standard output (PlatformError on failure)."""


def gh(*args: str) -> str:
    """The real :data:`GitHubCli`: the ``gh`` CLI (GitHub's runners have it; GH_TOKEN auths)."""
    path = shutil.which("gh")
    if path is None:
        raise PlatformError(
            "gh CLI not found: install it (https://cli.github.com) and set GH_TOKEN"
        )
    result = subprocess.run(  # noqa: S603  # nosec B603 - fixed argv, no shell
        [path, *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise PlatformError(
            f"gh {' '.join(args[:2])} failed: {lines[-1] if lines else result.returncode}"
        )
    return result.stdout


def issue_title(env: str) -> str:
    """The one issue per environment: found again by this exact title."""
    return f"Drift detected in {env}"


@dataclass(frozen=True)
class IssueAction:
    """What :func:`sync_issue` did."""

    action: str
    """``opened``, ``updated``, ``closed`` or ``none``."""
    number: int | None
    detail: str

    def line(self) -> str:
        where = f" #{self.number}" if self.number is not None else ""
        return f"drift issue{where}: {self.action} ({self.detail})"


def find_issue(cli: GitHubCli, env: str) -> int | None:
    """The number of the environment's open drift issue, if there is one."""
    title = issue_title(env)
    listed = cli(
        "issue", "list", "--state", "open", "--search", f'"{title}" in:title',
        "--json", "number,title", "--limit", "50",
    )  # fmt: skip
    matches = [item["number"] for item in json.loads(listed or "[]") if item["title"] == title]
    return min(matches) if matches else None


def sync_issue(report: DriftReport, cli: GitHubCli, run_url: str = "") -> IssueAction:
    """Open or update the environment's issue while it drifts; close it once all is clean."""
    env = report.environment
    number = find_issue(cli, env)
    drifted = report.with_status(Status.DRIFTED)
    if drifted:
        body = report.markdown(run_url)
        what = f"drifted: {', '.join(drifted)}"
        if number is None:
            url = cli("issue", "create", "--title", issue_title(env), "--body", body).strip()
            tail = url.rstrip("/").rsplit("/", 1)[-1]
            return IssueAction("opened", int(tail) if tail.isdigit() else None, what)
        cli("issue", "edit", str(number), "--body", body)
        return IssueAction("updated", number, what)
    if report.with_status(Status.FAILED):
        failed = ", ".join(report.with_status(Status.FAILED))
        return IssueAction("none", number, f"not every layer was checked ({failed}); left as is")
    if number is None:
        return IssueAction("none", None, "no drift, no open issue")
    comment = f"No drift in {env} any more." + (f" Checked by {run_url}" if run_url else "")
    cli("issue", "close", str(number), "--comment", comment)
    return IssueAction("closed", number, "no drift")


__all__ = [
    "DRIFT_OPS",
    "DriftReport",
    "DriftedResource",
    "EngineEvents",
    "ExitCode",
    "IssueAction",
    "LayerDrift",
    "Status",
    "detect",
    "find_issue",
    "gh",
    "issue_title",
    "merge_reports",
    "sync_issue",
]

"""Order and safety of multi-layer operations, behind the :class:`~toolbox.automation.Runner`.

The rules, all read from the layer graph (:mod:`shared.layers`):

- ``deploy``: one layer, or every layer in dependency order. Before each layer, every upstream
  stack must exist and export what its contract promises; otherwise one line names the stack
  and the command to run. All layers stop at the first failure and report what was applied and
  what was not. Each successful up records the commit it came from on the stack (a stack tag),
  which ``deploy --changed`` compares against (:mod:`toolbox.affected`).
- ``preview``: the same selection; a layer whose own or upstream stack is not deployed yet is
  skipped with the reason (a preview creates nothing, not even a stack).
- ``refresh`` and ``outputs``: the same selection, over the stacks that exist.
- ``destroy``: reverse dependency order; a layer is refused while a downstream stack still
  exists (named), unless forced. Protected resources stay protected: the runner never unprotects.

Every function validates the environment and layer first (one line listing the valid ones),
then runs the injected ``preflight`` step on the selected layers (it raises PlatformError, one
line, when a check fails), touches nothing through the runner before both, and returns a small
report the task prints. ``deploy`` also asks the injected ``ready`` step before each layer, once
its upstream stacks are up: a layer that is not ready (the pipeline without its GitHub token) is
*stopped* with the one command that fixes it, and a rerun resumes there (``up`` of the layers
already deployed changes nothing).

A deploy's report says, per layer, the state it left the stack in: ``deployed``, ``untouched``
(not reached, or stopped before any change: a held lock, a missing upstream) or ``interrupted``
(the up began and ended early: a failed resource, pending operations, expired credentials); the
failed layer's line and the summary end with what resumes: the fix the fault names (clear the
lock, refresh the pending operations, renew the credentials), then ``./dev deploy --env ENV
--changed``, which skips the layers deployed at their recorded commit and so continues from the
first layer not deployed (:mod:`toolbox.affected`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared.contracts import CONTRACTS, create_command, stack_name
from shared.errors import PlatformError
from shared.layers import Layer, downstream, order, selection, upstream
from shared.settings import Platform, load_all, load_platform
from shared.stackconfig import check_all
from toolbox.automation import REDACTED, UNTOUCHED, Runner

DEPLOYED = "deployed"
"""The state of a layer a deploy applied, or skipped as already deployed at its commit."""

Preflight = Callable[[tuple[str, ...]], None]
"""Checks before a command touches any stack, given the selected layers' names; raises
PlatformError (one line) when one fails. The tasks pass :class:`toolbox.preflight.Preflight`."""

Ready = Callable[[str, Mapping[str, Mapping[str, Any]]], str | None]
"""Why a layer cannot be deployed yet although its upstream stacks are up (given their outputs by
layer), or None. The tasks pass :meth:`toolbox.preflight.Preflight.ready`."""


class Status(StrEnum):
    """What happened to one layer's stack."""

    APPLIED = "applied"
    PREVIEWED = "previewed"
    REFRESHED = "refreshed"
    DESTROYED = "destroyed"
    SKIPPED = "skipped"
    STOPPED = "STOPPED"
    FAILED = "FAILED"
    NOT_RUN = "not run"


@dataclass(frozen=True)
class Step:
    """One layer's line in a report."""

    layer: str
    stack: str
    status: Status
    detail: str = ""
    state: str = ""
    """What a deploy left the stack in: deployed, untouched or interrupted ('' for the other
    commands)."""
    resume: str = ""
    """On the step that failed: what resumes the deploy (a fix, then the rerun)."""


@dataclass(frozen=True)
class Report:
    """What one command did to each selected layer, in the order it acted."""

    action: str
    environment: str
    steps: tuple[Step, ...]

    @property
    def ok(self) -> bool:
        """True unless a layer failed or was stopped."""
        return self.failure is None

    @property
    def failure(self) -> Step | None:
        """The first failed (or stopped) step, if any."""
        return next((s for s in self.steps if s.status in (Status.FAILED, Status.STOPPED)), None)

    def layers(self, status: Status) -> tuple[str, ...]:
        """The layers whose step ended in ``status``, in order."""
        return tuple(step.layer for step in self.steps if step.status is status)

    def lines(self) -> list[str]:
        """The report as the task prints it: one line per layer."""
        width = max((len(s.layer) for s in self.steps), default=0)
        out = [f"{self.action} {self.environment}:"]
        for step in self.steps:
            line = f"  {step.status.value:<9} {step.layer:<{width}}  {step.stack}"
            if step.state:
                line += f" ({step.state})"
            detail = "; ".join(
                filter(None, (step.detail, step.resume and f"resume: {step.resume}"))
            )
            out.append(f"{line}: {detail}" if detail else line)
        return out

    def summary(self) -> str:
        """One line: what failed, or that everything is done."""
        failed = self.failure
        if failed is None:
            return f"{self.action} {self.environment}: done"
        if failed.status is Status.STOPPED:
            return (
                f"{self.action} {self.environment} stopped before {failed.layer}: {failed.detail}"
            )
        resume = f"; resume: {failed.resume}" if failed.resume else ""
        state = f" ({failed.state})" if failed.state else ""
        return (
            f"{self.action} {self.environment} failed at {failed.layer}{state}:"
            f" {failed.detail}{resume}"
        )


@dataclass(frozen=True)
class LayerOutputs:
    """One stack's outputs (``None`` when the stack does not exist)."""

    layer: str
    stack: str
    values: dict[str, Any] | None


@dataclass(frozen=True)
class OutputsReport:
    """The outputs of the selected layers' stacks."""

    environment: str
    layers: tuple[LayerOutputs, ...] = field(default_factory=tuple)

    def lines(self) -> list[str]:
        """Each stack, then one ``key = value`` line per output (secrets stay redacted)."""
        out: list[str] = []
        for entry in self.layers:
            if entry.values is None:
                out.append(f"{entry.layer} ({entry.stack}): not deployed")
                continue
            out.append(f"{entry.layer} ({entry.stack}):")
            out.extend(f"  {key} = {value}" for key, value in sorted(entry.values.items()))
        return out

    def as_dict(self) -> dict[str, dict[str, Any] | None]:
        """``{layer: outputs or None}`` for ``--json``."""
        return {entry.layer: entry.values for entry in self.layers}


def resolve(env: str, layer: str | None) -> tuple[Platform, tuple[Layer, ...]]:
    """The validated environment and the selected layers (PlatformError/UnknownLayerError)."""
    platform = load_platform(env)
    layers = selection(layer or None)
    check_all(load_all())
    return platform, layers


def _stack(platform: Platform, layer: str) -> str:
    return stack_name(platform.organization, layer, platform.environment)


def upstream_outputs(
    runner: Runner, platform: Platform, layer: str
) -> tuple[str | None, dict[str, dict[str, Any]]]:
    """Why ``layer`` cannot be deployed yet (a missing stack or export), or None; and the
    upstream stacks' outputs by layer (secret values redacted)."""
    env = platform.environment
    found: dict[str, dict[str, Any]] = {}
    for dep in upstream(layer):
        stack = _stack(platform, dep.name)
        if not runner.exists(dep.name, env):
            return (
                f"upstream stack {stack} does not exist; run `{create_command(dep.name, env)}`"
                " first"
            ), found
        contract = CONTRACTS.get(dep.name)
        if contract is None:
            continue
        values = runner.outputs(dep.name, env)
        found[dep.name] = values
        # A secret output comes back redacted: present, but its type cannot be seen.
        for spec in contract.specs():
            if spec.secret and values.get(spec.key) == REDACTED:
                values = {**values, spec.key: spec.kind()}
        try:
            contract.check(values, stack, env)
        except PlatformError as exc:
            return str(exc), found
    return None, found


def upstream_problem(runner: Runner, platform: Platform, layer: str) -> str | None:
    """Why ``layer`` cannot be deployed yet (a missing stack or export), or None."""
    return upstream_outputs(runner, platform, layer)[0]


def _names(layers: tuple[Layer, ...]) -> tuple[str, ...]:
    return tuple(layer.name for layer in layers)


def deploy(
    runner: Runner,
    env: str,
    layer: str | None = None,
    yes: bool = False,
    *,
    preflight: Preflight | None = None,
    ready: Ready | None = None,
    skip: Mapping[str, str] | None = None,
    commits: Mapping[str, str] | None = None,
) -> Report:
    """Deploy one layer, or all in dependency order, stopping at the first failure.

    ``preflight`` runs first, on the layers to deploy; ``ready`` is asked before each layer whose
    upstream is up, and a layer it names a reason for is stopped (with the rest not run) before
    anything of it changes. ``skip`` maps layers not to deploy to the reason (``deploy
    --changed``: unchanged since the commit their stack records). After each successful up the
    layer's value in ``commits`` is recorded on its stack; a failure to record is reported but
    does not undo the deploy (the stale record only makes the next ``--changed`` deploy the
    layer again).
    """
    platform, layers = resolve(env, layer)
    skip = skip or {}
    commits = commits or {}
    if preflight is not None:
        preflight(tuple(name for name in _names(layers) if name not in skip))
    steps: list[Step] = []
    for index, current in enumerate(layers):
        stack = _stack(platform, current.name)
        if current.name in skip:
            steps.append(
                Step(current.name, stack, Status.SKIPPED, skip[current.name], state=DEPLOYED)
            )
            continue
        status, state, resume = Status.FAILED, UNTOUCHED, ""
        try:
            problem, found = upstream_outputs(runner, platform, current.name)
            if problem is None and ready is not None:
                problem = ready(current.name, found)
                status = Status.STOPPED
            if problem is None:
                runner.up(current.name, env, yes)
        except PlatformError as exc:
            problem, status = getattr(exc, "reason", str(exc)), Status.FAILED
            # A fault of the up itself says what it left; any other error came before it.
            state = getattr(exc, "state", UNTOUCHED)
            resume = _resume(env, getattr(exc, "fix", ""))
        if problem is not None:
            steps.append(Step(current.name, stack, status, problem, state=state, resume=resume))
            steps.extend(
                Step(rest.name, _stack(platform, rest.name), Status.NOT_RUN, state=UNTOUCHED)
                for rest in layers[index + 1 :]
            )
            break
        steps.append(
            Step(
                current.name,
                stack,
                Status.APPLIED,
                _record(runner, current, env, commits),
                state=DEPLOYED,
            )
        )
    return Report("deploy", env, tuple(steps))


def _resume(env: str, fix: str) -> str:
    """What resumes a deploy that failed: ``fix`` (if any), then the rerun that continues from
    the first layer not deployed."""
    rerun = f"`./dev deploy --env {env} --changed`"
    if not fix:
        return rerun
    return f"{fix}, then {rerun}"


def _record(runner: Runner, layer: Layer, env: str, commits: Mapping[str, str]) -> str:
    """Record the deployed commit on the stack; the step's detail says what happened."""
    commit = commits.get(layer.name)
    if commit is None:
        return ""
    try:
        runner.set_deployed_commit(layer.name, env, commit)
    except PlatformError as exc:
        return f"deployed, but the commit was not recorded: {exc}"
    return f"recorded commit {commit[:12]}{'-dirty' if commit.endswith('-dirty') else ''}"


def preview(
    runner: Runner, env: str, layer: str | None = None, preflight: Preflight | None = None
) -> Report:
    """Preview one layer, or all in dependency order; layers not deployable yet are skipped."""
    platform, layers = resolve(env, layer)
    if preflight is not None:
        preflight(_names(layers))
    steps: list[Step] = []
    for current in layers:
        stack = _stack(platform, current.name)
        try:
            problem = upstream_problem(runner, platform, current.name)
            if problem is not None:
                steps.append(Step(current.name, stack, Status.SKIPPED, problem))
                continue
            if not runner.exists(current.name, env):
                steps.append(
                    Step(
                        current.name,
                        stack,
                        Status.SKIPPED,
                        f"not deployed yet; `{create_command(current.name, env)}` creates it"
                        f" (`./dev synth --env {env}` shows the plan offline)",
                    )
                )
                continue
            runner.preview(current.name, env)
        except PlatformError as exc:
            steps.append(Step(current.name, stack, Status.FAILED, str(exc)))
            continue
        steps.append(Step(current.name, stack, Status.PREVIEWED))
    return Report("preview", env, tuple(steps))


def refresh(
    runner: Runner, env: str, layer: str | None = None, preflight: Preflight | None = None
) -> Report:
    """Refresh the state of the selected stacks that exist, in dependency order."""
    platform, layers = resolve(env, layer)
    if preflight is not None:
        preflight(_names(layers))
    steps: list[Step] = []
    for current in layers:
        stack = _stack(platform, current.name)
        try:
            if not runner.exists(current.name, env):
                steps.append(Step(current.name, stack, Status.SKIPPED, "not deployed"))
                continue
            runner.refresh(current.name, env)
        except PlatformError as exc:
            steps.append(Step(current.name, stack, Status.FAILED, str(exc)))
            continue
        steps.append(Step(current.name, stack, Status.REFRESHED))
    return Report("refresh", env, tuple(steps))


def outputs(runner: Runner, env: str, layer: str | None = None) -> OutputsReport:
    """The outputs of the selected stacks (None for a stack that does not exist)."""
    platform, layers = resolve(env, layer)
    found = tuple(
        LayerOutputs(
            current.name,
            _stack(platform, current.name),
            runner.outputs(current.name, env) if runner.exists(current.name, env) else None,
        )
        for current in layers
    )
    return OutputsReport(env, found)


def destroy_order(layer: str | None) -> tuple[Layer, ...]:
    """The layers a destroy acts on: one, or all in reverse dependency order."""
    return selection(layer) if layer else tuple(reversed(order()))


def downstream_guard(runner: Runner, platform: Platform, layer: str) -> str | None:
    """Why ``layer`` must not be destroyed yet (a downstream stack that exists), or None."""
    for dep in downstream(layer):
        if runner.exists(dep.name, platform.environment):
            stack = _stack(platform, dep.name)
            fix = f"./dev destroy --layer {dep.name} --env {platform.environment}"
            return (
                f"downstream stack {stack} still exists and reads {layer}'s outputs; destroy it"
                f" first (`{fix}`) or pass --force"
            )
    return None


def destroy(
    runner: Runner,
    env: str,
    layer: str | None = None,
    force: bool = False,
    confirm: Callable[[str], bool] | None = None,
    *,
    preflight: Preflight | None = None,
) -> Report:
    """Destroy one layer, or all in reverse dependency order, with the downstream guard.

    ``confirm`` is asked once, with the stacks about to be destroyed, before anything happens;
    a refusal raises PlatformError. Stops at the first failure (a protected resource, say).
    """
    platform, _ = resolve(env, layer)
    layers = destroy_order(layer)
    if preflight is not None:
        preflight(_names(layers))
    if layer and not force:
        problem = downstream_guard(runner, platform, layer)
        if problem is not None:
            raise PlatformError(f"refusing to destroy {layer} in {env}: {problem}")
    present = [current for current in layers if runner.exists(current.name, env)]
    if present and confirm is not None:
        names = ", ".join(_stack(platform, current.name) for current in present)
        if not confirm(f"Destroy every resource of {names}?"):
            raise PlatformError(
                f"nothing destroyed in {env}: not confirmed (pass --yes to skip the prompt)"
            )
    steps: list[Step] = []
    for index, current in enumerate(layers):
        stack = _stack(platform, current.name)
        if current not in present:
            steps.append(Step(current.name, stack, Status.SKIPPED, "not deployed"))
            continue
        try:
            problem = None if force else downstream_guard(runner, platform, current.name)
            if problem is None:
                runner.destroy(current.name, env)
        except PlatformError as exc:
            problem = str(exc)
        if problem is not None:
            steps.append(Step(current.name, stack, Status.FAILED, problem))
            steps.extend(
                Step(rest.name, _stack(platform, rest.name), Status.NOT_RUN)
                for rest in layers[index + 1 :]
            )
            break
        steps.append(Step(current.name, stack, Status.DESTROYED))
    return Report("destroy", env, tuple(steps))


__all__ = [
    "DEPLOYED",
    "LayerOutputs",
    "OutputsReport",
    "Preflight",
    "Ready",
    "Report",
    "Status",
    "Step",
    "deploy",
    "destroy",
    "destroy_order",
    "downstream_guard",
    "outputs",
    "preview",
    "refresh",
    "resolve",
    "upstream_outputs",
    "upstream_problem",
]

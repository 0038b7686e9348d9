"""The offline plan: each layer's real program under the Pulumi SDK's mocks.

No Pulumi CLI, no provider plugin and no AWS account are needed. Layers run one after the other
in one process, in dependency order; the provider's answers come from
:class:`toolbox.mocks.PlatformMocks`, which answers a StackReference with the outputs the upstream
layer actually exported in the same run, so the wiring between layers is exercised for real.

The result, per layer, is a :class:`LayerPlan`: every resource (URN, type, name, parent,
provider, protect, inputs with secrets redacted) and the exports.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import runpy
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import mocks, rpc
from pulumi.runtime.config import set_all_config
from pulumi.runtime.settings import ROOT, SETTINGS
from pulumi.runtime.stack import Stack, run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from shared.contracts import CONTRACTS, stack_name
from shared.errors import PlatformError
from shared.layers import get, selection
from shared.layers import upstream as upstream_of
from shared.settings import load_all, load_platform, relative
from shared.stackconfig import check_all, config_values, load_layer_files
from toolbox.mocks import SECRET_SIG, PlatformMocks

REDACTED = "[secret]"
STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class PlannedResource:
    """One resource as the engine would be asked to register it."""

    urn: str
    type: str
    name: str
    parent: str | None
    custom: bool
    protect: bool
    provider: str | None
    inputs: dict[str, Any]
    """Inputs in the engine's wire names (camelCase), secrets replaced by ``[secret]``."""
    delete_before_replace: bool = False
    """The ``delete_before_replace`` option the program registered the resource with."""
    ignore_changes: tuple[str, ...] = ()
    """Inputs whose later changes the engine ignores (``ignore_changes``), as it is asked."""

    def as_json(self) -> dict[str, Any]:
        """The resource as written to the plan file."""
        extra = {"ignoreChanges": list(self.ignore_changes)} if self.ignore_changes else {}
        return {
            **extra,
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "protect": self.protect,
            "provider": self.provider,
            "deleteBeforeReplace": self.delete_before_replace,
            "inputs": self.inputs,
        }


@dataclass(frozen=True)
class LayerPlan:
    """What one layer's program registered and exported in one environment."""

    layer: str
    environment: str
    stack: str
    resources: tuple[PlannedResource, ...]
    exports: dict[str, Any]
    """The stack outputs, with their real values (secrets included, for downstream layers)."""
    secret_exports: frozenset[str] = field(default_factory=frozenset)
    invokes: frozenset[str] = field(default_factory=frozenset)
    """The tokens of the invokes (data sources) the program called, e.g. getCallerIdentity."""

    def of_type(self, type_: str) -> list[PlannedResource]:
        """The resources of one type."""
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str) -> PlannedResource:
        """The single resource of ``type_``; an AssertionError naming the count otherwise."""
        found = self.of_type(type_)
        if len(found) != 1:
            raise AssertionError(f"{self.layer}: expected one {type_}, found {len(found)}")
        return found[0]

    def as_json(self) -> dict[str, Any]:
        """The plan file's content: deterministic, secrets redacted."""
        return {
            "layer": self.layer,
            "environment": self.environment,
            "stack": self.stack,
            "resources": [r.as_json() for r in self.resources],
            "exports": {
                k: (REDACTED if k in self.secret_exports else v)
                for k, v in sorted(self.exports.items())
            },
        }

    def to_text(self) -> str:
        """The plan file's text: the same input gives byte-identical output."""
        return json.dumps(self.as_json(), indent=2, sort_keys=True) + "\n"


def _asset(value: Any) -> dict[str, Any]:
    """An asset or archive as plain, deterministic JSON: its kind, path and content digest.

    The plan shows what code a Lambda gets (the file, relative to the repository, and the
    sha256 of its bytes) instead of an object JSON cannot hold.
    """
    if isinstance(value, pulumi.AssetArchive):
        return {"archive": {name: _asset(item) for name, item in sorted(value.assets.items())}}
    if isinstance(value, pulumi.FileAsset | pulumi.FileArchive):
        path = Path(value.path)
        kind = "file" if isinstance(value, pulumi.FileAsset) else "fileArchive"
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        return {kind: relative(path), "sha256": digest}
    if isinstance(value, pulumi.StringAsset):
        return {"text": value.text}
    return {"asset": type(value).__name__}


def redact(value: Any) -> Any:
    """``value`` with every secret replaced by ``[secret]`` (and assets as plain JSON)."""
    if isinstance(value, pulumi.Asset | pulumi.Archive):
        return _asset(value)
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == rpc._special_secret_sig:
            return REDACTED
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _redacted_in_place(properties: Any) -> Any:
    """``properties`` with each secret replaced by ``[secret]`` where it is.

    The SDK's deserializer lifts a secret nested in a list or map to the whole list or map (one
    secret OAuth token would hide every stage of a pipeline); redacting first keeps the rest of
    the structure readable in the plan, as the engine's state keeps it.
    """
    raw = json_format.MessageToDict(properties)
    if not _has_secret(raw):
        return properties
    struct = struct_pb2.Struct()
    struct.update(redact(raw))
    return struct


def _has_secret(value: Any) -> bool:
    if isinstance(value, dict):
        return value.get(SECRET_SIG) == rpc._special_secret_sig or any(
            _has_secret(v) for v in value.values()
        )
    if isinstance(value, list):
        return any(_has_secret(v) for v in value)
    return False


class RecordingMonitor(mocks.MockMonitor):
    """The SDK's mock monitor, recording each registration as the engine would see it.

    It also makes URNs the way the engine does: the parent's whole type chain, not just the
    parent's own type, and no ``pulumi:pulumi:Stack`` prefix; so URN pins hold for real stacks.
    """

    def __init__(self, mocks_: mocks.Mocks) -> None:
        super().__init__(mocks_)
        self.records: list[PlannedResource] = []
        self._types: dict[str, str] = {}

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        chain = self._types.get(parent)
        qualified = f"{chain}${type_}" if chain else type_
        urn = "urn:pulumi:" + "::".join([pulumi.get_stack(), pulumi.get_project(), qualified, name])
        if type_ != STACK_TYPE:
            self._types[urn] = qualified
        return urn

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != STACK_TYPE:
            self._record(
                request, response.urn, request.object, bool(request.custom), bool(request.protect)
            )
        return response

    def ReadResource(self, request: Any) -> Any:
        response = super().ReadResource(request)
        self._record(request, response.urn, request.properties, True, False)
        return response

    def _record(self, request: Any, urn: str, properties: Any, custom: bool, protect: bool) -> None:
        inputs = rpc.deserialize_properties(_redacted_in_place(properties), keep_unknowns=True)
        parent = request.parent if request.parent and STACK_TYPE not in request.parent else None
        provider = request.provider.rsplit("::", 1)[0] if request.provider else None
        self.records.append(
            PlannedResource(
                urn=urn,
                type=request.type,
                name=request.name,
                parent=parent,
                custom=custom,
                protect=protect,
                provider=provider,
                inputs=redact(inputs),
                delete_before_replace=bool(getattr(request, "deleteBeforeReplace", False)),
                ignore_changes=tuple(getattr(request, "ignoreChanges", ()) or ()),
            )
        )


def plan_layer(
    layer_name: str,
    environment: str,
    upstream: Mapping[str, LayerPlan] | None = None,
    config_overrides: Mapping[str, str] | None = None,
    secret_overrides: Mapping[str, str] | None = None,
) -> LayerPlan:
    """Run one layer's real ``__main__.py`` under the mocks and return what it planned.

    ``upstream`` maps stack names to plans of layers already run; ``config_overrides`` sets
    stack config keys (``project:key``) on top of the layer's files, as a test or a benchmark
    would with ``pulumi config set``; ``secret_overrides`` likewise, as with
    ``pulumi config set --secret``.
    """
    layer = get(layer_name)
    platform = load_platform(environment)
    files = load_layer_files(layer, environment)
    values, secret_keys = config_values(files)
    # An override stands for `pulumi config set`, which writes the stack file: the same check.
    files.check([*(config_overrides or {}), *(secret_overrides or {})])
    values.update(config_overrides or {})
    values.update(secret_overrides or {})
    secret_keys = [*secret_keys, *(secret_overrides or {})]
    stack = stack_name(platform.organization, layer.name, environment)

    ROOT.set(None)
    set_all_config(values, secret_keys)
    answers = PlatformMocks(platform, upstream or {})
    monitor = RecordingMonitor(answers)
    mocks.set_mocks(
        monitor.mocks, project=layer.project, stack=environment, preview=False, monitor=monitor
    )
    program = str(layer.directory / "__main__.py")

    def run() -> None:
        runpy.run_path(program, run_name="__main__")

    _run(run)
    root = ROOT.get()
    outputs = root.outputs if isinstance(root, Stack) else {}
    exports, secrets = _sync_await(_resolve_exports(outputs))
    return LayerPlan(
        layer=layer.name,
        environment=environment,
        stack=stack,
        resources=tuple(sorted(monitor.records, key=lambda r: r.urn)),
        exports=exports,
        secret_exports=frozenset(secrets),
        invokes=frozenset(answers.invoked),
    )


def _run(program: Any) -> None:
    """Run ``program`` like the language host does; a PlatformError surfaces as itself.

    The SDK keeps outstanding RPCs and outputs in process-wide state; they are cleared before
    the run, and after a failed run the tasks it left behind are cancelled, so one layer's
    failure never leaks into the next plan in the same process.
    """
    _clear_sdk_state()
    asyncio.get_event_loop().set_exception_handler(_quiet_reported_errors)
    # The SDK allocates a few hundred short-lived objects per resource; the cyclic collector's
    # full passes over that growing heap made big plans superlinear (./dev bench: 500 services
    # took 5.2x the time of 100). Collect once afterwards instead.
    collecting = gc.isenabled()
    gc.disable()
    try:
        _sync_await(run_pulumi_func(program))
    except Exception as exc:
        _cancel_leftovers()
        cause = _platform_cause(exc)
        if cause is not None and cause is not exc:
            raise cause from None
        raise
    finally:
        if collecting:
            gc.enable()


def _clear_sdk_state() -> None:
    """Forget the outstanding RPCs and outputs the SDK keeps in process-wide state."""
    # SETTINGS' attributes are the SDK's context properties, opaque to a type checker.
    settings: Any = SETTINGS
    settings.rpc_manager.clear()
    settings.outputs.clear()


def _quiet_reported_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Drop asyncio's "exception never retrieved" for a PlatformError the run already raised.

    The SDK resolves each Output of a failed read with the same error; the user is shown it once.
    """
    if isinstance(context.get("exception"), PlatformError):
        return
    loop.default_exception_handler(context)


def _cancel_leftovers() -> None:
    loop = asyncio.get_event_loop()
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    _clear_sdk_state()


def _platform_cause(exc: BaseException | None) -> PlatformError | None:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, PlatformError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


async def _resolve_exports(outputs: Mapping[str, Any]) -> tuple[dict[str, Any], set[str]]:
    values: dict[str, Any] = {}
    secrets: set[str] = set()
    for key, value in outputs.items():
        out = pulumi.Output.from_input(value)
        values[key] = await out.future()
        if await out.is_secret():
            secrets.add(key)
    return values, secrets


LayerPlanner = Callable[[str, str, Mapping[str, LayerPlan], Mapping[str, str] | None], LayerPlan]
"""Plans one layer: ``(layer, environment, upstream plans by stack, config overrides)``."""


def plan_all(
    environment: str,
    only: str | None = None,
    config_overrides: Mapping[str, Mapping[str, str]] | None = None,
    plan: LayerPlanner = plan_layer,
) -> dict[str, LayerPlan]:
    """Plan ``only`` (and the layers it needs, for their exports) or every layer, in order.

    Returns the plans by layer name; with ``only``, just that layer's plan is in the result.
    Each layer is planned by ``plan`` (:func:`plan_layer`, or one that reuses stored plans) and
    sees only its upstream layers' plans; its exports are checked against its contract.
    """
    wanted = selection(only)
    check_all(load_all())
    needed = (*upstream_of(only), *wanted) if only else wanted
    by_stack: dict[str, LayerPlan] = {}
    plans: dict[str, LayerPlan] = {}
    for layer in needed:
        above = {dep.name for dep in upstream_of(layer.name)}
        planned = plan(
            layer.name,
            environment,
            {stack: up for stack, up in by_stack.items() if up.layer in above},
            (config_overrides or {}).get(layer.name),
        )
        contract = CONTRACTS.get(layer.name)
        if contract is not None:
            contract.check(planned.exports, planned.stack, environment)
        by_stack[planned.stack] = planned
        plans[layer.name] = planned
    return {name: plans[name] for name in (layer.name for layer in wanted)}


def _main() -> None:  # pragma: no cover - a convenience for `python -m toolbox.offline`
    env = sys.argv[1] if len(sys.argv) > 1 else "dev"
    for plan in plan_all(env).values():
        print(plan.layer, len(plan.resources))


if __name__ == "__main__":  # pragma: no cover
    _main()

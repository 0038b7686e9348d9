"""Plans reused across runs and processes, keyed by the content of everything that shapes them.

Planning a layer also plans the layers it reads from, for their exports; and every pytest-xdist
worker planned dev and prod again. A layer's plan is stored under ``build/plancache/`` by a key
that hashes what can change it:

- the layer's inputs as ``./dev affected`` computes them (:func:`toolbox.affected.layer_inputs`):
  its folder, ``shared/``, ``platform.yaml``, the lock (``uv.lock``, ``pyproject.toml``) and the
  policy pack;
- the offline plan's own code (the mocks shape the exports) and the Python version;
- the environment, the config overrides of the run, and the upstream exports the layer consumed
  (so a changed upstream plan changes every key below it).

A changed input is a new key, so it always plans again; nothing is ever invalidated in place.
Writes go to a temporary file renamed over the entry (``os.replace``), so a reader sees a whole
entry or none, and a per-key file lock makes one process plan while the others wait and then
read its result. An entry not used for :data:`KEEP_DAYS` is removed by the first store of a
process. Offline plans hold no credentials: a ``secure:`` config value plans as a placeholder.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import fields
from pathlib import Path
from typing import Any

from shared import settings
from shared.layers import REPO_ROOT, get, selection
from shared.layers import upstream as upstream_layers
from toolbox import offline
from toolbox.affected import layer_inputs
from toolbox.files import write_atomically
from toolbox.offline import LayerPlan, PlannedResource, plan_layer

CACHE_DIR = REPO_ROOT / "build" / "plancache"
"""Where plans are kept (``build/`` is git-ignored); ``rm -rf build/plancache`` is always safe."""

FORMAT = 2
"""The entry layout; bump it when :func:`to_json` changes, and old entries become misses."""

OWN_CODE = ("toolbox/offline.py", "toolbox/mocks.py", "toolbox/plancache.py")
"""The toolbox code that shapes a plan: the mocks answer every resource and StackReference."""

SKIPPED_PARTS = frozenset({"__pycache__", ".pytest_cache", ".ruff_cache"})
"""Folders under an input folder that hold caches, not inputs."""

KEEP_DAYS = 7
"""An entry (or lock file) unused this long is removed: main moves several times a day."""

_PRUNED: set[Path] = set()
"""The cache folders this process has pruned: once per process, on its first store."""


def _files_under(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and not SKIPPED_PARTS.intersection(path.relative_to(folder).parts)
    )


def _digest_file(path: Path) -> str:
    """The SHA-256 of ``path``'s bytes (hex), or ``missing``: an absent file is a state too."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return "missing"


def input_files(layer: str, root: Path = REPO_ROOT) -> dict[str, Path]:
    """Every file whose content is part of ``layer``'s key, by the name hashed with it.

    The layer's folder is read where the program actually runs from (``Layer.directory``, which a
    test may point at a copy), ``platform.yaml`` from where the platform is read
    (:data:`shared.settings.PLATFORM_FILE`); the rest from ``root``.
    """
    inputs = layer_inputs(layer)
    own_folder = f"stacks/{layer}/"
    found: dict[str, Path] = {}
    directory = get(layer).directory
    for path in _files_under(directory):
        found[own_folder + path.relative_to(directory).as_posix()] = path
    for folder in inputs.folders:
        if folder != own_folder:
            for path in _files_under(root / folder):
                found[path.relative_to(root).as_posix()] = path
    for name in (*inputs.files, *OWN_CODE):
        if not name.startswith(own_folder):
            found[name] = root / name
    # The upstream layers' own files too, although since the services moved to platform.yaml
    # no program reads another layer's files: over-cautious (a change there replans downstream).
    for needed in upstream_layers(layer):
        for path in _files_under(needed.directory):
            found[f"stacks/{needed.name}/" + path.relative_to(needed.directory).as_posix()] = path
    found["platform.yaml"] = settings.PLATFORM_FILE
    _stack_files_from_config_root(found, layer)
    return found


def _stack_files_from_config_root(found: dict[str, Path], layer: str) -> None:
    """The stack files of ``layer`` and its upstream layers where they are read: under the config
    root (:data:`shared.layers.CONFIG_ROOT`), which may be another folder than the code's, so a
    plan is never reused for another configuration."""
    for needed in (get(layer), *upstream_layers(layer)):
        prefix = f"stacks/{needed.name}/"
        for name in [name for name in found if name.startswith(prefix)]:
            if _is_stack_file(name.removeprefix(prefix)):
                del found[name]
        for path in sorted(needed.config_directory.glob("Pulumi.*.yaml")):
            found[prefix + path.name] = path


def _is_stack_file(name: str) -> bool:
    return name.startswith("Pulumi.") and name.endswith(".yaml") and name != "Pulumi.yaml"


def layer_key(
    layer: str,
    environment: str,
    upstream: Mapping[str, LayerPlan],
    config_overrides: Mapping[str, str] | None = None,
    root: Path = REPO_ROOT,
) -> str:
    """The content key of ``layer``'s plan in ``environment`` (a hex SHA-256).

    ``upstream`` is every plan the layer's StackReferences may read (their exports and which
    of them are secret are hashed, not their resources); ``config_overrides`` the run's
    ``project:key`` overrides.
    """
    digest = hashlib.sha256()

    def feed(*parts: str) -> None:
        for part in parts:
            digest.update(part.encode())
            digest.update(b"\0")

    feed(f"format {FORMAT}", sys.version, layer, environment)
    for name, path in sorted(input_files(layer, root).items()):
        feed("file", name, _digest_file(path))
    feed("overrides", json.dumps(dict(config_overrides or {}), sort_keys=True))
    for stack in sorted(upstream):
        plan = upstream[stack]
        feed(
            "upstream",
            stack,
            json.dumps(plan.exports, sort_keys=True, default=repr),
            json.dumps(sorted(plan.secret_exports)),
        )
    return digest.hexdigest()


def to_json(plan: LayerPlan) -> dict[str, Any]:
    """Everything in ``plan``, exports with their values, as JSON-ready data."""
    return {
        "format": FORMAT,
        "layer": plan.layer,
        "environment": plan.environment,
        "stack": plan.stack,
        "resources": [
            {f.name: getattr(resource, f.name) for f in fields(PlannedResource)}
            for resource in plan.resources
        ],
        "exports": plan.exports,
        "secret_exports": sorted(plan.secret_exports),
        "invokes": sorted(plan.invokes),
    }


def from_json(data: dict[str, Any]) -> LayerPlan:
    """The plan :func:`to_json` wrote; KeyError or TypeError if it is not one."""
    if data.get("format") != FORMAT:
        raise KeyError("format")
    return LayerPlan(
        layer=data["layer"],
        environment=data["environment"],
        stack=data["stack"],
        resources=tuple(_resource(resource) for resource in data["resources"]),
        exports=data["exports"],
        secret_exports=frozenset(data["secret_exports"]),
        invokes=frozenset(data["invokes"]),
    )


def _resource(data: dict[str, Any]) -> PlannedResource:
    """A stored resource; its tuple fields (``ignore_changes``) come back from JSON as lists."""
    resource = dict(data)
    if isinstance(resource.get("ignore_changes"), list):
        resource["ignore_changes"] = tuple(resource["ignore_changes"])
    return PlannedResource(**resource)


def load(path: Path) -> LayerPlan | None:
    """The plan stored at ``path``, or None when there is none or it is unreadable."""
    try:
        return from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store(path: Path, plan: LayerPlan) -> bool:
    """Write ``plan`` to ``path`` atomically; False (and nothing written) if it is not JSON."""
    try:
        text = json.dumps(to_json(plan), sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return False
    if from_json(json.loads(text)) != plan:  # e.g. a tuple in an export would come back a list
        return False
    write_atomically(path, text)
    return True


def prune_once(cache_dir: Path) -> None:
    """Remove what in ``cache_dir`` is unused for :data:`KEEP_DAYS`, the first time a process asks.

    A hit sets its entry's mtime to now. Removing an entry or lock file another process is about
    to read or take costs at most a plan made twice, never a wrong one: a missing entry is a
    miss, and entries are only ever written whole.
    """
    if cache_dir in _PRUNED:
        return
    _PRUNED.add(cache_dir)
    cutoff = time.time() - KEEP_DAYS * 86_400
    for path in cache_dir.glob("*"):
        with suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()


def reuse_or_plan(
    key: str, plan: Callable[[], LayerPlan], cache_dir: Path | None = None
) -> LayerPlan:
    """The plan stored under ``key``; else ``plan()``'s result, stored for the next process.

    The first process to miss takes the key's lock and plans; a concurrent one waits on the lock
    and then reads what the first stored. A failed plan stores nothing. A hit marks the entry
    used (its mtime), so pruning keeps it.
    """
    cache_dir = cache_dir or CACHE_DIR
    entry = cache_dir / f"{key}.json"
    found = load(entry)
    if found is not None:
        with suppress(OSError):
            os.utime(entry)
        return found
    # Imported on a miss only: the package takes longer to import than a stored plan to read.
    from filelock import FileLock

    with FileLock(cache_dir / f"{key}.lock"):
        found = load(entry)
        if found is not None:
            return found
        planned = plan()
        stored = store(entry, planned)
    if stored:
        prune_once(cache_dir)
    return planned


def plan_layer_cached(
    layer: str,
    environment: str,
    upstream: Mapping[str, LayerPlan],
    config_overrides: Mapping[str, str] | None,
    *,
    reuse: bool,
    cache_dir: Path | None = None,
) -> LayerPlan:
    """``layer``'s plan: stored one if ``reuse`` and its key is stored, else planned and stored.

    With ``reuse`` off the layer is planned (what ``./dev synth`` asks of the layers it shows)
    and the result is still stored, so the next run that only needs its exports reads them.
    """

    def plan() -> LayerPlan:
        return plan_layer(layer, environment, upstream, config_overrides)

    key = layer_key(layer, environment, upstream, config_overrides)
    if reuse:
        return reuse_or_plan(key, plan, cache_dir)
    planned = plan()
    if store((cache_dir or CACHE_DIR) / f"{key}.json", planned):
        prune_once(cache_dir or CACHE_DIR)
    return planned


def plan_all(
    environment: str,
    only: str | None = None,
    config_overrides: Mapping[str, Mapping[str, str]] | None = None,
    reuse: str = "upstream",
) -> dict[str, LayerPlan]:
    """:func:`toolbox.offline.plan_all`, each layer's plan stored and, per ``reuse``, reused.

    ``reuse`` says which plans may be read from the cache when none of their inputs changed:
    ``upstream`` (the layers only needed for their exports), ``all``, or ``none``. Every plan
    made is stored, so the next run that only needs a layer's exports reads them.
    """
    wanted = {layer.name for layer in selection(only)}

    def plan(
        layer: str,
        environment: str,
        upstream: Mapping[str, LayerPlan],
        config_overrides: Mapping[str, str] | None,
    ) -> LayerPlan:
        return plan_layer_cached(
            layer,
            environment,
            upstream,
            config_overrides,
            reuse=reuse == "all" or (reuse == "upstream" and layer not in wanted),
        )

    return offline.plan_all(environment, only, config_overrides, plan)


__all__ = [
    "CACHE_DIR",
    "FORMAT",
    "OWN_CODE",
    "from_json",
    "input_files",
    "layer_key",
    "load",
    "plan_all",
    "plan_layer_cached",
    "prune_once",
    "reuse_or_plan",
    "store",
    "to_json",
]

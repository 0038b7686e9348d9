"""Which layers a change touches, read from git and the layer graph.

A layer's *inputs* are everything that can change what its program does:

- its folder, ``stacks/<layer>/`` (program, config, stack files, buildspecs);
- the library every layer imports, ``shared/`` (a layer imports nearly all of its modules, so
  all of it counts), and ``stacks/__init__.py``, which importing a layer's modules runs;
- ``platform.yaml`` (every layer reads it), the lock (``uv.lock``, ``pyproject.toml``: the SDK and
  provider versions) and the policy pack (``policies/``: it judges every preview and up).

A layer is *affected* when one of its inputs changed, and so is every layer downstream of it
(:func:`shared.layers.downstream`): a new upstream export may change what it reads. The result is
in dependency order, ready for a deploy. Docs, tests, the toolbox and the workflows affect no
layer: they change how the stacks are operated, not what they contain.

``./dev deploy --changed`` asks the same question per stack, against the commit each stack
records after its last successful deploy (:func:`changed_since_deployed`).
"""

from __future__ import annotations

import json
import shutil
import subprocess  # nosec B404 - runs git with fixed arguments, never through a shell
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.errors import PlatformError
from shared.layers import REPO_ROOT, downstream, names, upstream

if TYPE_CHECKING:
    from toolbox.automation import Runner

SHARED_FILES = ("platform.yaml", "uv.lock", "pyproject.toml", "stacks/__init__.py")
"""Files every layer depends on: the environments, the locked SDK and provider versions, and the
package file that importing any layer's module runs."""

SHARED_DIRS = ("shared/", "policies/")
"""Folders every layer depends on: the library the programs import, and the policy pack, which
runs in every preview and up."""

UNKNOWN_BASES = frozenset({"", "none", "0" * 40})
"""Bases that name no commit: GitHub's all-zero ``before`` of a new branch, or ``none``."""

DEFAULT_BRANCHES = ("origin/main", "main")
"""Where a branch forks from, tried in order for the default base."""


class GitError(PlatformError):
    """git is missing, or the folder is not a git work tree."""


# -- inputs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """What one layer's deploy depends on: folder prefixes and single files, repo-relative."""

    layer: str
    folders: tuple[str, ...]
    files: tuple[str, ...]

    def touched_by(self, changed: Iterable[str]) -> tuple[str, ...]:
        """The changed paths that are inputs of this layer."""
        return tuple(
            path
            for path in changed
            if path in self.files or any(path.startswith(folder) for folder in self.folders)
        )


def layer_inputs(layer: str) -> Inputs:
    """A layer's inputs (see the module docstring)."""
    return Inputs(layer=layer, folders=(f"stacks/{layer}/", *SHARED_DIRS), files=SHARED_FILES)


# -- git ------------------------------------------------------------------------------------------


def git(root: Path, *args: str) -> str:
    """Run git in ``root`` and return its output; GitError with git's own line otherwise."""
    path = shutil.which("git")
    if path is None:
        raise GitError("git not found: install git to compare commits")
    result = subprocess.run(  # noqa: S603  # nosec B603 - fixed argv, no shell
        [path, "-C", str(root), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        detail = lines[-1] if lines else f"exit code {result.returncode}"
        raise GitError(f"git {args[0]} failed in {root}: {detail}")
    return result.stdout


def require_work_tree(root: Path) -> None:
    """GitError (git's own line) unless ``root`` is inside a git work tree."""
    git(root, "rev-parse", "--is-inside-work-tree")


def resolve_commit(root: Path, ref: str) -> str | None:
    """The full SHA ``ref`` names in this clone, or None (unknown, zero, or not a commit)."""
    if ref.strip().lower() in UNKNOWN_BASES:
        return None
    try:
        return git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip() or None
    except GitError:
        return None


def default_base(root: Path = REPO_ROOT) -> str:
    """Where the current branch forked: the merge base with origin/main, else main, else HEAD~1.

    On main itself the merge base is HEAD, so only uncommitted changes count; pass ``--base``
    (e.g. ``HEAD~1`` or the last release tag) to look further back.
    """
    for branch in DEFAULT_BRANCHES:
        if resolve_commit(root, branch) is not None:
            return git(root, "merge-base", branch, "HEAD").strip()
    parent = resolve_commit(root, "HEAD~1")
    if parent is not None:
        return parent
    raise GitError(
        f"no base to compare with in {root}: no origin/main, main or HEAD~1; pass --base"
    )


def _split(output: str) -> list[str]:
    return [path for path in output.split("\0") if path]


def changed_files(root: Path, base: str, head: str | None = None) -> tuple[str, ...]:
    """Files that differ between ``base`` and ``head`` (default: the working tree, untracked)."""
    diff = ["diff", "--name-only", "--no-renames", "-z", base]
    if head is not None:
        return tuple(sorted(set(_split(git(root, *diff, head)))))
    tracked = _split(git(root, *diff))
    untracked = _split(git(root, "ls-files", "--others", "--exclude-standard", "-z"))
    return tuple(sorted({*tracked, *untracked}))


def head_commit(root: Path = REPO_ROOT) -> str:
    """The full SHA of HEAD."""
    return git(root, "rev-parse", "--verify", "HEAD").strip()


# -- which layers ---------------------------------------------------------------------------------


def directly_changed(files: Iterable[str], root: Path = REPO_ROOT) -> tuple[str, ...]:
    """The layers (dependency order) whose own inputs include one of ``files``."""
    files = tuple(files)
    return tuple(name for name in names() if layer_inputs(name).touched_by(files))


def with_downstream(layers: Iterable[str]) -> tuple[str, ...]:
    """``layers`` and every layer downstream of them, in dependency order."""
    wanted = set(layers)
    for layer in tuple(wanted):
        wanted.update(dep.name for dep in downstream(layer))
    return tuple(name for name in names() if name in wanted)


@dataclass(frozen=True)
class Affected:
    """The answer of ``./dev affected``: what changed, and the layers to preview or deploy."""

    base: str | None
    """The commit compared against; None when the base named no commit (every layer counts)."""
    head: str
    """What was compared with the base: a commit, or ``working tree``."""
    files: tuple[str, ...]
    """The changed files (empty when the base is unknown)."""
    changed: tuple[str, ...]
    """Layers whose own inputs changed."""
    layers: tuple[str, ...]
    """``changed`` plus everything downstream, in dependency order."""
    reason: str = ""
    """Why every layer counts, when the base named no commit."""

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``: the layers first, as the CI matrix reads them."""
        return {
            "layers": list(self.layers),
            "changed": list(self.changed),
            "base": self.base,
            "head": self.head,
            "files": list(self.files),
            "reason": self.reason,
        }

    def lines(self) -> list[str]:
        """What a person reads: the comparison, then one line per affected layer."""
        if self.base is None:
            head = [f"every layer is affected: {self.reason}"]
        else:
            head = [f"changes from {self.base[:12]} to {self.head}: {len(self.files)} file(s)"]
        if not self.layers:
            return [*head, "nothing to preview or deploy: no layer's inputs changed"]
        body = []
        for layer in self.layers:
            if self.base is None:
                why = "base unknown"
            elif layer in self.changed:
                why = "its inputs changed"
            else:
                above = [u.name for u in upstream(layer) if u.name in self.changed]
                why = f"downstream of {', '.join(above)}"
            body.append(f"  {layer}: {why}")
        return [*head, "affected layers, in dependency order:", *body]

    def markdown(self) -> str:
        """The same, for a CI run's summary page."""
        if not self.layers:
            return "**Nothing to preview or deploy:** no layer's inputs changed.\n"
        listed = "\n".join(f"- {line.strip()}" for line in self.lines()[2:])
        return f"**Affected layers** ({self.lines()[0]}):\n\n{listed}\n"


def affected(base: str | None = None, head: str | None = None, root: Path = REPO_ROOT) -> Affected:
    """The layers whose inputs changed between ``base`` and ``head``, plus their downstream.

    ``base`` defaults to :func:`default_base`; ``head`` to the working tree (uncommitted and
    untracked files count). The bases that name no commit on purpose (GitHub's all-zero
    ``before`` on a new branch, ``none``) make every layer affected; any other base that is not a
    commit in this clone is a GitError, not a guess.
    """
    require_work_tree(root)
    chosen = default_base(root) if base is None or not base.strip() else base.strip()
    resolved = resolve_commit(root, chosen)
    shown_head = head or "working tree"
    if resolved is None:
        if chosen.lower() not in UNKNOWN_BASES:
            raise GitError(
                f"--base {chosen!r} is not a commit in this clone (allowed: a commit, branch or"
                f" tag; none or the all-zero SHA for every layer)"
            )
        reason = f"base {chosen or 'none'!r} is not a commit in this clone"
        return Affected(None, shown_head, (), names(), names(), reason)
    files = changed_files(root, resolved, head)
    changed = directly_changed(files, root)
    return Affected(resolved, shown_head, files, changed, with_downstream(changed))


# -- per stack: since the commit each stack records ---------------------------------------------


@dataclass(frozen=True)
class Decision:
    """Whether ``deploy --changed`` deploys a layer, and why."""

    layer: str
    deploy: bool
    reason: str
    recorded: str | None = None


def _short(commit: str) -> str:
    return commit[:12]


def _listing(paths: tuple[str, ...], limit: int = 3) -> str:
    shown = ", ".join(paths[:limit])
    return f"{shown} and {len(paths) - limit} more" if len(paths) > limit else shown


def changed_since_deployed(
    runner: Runner, env: str, root: Path = REPO_ROOT
) -> tuple[Decision, ...]:
    """For each layer (dependency order): deploy it, or skip it as unchanged since its record.

    A layer is deployed when

    - its stack records no commit, or its latest operation did not succeed (the runner answers
      None: never deployed, a failed or interrupted up): it is never skipped;
    - the recorded commit is not in this clone (a force-push, a shallow checkout);
    - its inputs, or those of a layer upstream of it, changed between the recorded commit and
      the working tree (an upstream layer deployed on its own since then is caught here);
    - a layer upstream of it is being deployed (its exports may change).
    """
    require_work_tree(root)
    decisions: list[Decision] = []
    chosen: set[str] = set()
    for layer in names():
        recorded = runner.deployed_commit(layer, env)
        above = [u.name for u in upstream(layer)]
        if recorded is None:
            decision = Decision(
                layer, True, "no successful deploy recorded (new stack, or its last update failed)"
            )
        elif resolve_commit(root, recorded) is None:
            decision = Decision(
                layer, True, f"recorded commit {_short(recorded)} is not in this clone", recorded
            )
        else:
            files = changed_files(root, recorded)
            touched = tuple(
                sorted(
                    {
                        path
                        for name in (layer, *above)
                        for path in layer_inputs(name).touched_by(files)
                    }
                )
            )
            deploying_above = [name for name in above if name in chosen]
            if touched:
                reason = f"inputs changed since {_short(recorded)}: {_listing(touched)}"
                decision = Decision(layer, True, reason, recorded)
            elif deploying_above:
                reason = f"downstream of {', '.join(deploying_above)}, which is being deployed"
                decision = Decision(layer, True, reason, recorded)
            else:
                decision = Decision(layer, False, f"unchanged since {_short(recorded)}", recorded)
        if decision.deploy:
            chosen.add(layer)
        decisions.append(decision)
    return tuple(decisions)


def commits_to_record(root: Path = REPO_ROOT) -> dict[str, str]:
    """The value each layer's stack records after a successful up: HEAD, or ``HEAD-dirty``.

    ``-dirty`` marks a deploy made with uncommitted changes to the layer's inputs: no commit
    holds that code, so it names no commit and the next ``--changed`` deploys the layer again.
    Outside a git work tree nothing is recorded (an empty mapping).
    """
    try:
        head = head_commit(root)
        dirty = changed_files(root, "HEAD")
    except GitError:
        return {}
    return {
        layer: f"{head}-dirty" if layer_inputs(layer).touched_by(dirty) else head
        for layer in names()
    }


def github_outputs(result: Affected) -> dict[str, str]:
    """The Source job's outputs: ``layers`` (a JSON list, the Build matrix) and ``any``."""
    return {
        "layers": json.dumps(list(result.layers), separators=(",", ":")),
        "any": "true" if result.layers else "false",
    }


def append_outputs(path: Path, values: Mapping[str, str]) -> None:
    """Append ``key=value`` lines to ``path``, the format of ``$GITHUB_OUTPUT``."""
    with path.open("a", encoding="utf-8") as out:
        for key, value in values.items():
            out.write(f"{key}={value}\n")


__all__ = [
    "SHARED_DIRS",
    "SHARED_FILES",
    "Affected",
    "Decision",
    "GitError",
    "Inputs",
    "affected",
    "append_outputs",
    "changed_files",
    "changed_since_deployed",
    "commits_to_record",
    "default_base",
    "directly_changed",
    "github_outputs",
    "head_commit",
    "layer_inputs",
    "require_work_tree",
    "resolve_commit",
    "with_downstream",
]

"""Checker verdicts reused while nothing the checker reads has changed.

basedpyright, actionlint, yamllint, zizmor and bandit are deterministic: the same tool, version,
arguments, configuration and input bytes give the same exit code and output. A run's result is
stored under ``build/checkcache/<tool>/<key>.json`` (exit code, stdout, stderr), where the key is
the SHA-256 of:

- the tool's name and exact version (and of what runs it: Node.js for actionlint);
- its argv and working directory;
- the bytes of every file the run reads (:class:`Reads`, built per tool in
  :mod:`toolbox.checks`): the checked files, the configuration (``pyproject.toml``,
  ``.yamllint``, ...) and, for the type checker, ``uv.lock`` + ``pyproject.toml`` + the venv's
  ``pyvenv.cfg`` as the honest proxy for the installed packages and the Python version.

A changed input is a new key, so the tool runs again; nothing is invalidated in place, and
``rm -rf build/checkcache`` is always safe. A failing verdict is stored like a passing one: it is
the tool's own output on those exact bytes, and it still fails the check.

A hit marks its entry used, and the first store of a process prunes the keys not used lately,
across the tools' folders (:func:`toolbox.cachefiles.prune`): a pruned verdict is a miss, and
the tool runs again.

The run's own directory (its ``anchor``: a temporary folder in the tests) is left out of the key
and replaced by a marker in the stored output, so the same bytes checked in another temporary
folder reuse the verdict, printed with that folder's path.

Never cached: anything that reads the network (safety's and pip-audit's vulnerability services),
and anything run by a stand-in runner (see :func:`toolbox.checks.run`).
"""

from __future__ import annotations

import hashlib
import json

# Only for its CompletedProcess record: this module runs nothing itself.
import subprocess  # nosec B404
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shared.layers import REPO_ROOT
from toolbox.cachefiles import digest_file, locked, prune_once, touch, write_atomically

CACHE_DIR = REPO_ROOT / "build" / "checkcache"
"""Where verdicts are kept (``build/`` is git-ignored)."""

FORMAT = 1
"""The entry layout; bump it when an entry's fields change, and old entries become misses."""

ANCHOR = "\0anchor\0"
"""What stands for the run's directory in a stored entry (no tool prints a NUL)."""

Runner = Callable[[list[str], Path], "subprocess.CompletedProcess[str]"]


@dataclass(frozen=True)
class Reads:
    """Everything one run of a checker reads, besides its argv: what its key is made of."""

    tool: str
    """The checker's name: the folder its verdicts are kept in."""
    version: str
    """Its exact version (and that of whatever runs it)."""
    anchor: Path
    """The run's directory: its path is left out of the key and of the stored output."""
    files: Mapping[str, Path] = field(default_factory=dict)
    """Every file the run reads, by the name hashed with its bytes (see :func:`name_of`)."""
    extra: tuple[str, ...] = ()
    """Anything else that decides the verdict (an environment variable the tool reads)."""


def name_of(path: Path, anchor: Path) -> str:
    """``path`` as hashed: relative to ``anchor`` when under it, else absolute."""
    try:
        return path.relative_to(anchor).as_posix()
    except ValueError:
        return str(path)


def _unanchored(text: str, anchor: Path) -> str:
    return text.replace(str(anchor), ANCHOR)


def key(reads: Reads, argv: list[str], cwd: Path) -> str:
    """The content key of running ``argv`` in ``cwd`` with ``reads`` (a hex SHA-256)."""
    digest = hashlib.sha256()

    def feed(*parts: str) -> None:
        for part in parts:
            digest.update(part.encode())
            digest.update(b"\0")

    feed(f"format {FORMAT}", reads.tool, reads.version, *reads.extra)
    feed("argv", *(_unanchored(arg, reads.anchor) for arg in argv))
    feed("cwd", _unanchored(str(cwd), reads.anchor))
    for name, path in sorted(reads.files.items()):
        feed("file", name, digest_file(path))
    return digest.hexdigest()


def _load(entry: Path, anchor: Path) -> subprocess.CompletedProcess[str] | None:
    try:
        data = json.loads(entry.read_text(encoding="utf-8"))
        if data["format"] != FORMAT:
            return None
        restore = str(anchor)
        return subprocess.CompletedProcess(
            [part.replace(ANCHOR, restore) for part in data["argv"]],
            int(data["returncode"]),
            data["stdout"].replace(ANCHOR, restore),
            data["stderr"].replace(ANCHOR, restore),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _store(entry: Path, done: subprocess.CompletedProcess[str], anchor: Path) -> None:
    data = {
        "format": FORMAT,
        "argv": [_unanchored(str(part), anchor) for part in done.args],
        "returncode": done.returncode,
        "stdout": _unanchored(done.stdout or "", anchor),
        "stderr": _unanchored(done.stderr or "", anchor),
    }
    write_atomically(entry, json.dumps(data, sort_keys=True))


def reuse_or_run(
    reads: Reads, argv: list[str], cwd: Path, runner: Runner, directory: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The stored result of ``argv`` for ``reads``; else ``runner(argv, cwd)``'s, then stored.

    The first process to miss takes the key's lock and runs the tool; a concurrent one (another
    pytest-xdist worker) waits on the lock and then reads what the first stored. A hit marks the
    entry used; an entry pruned meanwhile is a miss like any other.
    """
    root = directory or CACHE_DIR
    folder = root / reads.tool
    digest = key(reads, argv, cwd)
    entry = folder / f"{digest}.json"
    found = _load(entry, reads.anchor)
    if found is not None:
        touch(entry)
        return found
    with locked(folder / f"{digest}.lock"):
        found = _load(entry, reads.anchor)
        if found is not None:
            return found
        done = runner(argv, cwd)
        _store(entry, done, reads.anchor)
    prune_once(root)
    return done


__all__ = ["ANCHOR", "CACHE_DIR", "FORMAT", "Reads", "key", "name_of", "reuse_or_run"]

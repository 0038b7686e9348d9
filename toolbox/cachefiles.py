"""The file primitives the toolbox's caches share (plans, checker verdicts): one copy of each.

- :func:`write_atomically`: a temporary file renamed over the entry (``os.replace``, atomic on
  POSIX), so a reader in another process sees the whole entry or none;
- :func:`locked`: an exclusive ``fcntl`` lock held for a block, so of several processes (pytest
  -xdist workers, a task in another terminal) that miss the same key, one computes it while the
  others wait and then read its entry;
- :func:`digest_file`: the SHA-256 of a file's bytes, the unit every content key is made of;
- :func:`touch` and :func:`prune_once`: a cache keeps the keys used lately and forgets the rest.

Pruning. A changed input is a new key, so without it a cache only grows (a day of work left 390
files, 8.8 MB, in ``build/plancache/``). A hit sets its entry's mtime to now (:func:`touch`), so
an entry's mtime is when it was last stored or used; a key with no entry (its plan failed, its
lock is all there is) counts from its lock file's mtime. The first time a process stores an
entry it scans the cache once (never on a hit, never twice) and removes every key not used for
:data:`KEEP_DAYS` and, least recently used first, every key beyond the :data:`KEEP_KEYS` newest.

Why it is safe next to other processes using the same cache:

- An entry removed while another process is about to read it is a miss, never an error: readers
  catch ``FileNotFoundError`` like any unreadable entry, then take the key's lock and compute it
  again. A reader that already opened the file reads it whole (unlinking a file leaves its open
  inode intact), and writers only ever rename a complete file over the entry.
- A key is removed only under its own lock, taken without waiting (``LOCK_NB``): a key being
  computed right now is in use and is skipped, and so is one whose entry's mtime changed since
  the scan (used or stored again meanwhile).
- Removing a lock file does break mutual exclusion on its own: a process that opened the old
  file and waits on it would get the lock on the unlinked inode while a newcomer creates a new
  file at the path and locks that one, and both would compute the key. So the pruner unlinks the
  lock file while still holding it, and :func:`locked` checks, once it holds a lock, that the file
  it locked is still the one at the path (same device and inode; an inode cannot be reused while
  its holder keeps it open); if not, it locks the new file instead. Of all the processes locking
  one path, only the holder of the file at that path proceeds: the usual remedy, see
  https://stackoverflow.com/questions/17708885/flock-removing-locked-file-without-race-condition
- Writers that do not take the lock (``./dev synth`` storing a plan it made anyway, the import
  closures of :mod:`toolbox.plancache`) can at worst see their fresh entry pruned if it replaced
  an old one between the pruner's check and its unlink: one miss later, never a wrong result.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

KEEP_DAYS = 7
"""A key unused this long is removed. Main moves several times a day: a state of the code not
checked out for a week is one that will not be checked out again as it was."""

KEEP_KEYS = 150
"""At most this many keys per cache, the most recently used. One ``./dev test`` plus ``./dev synth
--env dev`` and ``--env prod`` from empty caches makes 54 keys in ``build/plancache/`` (25 plans,
28 lock files of plans that fail on purpose, 1 import closure; about 1.6 MB) and 11 in
``build/checkcache/``: 150 keeps about three states of the code (main and two branches one
switches between) fully reused, and caps the plan cache near 5 MB."""

_PRUNED: set[Path] = set()
"""The caches this process has already pruned: one scan per process, whatever it stores after."""


def write_atomically(path: Path, text: str) -> None:
    """``text`` into ``path`` through a temporary file renamed over it: readers see all or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _still_at(handle: IO[str], path: Path) -> bool:
    """Whether the file ``handle`` has open is the one at ``path`` (not unlinked or replaced)."""
    try:
        at_path = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(handle.fileno())
    return (mine.st_dev, mine.st_ino) == (at_path.st_dev, at_path.st_ino)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive ``fcntl`` lock on ``path`` (created if needed), held for the block.

    If the pruner removed the file while this process waited on it, the lock taken is on a file
    no one else will open: this process locks the file now at ``path`` instead.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                if _still_at(handle, path):
                    yield
                    return
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def digest_file(path: Path) -> str:
    """The SHA-256 of ``path``'s bytes (hex), or ``missing``: an absent file is a state too."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return "missing"


def touch(entry: Path) -> None:
    """Mark ``entry`` used now (its mtime), so pruning keeps it; one already pruned is fine."""
    with suppress(OSError):
        os.utime(entry)


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def _remove_if_unused(entry: Path, lock: Path, seen: int | None) -> None:
    """Remove ``entry`` and ``lock`` under the lock, unless someone holds it or used the entry."""
    with lock.open("a") as handle:  # creates it if absent (an import closure has none)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # being computed right now: in use
        try:
            if _still_at(handle, lock) and _mtime(entry) == seen:
                entry.unlink(missing_ok=True)
                lock.unlink()  # while held: see the module docstring
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def prune(root: Path, days: float = KEEP_DAYS, keys: int = KEEP_KEYS) -> None:
    """Remove the keys under ``root`` unused for ``days`` or beyond the ``keys`` newest.

    A key is ``<key>.json`` and ``<key>.lock`` in ``root`` or a folder of it; a temporary file a
    killed writer left behind (``<key>.json<random>.tmp``) goes once it is ``days`` old.
    """
    cutoff = time.time_ns() - int(days * 86_400 * 1e9)
    used: dict[Path, int] = {}  # a key's path without suffix: when it was last used
    entries: dict[Path, int] = {}  # its entry's mtime, for the pruner's second look
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            when = _mtime(path)
            if when is None:
                continue
            if name.endswith(".tmp") and when < cutoff:
                path.unlink(missing_ok=True)
            elif path.suffix == ".json":
                entries[path.with_suffix("")] = used[path.with_suffix("")] = when
            elif path.suffix == ".lock":
                used.setdefault(path.with_suffix(""), when)
    newest_first = sorted(used, key=used.__getitem__, reverse=True)
    for rank, stem in enumerate(newest_first):
        if rank >= keys or used[stem] < cutoff:
            try:
                _remove_if_unused(
                    stem.with_suffix(".json"), stem.with_suffix(".lock"), entries.get(stem)
                )
            except OSError:  # the cache removed under us (``rm -rf build``): nothing to prune
                return


def prune_once(root: Path) -> None:
    """:func:`prune` ``root``, the first time this process asks: after that, nothing."""
    if root not in _PRUNED:
        _PRUNED.add(root)
        prune(root)

"""The file primitives the toolbox's caches share (plans, checker verdicts): one copy of each.

- :func:`write_atomically`: a temporary file renamed over the entry (``os.replace``, atomic on
  POSIX), so a reader in another process sees the whole entry or none;
- :func:`locked`: an exclusive ``fcntl`` lock held for a block, so of several processes (pytest
  -xdist workers, a task in another terminal) that miss the same key, one computes it while the
  others wait and then read its entry;
- :func:`digest_file`: the SHA-256 of a file's bytes, the unit every content key is made of.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive ``fcntl`` lock on ``path`` (created if needed), held for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def digest_file(path: Path) -> str:
    """The SHA-256 of ``path``'s bytes (hex), or ``missing``: an absent file is a state too."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return "missing"

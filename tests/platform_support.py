"""A what-if of ``platform.yaml`` for tests that plan a layer: other image families."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import pytest

from shared import settings


def with_image_families(monkeypatch: pytest.MonkeyPatch, families: Iterable[str]) -> None:
    """Every environment's settings as if ``platform.yaml`` listed ``families`` (unchecked: a
    test of the check itself writes its own ``platform.yaml``)."""
    read = settings.load_all
    value = tuple(families)

    def load_all(path: Path | None = None) -> dict[str, settings.Platform]:
        return {
            environment: dataclasses.replace(platform, image_families=value)
            for environment, platform in read(path).items()
        }

    monkeypatch.setattr(settings, "load_all", load_all)

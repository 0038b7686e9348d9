"""A what-if of ``platform.yaml`` for tests that plan a layer: other services."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from shared import services as platform_services
from shared import settings


def with_services(monkeypatch: pytest.MonkeyPatch, services: Mapping[str, Any]) -> None:
    """Every environment's settings as if ``platform.yaml`` named ``services`` (a mapping as
    written under ``services:``, e.g. ``{"app": {}, "billing": {"keepImages": 3}}``).

    The mapping goes through the same check as the file's (names, keys, environments), with
    error lines naming ``platform.yaml``; the rest of the fixture's ``platform.yaml`` is kept.
    """
    read = settings.load_all

    def load_all(path: Path | None = None) -> dict[str, settings.Platform]:
        platforms = read(path)
        where = settings.relative(path or settings.PLATFORM_FILE)
        resolved = platform_services.validate(dict(services), list(platforms), where)
        return {
            environment: dataclasses.replace(platform, services=resolved[environment])
            for environment, platform in platforms.items()
        }

    monkeypatch.setattr(settings, "load_all", load_all)

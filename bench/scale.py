"""One scaling measurement: the registry and pipeline layers planned with 1 service and with N.

``python -m bench.scale N ROUNDS [warm] [nogc]`` prints one JSON line (``nogc``: the cyclic
garbage collector off for the whole measurement, to see what it costs);
``bench.run.scale_point`` runs it in a fresh process (so its peak memory is its own); a test
calls :func:`measure` directly.

The services are what a team writes: a copy of ``platform.yaml`` (the one the configuration root
holds, never edited) whose ``services`` are its first service, as it is stated there, and N-1
more with every default (``svc-002``, ...), each in a file of its own under a temporary folder.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from shared import services as platform_services
from shared import settings
from toolbox.offline import LayerPlan, plan_layer
from toolbox.plancache import plan_layer_cached

BASE_SERVICES = 1
"""The size every other is paired with: the single-application platform."""
ENVIRONMENT = "dev"


def service_names(count: int, first: str = "app") -> list[str]:
    """``first`` and ``count - 1`` more, ``svc-002`` on (valid service names, distinct)."""
    return [first, *(f"svc-{number:03d}" for number in range(2, count + 1))][:count]


def platform_with(services: int, source: Path, folder: Path) -> Path:
    """``source`` (a ``platform.yaml``) with ``services`` services, written under ``folder``.

    The first service keeps what ``source`` states for it; the others state nothing (every
    default), so each service adds the same resources.
    """
    data = settings.read_yaml(source)
    stated = dict(data.get(platform_services.KEY) or {})
    first, first_settings = next(iter(stated.items()), ("app", {}))
    names = service_names(services, first)
    data[platform_services.KEY] = {name: first_settings if name == first else {} for name in names}
    target = folder / f"platform-{services}.yaml"
    target.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return target


@contextmanager
def reading(platform_file: Path) -> Iterator[None]:
    """Plans in this block read ``platform_file`` instead of :data:`settings.PLATFORM_FILE`.

    The one module attribute every reader of ``platform.yaml`` takes its default path from; the
    stack files still come from the configuration root.
    """
    before = settings.PLATFORM_FILE
    settings.PLATFORM_FILE = platform_file
    try:
        yield
    finally:
        settings.PLATFORM_FILE = before


def plan_services(platform_file: Path, foundation: LayerPlan) -> tuple[LayerPlan, LayerPlan]:
    """The registry and the pipeline planned with ``platform_file``'s services, in order."""
    with reading(platform_file):
        registry = plan_layer("registry", ENVIRONMENT, {foundation.stack: foundation})
        pipeline = plan_layer(
            "pipeline",
            ENVIRONMENT,
            {foundation.stack: foundation, registry.stack: registry},
        )
    return registry, pipeline


def measure(
    services: int, rounds: int, warm: bool = True, memory: bool = True, collect: bool = True
) -> dict[str, Any]:
    """Plan 1 and ``services`` services alternately ``rounds`` times; time and memory of each.

    A plan is the registry and the pipeline layer (the layers that read the services; the
    foundation is planned once, untimed: it names no service). After one untimed plan of each
    size (what a plan imports lazily is loaded once, as in any process), the two sizes take
    turns, so a busy moment of the machine hits both alike; each plan's CPU seconds (this
    process's, user and system) are taken beside its wall seconds, since on shared cores a busy
    minute stretches the wall time of both sizes, and so their difference, by the same factor.
    Then, with tracemalloc on (it slows
    every allocation, so not while timing), the most Python memory a plan of each size held at
    once. ``warm=False`` and ``memory=False`` skip the untimed plans and the traced ones (a test
    of the code, not a measurement). ``collect=False`` keeps the cyclic garbage collector off
    throughout (the offline plan turns it off while a program runs and back on afterwards,
    when it collects what the plan allocated).
    """
    foundation = plan_layer_cached("foundation", ENVIRONMENT, {}, None, reuse=True)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as folder:
        files = {
            size: platform_with(size, settings.PLATFORM_FILE, Path(folder))
            for size in (BASE_SERVICES, services)
        }

        def plan(size: int) -> tuple[float, float, int]:
            gc.collect()  # whatever the previous plan left, outside the timing
            start, start_cpu = time.perf_counter(), time.process_time()
            registry, pipeline = plan_services(files[size], foundation)
            took, cpu = time.perf_counter() - start, time.process_time() - start_cpu
            return took, cpu, len(registry.resources) + len(pipeline.resources)

        collecting = gc.isenabled()
        if not collect:
            gc.disable()
        try:
            for size in files if warm else ():
                plan(size)
            seconds: dict[int, list[float]] = {size: [] for size in files}
            cpu_seconds: dict[int, list[float]] = {size: [] for size in files}
            resources: dict[int, int] = {}
            for _ in range(rounds):
                for size in files:
                    took, cpu, resources[size] = plan(size)
                    seconds[size].append(took)
                    cpu_seconds[size].append(cpu)
            max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            peak: dict[int, int] = dict.fromkeys(files, 0)
            tracemalloc.start()
            try:
                for size in files if memory else ():
                    gc.collect()
                    tracemalloc.reset_peak()
                    before = tracemalloc.get_traced_memory()[0]
                    plan(size)
                    peak[size] = tracemalloc.get_traced_memory()[1] - before
            finally:
                tracemalloc.stop()
        finally:
            if collecting:
                gc.enable()
    return {
        "base_services": BASE_SERVICES,
        "seconds": seconds[services],
        "base_seconds": seconds[BASE_SERVICES],
        "cpu_seconds": cpu_seconds[services],
        "base_cpu_seconds": cpu_seconds[BASE_SERVICES],
        "resources": resources[services],
        "base_resources": resources[BASE_SERVICES],
        "peak_kb": peak[services] / 1024,
        "base_peak_kb": peak[BASE_SERVICES] / 1024,
        "max_rss_mb": max_rss_mb,
    }


if __name__ == "__main__":
    services, rounds = int(sys.argv[1]), int(sys.argv[2])
    flags = sys.argv[3:]
    print(json.dumps(measure(services, rounds, warm="warm" in flags, collect="nogc" not in flags)))

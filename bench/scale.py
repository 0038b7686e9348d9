"""One scaling measurement: the pipeline layer planned with N extra services and with none.

``python -m bench.scale N ROUNDS [warm] [nogc]`` prints one JSON line (``nogc``: the cyclic
garbage collector off for the whole measurement, to see what it costs);
``bench.run.scale_point`` runs it in a fresh process (so its peak memory is its own); a test
calls :func:`measure` directly.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import resource
import sys
import time
import tracemalloc
from typing import Any

from shared import settings
from toolbox.offline import plan_layer
from toolbox.plancache import plan_layer_cached


def measure(
    services: int, rounds: int, warm: bool = True, memory: bool = True, collect: bool = True
) -> dict[str, Any]:
    """Plan 0 and ``services`` services alternately ``rounds`` times; time and memory of each.

    After one untimed plan of each (what a plan imports lazily is loaded once, as in any
    process), the two sizes take turns, so a busy moment of the machine hits both alike. Then,
    with tracemalloc on (it slows every allocation, so not while timing), the most Python memory
    a plan of each size held at once. ``warm=False`` and ``memory=False`` skip the untimed plans
    and the traced ones (a test of the code, not a measurement). ``collect=False`` keeps the
    cyclic garbage collector off throughout (the offline plan turns it off while a program runs
    and back on afterwards, when it collects what the plan allocated).
    """
    foundation = plan_layer_cached("foundation", "dev", {}, None, reuse=True)
    registry = plan_layer_cached(
        "registry", "dev", {foundation.stack: foundation}, None, reuse=True
    )
    upstream = {foundation.stack: foundation, registry.stack: registry}
    names = [f"svc-{i:04d}" for i in range(services)]
    sizes = {0: "[]", services: json.dumps(names)}

    def plan(size: int) -> tuple[float, int]:
        gc.collect()  # whatever the previous plan left, outside the timing
        start = time.perf_counter()
        config = {"platform-pipeline:services": sizes[size]}
        planned = plan_layer("pipeline", "dev", upstream, config)
        return time.perf_counter() - start, len(planned.resources)

    # Each service is an image family (a what-if of platform.yaml).
    read_platforms = settings.load_all
    settings.load_all = lambda path=settings.PLATFORM_FILE: {
        environment: dataclasses.replace(platform, image_families=("app", *names))
        for environment, platform in read_platforms(path).items()
    }
    collecting = gc.isenabled()
    if not collect:
        gc.disable()
    try:
        for size in sizes if warm else ():
            plan(size)
        seconds: dict[int, list[float]] = {size: [] for size in sizes}
        resources: dict[int, int] = {}
        for _ in range(rounds):
            for size in sizes:
                took, resources[size] = plan(size)
                seconds[size].append(took)
        max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        peak: dict[int, int] = dict.fromkeys(sizes, 0)
        tracemalloc.start()
        try:
            for size in sizes if memory else ():
                gc.collect()
                tracemalloc.reset_peak()
                before = tracemalloc.get_traced_memory()[0]
                plan(size)
                peak[size] = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
    finally:
        settings.load_all = read_platforms
        if collecting:
            gc.enable()
    return {
        "seconds": seconds[services],
        "base_seconds": seconds[0],
        "resources": resources[services],
        "base_resources": resources[0],
        "peak_kb": peak[services] / 1024,
        "base_peak_kb": peak[0] / 1024,
        "max_rss_mb": max_rss_mb,
    }


if __name__ == "__main__":
    services, rounds = int(sys.argv[1]), int(sys.argv[2])
    flags = sys.argv[3:]
    print(json.dumps(measure(services, rounds, warm="warm" in flags, collect="nogc" not in flags)))

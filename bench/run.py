"""``./dev bench``: how fast the offline plan is, how it scales, and what xdist buys the tests.

Every figure is whole fresh processes, several runs, median with min and max. These machines
are noisy, so what we compare is ratios measured in the same run (the plan against the floor of
merely importing the SDKs; 500 services against 100); absolute times are context.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess  # nosec B404 - runs our own venv tools with fixed arguments
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from shared.layers import REPO_ROOT, STACKS_DIR, names

RESULTS = REPO_ROOT / "bench" / "results.json"
BIN = Path(sys.executable).parent
TARGETS = {
    "plan_over_floor_max": 2.0,
    "ms_per_added_resource_max": 5.0,
    "linearity_max": 5.0,
    "suite_speedup_min": 1.6,
}


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of repeated runs of one command."""

    runs: list[float]

    @property
    def median(self) -> float:
        """The median run."""
        return statistics.median(self.runs)

    def as_dict(self) -> dict[str, float]:
        """Median, min, max in seconds, rounded for the results file."""
        return {
            "median_s": round(self.median, 3),
            "min_s": round(min(self.runs), 3),
            "max_s": round(max(self.runs), 3),
            "runs": len(self.runs),
        }


def timed(command: Sequence[str], runs: int, cwd: Path = REPO_ROOT) -> Timing:
    """Run ``command`` ``runs`` times in ``cwd`` (the repository root); fail loudly if it fails."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        # Our own venv's executables with fixed arguments, never a shell or user input.
        result = subprocess.run(  # noqa: S603  # nosec B603
            list(command),
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-1:]
            raise RuntimeError(f"{' '.join(command)} failed: {tail}")
    return Timing(times)


def aws_modules() -> list[str]:
    """The ``pulumi_aws`` submodules the layers use, read from their code."""
    found: set[str] = set()
    for path in [*STACKS_DIR.rglob("*.py"), *(REPO_ROOT / "shared").rglob("*.py")]:
        found.update(re.findall(r"\baws\.([a-z0-9]+)\.[A-Za-z_]", path.read_text()))
    return sorted(m for m in found if importlib.util.find_spec(f"pulumi_aws.{m}") is not None)


def floor_command() -> list[str]:
    """A process that only imports what every plan must: pulumi, the aws modules, the policy SDK."""
    imports = ", ".join(["pulumi", "pulumi_policy", *(f"pulumi_aws.{m}" for m in aws_modules())])
    return [str(BIN / "python"), "-c", f"import {imports}"]


def synth_command(layer: str | None = None) -> list[str]:
    """The offline plan as the user runs it."""
    return [str(BIN / "invoke"), "synth", "--env", "dev", *(["--layer", layer] if layer else [])]


SCALE_CHILD = """
import json, resource, sys, time
import shared.families
from toolbox.offline import plan_layer
foundation = plan_layer("foundation", "dev", {})
registry = plan_layer("registry", "dev", {foundation.stack: foundation})
upstream = {foundation.stack: foundation, registry.stack: registry}
names = [f"svc-{i:04d}" for i in range(int(sys.argv[1]))]
services = json.dumps(names)
# Each service is an image family of the registry (a what-if of its stack file).
shared.families.registry_families = lambda environment: ("app", *names)
start = time.perf_counter()
config = {"platform-pipeline:services": services}
plan = plan_layer("pipeline", "dev", upstream, config)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "resources": len(plan.resources),
                  "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


@dataclass(frozen=True)
class ScalePoint:
    """The pipeline layer planned with ``services`` extra services (medians over runs)."""

    services: int
    resources: int
    seconds: float
    max_rss_mb: float
    runs: list[float] = field(default_factory=list)


def scale_point(services: int, runs: int) -> ScalePoint:
    """Plan the pipeline with ``services`` extra services in fresh processes."""
    samples = []
    for _ in range(runs):
        result = subprocess.run(  # noqa: S603  # nosec B603 - our venv's python, our script
            [str(BIN / "python"), "-c", SCALE_CHILD, str(services)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        samples.append(json.loads(result.stdout.strip().splitlines()[-1]))
    seconds = [s["seconds"] for s in samples]
    return ScalePoint(
        services,
        samples[0]["resources"],
        statistics.median(seconds),
        statistics.median(s["max_rss_mb"] for s in samples),
        seconds,
    )


def scaling(sizes: Sequence[int], runs: int) -> dict[str, Any]:
    """Time, memory and cost per added resource for each size, against zero extra services."""
    base = scale_point(0, runs)
    points = [scale_point(size, runs) for size in sizes]
    rows = []
    for point in points:
        added = point.resources - base.resources
        if added <= 0:
            raise RuntimeError("the pipeline layer ignores platform-pipeline:services")
        rows.append(
            {
                "services": point.services,
                "resources": point.resources,
                "added_resources": added,
                "plan_s": round(point.seconds, 3),
                "ms_per_added_resource": round(1000 * (point.seconds - base.seconds) / added, 2),
                "max_rss_mb": round(point.max_rss_mb, 1),
                "kb_per_added_resource": round(
                    1024 * (point.max_rss_mb - base.max_rss_mb) / added, 1
                ),
            }
        )
    result: dict[str, Any] = {
        "baseline": {
            "resources": base.resources,
            "plan_s": round(base.seconds, 3),
            "max_rss_mb": round(base.max_rss_mb, 1),
        },
        "sizes": rows,
    }
    if len(points) >= 2:
        small, large = points[-2], points[-1]
        growth = (large.seconds - base.seconds) / max(small.seconds - base.seconds, 1e-9)
        result["linearity"] = {
            "sizes": [small.services, large.services],
            "time_growth": round(growth, 2),
            "resource_growth": round(
                (large.resources - base.resources) / (small.resources - base.resources), 2
            ),
        }
    return result


def suite(runs: int) -> dict[str, Any]:
    """The test suite serially and with ``-n auto``, same selection."""
    base = [
        str(BIN / "python"),
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--deselect",
        "tests/test_bench.py",
    ]
    serial = timed([*base, "-n", "0"], runs)
    parallel = timed([*base, "-n", "auto"], runs)
    return {
        "serial": serial.as_dict(),
        "parallel": parallel.as_dict(),
        "workers": os.cpu_count(),
        "speedup": round(serial.median / parallel.median, 2),
    }


BASELINE_DIR = REPO_ROOT / "build" / "bench-baseline"


def _git() -> list[str]:
    return [shutil.which("git") or "git", "-C", str(REPO_ROOT)]


def remove_baseline_tree() -> None:
    """Unregister and delete the baseline checkout (the repository's worktree list is shared)."""
    if BASELINE_DIR.exists():
        subprocess.run(  # noqa: S603  # nosec B603 - git with fixed arguments
            [*_git(), "worktree", "remove", "--force", str(BASELINE_DIR)],
            check=False,
            capture_output=True,
        )


def baseline_tree(ref: str) -> Path:
    """A detached checkout of ``ref`` under ``build/`` (git-ignored), run with this venv."""
    git = _git()
    remove_baseline_tree()
    subprocess.run(  # noqa: S603  # nosec B603 - git with fixed arguments and a ref we were given
        [*git, "worktree", "add", "--detach", str(BASELINE_DIR), ref],
        check=True,
        capture_output=True,
    )
    return BASELINE_DIR


def compare(ref: str, runs: int) -> dict[str, Any]:
    """Synth (all layers, each layer) in ``ref``'s tree and in this one, alternating per round.

    Same machine, same venv, same minute: the before and after a change, as ratios.
    """
    before_root = baseline_tree(ref)
    commands = {"all": synth_command(), **{layer: synth_command(layer) for layer in names()}}
    before: dict[str, list[float]] = {name: [] for name in commands}
    after: dict[str, list[float]] = {name: [] for name in commands}
    try:
        for _ in range(runs):
            for name, command in commands.items():
                before[name].extend(timed(command, 1, before_root).runs)
                after[name].extend(timed(command, 1).runs)
    finally:
        remove_baseline_tree()
    return {
        "ref": ref,
        "rows": {
            name: {
                "before": Timing(before[name]).as_dict(),
                "after": Timing(after[name]).as_dict(),
                "speedup": round(Timing(before[name]).median / Timing(after[name]).median, 2),
            }
            for name in commands
        },
    }


def versions() -> dict[str, str]:
    """The versions that the figures depend on."""
    return {
        "python": platform.python_version(),
        **{name: metadata.version(name) for name in ("pulumi", "pulumi-aws", "pulumi-policy")},
    }


def run(
    quick: bool = False,
    runs: int | None = None,
    sizes: Sequence[int] | None = None,
    with_suite: bool | None = None,
    baseline: str = "",
) -> dict[str, Any]:
    """Every measurement; ``quick`` is the reduced set for before a commit.

    ``baseline`` (a git ref) adds synth timed in that commit's tree, alternating with this one.
    """
    runs = runs or (2 if quick else 5)
    sizes = list(sizes or ((10, 50) if quick else (10, 100, 500)))
    floor = timed(floor_command(), runs)
    plan = timed(synth_command(), runs)
    per_layer = {layer: timed(synth_command(layer), runs).as_dict() for layer in names()}
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "machine": {
            "cores": os.cpu_count(),
            "system": platform.system(),
            "machine": platform.machine(),
        },
        "versions": versions(),
        "quick": quick,
        "aws_modules": aws_modules(),
        "floor": floor.as_dict(),
        "plan_all_layers": {
            **plan.as_dict(),
            "ratio_to_floor": round(plan.median / floor.median, 2),
        },
        "per_layer": per_layer,
        "scaling": scaling(sizes, max(1, runs // 2)),
    }
    if baseline:
        results["baseline"] = compare(baseline, runs)
    if with_suite if with_suite is not None else not quick:
        results["test_suite"] = suite(max(1, runs // 3))
    results["targets"] = targets_met(results)
    return results


def targets_met(results: dict[str, Any]) -> dict[str, bool]:
    """Which of the issue's targets the figures meet."""
    met = {
        "plan_at_most_2x_floor": results["plan_all_layers"]["ratio_to_floor"]
        <= TARGETS["plan_over_floor_max"]
    }
    sizes = results["scaling"]["sizes"]
    met["under_5ms_per_added_resource"] = all(
        row["ms_per_added_resource"] < TARGETS["ms_per_added_resource_max"] for row in sizes
    )
    linear = results["scaling"].get("linearity")
    if linear:
        met["linear_scaling"] = linear["time_growth"] <= linear["resource_growth"] * 1.1
    if "test_suite" in results:
        met["suite_parallel_1.6x"] = (
            results["test_suite"]["speedup"] >= TARGETS["suite_speedup_min"]
        )
    return met


def table(results: dict[str, Any]) -> str:
    """The figures as a plain-text table."""
    floor = results["floor"]["median_s"]
    lines = [
        f"bench {results['date']} on {results['machine']['cores']} cores, python "
        f"{results['versions']['python']}, pulumi {results['versions']['pulumi']}, "
        f"pulumi-aws {results['versions']['pulumi-aws']}",
        f"{'measurement':<44}{'median':>9}{'min':>9}{'max':>9}  ratio",
    ]

    def row(label: str, figures: dict[str, Any], ratio: str = "") -> None:
        lines.append(
            f"{label:<44}{figures['median_s']:>8.2f}s{figures['min_s']:>8.2f}s"
            f"{figures['max_s']:>8.2f}s  {ratio}"
        )

    row("floor: import pulumi, pulumi_aws.*, policy", results["floor"])
    row(
        "synth --env dev (3 layers + policies)",
        results["plan_all_layers"],
        f"{results['plan_all_layers']['ratio_to_floor']:.2f}x floor",
    )
    for layer, figures in results["per_layer"].items():
        row(f"synth --layer {layer}", figures, f"{figures['median_s'] / floor:.2f}x floor")
    base = results["scaling"]["baseline"]
    lines.append(
        f"pipeline scaling (baseline {base['resources']} resources, "
        f"{base['plan_s']:.2f}s, {base['max_rss_mb']:.0f} MB):"
    )
    for size in results["scaling"]["sizes"]:
        lines.append(
            f"  +{size['services']:>4} services = {size['resources']:>5} resources:"
            f" {size['plan_s']:6.2f}s, {size['ms_per_added_resource']:5.2f} ms and"
            f" {size['kb_per_added_resource']:6.1f} KB per added resource,"
            f" {size['max_rss_mb']:.0f} MB peak"
        )
    if "linearity" in results["scaling"]:
        lin = results["scaling"]["linearity"]
        lines.append(
            f"  {lin['sizes'][1]} vs {lin['sizes'][0]} services: time x{lin['time_growth']}"
            f" for resources x{lin['resource_growth']}"
        )
    if "test_suite" in results:
        ts = results["test_suite"]
        row("pytest -n 0", ts["serial"])
        row(
            f"pytest -n auto ({ts['workers']} cores)",
            ts["parallel"],
            f"{ts['speedup']:.2f}x faster",
        )
    if "baseline" in results:
        lines.append(f"before ({results['baseline']['ref']}) and after, alternating:")
        for name, cmp in results["baseline"]["rows"].items():
            label = "synth --env dev" if name == "all" else f"synth --layer {name}"
            lines.append(
                f"  {label:<30} before {cmp['before']['median_s']:.2f}s"
                f"  after {cmp['after']['median_s']:.2f}s  {cmp['speedup']:.2f}x faster"
            )
    lines.append(
        "targets: "
        + ", ".join(f"{k} {'MET' if v else 'MISSED'}" for k, v in results["targets"].items())
    )
    return "\n".join(lines)


def save(results: dict[str, Any], path: Path = RESULTS) -> Path:
    """Write the results file (committed when the figures change meaningfully)."""
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


__all__ = ["asdict", "run", "save", "table"]

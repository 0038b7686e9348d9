"""``./dev bench``: how fast the offline plan is, how it scales, and what xdist buys the tests.

Every figure is whole fresh processes, several runs, median with min and max. These machines
are noisy, so what we compare is ratios measured in the same run (the plan against the floor of
merely importing the SDKs; what each service costs from 1 to 100 services); absolute times are
context.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import itertools
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess  # nosec B404 - runs our own venv tools with fixed arguments
import sys
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from shared.errors import PlatformError
from shared.layers import REPO_ROOT, STACKS_DIR, names

RESULTS = REPO_ROOT / "bench" / "results.json"
FULL_SIZES = (10, 50, 100)
"""Services in a full run's scaling, each against one: issue 26's range (1 to 100), a company's
fifty services, and a small size whose slope from one service is its first step."""
SCALE_ROUNDS = 5
"""Paired plans per size in a full run (a plan of 100 services takes seconds)."""
K = TypeVar("K", bound=Hashable)
BIN = Path(sys.executable).parent
# Issue 16's goals.
TARGETS = {
    "plan_over_floor_max": 2.0,  # synth, all layers of one environment, against the floor
    # Issue 26: time and memory per service added between successive sizes (1, 10, 50, 100
    # services), largest over smallest, within 10%: they grow linearly.
    "per_service_spread_max": 0.10,
    "suite_warm_max_s": 10.0,  # `./dev test`, run a second time with nothing changed
    "suite_speedup_min": 1.6,  # -n auto against -n 0
}


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of repeated runs of one command, and the CPU seconds each used.

    CPU is user + system time of the command and every process it started (pytest's workers,
    the tools a test runs). On a machine whose cores are all busy, wall time cannot drop below
    CPU / cores, so the CPU says what a change saved even when the wall clock is noisy.
    """

    runs: list[float]
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """The median run."""
        return statistics.median(self.runs)

    def as_dict(self) -> dict[str, float]:
        """Median, min, max in seconds (and the median CPU), rounded for the results file."""
        figures = {
            "median_s": round(self.median, 3),
            "min_s": round(min(self.runs), 3),
            "max_s": round(max(self.runs), 3),
            "runs": len(self.runs),
        }
        if self.cpu:
            figures["cpu_median_s"] = round(statistics.median(self.cpu), 3)
        return figures


def _children_cpu() -> float:
    """User + system seconds of every child process waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(
    command: Sequence[str], runs: int, cwd: Path = REPO_ROOT, stdin: str | None = None
) -> Timing:
    """Run ``command`` ``runs`` times in ``cwd`` (the repository root); fail loudly if it fails."""
    times, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), _children_cpu()
        # Our own venv's executables with fixed arguments, never a shell or user input.
        result = subprocess.run(  # noqa: S603  # nosec B603
            list(command),
            cwd=cwd,
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
        times.append(time.perf_counter() - start)
        cpu.append(_children_cpu() - start_cpu)
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-1:]
            raise PlatformError(f"{' '.join(command)} failed: {tail}")
    return Timing(times, cpu)


def aws_modules() -> list[str]:
    """The ``pulumi_aws`` submodules the layers use, read from their code."""
    found: set[str] = set()
    for path in [*STACKS_DIR.rglob("*.py"), *(REPO_ROOT / "shared").rglob("*.py")]:
        found.update(re.findall(r"\baws\.([a-z0-9_]+)\.[A-Za-z_]", path.read_text()))
    return sorted(m for m in found if importlib.util.find_spec(f"pulumi_aws.{m}") is not None)


SDK_PACKAGES = ("pulumi", "pulumi_aws", "pulumi_github", "pulumi_policy")

SDK_PROBE = f"""
import json, sys
from toolbox.offline import plan_all
from toolbox.verdicts import evaluate
for plan in plan_all("dev").values():
    evaluate(plan)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {SDK_PACKAGES!r})))
"""


def sdk_modules() -> list[str]:
    """The SDK modules that planning every layer and checking its policies loads.

    Read from a fresh process that plans dev from scratch (no plan reused), so it is exactly
    what a plan must import: pulumi_aws builds its submodules lazily, so ``import
    pulumi_aws.s3`` alone loads next to nothing; the resource modules load when a layer uses
    them, and ``pulumi_github`` loads whole.
    """
    result = subprocess.run(  # noqa: S603  # nosec B603 - our venv's python, our script
        [str(BIN / "python"), "-c", SDK_PROBE],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


FLOOR_CHILD = """
import importlib, json, sys
for name in json.loads(sys.stdin.read()):
    vars(importlib.import_module(name))  # a lazily created module loads on first use
"""


def floor_command() -> list[str]:
    """A process that only imports the SDK modules a plan imports (read with stdin)."""
    return [str(BIN / "python"), "-c", FLOOR_CHILD]


def lazy_floor_command() -> list[str]:
    """The import statements alone, as the issue first measured the floor (context only)."""
    imports = ", ".join(["pulumi", "pulumi_policy", *(f"pulumi_aws.{m}" for m in aws_modules())])
    return [str(BIN / "python"), "-c", f"import {imports}"]


def synth_command(layer: str | None = None) -> list[str]:
    """The offline plan as the user runs it."""
    return [str(BIN / "invoke"), "synth", "--env", "dev", *(["--layer", layer] if layer else [])]


@dataclass(frozen=True)
class ScalePoint:
    """The registry and pipeline planned with ``services`` services and with one, alternating."""

    services: int
    resources: int
    base_resources: int
    seconds: list[float]
    base_seconds: list[float]
    peak_kb: float
    base_peak_kb: float
    max_rss_mb: float
    base_services: int = 1
    cpu_seconds: list[float] = field(default_factory=list)
    base_cpu_seconds: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, services: int, sample: dict[str, Any]) -> ScalePoint:
        """The point from what :func:`bench.scale.measure` returned."""
        return cls(
            services,
            sample["resources"],
            sample["base_resources"],
            sample["seconds"],
            sample["base_seconds"],
            sample["peak_kb"],
            sample["base_peak_kb"],
            sample["max_rss_mb"],
            sample["base_services"],
            sample["cpu_seconds"],
            sample["base_cpu_seconds"],
        )

    @property
    def added_seconds(self) -> float:
        """What the services add to one plan: the median of the paired differences."""
        pairs = zip(self.seconds, self.base_seconds, strict=True)
        return statistics.median(n - b for n, b in pairs)

    @property
    def added_cpu_seconds(self) -> float:
        """What the services add to one plan's CPU seconds: the median of the paired differences."""
        pairs = zip(self.cpu_seconds, self.base_cpu_seconds, strict=True)
        return statistics.median(n - b for n, b in pairs)


def scale_point(services: int, rounds: int) -> ScalePoint:
    """Plan the registry and pipeline with ``services`` services and with one, in one fresh
    process.

    The difference of each pair of runs is what the services cost (:func:`bench.scale.measure`).
    """
    result = subprocess.run(  # noqa: S603  # nosec B603 - our venv's python, our module
        [str(BIN / "python"), "-m", "bench.scale", str(services), str(rounds), "warm"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return ScalePoint.of(services, json.loads(result.stdout.strip().splitlines()[-1]))


def _spread(values: Sequence[float]) -> float:
    """How far apart the largest and the smallest are, as a fraction of the smallest."""
    return round(max(values) / min(values) - 1, 3) if min(values) > 0 else float("inf")


def scaling(sizes: Sequence[int], rounds: int) -> dict[str, Any]:
    """Time and memory per service for each size, one fresh process per size."""
    return summarize([scale_point(size, rounds) for size in sizes])


def summarize(points: Sequence[ScalePoint]) -> dict[str, Any]:
    """Each point's plan (seconds, Python peak, resources, and per resource), and whether time
    and memory grow linearly: the same cost for each service added between successive sizes.

    Time added from the paired differences of each point's runs, memory from the peak of Python
    memory (tracemalloc) a plan of each size held; the process's peak RSS is for context. The
    base size (one service) is the first of the successive sizes, so 1, 10, 50 and 100 services
    give three slopes: 1 to 10, 10 to 50, 50 to 100.
    """
    base = points[0]
    rows = []
    for point in points:
        added = point.resources - point.base_resources
        if added <= 0:
            raise PlatformError("the layers ignore the services of platform.yaml")
        plan_s = statistics.median(point.seconds)
        rows.append(
            {
                "services": point.services,
                "resources": point.resources,
                "plan_s": round(plan_s, 3),
                "peak_mb": round(point.peak_kb / 1024, 1),
                "ms_per_resource": round(1000 * plan_s / point.resources, 3),
                "kb_per_resource": round(point.peak_kb / point.resources, 1),
                "added_s": round(point.added_seconds, 3),
                "plan_cpu_s": round(statistics.median(point.cpu_seconds), 3),
                "added_cpu_s": round(point.added_cpu_seconds, 3),
                "max_rss_mb": round(point.max_rss_mb, 1),
            }
        )
    # Successive sizes, the base first: what each size adds over the one before it, per service
    # (each service adds the same resources, so per added resource is the same ratio).
    steps = [(base.base_services, base.base_resources, 0.0, 0.0, 0.0)] + [
        (p.services, p.resources, p.added_seconds, p.added_cpu_seconds, p.peak_kb - p.base_peak_kb)
        for p in points
    ]
    slopes = [
        {
            "from": before,
            "to": services,
            "ms_per_service": round(1000 * (s - s_before) / (services - before), 2),
            "cpu_ms_per_service": round(1000 * (cpu - cpu_before) / (services - before), 2),
            "kb_per_service": round((kb - kb_before) / (services - before), 1),
            "resources_per_service": round((resources - r_before) / (services - before), 1),
        }
        for (before, r_before, s_before, cpu_before, kb_before), (
            services,
            resources,
            s,
            cpu,
            kb,
        ) in itertools.pairwise(steps)
    ]
    return {
        "baseline": {
            "services": base.base_services,
            "resources": base.base_resources,
            "plan_s": round(statistics.median(base.base_seconds), 3),
            "peak_mb": round(base.base_peak_kb / 1024, 1),
        },
        "rounds": len(base.seconds),
        "sizes": rows,
        "between_sizes": slopes,
        # The verdict on CPU time: on shared cores a busier minute stretches a whole point's
        # wall times (both sizes, so their differences too) by the same factor.
        "time_spread": _spread([slope["cpu_ms_per_service"] for slope in slopes]),
        "wall_time_spread": _spread([slope["ms_per_service"] for slope in slopes]),
        **(
            {"memory_spread": _spread([slope["kb_per_service"] for slope in slopes])}
            if base.peak_kb > 0
            else {}
        ),
    }


class Job(NamedTuple):
    """A command to time: what to run, its standard input, and where."""

    command: list[str]
    stdin: str | None = None
    cwd: Path = REPO_ROOT


def alternate(jobs: Mapping[K, Job], runs: int) -> dict[K, Timing]:
    """Time each job ``runs`` times, taking turns, so a busy minute hits every one alike."""
    timings: dict[K, Timing] = {name: Timing([], []) for name in jobs}
    for _ in range(runs):
        for name, job in jobs.items():
            one = timed(job.command, 1, job.cwd, job.stdin)
            timings[name].runs.extend(one.runs)
            timings[name].cpu.extend(one.cpu)
    return timings


def suite(runs: int) -> dict[str, Any]:
    """`./dev test` warm (after one untimed run) with ``-n auto`` and with ``-n 0``, alternating."""
    command = [str(BIN / "invoke"), "test"]
    timed(command, 1)  # warm: bytecode and build/plancache filled
    serial_command = [*command, "--workers", "0"]
    timings = alternate({"parallel": Job(command), "serial": Job(serial_command)}, runs)
    serial, parallel = timings["serial"], timings["parallel"]
    return {
        "serial": serial.as_dict(),
        "parallel": parallel.as_dict(),
        "workers": os.cpu_count(),
        "speedup": round(serial.median / parallel.median, 2),
        "profile": suite_profile(),
    }


PROFILE_XML = REPO_ROOT / "build" / "bench-suite.xml"


def module_seconds(junit_xml: str) -> dict[str, dict[str, float]]:
    """Seconds (setup, call and teardown) and tests per test module, from pytest's JUnit XML."""
    import xml.etree.ElementTree as ET  # nosec B405 - pytest's own report

    per: dict[str, dict[str, float]] = {}
    for case in ET.fromstring(junit_xml).iter("testcase"):  # noqa: S314  # nosec B314
        module = case.get("classname", "").split(".")
        name = next((part for part in module if part.startswith("test_")), ".".join(module))
        entry = per.setdefault(name, {"seconds": 0.0, "tests": 0})
        entry["seconds"] += float(case.get("time", "0"))
        entry["tests"] += 1
    return dict(sorted(per.items(), key=lambda item: -item[1]["seconds"]))


def suite_profile(top: int = 10) -> dict[str, Any]:
    """Where one serial run's time goes: each module's tests, and all that is not a test.

    One more serial run (pytest's ``--junitxml``; not timed against anything): the time outside
    the tests is the process's start-up, plugin loading and collection, and fixtures at session
    end. The parallel run pays its start-up once per worker, plus xdist's controller.
    """
    start = time.perf_counter()
    command = [sys.executable, "-m", "pytest", "-n", "0", "-q", f"--junitxml={PROFILE_XML}"]
    timed(command, 1)
    wall = time.perf_counter() - start
    modules = module_seconds(PROFILE_XML.read_text(encoding="utf-8"))
    in_tests = sum(entry["seconds"] for entry in modules.values())
    return {
        "wall_s": round(wall, 2),
        "outside_tests_s": round(wall - in_tests, 2),
        "tests": sum(int(entry["tests"]) for entry in modules.values()),
        "top_modules": {
            name: {"seconds": round(entry["seconds"], 2), "tests": int(entry["tests"])}
            for name, entry in itertools.islice(modules.items(), top)
        },
        "other_modules_s": round(
            sum(entry["seconds"] for entry in itertools.islice(modules.values(), top, None)), 2
        ),
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
    jobs = {
        (side, name): Job(command, cwd=before_root if side == "before" else REPO_ROOT)
        for name, command in commands.items()
        for side in ("before", "after")
    }
    try:
        timings = alternate(jobs, runs)
    finally:
        remove_baseline_tree()
    return {
        "ref": ref,
        "rows": {
            name: {
                "before": timings["before", name].as_dict(),
                "after": timings["after", name].as_dict(),
                "speedup": round(timings["before", name].median / timings["after", name].median, 2),
            }
            for name in commands
        },
    }


DIFF_DIR = REPO_ROOT / "build" / "bench-diff"


def diff_timings(runs: int) -> dict[str, Any]:
    """``./dev diff --base HEAD`` in a clean checkout of HEAD, then with its plan code touched.

    Unchanged, no layer's inputs differ and nothing is planned (only git runs); touched (a
    comment appended to ``toolbox/__init__.py``), both sides plan every layer of dev, the base in
    a worktree of its own: timed alternating with ``synth --env dev`` in the same checkout.
    """
    git = _git()
    subprocess.run(  # noqa: S603  # nosec B603 - git with fixed arguments
        [*git, "worktree", "remove", "--force", str(DIFF_DIR)], check=False, capture_output=True
    )
    subprocess.run(  # noqa: S603  # nosec B603 - git with fixed arguments
        [*git, "worktree", "add", "--detach", str(DIFF_DIR), "HEAD"],
        check=True,
        capture_output=True,
    )
    command = [str(BIN / "invoke"), "diff", "--base", "HEAD"]
    try:
        unchanged = timed(command, runs, DIFF_DIR)
        with (DIFF_DIR / "toolbox" / "__init__.py").open("a", encoding="utf-8") as out:
            out.write("# touched by the bench: the plan code changed, so both sides plan\n")
        planned = alternate(
            {"planned": Job(command, cwd=DIFF_DIR), "synth": Job(synth_command(), cwd=DIFF_DIR)},
            runs,
        )
    finally:
        subprocess.run(  # noqa: S603  # nosec B603 - git with fixed arguments
            [*git, "worktree", "remove", "--force", str(DIFF_DIR)], check=False, capture_output=True
        )
    return {
        "unchanged": unchanged.as_dict(),
        "planned": planned["planned"].as_dict(),
        "synth": planned["synth"].as_dict(),
        "planned_over_synth": round(planned["planned"].median / planned["synth"].median, 2),
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
    sizes = list(sizes or ((10, 50) if quick else FULL_SIZES))
    modules = json.dumps(sdk_modules())
    commands = {
        "floor": Job(floor_command(), modules),
        "lazy_floor": Job(lazy_floor_command()),
        "all": Job(synth_command()),
        **{layer: Job(synth_command(layer)) for layer in names()},
    }
    timings = alternate(commands, runs)
    floor = timings["floor"]
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "machine": {
            "cores": os.cpu_count(),
            "system": platform.system(),
            "machine": platform.machine(),
        },
        "versions": versions(),
        "quick": quick,
        "floor_modules": len(json.loads(modules)),
        "floor": floor.as_dict(),
        "lazy_floor": timings["lazy_floor"].as_dict(),
        "plan_all_layers": {
            **timings["all"].as_dict(),
            "ratio_to_floor": round(timings["all"].median / floor.median, 2),
        },
        "per_layer": {layer: timings[layer].as_dict() for layer in names()},
        "scaling": scaling(sizes, 3 if quick else SCALE_ROUNDS),
    }
    results["diff"] = diff_timings(runs)
    results["specs"] = spec_figures(REPO_ROOT / "build" / "plan" / "dev")
    if baseline:
        results["baseline"] = compare(baseline, runs)
    if with_suite if with_suite is not None else not quick:
        results["test_suite"] = suite(max(1, runs // 3))
    results["targets"] = targets_met(results)
    return results


def spec_figures(folder: Path) -> dict[str, Any]:
    """What AWS's specs checked in the plans synth just wrote (the ``*.specs.json`` verdicts):
    the IAM statements, and of the plan's scalar inputs how many the resource schemas checked."""
    verdicts = [
        json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.specs.json"))
    ]
    scalars = sum(v["coverage"]["scalarInputs"] for v in verdicts)
    checked = sum(v["coverage"]["checked"] for v in verdicts)
    return {
        "iam_statements": sum(v["iamStatements"] for v in verdicts),
        "scalar_inputs": scalars,
        "scalar_inputs_checked": checked,
        "coverage": round(checked / scalars, 3) if scalars else 0.0,
        "findings": sum(len(v["findings"]) for v in verdicts),
    }


def targets_met(results: dict[str, Any]) -> dict[str, bool]:
    """Which of the issues' targets the figures meet (those a run measured)."""
    met: dict[str, bool] = {}
    if "plan_all_layers" in results:
        met["plan_at_most_2x_floor"] = (
            results["plan_all_layers"]["ratio_to_floor"] <= TARGETS["plan_over_floor_max"]
        )
    met.update(scale_targets(results["scaling"]))
    if "test_suite" in results:
        suite_ = results["test_suite"]
        met["suite_under_10s_warm"] = suite_["parallel"]["median_s"] <= TARGETS["suite_warm_max_s"]
        met["suite_parallel_1.6x"] = suite_["speedup"] >= TARGETS["suite_speedup_min"]
    return met


def scale_targets(scale: dict[str, Any]) -> dict[str, bool]:
    """Time and memory linear in the services: each slope between sizes within the spread."""
    most = TARGETS["per_service_spread_max"]
    met = {"time_linear": scale["time_spread"] <= most}
    if "memory_spread" in scale:  # measured (not in a test's run of the code)
        met["memory_linear"] = scale["memory_spread"] <= most
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

    row(f"floor: the {results['floor_modules']} SDK modules a plan loads", results["floor"])
    row(
        "  (import statements only, lazily loaded)",
        results["lazy_floor"],
        f"{results['lazy_floor']['median_s'] / floor:.2f}x floor",
    )
    row(
        "synth --env dev (3 layers + policies)",
        results["plan_all_layers"],
        f"{results['plan_all_layers']['ratio_to_floor']:.2f}x floor",
    )
    for layer, figures in results["per_layer"].items():
        row(f"synth --layer {layer}", figures, f"{figures['median_s'] / floor:.2f}x floor")
    lines.extend(scale_lines(results["scaling"]))
    if "diff" in results:
        diff = results["diff"]
        row("diff --base HEAD, unchanged (nothing planned)", diff["unchanged"])
        row(
            "diff --base HEAD, plan code touched",
            diff["planned"],
            f"{diff['planned_over_synth']:.2f}x synth there",
        )
    if "test_suite" in results:
        ts = results["test_suite"]
        row("./dev test --workers 0 (warm)", ts["serial"], _cpu(ts["serial"]))
        row(
            f"./dev test, -n auto on {ts['workers']} cores (warm)",
            ts["parallel"],
            f"{ts['speedup']:.2f}x faster, {_cpu(ts['parallel'])}",
        )
        if "profile" in ts:
            lines.extend(_profile_lines(ts["profile"]))
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


def scale_lines(scale: dict[str, Any]) -> list[str]:
    """The scaling figures: each size's plan, then what each service costs between sizes."""
    base = scale["baseline"]
    lines = [
        f"registry + pipeline scaling ({base['services']} service: {base['resources']} resources,"
        f" {base['plan_s']:.2f}s, {base['peak_mb']:.0f} MB Python peak; time = median of"
        f" {scale['rounds']} plans, added time = median of the paired differences):"
    ]
    for size in scale["sizes"]:
        lines.append(
            f"  {size['services']:>4} services = {size['resources']:>5} resources:"
            f" {size['plan_s']:6.2f}s ({size['plan_cpu_s']:.2f}s CPU),"
            f" {size['peak_mb']:6.1f} MB Python peak,"
            f" {size['ms_per_resource']:5.2f} ms and {size['kb_per_resource']:5.1f} KB per"
            f" resource, {size['max_rss_mb']:.0f} MB process peak"
        )
    lines.append("  each service added between successive sizes:")
    for step in scale["between_sizes"]:
        lines.append(
            f"    {step['from']:>4} to {step['to']:>4}: {step['cpu_ms_per_service']:7.2f} ms CPU"
            f" ({step['ms_per_service']:.2f} ms wall) and {step['kb_per_service']:7.1f} KB per"
            f" service ({step['resources_per_service']:.0f} resources)"
        )
    memory = f", memory +{100 * scale['memory_spread']:.1f}%" if "memory_spread" in scale else ""
    lines.append(
        f"  per service, largest over smallest: CPU time +{100 * scale['time_spread']:.1f}%"
        f" (wall +{100 * scale['wall_time_spread']:.1f}%){memory}"
    )
    return lines


def _profile_lines(profile: dict[str, Any]) -> list[str]:
    """The serial run's profile: outside the tests, then the slowest modules."""
    lines = [
        f"  where a serial run's {profile['wall_s']:.1f}s go ({profile['tests']} tests):"
        f" {profile['outside_tests_s']:.1f}s outside the tests (start-up, collection)"
    ]
    modules = [
        f"{name} {entry['seconds']:.1f}s/{entry['tests']}"
        for name, entry in profile["top_modules"].items()
    ]
    for start in range(0, len(modules), 4):
        lines.append("    " + ", ".join(modules[start : start + 4]))
    lines.append(f"    the other modules together {profile['other_modules_s']:.1f}s")
    return lines


def _cpu(figures: dict[str, Any]) -> str:
    """The median CPU seconds of a timed command, when they were measured."""
    return f"CPU {figures['cpu_median_s']:.1f}s" if "cpu_median_s" in figures else ""


def save(results: dict[str, Any], path: Path = RESULTS) -> Path:
    """Write the results file (committed when the figures change meaningfully)."""
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


__all__ = ["asdict", "run", "save", "scaling_only", "table"]


def scaling_only(path: Path = RESULTS) -> dict[str, Any]:
    """``python -m bench.run scaling``: the full run's scaling alone, into the results file.

    The scaling is the part a change to what a service plans moves; the rest of the file (floor,
    synth, suite) stays from the last full run. The scaling carries its own date and the
    machine's load averages when it started (``os.getloadavg``: these machines are shared).
    """
    results = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    load = [round(value, 2) for value in os.getloadavg()]
    results["scaling"] = {
        **scaling(FULL_SIZES, SCALE_ROUNDS),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "load_average_1_5_15_min": load,
    }
    results["targets"] = targets_met(results)
    save(results, path)
    return results


if __name__ == "__main__":  # pragma: no cover - a measurement, run by hand
    if sys.argv[1:] != ["scaling"]:
        raise SystemExit("usage: python -m bench.run scaling")
    measured = scaling_only()
    print("\n".join(scale_lines(measured["scaling"])))
    print(", ".join(f"{k} {'MET' if v else 'MISSED'}" for k, v in measured["targets"].items()))

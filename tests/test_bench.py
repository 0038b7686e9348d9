"""The bench code runs (on a tiny size); how fast is for `./dev bench`, never for the tests."""

from __future__ import annotations

import sys

import pytest
import yaml

from bench.run import (
    ScalePoint,
    aws_modules,
    module_seconds,
    scale_targets,
    summarize,
    table,
    targets_met,
    timed,
)
from bench.scale import measure, platform_with


@pytest.fixture(scope="module")
def tiny() -> dict:
    """The bench's own measurement, in this process, at two services (no warm-up or memory)."""
    return summarize([ScalePoint.of(2, measure(2, rounds=1, warm=False, memory=False))])


def test_scaling_plans_the_services_of_platform_yaml_and_counts_what_each_adds(tiny):
    (two,) = tiny["sizes"]
    (step,) = tiny["between_sizes"]
    # Each service: its repository and lifecycle policy (registry); its pipeline component, four
    # CodeBuild projects, five log groups (four projects and the deploy handler), six roles and
    # their policies, two report groups, the pipeline, its webhook (pipeline and GitHub side),
    # the GitHub provider, the deploy handler, its dead-letter queue, the queue of its source
    # rule with the rule, target and queue policy, and two alarms.
    assert step == {"from": 1, "to": 2, "resources_per_service": 38.0} | {
        key: step[key] for key in ("ms_per_service", "cpu_ms_per_service", "kb_per_service")
    }
    assert two["resources"] == tiny["baseline"]["resources"] + 38
    assert tiny["baseline"]["services"] == 1


def test_the_bench_plans_a_copy_of_platform_yaml_and_leaves_the_file_alone(tmp_path):
    from shared import settings

    data = settings.read_yaml(settings.PLATFORM_FILE)
    data["services"] = {"web": {"githubRepo": "web-site"}, "worker": {"requireApproval": True}}
    source = tmp_path / "platform.yaml"
    source.write_text(yaml.safe_dump(data), encoding="utf-8")
    before = source.read_bytes()
    (tmp_path / "sizes").mkdir()

    written = platform_with(4, source, tmp_path / "sizes")

    platforms = settings.load_all(written)
    assert [s.name for s in platforms["dev"].services] == ["web", "svc-002", "svc-003", "svc-004"]
    # The first service keeps what it states; the others state nothing.
    assert settings.read_yaml(written)["services"] == {
        "web": {"githubRepo": "web-site"},
        "svc-002": {},
        "svc-003": {},
        "svc-004": {},
    }
    assert source.read_bytes() == before


def test_the_lazy_floor_names_the_modules_the_layers_use():
    assert {"kms", "s3", "ecr", "codebuild", "codepipeline", "iam", "lambda_"} <= set(aws_modules())


def test_table_and_targets_from_a_results_shape(tiny):
    results = {
        "date": "2026-01-01",
        "machine": {"cores": 2},
        "versions": {"python": "3.11", "pulumi": "x", "pulumi-aws": "y"},
        "floor_modules": 800,
        "floor": {"median_s": 1.0, "min_s": 1.0, "max_s": 1.0},
        "lazy_floor": {"median_s": 0.3, "min_s": 0.3, "max_s": 0.3},
        "plan_all_layers": {"median_s": 1.2, "min_s": 1.0, "max_s": 1.3, "ratio_to_floor": 1.2},
        "per_layer": {},
        "scaling": {**tiny, "time_spread": 0.05},
        "test_suite": {
            "serial": {"median_s": 30.0, "min_s": 30.0, "max_s": 30.0},
            "parallel": {"median_s": 12.0, "min_s": 12.0, "max_s": 12.0, "cpu_median_s": 21.5},
            "workers": 2,
            "speedup": 2.5,
            "profile": {
                "wall_s": 31.0,
                "outside_tests_s": 4.5,
                "tests": 900,
                "top_modules": {"test_verify": {"seconds": 4.4, "tests": 26}},
                "other_modules_s": 22.1,
            },
        },
    }
    results["targets"] = targets_met(results)
    assert results["targets"] == {
        "plan_at_most_2x_floor": True,
        "time_linear": True,
        "suite_under_10s_warm": False,
        "suite_parallel_1.6x": True,
    }
    text = table(results)
    assert "synth --env dev" in text
    assert "1.20x floor" in text
    assert "registry + pipeline scaling (1 service: " in text
    assert "     1 to    2: " in text
    assert "  per service, largest over smallest: CPU time +5.0% (wall +" in text
    assert "targets: plan_at_most_2x_floor MET" in text
    assert "2.50x faster, CPU 21.5s" in text
    assert "where a serial run's 31.0s go (900 tests): 4.5s outside the tests" in text
    assert "    test_verify 4.4s/26\n    the other modules together 22.1s" in text


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.test_verify" name="test_a[kms]" time="0.250" />
<testcase classname="tests.test_verify" name="test_a[s3]" time="0.125" />
<testcase classname="tests.test_policies.TestRules" name="test_b" time="0.500" />
<testcase classname="tests.test_cli" name="test_c" time="0.0625"><skipped /></testcase>
</testsuite></testsuites>"""


def test_the_profile_sums_each_modules_tests_slowest_first():
    assert module_seconds(JUNIT) == {
        "test_policies": {"seconds": 0.5, "tests": 1},
        "test_verify": {"seconds": 0.375, "tests": 2},
        "test_cli": {"seconds": 0.0625, "tests": 1},
    }


def test_a_timed_command_reports_the_cpu_its_processes_used():
    # A child that computes, and a grandchild that computes: both count.
    work = "sum(i * i for i in range(300_000))"
    child = f"import subprocess, sys; {work}; subprocess.run([sys.executable, '-c', '{work}'])"

    timing = timed([sys.executable, "-c", child], runs=2)

    assert len(timing.runs) == len(timing.cpu) == 2
    assert all(cpu > 0 for cpu in timing.cpu)
    assert "cpu_median_s" in timing.as_dict()


def point(
    services: int, added_s: float, added_kb: float, added_cpu_s: float | None = None
) -> ScalePoint:
    """A scaling point: one service plans 70 resources in 0.5 s holding 1,000 KB; each service
    adds 40 resources, ``added_s`` seconds (``added_cpu_s`` of CPU, by default the same) and
    ``added_kb`` KB over it."""
    cpu = added_s if added_cpu_s is None else added_cpu_s
    return ScalePoint(
        services,
        70 + 40 * (services - 1),
        70,
        [0.5 + added_s],
        [0.5],
        1000.0 + added_kb,
        1000.0,
        100.0,
        cpu_seconds=[0.5 + cpu],
        base_cpu_seconds=[0.5],
    )


def test_time_and_memory_are_linear_when_each_service_added_between_sizes_costs_the_same():
    # 150 ms and 4,000 KB per service from 1 to 10, 10 to 50 and 50 to 100 services.
    linear = summarize(
        [point(10, 1.35, 36_000), point(50, 7.35, 196_000), point(100, 14.85, 396_000)]
    )
    assert [(s["from"], s["to"]) for s in linear["between_sizes"]] == [(1, 10), (10, 50), (50, 100)]
    assert [s["ms_per_service"] for s in linear["between_sizes"]] == [150.0, 150.0, 150.0]
    assert [s["kb_per_service"] for s in linear["between_sizes"]] == [4000.0, 4000.0, 4000.0]
    assert linear["time_spread"] == linear["memory_spread"] == 0.0
    # Per resource, the whole plan: the one service's fixed part weighs less as services grow.
    assert [row["resources"] for row in linear["sizes"]] == [430, 2030, 4030]
    assert [row["ms_per_resource"] for row in linear["sizes"]] == [4.302, 3.867, 3.809]
    assert [row["kb_per_resource"] for row in linear["sizes"]] == [86.0, 97.0, 98.5]
    assert scale_targets(linear) == {"time_linear": True, "memory_linear": True}

    # From 50 to 100 each service costs 180 ms and 5,000 KB: both grow faster than linearly.
    growing = summarize(
        [point(10, 1.35, 36_000), point(50, 7.35, 196_000), point(100, 16.35, 446_000)]
    )
    assert [s["ms_per_service"] for s in growing["between_sizes"]] == [150.0, 150.0, 180.0]
    assert [s["kb_per_service"] for s in growing["between_sizes"]] == [4000.0, 4000.0, 5000.0]
    assert growing["time_spread"] == 0.2
    assert growing["memory_spread"] == 0.25
    assert scale_targets(growing) == {"time_linear": False, "memory_linear": False}


def test_the_time_verdict_is_on_cpu_seconds_which_a_busier_machine_does_not_stretch():
    # The 100-service point ran while other processes took half the cores: its wall times, and
    # so the difference of each pair, doubled; the CPU each plan used did not.
    busy = summarize(
        [point(10, 1.35, 36_000), point(50, 7.35, 196_000), point(100, 29.7, 396_000, 14.85)]
    )
    assert [s["ms_per_service"] for s in busy["between_sizes"]] == [150.0, 150.0, 447.0]
    assert [s["cpu_ms_per_service"] for s in busy["between_sizes"]] == [150.0, 150.0, 150.0]
    assert busy["wall_time_spread"] == 1.98
    assert busy["time_spread"] == 0.0
    assert scale_targets(busy)["time_linear"] is True


def test_a_run_without_the_memory_pass_has_no_memory_verdict(tiny):
    assert "memory_spread" not in tiny
    assert set(scale_targets(tiny)) == {"time_linear"}

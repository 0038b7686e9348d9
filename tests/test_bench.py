"""The bench code runs (on a tiny size); how fast is for `./dev bench`, never for the tests."""

from __future__ import annotations

import sys

import pytest

from bench.run import (
    ScalePoint,
    aws_modules,
    module_seconds,
    summarize,
    table,
    targets_met,
    timed,
)
from bench.scale import measure


@pytest.fixture(scope="module")
def tiny() -> dict:
    """The bench's own measurement, in this process, at two services (no warm-up or memory)."""
    return summarize([ScalePoint.of(2, measure(2, rounds=1, warm=False, memory=False))])


def test_scaling_runs_and_counts_the_resources_services_add(tiny):
    (two,) = tiny["sizes"]
    # Each service: a CodeBuild project, its log group, its role and the role's policy. The first
    # service also brings the one rule that mails failed service builds: the rule, its target,
    # the target's dead-letter queue and queue policy, and the FailedInvocations alarm.
    assert two["added_resources"] == 2 * 4 + 5
    assert two["resources"] == tiny["baseline"]["resources"] + 2 * 4 + 5


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
        "scaling": {**tiny, "time_spread": 0.05, "memory_spread": 0.2},
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
        "time_per_resource_flat": True,
        "suite_under_10s_warm": False,
        "suite_parallel_1.6x": True,
    }
    text = table(results)
    assert "synth --env dev" in text
    assert "1.20x floor" in text
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


def point(services: int, resources: int, added_kb: float) -> ScalePoint:
    """A scaling point of the pipeline (63 resources without services), ``added_kb`` over it."""
    return ScalePoint(services, resources, 63, [1.0], [0.5], 1000.0 + added_kb, 1000.0, 100.0)


def test_memory_is_linear_when_each_resource_added_between_sizes_costs_the_same():
    # 45, 405 and 2005 added resources; 1,000 KB of the first 45 are one-time, then 110 KB each.
    linear = summarize([point(10, 108, 4_850), point(100, 468, 44_450), point(500, 2068, 220_450)])
    assert linear["kb_per_resource_between_sizes"] == [110.0, 110.0]
    assert linear["memory_slope_spread"] == 0.0
    # Against zero services the one-time kilobytes make +10 look heavier: not flat, yet linear.
    assert [row["kb_per_added_resource"] for row in linear["sizes"]] == [107.8, 109.8, 110.0]

    # 110 KB per resource from +10 to +100, 130 KB from +100 to +500: it grows.
    growing = summarize([point(10, 108, 4_850), point(100, 468, 44_450), point(500, 2068, 252_450)])
    assert growing["kb_per_resource_between_sizes"] == [110.0, 130.0]
    assert growing["memory_slope_spread"] == 0.182


def test_memory_linearity_needs_three_sizes_and_is_then_a_target():
    two = summarize([point(10, 108, 4_850), point(50, 288, 24_650)])
    assert "memory_slope_spread" not in two
    three = summarize([point(10, 108, 4_850), point(100, 468, 44_450), point(500, 2068, 252_450)])
    results = {
        "plan_all_layers": {"ratio_to_floor": 1.5},
        "scaling": {**three, "time_spread": 0.05},
    }
    assert targets_met(results) == {
        "plan_at_most_2x_floor": True,
        "time_per_resource_flat": True,
        "memory_linear": False,
    }

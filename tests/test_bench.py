"""The bench code runs (on a tiny size); how fast is for `./dev bench`, never for the tests."""

from __future__ import annotations

import pytest

from bench.run import aws_modules, scaling, table, targets_met


@pytest.fixture(scope="module")
def tiny() -> dict:
    return scaling([1, 2], runs=1)


def test_scaling_runs_and_counts_the_resources_services_add(tiny):
    result = tiny
    one, two = result["sizes"]
    per_service = two["added_resources"] - one["added_resources"]
    assert per_service >= 3  # a project, its log group and its role, at least
    # The first service also brings the one rule that mails failed service builds: the rule, its
    # target, the target's dead-letter queue and queue policy, and the FailedInvocations alarm.
    assert one["added_resources"] == per_service + 5
    assert two["added_resources"] == 2 * per_service + 5


def test_the_floor_imports_the_modules_the_layers_use():
    assert {"kms", "s3", "ecr", "codebuild", "codepipeline", "iam"} <= set(aws_modules())


def test_table_and_targets_from_a_results_shape(tiny):
    results = {
        "date": "2026-01-01",
        "machine": {"cores": 2},
        "versions": {"python": "3.11", "pulumi": "x", "pulumi-aws": "y"},
        "floor": {"median_s": 1.0, "min_s": 1.0, "max_s": 1.0},
        "plan_all_layers": {"median_s": 1.2, "min_s": 1.0, "max_s": 1.3, "ratio_to_floor": 1.2},
        "per_layer": {},
        "scaling": tiny,
    }
    results["targets"] = targets_met(results)
    assert results["targets"]["plan_at_most_2x_floor"] is True
    assert "synth --env dev" in table(results)

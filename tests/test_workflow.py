"""The CI/CD workflow's structure, read from the parsed YAML (and its raw lines for pins)."""

from __future__ import annotations

import itertools
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

import tasks
from shared.layers import REPO_ROOT, names

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "ci-cd.yml"
JOBS = ["Source", "Build", "Test", "SecurityScan", "Deploy"]
AWS_JOBS = {"Build", "Deploy"}
"""The jobs that reach AWS (preview and deploy), and so the only ones with id-token: write."""
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"^\s+#\s+v\d+\.\d+\.\d+(\s|$)")


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def jobs(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return workflow["jobs"]


def steps(workflow: dict[str, Any], job: str | None = None) -> list[dict[str, Any]]:
    selected = [job] if job else list(jobs(workflow))
    return [step for name in selected for step in jobs(workflow)[name]["steps"]]


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    # PyYAML reads the bare key `on` as the boolean True (YAML 1.1).
    return workflow.get("on", workflow.get(True))


def test_runs_only_on_pushes_to_main_and_release_branches(workflow):
    on = triggers(workflow)
    assert set(on) <= {"push", "workflow_dispatch"}
    assert on["push"] == {"branches": ["main", "release/*"]}
    assert on.get("workflow_dispatch") in (None, {})


def test_exactly_five_jobs_chained_in_order(workflow):
    assert list(jobs(workflow)) == JOBS
    assert [job.get("name") for job in jobs(workflow).values()] == JOBS
    for before, after in itertools.pairwise(JOBS):
        needs = jobs(workflow)[after]["needs"]
        assert (needs if isinstance(needs, list) else [needs]) == [before]
    assert "needs" not in jobs(workflow)["Source"]


def test_permissions_are_empty_at_the_top_and_minimal_per_job(workflow):
    assert workflow["permissions"] == {}
    for name, job in jobs(workflow).items():
        expected = {"contents": "read"}
        if name in AWS_JOBS:
            expected["id-token"] = "write"
        assert job["permissions"] == expected, name


def test_aws_access_is_only_oidc_role_assumption_from_repository_variables(workflow):
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "aws-access-key-id" not in text
    assert "AWS_SECRET_ACCESS_KEY" not in text
    for name in jobs(workflow):
        assume = [
            s for s in steps(workflow, name) if "configure-aws-credentials" in s.get("uses", "")
        ]
        if name in AWS_JOBS:
            assert len(assume) == 1, name
            assert assume[0]["with"] == {
                "role-to-assume": "${{ vars.AWS_ROLE_ARN }}",
                "aws-region": "${{ vars.AWS_REGION }}",
            }
        else:
            assert assume == [], name


def test_pulumi_backend_and_passphrase_come_from_secrets_and_nothing_else_does(workflow):
    text = WORKFLOW.read_text(encoding="utf-8")
    assert set(re.findall(r"secrets\.(\w+)", text)) == {
        "PULUMI_BACKEND_URL",
        "PULUMI_CONFIG_PASSPHRASE",
    }
    deploy_env = jobs(workflow)["Deploy"]["env"]
    assert deploy_env["PULUMI_BACKEND_URL"] == "${{ secrets.PULUMI_BACKEND_URL }}"
    assert deploy_env["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"


def test_deploy_is_protected_serialized_and_checked_after(workflow):
    deploy = jobs(workflow)["Deploy"]
    assert deploy["environment"] == "production"
    assert deploy["concurrency"]["group"]
    assert deploy["concurrency"]["cancel-in-progress"] is False
    runs = [s["run"] for s in steps(workflow, "Deploy") if "run" in s]
    assert runs.index("./dev deploy --env prod --yes") < runs.index("./dev verify --env prod")
    assert "./dev outputs --env prod" in runs


def test_build_previews_each_layer_of_the_graph_in_a_matrix(workflow):
    build = jobs(workflow)["Build"]
    assert build["strategy"]["matrix"]["layer"] == list(names())
    (preview,) = [s for s in steps(workflow, "Build") if "preview" in s.get("run", "")]
    assert preview["env"]["LAYER"] == "${{ matrix.layer }}"
    assert preview["run"] == './dev preview --layer "$LAYER" --env prod'


def test_the_pulumi_cli_is_installed_where_pulumi_runs_at_the_sdk_version(workflow):
    for name in AWS_JOBS:
        setups = [s for s in steps(workflow, name) if s.get("uses", "").startswith("pulumi/")]
        assert [s["with"] for s in setups] == [{"pulumi-version-file": ".pulumi.version"}]
    pinned = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    sdk = next(d for d in pinned["project"]["dependencies"] if d.startswith("pulumi=="))
    cli = (REPO_ROOT / ".pulumi.version").read_text(encoding="utf-8").strip()
    assert sdk == f"pulumi=={cli}"


def test_every_action_is_pinned_by_commit_sha_with_a_version_comment():
    found = 0
    for number, line in enumerate(WORKFLOW.read_text(encoding="utf-8").splitlines(), 1):
        match = USES.match(line)
        if not match:
            continue
        found += 1
        assert PINNED.match(match["ref"]), f"line {number}: {match['ref']} is not pinned by SHA"
        assert VERSION_COMMENT.match(match["rest"]), f"line {number}: no '# vX.Y.Z' comment"
    assert found >= len(JOBS)


def test_every_checkout_leaves_no_credentials_behind(workflow):
    checkouts = [s for s in steps(workflow) if s.get("uses", "").startswith("actions/checkout@")]
    assert len(checkouts) == len(JOBS)
    assert all(s["with"]["persist-credentials"] is False for s in checkouts)


def test_every_run_step_calls_an_invoke_task(workflow):
    commands = [s["run"] for s in steps(workflow) if "run" in s]
    assert commands
    available = set(tasks_in_collection())
    for command in commands:
        assert command.startswith("./dev "), command
        assert "\n" not in command.strip(), command
        task = command.split()[1]
        assert task == "--list" or task in available, command


def test_the_tests_run_in_the_test_job_and_lint_in_the_source_job(workflow):
    assert [s["run"] for s in steps(workflow, "Source") if "run" in s] == ["./dev lint"]
    assert [s["run"] for s in steps(workflow, "Test") if "run" in s] == ["./dev test"]
    assert [s["run"] for s in steps(workflow, "SecurityScan") if "run" in s] == ["./dev scan"]


def tasks_in_collection() -> list[str]:
    from invoke import Collection

    return list(Collection.from_module(tasks).task_names)


def test_the_ci_script_runs_the_same_test_command():
    assert "./dev test" in Path(REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")

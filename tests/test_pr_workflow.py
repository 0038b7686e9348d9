"""pull-request.yml: the checks of a pull request, safe for one from a fork.

Read from the parsed YAML (and its raw text for pins and secrets), beside tests/test_workflow.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from invoke import Collection

import tasks
from shared.layers import REPO_ROOT
from shared.settings import environments
from tests.test_workflow import steps, triggers

PULL_REQUEST = REPO_ROOT / ".github" / "workflows" / "pull-request.yml"
OPERATIONS = REPO_ROOT / "docs" / "operations.md"
JOBS = {"Lint": "lint", "Test": "test", "Scan": "scan", "Synth": "synth", "Diff": "diff"}
"""Each job (by id) and the one task it runs."""


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return yaml.safe_load(PULL_REQUEST.read_text(encoding="utf-8"))


def test_runs_on_pull_requests_into_main_and_release_branches_only(workflow) -> None:
    on = triggers(workflow)
    assert on == {"pull_request": {"branches": ["main", "release/*"]}}


def test_no_job_can_write_or_reach_aws(workflow) -> None:
    assert workflow["permissions"] == {}
    for name, job in workflow["jobs"].items():
        assert job["permissions"] == {"contents": "read"}, name
    text = PULL_REQUEST.read_text(encoding="utf-8")
    assert "configure-aws-credentials" not in text
    assert "id-token" not in text


def test_no_secret_is_referenced(workflow) -> None:
    text = PULL_REQUEST.read_text(encoding="utf-8")
    assert re.findall(r"secrets\s*\.", text) == []
    assert "secrets[" not in text
    assert "github.token" not in text and "GITHUB_TOKEN" not in text


def test_every_checkout_leaves_no_credentials_behind(workflow) -> None:
    checkouts = [s for s in steps(workflow) if s.get("uses", "").startswith("actions/checkout@")]
    assert len(checkouts) == len(JOBS)
    assert all(s["with"]["persist-credentials"] is False for s in checkouts)


def test_each_job_runs_its_one_task(workflow) -> None:
    assert list(workflow["jobs"]) == list(JOBS)
    menu = set(Collection.from_module(tasks).task_names)
    for job, task in JOBS.items():
        commands = [s["run"] for s in steps(workflow, job) if "run" in s]
        assert commands, job
        for command in commands:
            assert command.startswith(f"./dev {task}"), command
            assert "\n" not in command.strip(), command
        assert task in menu, task


def test_the_scan_only_warns_when_the_audit_services_are_down(workflow) -> None:
    assert [s["run"] for s in steps(workflow, "Scan") if "run" in s] == [
        "./dev scan --allow-unaudited"
    ]


def test_synth_plans_every_environment_of_platform_yaml(workflow) -> None:
    commands = [s["run"] for s in steps(workflow, "Synth") if "run" in s]
    assert commands == [f"./dev synth --env {env}" for env in environments()]


def test_the_plan_diff_goes_to_the_summary_page_from_the_whole_history(workflow) -> None:
    (command,) = [s["run"] for s in steps(workflow, "Diff") if "run" in s]
    assert command == './dev diff --all-envs --markdown >> "$GITHUB_STEP_SUMMARY"'
    (checkout,) = [s for s in steps(workflow, "Diff") if "checkout" in s.get("uses", "")]
    assert checkout["with"]["fetch-depth"] == 0


def test_branch_protection_requires_exactly_the_jobs_of_this_workflow(workflow) -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    paragraph = text.split("- **Branch protection**", 1)[1].split("\n- ", 1)[0].split("\n\n")[0]
    required = re.findall(r"`([^`]+)`", paragraph.split("status checks", 1)[1])
    names = [job["name"] for job in workflow["jobs"].values()]
    assert required == names
    assert names == ["Lint", "Test", "Scan", "Synth", "Plan diff"]


def test_ci_cd_keeps_its_push_triggers_and_five_jobs() -> None:
    ci_cd = yaml.safe_load(Path(REPO_ROOT / ".github/workflows/ci-cd.yml").read_text("utf-8"))
    on = triggers(ci_cd)
    assert "pull_request" not in on and "pull_request_target" not in on
    assert on["push"] == {"branches": ["main", "release/*"]}
    stages = [job for job in ci_cd["jobs"] if job != "SecurityReview"]  # the approval gate
    assert stages == ["Source", "Build", "Test", "SecurityScan", "Deploy"]

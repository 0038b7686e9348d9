"""The workflows' structure, read from the parsed YAML (and their raw lines for pins).

ci-cd.yml: five stage jobs, the affected layers only, and the security review between the last
two when a change broadens access. drift.yml: one job per layer, then the issue.
"""

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
from shared.settings import environments

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
WORKFLOW = WORKFLOWS / "ci-cd.yml"
DRIFT = WORKFLOWS / "drift.yml"
PULL_REQUEST = WORKFLOWS / "pull-request.yml"
JOBS = ["Source", "Build", "Test", "SecurityScan", "Deploy"]
"""The five stages of the pipeline, in order (the original requirement)."""
REVIEW = "SecurityReview"
"""Not a stage: the approval a broadening change waits for between SecurityScan and Deploy."""
ALL_JOBS = ["Source", "Build", "Test", "SecurityScan", REVIEW, "Deploy"]
AWS_JOBS = {"Build", "Deploy"}
"""The jobs that reach AWS (preview and deploy), and so the only ones with id-token: write."""
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<rest>.*)$")
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"^\s+#\s+v\d+\.\d+\.\d+(\s|$)")


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def drift() -> dict[str, Any]:
    return yaml.safe_load(DRIFT.read_text(encoding="utf-8"))


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


def test_five_stage_jobs_chained_in_order_with_the_review_between_the_last_two(workflow):
    assert list(jobs(workflow)) == ALL_JOBS
    assert [job.get("name") for job in jobs(workflow).values()] == ALL_JOBS
    assert [name for name in jobs(workflow) if name != REVIEW] == JOBS
    for before, after in itertools.pairwise(JOBS):
        needs = jobs(workflow)[after]["needs"]
        needs = needs if isinstance(needs, list) else [needs]
        # Deploy also reads Source's outputs and waits for the review (skipped or approved).
        assert needs == ([before, REVIEW, "Source"] if after == "Deploy" else [before])
    assert jobs(workflow)[REVIEW]["needs"] == ["SecurityScan", "Source"]
    assert "needs" not in jobs(workflow)["Source"]


def test_a_job_after_a_skipped_build_still_runs_but_never_after_a_failure(workflow):
    # A skipped job skips everything after it unless the condition says otherwise.
    for name in ("Test", "SecurityScan"):
        assert jobs(workflow)[name]["if"] == "${{ !cancelled() && !failure() }}", name
    # A skipped review (nothing broadened) lets Deploy run; a rejected one fails: no deploy.
    for name in (REVIEW, "Deploy"):
        condition = jobs(workflow)[name]["if"]
        assert condition.startswith(
            "${{ !cancelled() && !failure() && needs.Source.outputs.any == 'true'"
        ), name


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
            # Build previews with the preview role; only Deploy (in the production environment,
            # which the deploy role's trust names) assumes the deploy role.
            role = "AWS_ROLE_ARN" if name == "Deploy" else "PREVIEW_ROLE_ARN"
            assert len(assume) == 1, name
            assert assume[0]["with"] == {
                "role-to-assume": f"${{{{ vars.{role} }}}}",
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
    deploy = "./dev deploy --env prod --yes --changed"
    assert runs.index(deploy) < runs.index("./dev verify --env prod")
    assert "./dev outputs --env prod" in runs


def test_source_computes_the_affected_layers_as_job_outputs(workflow):
    source = jobs(workflow)["Source"]
    (step,) = [s for s in steps(workflow, "Source") if s.get("id") == "affected"]
    assert step["run"] == (
        './dev affected --base "$BASE" --json --outputs-file "$GITHUB_OUTPUT"'
        ' --summary-file "$GITHUB_STEP_SUMMARY"'
    )
    # The push's previous head; a force-push (whose previous head is gone from the clone) and
    # nothing (a manual run) name no commit: every layer.
    assert step["env"]["BASE"] == (
        "${{ github.event.forced && 'none' || github.event.before || 'none' }}"
    )
    assert source["outputs"] == {
        "layers": "${{ steps.affected.outputs.layers }}",
        "any": "${{ steps.affected.outputs.any }}",
        "gate": "${{ steps.diff.outputs.gate }}",
    }


def test_a_broadening_change_waits_for_the_security_review_before_deploy(workflow):
    (step,) = [s for s in steps(workflow, "Source") if s.get("id") == "diff"]
    assert step["run"] == (
        './dev diff --base "$BASE" --all-envs --json --outputs-file "$GITHUB_OUTPUT"'
        ' --summary-file "$GITHUB_STEP_SUMMARY"'
    )
    assert step["env"]["BASE"] == "${{ github.event.before || 'none' }}"  # as affected's
    review = jobs(workflow)[REVIEW]
    assert review["environment"] == "security-review"
    assert review["environment"] != jobs(workflow)["Deploy"]["environment"]
    assert "&& needs.Source.outputs.gate == 'true'" in review["if"]
    assert "needs.Source.outputs.gate" not in jobs(workflow)["Deploy"]["if"]
    assert [s["run"] for s in steps(workflow, REVIEW) if "run" in s] == [
        './dev diff --base "$BASE" --all-envs'
    ]


def test_build_previews_only_the_affected_layers_in_a_matrix(workflow):
    build = jobs(workflow)["Build"]
    assert build["if"] == "needs.Source.outputs.any == 'true'"
    assert build["strategy"]["matrix"]["layer"] == "${{ fromJSON(needs.Source.outputs.layers) }}"
    (preview,) = [s for s in steps(workflow, "Build") if "preview" in s.get("run", "")]
    assert preview["env"]["LAYER"] == "${{ matrix.layer }}"
    assert preview["run"] == './dev preview --layer "$LAYER" --env prod'


def test_the_jobs_that_compare_commits_check_out_the_whole_history(workflow):
    for name in ("Source", REVIEW, "Deploy"):
        (checkout,) = [
            s for s in steps(workflow, name) if s.get("uses", "").startswith("actions/checkout@")
        ]
        assert checkout["with"]["fetch-depth"] == 0, name


def test_the_pulumi_cli_is_installed_where_pulumi_runs_at_the_sdk_version(workflow):
    for name in AWS_JOBS:
        setups = [s for s in steps(workflow, name) if s.get("uses", "").startswith("pulumi/")]
        assert [s["with"] for s in setups] == [{"pulumi-version-file": ".pulumi.version"}]
    pinned = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    sdk = next(d for d in pinned["project"]["dependencies"] if d.startswith("pulumi=="))
    cli = (REPO_ROOT / ".pulumi.version").read_text(encoding="utf-8").strip()
    assert sdk == f"pulumi=={cli}"


@pytest.mark.parametrize("path", [WORKFLOW, DRIFT, PULL_REQUEST], ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_sha_with_a_version_comment(path):
    found = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = USES.match(line)
        if not match:
            continue
        found += 1
        assert PINNED.match(match["ref"]), f"line {number}: {match['ref']} is not pinned by SHA"
        assert VERSION_COMMENT.match(match["rest"]), f"line {number}: no '# vX.Y.Z' comment"
    assert found >= len(JOBS)


def test_every_checkout_leaves_no_credentials_behind(workflow):
    checkouts = [s for s in steps(workflow) if s.get("uses", "").startswith("actions/checkout@")]
    assert len(checkouts) == len(ALL_JOBS)
    assert all(s["with"]["persist-credentials"] is False for s in checkouts)


@pytest.mark.parametrize("name", ["workflow", "drift"])
def test_every_run_step_calls_an_invoke_task(name, request):
    commands = [s["run"] for s in steps(request.getfixturevalue(name)) if "run" in s]
    assert commands
    available = set(tasks_in_collection())
    for command in commands:
        assert command.startswith("./dev "), command
        assert "\n" not in command.strip(), command
        task = command.split()[1]
        assert task == "--list" or task in available, command


def test_the_tests_run_in_the_test_job_and_lint_in_the_source_job(workflow):
    assert [s["run"].split()[:2] for s in steps(workflow, "Source") if "run" in s] == [
        ["./dev", "lint"],
        ["./dev", "affected"],
        ["./dev", "diff"],
    ]
    assert [s["run"] for s in steps(workflow, "Test") if "run" in s] == ["./dev test"]
    assert [s["run"] for s in steps(workflow, "SecurityScan") if "run" in s] == ["./dev scan"]


def tasks_in_collection() -> list[str]:
    from invoke import Collection

    return list(Collection.from_module(tasks).task_names)


def test_the_ci_script_runs_the_readmes_command_lint_then_the_tests():
    steps = Path(REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert "set -euo pipefail" in steps
    assert [line for line in steps if line.startswith("./dev")] == ["./dev lint", "./dev test"]
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "./dev lint && ./dev test" in readme


# -- drift.yml ------------------------------------------------------------------------------------


def test_drift_runs_daily_and_by_hand_for_any_environment(drift):
    on = triggers(drift)
    assert set(on) == {"schedule", "workflow_dispatch"}
    (schedule,) = on["schedule"]
    minute, hour, *rest = schedule["cron"].split()
    assert rest == ["*", "*", "*"] and minute.isdigit() and hour.isdigit()  # once a day
    choice = on["workflow_dispatch"]["inputs"]["environment"]
    assert choice["type"] == "choice"
    assert sorted(choice["options"]) == sorted(environments())
    assert drift["env"]["ENVIRONMENT"] == "${{ inputs.environment || 'prod' }}"


def test_drift_checks_each_layer_of_the_graph_in_its_own_job(drift):
    detect = jobs(drift)["Detect"]
    assert detect["strategy"]["matrix"]["layer"] == list(names())
    assert detect["strategy"]["fail-fast"] is False
    (run,) = [s for s in steps(drift, "Detect") if "run" in s and "drift" in s["run"]]
    assert run["env"]["LAYER"] == "${{ matrix.layer }}"
    assert run["run"] == (
        './dev drift --env "$ENVIRONMENT" --layer "$LAYER" --report "build/drift/$LAYER.json"'
    )
    (upload,) = [s for s in steps(drift, "Detect") if "upload-artifact" in s.get("uses", "")]
    assert upload["if"] == "${{ !cancelled() }}"  # drift exits 2: the report still goes on
    assert upload["with"]["path"] == "build/drift/"


def test_drift_uses_a_read_only_role_and_only_the_issue_job_writes_issues(drift):
    assert drift["permissions"] == {}
    assert jobs(drift)["Detect"]["permissions"] == {"contents": "read", "id-token": "write"}
    assert jobs(drift)["Issue"]["permissions"] == {"contents": "read", "issues": "write"}
    (assume,) = [s for s in steps(drift) if "configure-aws-credentials" in s.get("uses", "")]
    assert assume["with"]["role-to-assume"] == "${{ vars.DRIFT_ROLE_ARN }}"
    assert [s for s in steps(drift, "Issue") if "aws" in s.get("uses", "")] == []


def test_each_environment_is_checked_with_its_own_github_environments_role_and_region(drift):
    from toolbox.bootstrap import DRIFT, subjects

    detect = jobs(drift)["Detect"]
    # The schedule checks prod, a manual run the environment picked: as ENVIRONMENT does.
    assert detect["environment"] == "drift-${{ inputs.environment || 'prod' }}"
    (assume,) = [s for s in steps(drift) if "configure-aws-credentials" in s.get("uses", "")]
    assert assume["with"] == {
        "role-to-assume": "${{ vars.DRIFT_ROLE_ARN }}",  # the GitHub environment's variables
        "aws-region": "${{ vars.AWS_REGION }}",
    }
    assert "environment" not in jobs(drift)["Issue"]  # no AWS, so no environment's variables
    # A job bound to an environment gets that environment as its OIDC subject, not its ref:
    # each environment's drift role trusts exactly that subject (toolbox/bootstrap.py).
    for environment in environments():
        named = detect["environment"].replace("${{ inputs.environment || 'prod' }}", environment)
        assert subjects("globex/platform", environment)[DRIFT] == (
            f"repo:globex/platform:environment:{named}",
        )
    assert named == f"drift-{environment}"


def test_the_issue_job_merges_the_reports_and_syncs_the_issue(drift):
    issue = jobs(drift)["Issue"]
    assert issue["needs"] == "Detect"
    assert issue["if"] == "${{ !cancelled() }}"
    (download,) = [s for s in steps(drift, "Issue") if "download-artifact" in s.get("uses", "")]
    assert download["with"] == {"pattern": "drift-*", "path": "build/drift"}
    (run,) = [s for s in steps(drift, "Issue") if "run" in s and "drift" in s["run"]]
    assert run["run"] == './dev drift --env "$ENVIRONMENT" --issue build/drift'
    assert run["env"]["GH_TOKEN"] == "${{ github.token }}"


def test_drift_checkouts_leave_no_credentials_behind(drift):
    checkouts = [s for s in steps(drift) if s.get("uses", "").startswith("actions/checkout@")]
    assert len(checkouts) == 2
    assert all(s["with"]["persist-credentials"] is False for s in checkouts)

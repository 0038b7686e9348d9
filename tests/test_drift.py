"""Drift detection through the recording runner, and the issue action through a recording gh.

Clean, drifted and failing stacks: what ``invoke drift`` prints, the exit code (0, 2, 1), the
JSON report each CI job hands on, and what happens to the environment's issue.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from invoke import Context, Exit
from pulumi.automation import EngineEvent

import tasks
from shared.errors import PlatformError
from tests.test_orchestration import FakeRunner
from toolbox import drift
from toolbox.drift import DriftedResource, EngineEvents, ExitCode, Status

ALL = ("foundation", "registry", "pipeline")

BUCKET = DriftedResource(
    urn="urn:pulumi:prod::platform-foundation::aws:s3/bucketVersioning:BucketVersioning::artifacts",
    type="aws:s3/bucketVersioning:BucketVersioning",
    op="update",
    properties=("versioningConfiguration.status (update)",),
)
LOGS = DriftedResource(
    urn="urn:pulumi:prod::platform-pipeline::aws:cloudwatch/logGroup:LogGroup::pipeline-build-logs",
    type="aws:cloudwatch/logGroup:LogGroup",
    op="delete",
)


def deployed_runner(**drifted: list[DriftedResource]) -> FakeRunner:
    """Every layer's stack exists; ``drifted`` is what each refresh preview finds."""
    return FakeRunner(exports={}, stacks={layer: {} for layer in ALL}, drifted=dict(drifted))


# -- reading the engine's events ------------------------------------------------------------------


def outputs_event(urn: str, op: str, **metadata) -> EngineEvent:
    kind = urn.split("::")[2]
    return EngineEvent.from_json(
        {
            "sequence": 3,
            "resOutputsEvent": {
                "metadata": {"op": op, "urn": urn, "type": kind, "provider": "", **metadata}
            },
        }
    )


def test_events_give_the_changed_and_the_vanished_resources_with_their_properties():
    events = EngineEvents()
    events(
        EngineEvent.from_json(
            {"resourcePreEvent": {"metadata": {"op": "refresh", "urn": BUCKET.urn, "type": "t"}}}
        )
    )
    events(outputs_event("urn:pulumi:prod::p::aws:kms/key:Key::key", "same"))
    events(
        outputs_event(
            BUCKET.urn,
            "update",
            diffs=["versioningConfiguration"],
            detailedDiff={"versioningConfiguration.status": {"diffKind": "update"}},
        )
    )
    events(outputs_event(LOGS.urn, "delete"))

    assert events.drifted() == [BUCKET, LOGS]
    assert events.failures == []


def test_events_of_an_engine_that_reports_the_refresh_step_itself():
    events = EngineEvents()
    events(outputs_event(LOGS.urn, "refresh"))  # no new state: gone
    events(outputs_event(BUCKET.urn, "refresh", new={"urn": BUCKET.urn}, diffs=["tags"]))
    key = "urn:pulumi:prod::p::aws:kms/key:Key::key"
    events(outputs_event(key, "refresh", new={"urn": key}))  # read back, no diff: same

    assert [(r.name, r.op, r.properties) for r in events.drifted()] == [
        ("artifacts", "update", ("tags",)),
        ("pipeline-build-logs", "delete", ()),
    ]


# -- detect: clean, drifted, failing --------------------------------------------------------------


def test_clean_stacks_exit_zero():
    runner = deployed_runner()

    report = drift.detect(runner, "prod")

    assert runner.ops("refresh_preview") == list(ALL)
    assert report.exit_code is ExitCode.CLEAN
    assert report.lines() == [
        "drift prod:",
        "  clean    foundation  organization/platform-foundation/prod",
        "  clean    registry    organization/platform-registry/prod",
        "  clean    pipeline    organization/platform-pipeline/prod",
    ]
    assert report.summary() == "no drift in prod"


def test_drifted_stacks_exit_two_and_name_each_resource_and_property():
    report = drift.detect(deployed_runner(foundation=[BUCKET], pipeline=[LOGS]), "prod")

    assert report.exit_code == 2
    assert report.with_status(Status.DRIFTED) == ("foundation", "pipeline")
    text = "\n".join(report.lines())
    assert (
        "  DRIFTED  foundation  organization/platform-foundation/prod: 1 resource(s) drifted\n"
        "      update aws:s3/bucketVersioning:BucketVersioning artifacts:"
        " versioningConfiguration.status (update)\n"
        "  clean    registry"
    ) in text
    assert "      delete aws:cloudwatch/logGroup:LogGroup pipeline-build-logs" in text
    assert report.summary() == "drift in prod: foundation, pipeline (see above)"


def test_a_stack_that_cannot_be_checked_exits_one_even_beside_drift():
    runner = deployed_runner(foundation=[BUCKET])
    runner.fail[("refresh_preview", "registry")] = "cannot check for drift in x: AccessDenied"

    report = drift.detect(runner, "prod")

    assert report.exit_code is ExitCode.ERROR
    assert runner.ops("refresh_preview") == list(ALL)  # one failure does not stop the others
    assert "  FAILED   registry    organization/platform-registry/prod: cannot check" in (
        "\n".join(report.lines())
    )
    assert report.summary() == "drift check of prod failed for registry"


def test_a_stack_not_deployed_is_skipped_not_an_error():
    runner = FakeRunner(exports={}, stacks={"foundation": {}})

    report = drift.detect(runner, "prod")

    assert report.with_status(Status.SKIPPED) == ("registry", "pipeline")
    assert report.exit_code is ExitCode.CLEAN
    assert runner.ops("refresh_preview") == ["foundation"]


def test_one_layer_only():
    runner = deployed_runner()

    report = drift.detect(runner, "prod", "registry")

    assert runner.ops("refresh_preview") == ["registry"]
    assert [entry.layer for entry in report.layers] == ["registry"]


# -- the task -------------------------------------------------------------------------------------


@pytest.fixture
def task_runner(monkeypatch) -> FakeRunner:
    runner = deployed_runner()
    monkeypatch.setattr(tasks, "_runner", lambda: runner)
    return runner


def test_the_task_exits_zero_when_clean(task_runner, capsys):
    tasks.drift(Context(), env="prod")

    assert capsys.readouterr().out.splitlines()[-1] == "no drift in prod"


def test_the_task_exits_two_on_drift_and_writes_the_report(task_runner, tmp_path, capsys):
    task_runner.drifted["foundation"] = [BUCKET]
    path = tmp_path / "drift" / "foundation.json"

    with pytest.raises(Exit) as stopped:
        tasks.drift(Context(), env="prod", layer="foundation", report=str(path))

    assert stopped.value.code == 2
    assert stopped.value.message == "error: drift in prod: foundation (see above)"
    assert "versioningConfiguration.status (update)" in capsys.readouterr().out
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["environment"] == "prod"
    assert saved["layers"][0]["status"] == "DRIFTED"
    assert saved["layers"][0]["resources"][0]["urn"] == BUCKET.urn


def test_the_task_exits_one_when_a_stack_fails(task_runner):
    task_runner.fail[("refresh_preview", "pipeline")] = "cannot check for drift in p: expired token"

    with pytest.raises(Exit) as stopped:
        tasks.drift(Context(), env="prod")

    assert stopped.value.code == 1
    assert stopped.value.message == "error: drift check of prod failed for pipeline"


def test_the_task_rejects_an_unknown_layer_before_touching_a_stack(task_runner):
    with pytest.raises(Exit) as stopped:
        tasks.drift(Context(), env="prod", layer="network")

    assert stopped.value.code == 1
    assert "unknown layer 'network'" in stopped.value.message
    assert task_runner.calls == []


# -- merging the per-layer reports (one per CI job) -----------------------------------------------


def save_layers(folder: Path, runner: FakeRunner, *layers: str) -> None:
    for layer in layers:
        drift.detect(runner, "prod", layer).save(folder / f"drift-{layer}" / f"{layer}.json")


def test_merged_reports_are_in_dependency_order(tmp_path):
    save_layers(tmp_path, deployed_runner(pipeline=[LOGS]), "pipeline", "foundation", "registry")

    report = drift.merge_reports(tmp_path, "prod")

    assert [entry.layer for entry in report.layers] == list(ALL)
    assert report.layers[2].resources == (LOGS,)
    assert report.exit_code is ExitCode.DRIFTED


def test_a_layer_without_a_report_counts_as_failed(tmp_path):
    save_layers(tmp_path, deployed_runner(), "foundation", "pipeline")

    report = drift.merge_reports(tmp_path, "prod")

    assert report.with_status(Status.FAILED) == ("registry",)
    assert report.layers[1].detail == "no report: its drift job ended before writing one"


def test_a_report_of_another_environment_is_refused(tmp_path):
    drift.detect(deployed_runner(), "dev", "foundation").save(tmp_path / "foundation.json")

    with pytest.raises(PlatformError, match="a drift report of 'dev', not of 'prod'"):
        drift.merge_reports(tmp_path, "prod")


# -- the issue: one per environment ---------------------------------------------------------------


@dataclass
class RecordingGh:
    """Stands in for the gh CLI: an issue list to answer with, and every call recorded."""

    issues: list[dict] = field(default_factory=list)
    calls: list[tuple[str, ...]] = field(default_factory=list)

    def __call__(self, *args: str) -> str:
        self.calls.append(args)
        if args[:2] == ("issue", "list"):
            return json.dumps(self.issues)
        if args[:2] == ("issue", "create"):
            return "https://github.com/acme/container-platform/issues/41\n"
        return ""

    def verbs(self) -> list[str]:
        return [call[1] for call in self.calls]


def report_of(**drifted: list[DriftedResource]) -> drift.DriftReport:
    return drift.detect(deployed_runner(**drifted), "prod")


OPEN_ISSUE = {"number": 7, "title": "Drift detected in prod"}


def test_drift_opens_the_environment_issue_with_the_report():
    gh = RecordingGh(issues=[{"number": 3, "title": "Drift detected in prod (old)"}])

    action = drift.sync_issue(report_of(foundation=[BUCKET]), gh, "https://ci/run/1")

    assert gh.verbs() == ["list", "create"]
    create = gh.calls[1]
    assert create[2:4] == ("--title", "Drift detected in prod")
    body = create[create.index("--body") + 1]
    assert "### foundation (`organization/platform-foundation/prod`): DRIFTED" in body
    assert "`versioningConfiguration.status (update)`" in body
    assert "Found by https://ci/run/1" in body
    assert action.line() == "drift issue #41: opened (drifted: foundation)"


def test_drift_again_updates_the_open_issue_instead_of_opening_another():
    gh = RecordingGh(issues=[OPEN_ISSUE])

    action = drift.sync_issue(report_of(pipeline=[LOGS]), gh)

    assert gh.verbs() == ["list", "edit"]
    assert gh.calls[1][2] == "7"
    assert "pipeline-build-logs" in gh.calls[1][4]
    assert (action.action, action.number) == ("updated", 7)


def test_a_clean_run_closes_the_open_issue():
    gh = RecordingGh(issues=[OPEN_ISSUE])

    action = drift.sync_issue(report_of(), gh, "https://ci/run/2")

    assert gh.calls[1] == (
        "issue", "close", "7", "--comment", "No drift in prod any more. Checked by https://ci/run/2",
    )  # fmt: skip
    assert action.line() == "drift issue #7: closed (no drift)"


def test_a_clean_run_without_an_issue_does_nothing():
    gh = RecordingGh()

    assert drift.sync_issue(report_of(), gh).action == "none"
    assert gh.verbs() == ["list"]


def test_a_failed_check_leaves_the_issue_as_it_is():
    runner = deployed_runner()
    runner.fail[("refresh_preview", "registry")] = "expired token"
    gh = RecordingGh(issues=[OPEN_ISSUE])

    action = drift.sync_issue(drift.detect(runner, "prod"), gh)

    assert gh.verbs() == ["list"]  # neither closed (we do not know) nor edited
    assert (
        action.line() == "drift issue #7: none (not every layer was checked (registry); left as is)"
    )


def test_the_task_merges_the_reports_and_acts_on_the_issue(tmp_path, monkeypatch, capsys):
    save_layers(tmp_path, deployed_runner(registry=[BUCKET]), *ALL)
    gh = RecordingGh()
    monkeypatch.setattr(drift, "gh", gh)
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/container-platform")
    monkeypatch.setenv("GITHUB_RUN_ID", "99")

    tasks.drift(Context(), env="prod", issue=str(tmp_path))

    assert gh.verbs() == ["list", "create"]
    assert "Found by https://github.com/acme/container-platform/actions/runs/99" in gh.calls[1][5]
    assert capsys.readouterr().out.splitlines()[-1] == (
        "drift issue #41: opened (drifted: registry)"
    )


def test_a_gh_failure_is_one_line(tmp_path, monkeypatch):
    save_layers(tmp_path, deployed_runner(registry=[BUCKET]), *ALL)

    def failing(*args: str) -> str:
        raise PlatformError("gh issue list failed: HTTP 401: Bad credentials")

    monkeypatch.setattr(drift, "gh", failing)

    with pytest.raises(Exit) as stopped:
        tasks.drift(Context(), env="prod", issue=str(tmp_path))

    assert stopped.value.message == "error: gh issue list failed: HTTP 401: Bad credentials"

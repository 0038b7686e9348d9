"""Order and safety of deploy/preview/refresh/outputs/destroy, driven through a recording runner.

The fake runner stands in for Pulumi only: a deployed stack exports what the layer's real program
exports under the offline plan's mocks (the ``dev`` fixture), so the upstream checks run against
real contract keys. The thin real adapter (toolbox/automation.py) is tested below with a stand-in
``Stack`` object, since the CLI is not on this machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from invoke import Context, Exit

from shared.errors import ConfigError, PlatformError
from shared.layers import UnknownLayerError, names
from toolbox import automation, drift, orchestration
from toolbox.automation import CLI_MISSING, PulumiRunner
from toolbox.offline import LayerPlan
from toolbox.orchestration import Status

ORG = "organization"


def stack(layer: str, env: str = "dev") -> str:
    """The stack name as a user reads it in platform.yaml's organization and Pulumi.yaml."""
    return f"{ORG}/platform-{layer}/{env}"


@dataclass
class FakeRunner:
    """Records every call; ``up`` makes the stack export what the real program exports.

    Like a stack's tag and history: ``commits`` holds what ``set_deployed_commit`` recorded, and
    a failed ``up`` marks the layer's latest operation failed until the next successful one.
    ``drifted`` is what a refresh preview of each stack finds.
    """

    exports: dict[str, dict[str, Any]]
    stacks: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail: dict[tuple[str, str], str] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    commits: dict[str, str] = field(default_factory=dict)
    last_failed: set[str] = field(default_factory=set)
    drifted: dict[str, list[Any]] = field(default_factory=dict)

    def _maybe_fail(self, op: str, layer: str) -> None:
        self.calls.append((op, layer))
        if (op, layer) in self.fail:
            raise PlatformError(self.fail[(op, layer)])

    def exists(self, layer: str, env: str) -> bool:
        self.calls.append(("exists", layer))
        return layer in self.stacks

    def outputs(self, layer: str, env: str) -> dict[str, Any]:
        self.calls.append(("outputs", layer))
        return dict(self.stacks[layer])

    def preview(self, layer: str, env: str) -> None:
        self._maybe_fail("preview", layer)

    def up(self, layer: str, env: str, yes: bool) -> None:
        try:
            self._maybe_fail("up", layer)
        except PlatformError:
            self.last_failed.add(layer)
            raise
        self.last_failed.discard(layer)
        self.stacks[layer] = dict(self.exports[layer])

    def refresh(self, layer: str, env: str) -> None:
        self._maybe_fail("refresh", layer)

    def destroy(self, layer: str, env: str) -> None:
        self._maybe_fail("destroy", layer)
        del self.stacks[layer]

    def deployed_commit(self, layer: str, env: str) -> str | None:
        self.calls.append(("deployed_commit", layer))
        if layer not in self.stacks or layer in self.last_failed:
            return None
        return self.commits.get(layer)

    def set_deployed_commit(self, layer: str, env: str, commit: str) -> None:
        self._maybe_fail("set_deployed_commit", layer)
        self.commits[layer] = commit

    def refresh_preview(self, layer: str, env: str, on_event: Callable[[Any], None]) -> None:
        """Hands the engine's outputs event of each drifted resource to ``on_event``, then
        exits non-zero if any drifted, as ``--expect-no-changes`` makes the CLI do."""
        from pulumi.automation import EngineEvent

        self._maybe_fail("refresh_preview", layer)
        found = self.drifted.get(layer, ())
        for resource in found:
            metadata = {"op": resource.op, "urn": resource.urn, "type": resource.type}
            on_event(
                EngineEvent.from_json(
                    {
                        "resOutputsEvent": {
                            "metadata": {
                                **metadata,
                                "provider": "",
                                "diffs": list(resource.properties),
                            }
                        }
                    }
                )
            )
        if found:
            raise PlatformError("no changes were expected but changes were proposed")

    def ops(self, op: str) -> list[str]:
        return [layer for name, layer in self.calls if name == op]


@pytest.fixture
def runner(dev: dict[str, LayerPlan]) -> FakeRunner:
    """No stack deployed yet; deploying a layer gives it its real exports."""
    return FakeRunner(exports={name: dict(plan.exports) for name, plan in dev.items()})


def deployed(runner: FakeRunner, *layers: str) -> FakeRunner:
    for layer in layers:
        runner.stacks[layer] = dict(runner.exports[layer])
    return runner


# -- deploy ------------------------------------------------------------------------------------


def test_deploy_without_layer_applies_every_layer_in_dependency_order(runner):
    report = orchestration.deploy(runner, "dev")

    assert runner.ops("up") == list(names()) == ["foundation", "registry", "pipeline"]
    assert report.ok
    assert report.layers(Status.APPLIED) == ("foundation", "registry", "pipeline")
    assert report.summary() == "deploy dev: done"


def test_deploy_one_layer_checks_its_upstream_stacks_and_deploys_only_it(runner):
    deployed(runner, "foundation", "registry")

    report = orchestration.deploy(runner, "dev", "pipeline", yes=True)

    assert runner.ops("up") == ["pipeline"]
    assert set(runner.ops("exists")) >= {"foundation", "registry"}
    assert set(runner.ops("outputs")) == {"foundation", "registry"}
    assert report.layers(Status.APPLIED) == ("pipeline",)


def test_deploy_one_layer_stops_when_an_upstream_stack_is_missing(runner):
    report = orchestration.deploy(runner, "dev", "registry")

    assert runner.ops("up") == []
    assert not report.ok
    detail = report.failure.detail
    assert f"upstream stack {stack('foundation')} does not exist" in detail
    assert "`./dev deploy --layer foundation --env dev`" in detail
    assert "\n" not in report.summary()


def test_deploy_one_layer_stops_when_an_upstream_export_is_missing(runner):
    deployed(runner, "foundation", "registry")
    del runner.stacks["foundation"]["kmsKeyArn"]

    report = orchestration.deploy(runner, "dev", "pipeline")

    assert runner.ops("up") == []
    detail = report.failure.detail
    assert stack("foundation") in detail
    assert "'kmsKeyArn'" in detail
    assert "./dev deploy --layer foundation --env dev" in detail


def test_deploy_stops_at_the_first_failure_and_reports_what_was_and_was_not_applied(runner):
    runner.fail[("up", "registry")] = "cannot deploy organization/platform-registry/dev: boom"

    report = orchestration.deploy(runner, "dev")

    assert runner.ops("up") == ["foundation", "registry"]
    assert report.layers(Status.APPLIED) == ("foundation",)
    assert report.layers(Status.FAILED) == ("registry",)
    assert report.layers(Status.NOT_RUN) == ("pipeline",)
    # A plain error of the runner comes before any change (the adapter's faults say otherwise).
    assert report.summary() == (
        "deploy dev failed at registry (untouched): cannot deploy"
        " organization/platform-registry/dev: boom; resume: `./dev deploy --env dev --changed`"
    )
    text = "\n".join(report.lines())
    assert "applied   foundation  organization/platform-foundation/dev (deployed)" in text
    assert "not run   pipeline    organization/platform-pipeline/dev (untouched)" in text


def test_each_successful_up_records_its_commit_on_the_stack(runner):
    commits = {"foundation": "a" * 40, "registry": "b" * 40, "pipeline": "c" * 40 + "-dirty"}

    report = orchestration.deploy(runner, "dev", commits=commits)

    assert runner.commits == commits
    assert runner.ops("set_deployed_commit") == ["foundation", "registry", "pipeline"]
    assert report.steps[0].detail == "recorded commit aaaaaaaaaaaa"
    assert report.steps[2].detail == "recorded commit cccccccccccc-dirty"


def test_a_failed_up_records_nothing_and_keeps_the_old_record(runner):
    deployed(runner, "foundation")
    runner.commits["foundation"] = "old"
    runner.fail[("up", "registry")] = "boom"

    orchestration.deploy(runner, "dev", commits={"foundation": "new", "registry": "new"})

    assert runner.commits == {"foundation": "new"}
    assert runner.deployed_commit("registry", "dev") is None


def test_a_commit_that_cannot_be_recorded_does_not_undo_the_deploy(runner):
    runner.fail[("set_deployed_commit", "foundation")] = "cannot tag: denied"

    report = orchestration.deploy(runner, "dev", commits={"foundation": "f" * 40})

    assert report.ok
    assert runner.ops("up") == ["foundation", "registry", "pipeline"]
    assert report.steps[0].detail == "deployed, but the commit was not recorded: cannot tag: denied"


def test_skipped_layers_are_not_deployed_and_say_why(runner):
    deployed(runner, "foundation")

    report = orchestration.deploy(
        runner, "dev", skip={"foundation": "unchanged since 0123456789ab"}
    )

    assert runner.ops("up") == ["registry", "pipeline"]
    assert report.layers(Status.SKIPPED) == ("foundation",)
    assert "skipped   foundation  organization/platform-foundation/dev (deployed): unchanged" in (
        "\n".join(report.lines())
    )


# -- preview, refresh, outputs -------------------------------------------------------------------


def test_preview_runs_deployed_layers_and_skips_those_that_cannot_be_previewed_yet(runner):
    deployed(runner, "foundation")

    report = orchestration.preview(runner, "dev")

    assert runner.ops("preview") == ["foundation"]
    assert report.ok
    assert report.layers(Status.PREVIEWED) == ("foundation",)
    assert report.layers(Status.SKIPPED) == ("registry", "pipeline")
    registry, pipeline = report.steps[1], report.steps[2]
    assert "./dev deploy --layer registry --env dev" in registry.detail
    assert f"upstream stack {stack('registry')} does not exist" in pipeline.detail
    assert runner.ops("up") == []


def test_preview_failure_is_reported_and_the_other_layers_still_previewed(runner):
    deployed(runner, "foundation", "registry", "pipeline")
    runner.fail[("preview", "registry")] = "cannot preview registry: bad config"

    report = orchestration.preview(runner, "dev")

    assert runner.ops("preview") == ["foundation", "registry", "pipeline"]
    assert report.layers(Status.FAILED) == ("registry",)
    assert not report.ok


def test_refresh_and_outputs_act_on_the_stacks_that_exist(runner):
    deployed(runner, "foundation")

    refreshed = orchestration.refresh(runner, "dev")
    shown = orchestration.outputs(runner, "dev")

    assert runner.ops("refresh") == ["foundation"]
    assert refreshed.layers(Status.SKIPPED) == ("registry", "pipeline")
    assert shown.as_dict() == {
        "foundation": runner.exports["foundation"],
        "registry": None,
        "pipeline": None,
    }
    assert f"registry ({stack('registry')}): not deployed" in shown.lines()


# -- destroy -------------------------------------------------------------------------------------


def test_destroy_without_layer_goes_in_reverse_dependency_order(runner):
    deployed(runner, "foundation", "registry", "pipeline")

    report = orchestration.destroy(runner, "dev")

    assert runner.ops("destroy") == ["pipeline", "registry", "foundation"]
    assert report.layers(Status.DESTROYED) == ("pipeline", "registry", "foundation")


def test_destroy_refuses_a_layer_while_a_downstream_stack_exists(runner):
    deployed(runner, "foundation", "registry", "pipeline")

    with pytest.raises(PlatformError) as refused:
        orchestration.destroy(runner, "dev", "registry")

    message = str(refused.value)
    assert stack("pipeline") in message
    assert "./dev destroy --layer pipeline --env dev" in message
    assert "--force" in message
    assert runner.ops("destroy") == []


def test_destroy_with_force_destroys_only_the_named_layer(runner):
    deployed(runner, "foundation", "registry", "pipeline")

    report = orchestration.destroy(runner, "dev", "registry", force=True)

    assert runner.ops("destroy") == ["registry"]
    assert report.layers(Status.DESTROYED) == ("registry",)
    assert "pipeline" in runner.stacks


def test_destroy_stops_at_a_failure_such_as_a_protected_resource(runner):
    deployed(runner, "foundation", "registry", "pipeline")
    runner.fail[("destroy", "registry")] = "resource 'key' is protected"

    report = orchestration.destroy(runner, "dev")

    assert runner.ops("destroy") == ["pipeline", "registry"]
    assert report.layers(Status.NOT_RUN) == ("foundation",)
    assert "protected" in report.summary()


def test_destroy_asks_once_and_destroys_nothing_when_refused(runner):
    deployed(runner, "foundation")
    questions: list[str] = []

    def refuse(question: str) -> bool:
        questions.append(question)
        return False

    with pytest.raises(PlatformError, match="nothing destroyed"):
        orchestration.destroy(runner, "dev", confirm=refuse)

    assert len(questions) == 1
    assert stack("foundation") in questions[0]
    assert runner.ops("destroy") == []


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["deploy", "preview", "refresh", "outputs", "destroy"])
def test_unknown_layer_lists_the_valid_ones_before_touching_any_stack(runner, action):
    with pytest.raises(UnknownLayerError) as error:
        getattr(orchestration, action)(runner, "dev", "network")

    assert str(error.value) == (
        "unknown layer 'network': valid layers are foundation, registry, pipeline"
    )
    assert runner.calls == []


@pytest.mark.parametrize("action", ["deploy", "preview", "refresh", "outputs", "destroy"])
def test_unknown_environment_lists_the_valid_ones_before_touching_any_stack(runner, action):
    with pytest.raises(ConfigError) as error:
        getattr(orchestration, action)(runner, "staging")

    assert "unknown environment 'staging'" in str(error.value)
    assert "dev, prod" in str(error.value)
    assert runner.calls == []


# -- the real adapter, without the CLI ----------------------------------------------------------


def test_missing_pulumi_cli_is_one_line_with_the_install_command(monkeypatch):
    monkeypatch.setattr(automation.shutil, "which", lambda name: None)

    with pytest.raises(automation.MissingToolError) as error:
        PulumiRunner()

    assert str(error.value) == CLI_MISSING
    assert "https://get.pulumi.com" in CLI_MISSING
    assert "./dev synth" in CLI_MISSING


def test_deploy_task_without_the_cli_exits_with_that_one_line(monkeypatch):
    import tasks

    monkeypatch.setattr(automation.shutil, "which", lambda name: None)

    with pytest.raises(Exit) as stopped:
        tasks.deploy(Context(), env="dev")

    assert stopped.value.code == 1
    assert stopped.value.message == f"error: {CLI_MISSING}"


def test_deploy_task_rejects_an_unknown_environment_before_looking_for_the_cli(monkeypatch):
    import tasks

    monkeypatch.setattr(automation.shutil, "which", lambda name: None)

    with pytest.raises(Exit) as stopped:
        tasks.deploy(Context(), env="qa")

    assert "unknown environment 'qa'" in stopped.value.message


def test_state_backend_defaults_to_the_repository_and_honours_pulumi_backend_url():
    assert automation.backend_url({}) == automation.DEFAULT_STATE_DIR.as_uri()
    assert automation.backend_url({}).endswith("/.pulumi-state")
    assert automation.backend_url({"PULUMI_BACKEND_URL": "s3://state"}) == "s3://state"


def test_ci_refuses_the_runner_local_file_backend():
    with pytest.raises(automation.CredentialsError, match="PULUMI_BACKEND_URL is not set"):
        automation.backend_url({"GITHUB_ACTIONS": "true", "PULUMI_BACKEND_URL": ""})


def test_secrets_need_a_passphrase_or_a_kms_provider_on_a_self_managed_backend():
    for unset in ({}, {"PULUMI_CONFIG_PASSPHRASE": ""}):
        with pytest.raises(automation.CredentialsError, match="PULUMI_CONFIG_PASSPHRASE"):
            automation.check_secrets("foundation", "dev", unset)

    automation.check_secrets("foundation", "dev", {"PULUMI_CONFIG_PASSPHRASE": "x"})
    automation.check_secrets("foundation", "dev", {"PULUMI_CONFIG_PASSPHRASE_FILE": "/p"})
    automation.check_secrets(
        "foundation", "dev", {"PULUMI_SECRETS_PROVIDER": "awskms://alias/platform-state"}
    )
    automation.check_secrets("foundation", "dev", {"PULUMI_BACKEND_URL": "https://api.pulumi.com"})
    assert (
        automation.secrets_provider(
            "foundation", "dev", {"PULUMI_SECRETS_PROVIDER": "awskms://alias/k"}
        )
        == "awskms://alias/k"
    )


@dataclass
class StandInStack:
    """What PulumiRunner uses of ``pulumi.automation.Stack``, recording each call.

    ``history`` and ``tags`` answer like ``pulumi stack history --json`` and ``stack tag ls``;
    ``events`` are fed to a refresh preview's ``on_event``, which then fails with ``failure``
    (a CLI exit code) if one is set.
    """

    name: str
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    lines: tuple[str, ...] = ("Updating (dev)\n", "Resources: 3 created\n")
    history_results: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    events: tuple[dict[str, Any], ...] = ()
    failure: str | None = None

    @property
    def workspace(self) -> StandInStack:
        return self

    def _op(self, op: str, kwargs: dict[str, Any]) -> None:
        self.calls.append((op, kwargs))
        for line in self.lines:
            kwargs["on_output"](line)

    def up(self, **kwargs: Any) -> None:
        self._op("up", kwargs)

    def preview(self, **kwargs: Any) -> None:
        self._op("preview", kwargs)

    def destroy(self, **kwargs: Any) -> None:
        self._op("destroy", kwargs)

    def preview_refresh(self, **kwargs: Any) -> None:
        from pulumi.automation import EngineEvent, errors
        from pulumi.automation._cmd import CommandResult

        self._op("preview_refresh", kwargs)
        for event in self.events:
            kwargs["on_event"](EngineEvent.from_json(event))
        if self.failure is not None:
            raise errors.CommandError(CommandResult(stdout="", stderr=self.failure, code=255))

    def remove_stack(self, name: str, **kwargs: Any) -> None:
        self.calls.append(("remove_stack", {"name": name, **kwargs}))

    def history(self, **kwargs: Any) -> list[Any]:
        from datetime import datetime

        from pulumi.automation import UpdateSummary

        self.calls.append(("history", kwargs))
        started = datetime(2026, 1, 1)
        return [
            UpdateSummary("update", started, "", {}, {}, result, started)
            for result in self.history_results
        ]

    def list_tags(self) -> dict[str, str]:
        self.calls.append(("list_tags", {}))
        return dict(self.tags)

    def set_tag(self, key: str, value: str) -> None:
        self.calls.append(("set_tag", {"key": key, "value": value}))
        self.tags[key] = value

    def outputs(self) -> dict[str, Any]:
        from pulumi.automation import OutputValue

        return {
            "repositoryName": OutputValue("acme-registry-app-dev", False),
            "token": OutputValue("s3cr3t", True),
        }


@pytest.fixture
def adapter(monkeypatch) -> tuple[PulumiRunner, StandInStack, list[str], list[str]]:
    """A PulumiRunner whose stacks are stand-ins; it believes the CLI and credentials exist."""
    monkeypatch.setattr(automation.shutil, "which", lambda name: "/usr/local/bin/pulumi")
    monkeypatch.setattr(automation, "check_aws_credentials", lambda: None)
    echoed: list[str] = []
    asked: list[str] = []
    stand_in = StandInStack(stack("registry"))

    def confirm(question: str) -> bool:
        asked.append(question)
        return False

    runner = PulumiRunner(
        environ={"PULUMI_CONFIG_PASSPHRASE": "test"}, echo=echoed.append, confirm=confirm
    )
    monkeypatch.setattr(runner, "_select", lambda layer, env, create=False: stand_in)
    return runner, stand_in, echoed, asked


def test_adapter_streams_output_prefixed_with_the_layer(adapter):
    runner, stand_in, echoed, _ = adapter

    runner.up("registry", "dev", yes=True)

    assert echoed == ["[registry] Updating (dev)", "[registry] Resources: 3 created"]
    assert [op for op, _ in stand_in.calls] == ["up"]
    assert stand_in.calls[0][1]["show_secrets"] is False


def test_adapter_asks_before_deploying_without_yes_and_stops_when_refused(adapter):
    runner, stand_in, _, asked = adapter

    with pytest.raises(PlatformError, match="pass --yes"):
        runner.up("registry", "dev", yes=False)

    assert asked == [f"Deploy {stack('registry')}?"]
    assert [op for op, _ in stand_in.calls] == ["preview"]


def test_adapter_destroy_never_bypasses_protection_and_keeps_the_stack_config(adapter):
    runner, stand_in, _, _ = adapter

    runner.destroy("registry", "dev")

    (destroy_op, destroy_args), (remove_op, remove_args) = stand_in.calls
    assert destroy_op == "destroy"
    assert not destroy_args.get("exclude_protected")
    assert remove_op == "remove_stack"
    assert remove_args == {"name": stack("registry"), "preserve_config": True}


def test_adapter_outputs_redact_secrets(adapter):
    runner, _, _, _ = adapter

    assert runner.outputs("registry", "dev") == {
        "repositoryName": "acme-registry-app-dev",
        "token": "[secret]",
    }


def test_automation_errors_become_one_line_naming_the_stack():
    from pulumi.automation import errors
    from pulumi.automation._cmd import CommandResult

    failure = CommandResult(
        stdout="Updating...",
        stderr="warning: x\nerror: update failed: AccessDenied on kms:CreateKey\n",
        code=255,
    )
    with pytest.raises(PlatformError) as error, automation._translated("deploy", "org/p/dev"):
        raise errors.CommandError(failure)
    assert str(error.value) == (
        "cannot deploy org/p/dev: error: update failed: AccessDenied on kms:CreateKey"
    )

    with pytest.raises(automation.MissingToolError), automation._translated("deploy", "s"):
        raise FileNotFoundError("pulumi")

    with pytest.raises(PlatformError, match="pulumi cancel"), automation._translated("up", "s"):
        raise errors.ConcurrentUpdateError(failure)


# -- faults while operating: through the real _translated, with the Automation API's types ------

CLI = "PULUMI_BACKEND_URL=s3://acme-state pulumi --cwd stacks/registry"
LOCKED = (
    "error: the stack is currently locked by 1 lock(s). Either wait for the other process(es) to"
    " end or delete the lock file with `pulumi cancel`.\n"
)
"""What the CLI says on a self-managed backend's held lock; the Automation API makes it a
ConcurrentUpdateError (pulumi/automation/errors.py, diy_backend_conflict_text)."""
PENDING = (
    "warning: Attempting to deploy or update resources with 1 pending operations from previous"
    " deployment.\n  * urn:pulumi:dev::platform-registry::aws:ecr/repository:Repository::app,"
    " interrupted while creating\nerror: update failed\n"
)
EXPIRED = (
    "error: 1 error occurred:\n * creating ECR Repository (acme-registry-app-dev): operation"
    " error ECR: CreateRepository, https response error StatusCode: 403, api error"
    " ExpiredTokenException: The security token included in the request is expired\n"
)


def _fault(kind: str, stderr: str) -> BaseException:
    from pulumi.automation import errors
    from pulumi.automation._cmd import CommandResult

    result = CommandResult(stdout="Updating (dev)", stderr=stderr, code=255)
    return errors.create_command_error(result) if kind == "cli" else KeyboardInterrupt()


@dataclass
class FaultyRunner(FakeRunner):
    """A FakeRunner whose ``up`` of one layer raises an Automation API exception once, through
    the real ``_translated`` (as PulumiRunner.up does), with the stack's own CLI prefix."""

    faults: dict[str, BaseException] = field(default_factory=dict)

    def up(self, layer: str, env: str, yes: bool) -> None:
        fault = self.faults.pop(layer, None)
        if fault is None:
            super().up(layer, env, yes)
            return
        self.calls.append(("up", layer))
        self.last_failed.add(layer)
        with automation._translated("deploy", stack(layer, env), cli=CLI):
            raise fault


@pytest.fixture
def faulty(dev: dict[str, LayerPlan]) -> FaultyRunner:
    return FaultyRunner(exports={name: dict(plan.exports) for name, plan in dev.items()})


@pytest.mark.parametrize(
    ("fault", "state", "line"),
    [
        (
            _fault("cli", LOCKED),
            "untouched",
            "cannot deploy organization/platform-registry/dev: another update holds its lock;"
            " wait for it, or if none is running clear the stale lock; resume:"
            f" `{CLI} cancel --yes --stack organization/platform-registry/dev`, then"
            " `./dev deploy --env dev --changed`",
        ),
        (
            _fault("cli", PENDING),
            "interrupted",
            "cannot deploy organization/platform-registry/dev: it holds pending operations of an"
            " interrupted update; check them in AWS, then clear them (the refresh asks about each"
            f" pending create); resume: `{CLI} refresh --stack"
            " organization/platform-registry/dev`, then `./dev deploy --env dev --changed`",
        ),
        (
            _fault("cli", EXPIRED),
            "interrupted",
            "cannot deploy organization/platform-registry/dev: the AWS credentials expired during"
            " the run; resume: renew the AWS credentials (`aws sso login`, or a new role"
            " session), then `./dev deploy --env dev --changed`",
        ),
        (
            _fault("interrupt", ""),
            "interrupted",
            "cannot deploy organization/platform-registry/dev: interrupted; the stack may hold"
            f" pending operations; resume: `{CLI} refresh --stack"
            " organization/platform-registry/dev`, then `./dev deploy --env dev --changed`",
        ),
    ],
    ids=["locked", "pending-operations", "expired-credentials", "interrupted"],
)
def test_a_fault_says_per_layer_the_state_it_left_and_what_resumes(faulty, fault, state, line):
    faulty.faults["registry"] = fault

    try:
        report = orchestration.deploy(faulty, "dev")
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C during an up reached the caller instead of the report")

    assert report.lines() == [
        "deploy dev:",
        "  applied   foundation  organization/platform-foundation/dev (deployed)",
        f"  FAILED    registry    organization/platform-registry/dev ({state}): {line}",
        "  not run   pipeline    organization/platform-pipeline/dev (untouched)",
    ]
    assert report.summary() == f"deploy dev failed at registry ({state}): {line}"


def test_the_rerun_after_a_fault_continues_from_the_first_layer_not_deployed(faulty):
    faulty.faults["registry"] = _fault("cli", PENDING)
    commit = "a" * 40
    every = {name: commit for name in ("foundation", "registry", "pipeline")}
    orchestration.deploy(faulty, "dev", commits=every)
    faulty.calls.clear()

    # What `--changed` reads (tests/test_affected.py: a layer whose latest update failed, or
    # that records no commit, is never skipped; one at the same commit is).
    records = {layer: faulty.deployed_commit(layer, "dev") for layer in every}
    assert records == {"foundation": commit, "registry": None, "pipeline": None}
    skip = {layer: "unchanged" for layer, found in records.items() if found == commit}
    report = orchestration.deploy(faulty, "dev", skip=skip, commits=every)

    assert faulty.ops("up") == ["registry", "pipeline"]
    assert [(s.layer, s.state) for s in report.steps] == [
        ("foundation", "deployed"),
        ("registry", "deployed"),
        ("pipeline", "deployed"),
    ]


def test_a_preview_or_read_that_fails_leaves_the_stack_untouched():
    with pytest.raises(automation.StackFault) as fault, automation._translated("preview", "s"):
        raise _fault("cli", EXPIRED)
    assert fault.value.state == "untouched"
    # Ctrl-C outside a change is not translated: it stops the command as usual.
    with pytest.raises(KeyboardInterrupt), automation._translated("preview", "s"):
        raise KeyboardInterrupt


def test_missing_aws_credentials_are_one_line_and_found_ones_pass(monkeypatch, tmp_path):
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)

    with pytest.raises(automation.CredentialsError, match="no AWS credentials found"):
        automation.check_aws_credentials()

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    automation.check_aws_credentials()


# -- the recorded commit and the refresh preview, through the real adapter -------------------------


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        (("succeeded",), "a" * 40),
        (("failed",), None),  # the latest up failed: the old tag must not be trusted
        (("in-progress",), None),  # interrupted
        ((), None),  # no history at all
    ],
)
def test_adapter_trusts_the_commit_tag_only_after_a_successful_latest_operation(
    adapter, monkeypatch, results, expected
):
    runner, stand_in, _, _ = adapter
    monkeypatch.setattr(runner, "exists", lambda layer, env: True)
    stand_in.history_results = results
    stand_in.tags = {"platform:commit": "a" * 40, "pulumi:project": "platform-registry"}

    assert runner.deployed_commit("registry", "dev") == expected
    assert ("history", {"page_size": 1, "show_secrets": False}) in stand_in.calls


def test_adapter_has_no_commit_for_a_stack_that_does_not_exist(adapter, monkeypatch):
    runner, stand_in, _, _ = adapter
    monkeypatch.setattr(runner, "exists", lambda layer, env: False)

    assert runner.deployed_commit("registry", "dev") is None
    assert stand_in.calls == []


def test_adapter_records_the_commit_as_a_stack_tag(adapter):
    runner, stand_in, _, _ = adapter

    runner.set_deployed_commit("registry", "dev", "b" * 40)

    assert stand_in.calls == [("set_tag", {"key": "platform:commit", "value": "b" * 40})]
    assert automation.COMMIT_TAG == "platform:commit"


REPO_URN = (
    "urn:pulumi:dev::platform-registry::acme:registry:Registry$aws:ecr/repository:Repository"
    "::registry-app"
)
POLICY_URN = (
    "urn:pulumi:dev::platform-registry::aws:ecr/lifecyclePolicy:LifecyclePolicy::registry-lifecycle"
)


def refreshed(urn: str, op: str, **extra: Any) -> dict[str, Any]:
    """A resOutputsEvent as the CLI's event log writes it for one refresh step."""
    kind = urn.split("::")[-2].rsplit("$", maxsplit=1)[-1]
    return {
        "resOutputsEvent": {
            "metadata": {"op": op, "urn": urn, "type": kind, "provider": "", **extra}
        }
    }


def test_adapter_drift_is_a_refresh_preview_that_expects_no_changes(adapter):
    runner, stand_in, echoed, _ = adapter
    stand_in.events = (refreshed(REPO_URN, "same"),)

    assert drift.refresh_preview(runner, "registry", "dev") == []
    ((op, kwargs),) = stand_in.calls
    assert op == "preview_refresh"
    assert kwargs["expect_no_changes"] is True
    assert echoed[0] == "[registry] Updating (dev)"


def test_adapter_drift_reads_the_drifted_resources_even_though_the_cli_exits_non_zero(adapter):
    runner, stand_in, _, _ = adapter
    stand_in.events = (
        refreshed(REPO_URN, "same"),
        refreshed(
            POLICY_URN,
            "update",
            diffs=["policy"],
            detailedDiff={"policy": {"diffKind": "update", "inputDiff": True}},
        ),
    )
    stand_in.failure = "error: no changes were expected but changes were proposed"

    (found,) = drift.refresh_preview(runner, "registry", "dev")

    assert (
        found.line()
        == "update aws:ecr/lifecyclePolicy:LifecyclePolicy registry-lifecycle: policy (update)"
    )


def test_adapter_drift_fails_when_a_resource_could_not_be_read(adapter):
    runner, stand_in, _, _ = adapter
    stand_in.events = (
        refreshed(POLICY_URN, "update", diffs=["policy"]),
        {
            "resOpFailedEvent": {
                "metadata": {"op": "refresh", "urn": REPO_URN, "type": "t", "provider": ""},
                "status": 0,
                "steps": 1,
            }
        },
    )
    stand_in.failure = "error: AccessDeniedException: ecr:DescribeRepositories"

    with pytest.raises(PlatformError) as error:
        drift.refresh_preview(runner, "registry", "dev")

    assert str(error.value) == (
        f"cannot check for drift in {stack('registry')}:"
        " error: AccessDeniedException: ecr:DescribeRepositories"
    )

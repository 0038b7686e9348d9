"""What real runs do first and last: preflight before any stack, the token stop on a first deploy,
and the policy pack on every preview and up. Driven by the recording runner of
test_orchestration.py and a stand-in ``Stack`` that records the Automation API's kwargs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from invoke import Context, Exit

from shared.errors import PlatformError
from tests.test_orchestration import FakeRunner, deployed
from toolbox import automation, orchestration
from toolbox import preflight as preflight_module
from toolbox.automation import PulumiRunner
from toolbox.orchestration import Status
from toolbox.preflight import CheckResult, PreflightReport, Purpose

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def runner(dev) -> FakeRunner:
    return FakeRunner(exports={name: dict(plan.exports) for name, plan in dev.items()})


@dataclass
class RecordingPreflight:
    """Records the layers it was asked about; fails with one line when ``fail`` is set."""

    runner: FakeRunner
    fail: str = ""
    asked: list[tuple[str, ...]] = field(default_factory=list)

    def __call__(self, layers: tuple[str, ...]) -> None:
        self.asked.append(layers)
        # Nothing may have touched a stack before the preflight.
        assert self.runner.calls == []
        if self.fail:
            raise PlatformError(self.fail)


ACTIONS = {
    "deploy": lambda runner, layer, gate: orchestration.deploy(
        runner, "dev", layer, preflight=gate
    ),
    "preview": lambda runner, layer, gate: orchestration.preview(
        runner, "dev", layer, preflight=gate
    ),
    "refresh": lambda runner, layer, gate: orchestration.refresh(
        runner, "dev", layer, preflight=gate
    ),
    "destroy": lambda runner, layer, gate: orchestration.destroy(
        runner, "dev", layer, preflight=gate
    ),
}


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_each_stack_command_runs_preflight_on_its_layers_before_any_stack(runner, action):
    deployed(runner, "foundation", "registry", "pipeline")
    gate = RecordingPreflight(runner)

    ACTIONS[action](runner, None, gate)

    expected = ("pipeline", "registry", "foundation") if action == "destroy" else (
        "foundation", "registry", "pipeline")  # fmt: skip
    assert gate.asked == [expected]
    assert runner.calls  # and then it did its work


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_a_failed_preflight_stops_the_command_before_any_stack_is_touched(runner, action):
    deployed(runner, "foundation", "registry", "pipeline")
    gate = RecordingPreflight(runner, fail="preflight dev failed: aws-account")

    with pytest.raises(PlatformError, match="preflight dev failed: aws-account"):
        ACTIONS[action](runner, "registry", gate)

    assert gate.asked == [("registry",)]
    assert runner.calls == []


# -- the first deploy: stop before the pipeline until the token is stored ----------------------


@dataclass
class FakeToken:
    """Stands in for Preflight.ready: the token secret is empty until ``stored``."""

    stored: bool = False
    seen: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, layer: str, upstream: Mapping[str, Mapping[str, Any]]) -> str | None:
        if layer != "pipeline":
            return None
        arn = upstream["foundation"]["githubTokenSecretArn"]
        self.seen.append((layer, arn))
        if self.stored:
            return None
        return f"the GitHub token secret has no value; store it: `aws ... --secret-id {arn}`"


def test_first_deploy_stops_before_the_pipeline_and_a_rerun_resumes_there(runner):
    token = FakeToken()

    first = orchestration.deploy(runner, "dev", yes=True, ready=token)

    assert runner.ops("up") == ["foundation", "registry"]
    assert first.layers(Status.APPLIED) == ("foundation", "registry")
    assert first.layers(Status.STOPPED) == ("pipeline",)
    assert not first.ok
    arn = runner.exports["foundation"]["githubTokenSecretArn"]
    assert token.seen == [("pipeline", arn)]
    assert first.summary() == (
        "deploy dev stopped before pipeline: the GitHub token secret has no value; store it:"
        f" `aws ... --secret-id {arn}`"
    )
    assert "STOPPED   pipeline" in "\n".join(first.lines())

    token.stored = True
    runner.calls.clear()
    second = orchestration.deploy(runner, "dev", yes=True, ready=token)

    assert runner.ops("up") == ["foundation", "registry", "pipeline"]
    assert second.ok
    assert second.summary() == "deploy dev: done"


def test_deploy_of_the_pipeline_layer_alone_also_waits_for_the_token(runner):
    deployed(runner, "foundation", "registry")

    report = orchestration.deploy(runner, "dev", "pipeline", ready=FakeToken())

    assert runner.ops("up") == []
    assert report.layers(Status.STOPPED) == ("pipeline",)


# -- the tasks wire the real preflight in ------------------------------------------------------


@dataclass
class RecordingChecks:
    """Stands in for toolbox.preflight.Preflight: records each run's purpose, always fails."""

    purposes: list[Purpose] = field(default_factory=list)

    def run(self, layers, purpose=Purpose.PREFLIGHT) -> PreflightReport:
        self.purposes.append(purpose)
        return PreflightReport("dev", purpose, (CheckResult("aws-account", False, "wrong"),))

    def ready(self, layer, upstream):
        return None


YES = {"deploy": {"yes": True}, "destroy": {"yes": True}}


@pytest.mark.parametrize(
    ("action", "purpose"),
    [
        ("deploy", Purpose.DEPLOY),
        ("preview", Purpose.PREVIEW),
        ("refresh", Purpose.REFRESH),
        ("destroy", Purpose.DESTROY),
    ],
)
def test_stack_tasks_run_preflight_first_and_exit_with_its_one_line(
    runner, monkeypatch, action, purpose
):
    import tasks

    recorded = RecordingChecks()
    monkeypatch.setattr(tasks, "_runner", lambda: runner)
    monkeypatch.setattr(preflight_module, "for_environment", lambda env, runner=None: recorded)
    deployed(runner, "foundation")

    with pytest.raises(Exit) as stopped:
        getattr(tasks, action)(Context(), env="dev", **YES.get(action, {}))

    assert recorded.purposes == [purpose]
    assert stopped.value.code == 1
    assert stopped.value.message == (
        "error: preflight dev failed: aws-account; nothing was touched (see the lines above)"
    )
    assert runner.calls == []


# -- the policy pack on every preview and up ---------------------------------------------------


URN = "urn:pulumi:dev::platform-registry::aws:ecr/repository:Repository::acme-registry-app-dev"


@dataclass
class PolicyStack:
    """What PulumiRunner uses of ``pulumi.automation.Stack``; may report a policy violation."""

    name: str = "organization/platform-registry/dev"
    violation: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def _op(self, op: str, kwargs: dict[str, Any]) -> None:
        from pulumi.automation import errors
        from pulumi.automation._cmd import CommandResult
        from pulumi.automation.events import EngineEvent

        self.calls.append((op, kwargs))
        if not self.violation:
            return
        for level, policy in (("advisory", "advice-only"), ("mandatory", self.violation)):
            kwargs["on_event"](
                EngineEvent.from_json(
                    {
                        "sequence": 1,
                        "timestamp": 0,
                        "policyEvent": {
                            "message": "the bucket is public",
                            "color": "never",
                            "policyName": policy,
                            "policyPackName": "container-platform",
                            "policyPackVersion": "0.1.0",
                            "policyPackVersionTag": "0.1.0",
                            "enforcementLevel": level,
                            "resourceUrn": URN,
                        },
                    }
                )
            )
        raise errors.CommandError(
            CommandResult(stdout="", stderr="error: update failed\n", code=255)
        )

    def preview(self, **kwargs: Any) -> None:
        self._op("preview", kwargs)

    def up(self, **kwargs: Any) -> None:
        self._op("up", kwargs)


@pytest.fixture
def adapter(monkeypatch):
    monkeypatch.setattr(automation.shutil, "which", lambda name: "/usr/local/bin/pulumi")
    monkeypatch.setattr(automation, "check_aws_credentials", lambda: None)
    stand_in = PolicyStack()
    runner = PulumiRunner(
        environ={"PULUMI_CONFIG_PASSPHRASE": "test"}, echo=lambda line: None, confirm=lambda q: True
    )
    monkeypatch.setattr(runner, "_select", lambda layer, env, create=False: stand_in)
    return runner, stand_in


def test_every_preview_and_up_runs_the_repositorys_policy_pack(adapter):
    runner, stand_in = adapter

    runner.preview("registry", "dev")
    runner.up("registry", "dev", yes=False)  # previews, asks, then deploys
    runner.up("registry", "dev", yes=True)

    assert [op for op, _ in stand_in.calls] == ["preview", "preview", "up", "up"]
    for _, kwargs in stand_in.calls:
        assert kwargs["policy_packs"] == [str(REPO / "policies")]
        assert callable(kwargs["on_event"])
    assert (REPO / "policies" / "PulumiPolicy.yaml").is_file()


@pytest.mark.parametrize(("op", "verb"), [("preview", "preview"), ("up", "deploy")])
def test_a_mandatory_violation_fails_with_the_policys_name_in_one_line(adapter, op, verb):
    runner, stand_in = adapter
    stand_in.violation = "ecr-scan-on-push"

    with pytest.raises(PlatformError) as error:
        if op == "preview":
            runner.preview("registry", "dev")
        else:
            runner.up("registry", "dev", yes=True)

    message = str(error.value)
    assert message.startswith(
        f"cannot {verb} organization/platform-registry/dev: mandatory policy violation(s):"
        " ecr-scan-on-push ("
    )
    assert "advice-only" not in message
    assert "\n" not in message


def test_a_failure_without_a_violation_keeps_the_clis_own_line():
    from pulumi.automation import errors
    from pulumi.automation._cmd import CommandResult

    violations = automation.PolicyViolations()
    failure = CommandResult(
        stdout="", stderr="error: AccessDenied on ecr:CreateRepository\n", code=1
    )
    with pytest.raises(PlatformError) as error, automation._translated("deploy", "s", violations):
        raise errors.CommandError(failure)

    assert str(error.value) == "cannot deploy s: error: AccessDenied on ecr:CreateRepository"

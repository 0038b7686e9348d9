"""Before a real preview or deploy, the preflight judges the environment's offline plan as
``./dev synth`` does: the policy pack and AWS's published specs, which the engine of a real
preview does not check (issue 24: the checks run in synth and beside every real preview)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from toolbox import preflight, synth
from toolbox.preflight import Purpose


class NoCredentials:
    def get_credentials(self) -> None:
        return None


def test_the_real_preflight_judges_the_offline_plan(monkeypatch) -> None:
    monkeypatch.setattr(synth, "synth", lambda environment, **_: SimpleNamespace(violations=2))
    judge = preflight.for_environment("dev").offline_plan
    assert judge is not None

    result = judge("dev")

    assert (result.name, result.ok) == ("offline-plan", False)


@pytest.mark.parametrize(
    ("purpose", "judged"),
    [
        (Purpose.PREFLIGHT, True),
        (Purpose.PREVIEW, True),
        (Purpose.DEPLOY, True),
        (Purpose.REFRESH, False),
        (Purpose.DESTROY, False),
    ],
)
def test_a_command_that_runs_the_programs_is_judged_first(purpose: Purpose, judged: bool) -> None:
    asked: list[str] = []

    def offline_plan(environment: str) -> preflight.CheckResult:
        asked.append(environment)
        return preflight.failed("offline-plan", "2 findings")

    check = preflight.Preflight(
        "dev", NoCredentials(), cli_version=lambda: "0", offline_plan=offline_plan
    )
    report = check.run(("foundation",), purpose)

    assert asked == (["dev"] if judged else [])
    assert ("offline-plan" in report.failures) is judged


def test_the_tests_configuration_plans_with_no_finding(tmp_path) -> None:
    result = preflight.check_offline_plan("dev", out_dir=tmp_path)

    assert (result.name, result.ok) == ("offline-plan", True)
    assert result.detail == "the policy pack and AWS's specs find nothing"
    assert (tmp_path / "dev" / "pipeline.specs.json").is_file()


def test_a_finding_fails_the_check_and_names_the_command(monkeypatch) -> None:
    monkeypatch.setattr(synth, "synth", lambda environment, **_: SimpleNamespace(violations=2))

    result = preflight.check_offline_plan("prod")

    assert result.ok is False
    assert result.line().endswith(
        "2 policy violation(s) or AWS spec finding(s) in the offline plan;"
        " `./dev synth --env prod` names each"
    )

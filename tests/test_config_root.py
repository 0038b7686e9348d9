"""Where the configuration is read: one root, the repository's unless PLATFORM_CONFIG_DIR says."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from shared import layers, settings
from shared.errors import ConfigError, PlatformError
from shared.layers import CONFIG_DIR_VARIABLE, REPO_ROOT
from shared.stackconfig import load_layer_files
from tests.conftest import FIXTURE_CONFIG
from toolbox import automation
from toolbox.automation import PulumiRunner

SHOW = (
    "from shared import layers, settings; print(layers.CONFIG_ROOT); print(settings.PLATFORM_FILE)"
)


def _roots(**environ: str) -> list[str]:
    env = {key: value for key, value in os.environ.items() if key != CONFIG_DIR_VARIABLE}
    done = subprocess.run(
        [sys.executable, "-c", SHOW], cwd=REPO_ROOT, env={**env, **environ}, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    return done.stdout.splitlines()


def test_without_the_variable_the_configuration_is_the_repositorys():
    assert _roots() == [str(REPO_ROOT), str(REPO_ROOT / "platform.yaml")]


def test_the_variable_points_the_configuration_at_another_folder(tmp_path):
    assert _roots(PLATFORM_CONFIG_DIR=str(tmp_path)) == [
        str(tmp_path),
        str(tmp_path / "platform.yaml"),
    ]


def test_the_tests_read_the_configuration_they_own():
    assert layers.CONFIG_ROOT == FIXTURE_CONFIG
    assert settings.PLATFORM_FILE == FIXTURE_CONFIG / "platform.yaml"
    assert layers.get("pipeline").stack_file("prod") == (
        FIXTURE_CONFIG / "stacks" / "pipeline" / "Pulumi.prod.yaml"
    )
    assert layers.get("pipeline").directory == REPO_ROOT / "stacks" / "pipeline"


def test_a_config_file_is_named_from_the_config_root_and_code_from_the_repository():
    assert settings.relative(layers.get("registry").stack_file("dev")) == (
        "stacks/registry/Pulumi.dev.yaml"
    )
    assert settings.relative(layers.get("registry").directory / "Pulumi.yaml") == (
        "stacks/registry/Pulumi.yaml"
    )


def test_a_missing_file_says_which_config_root_it_was_looked_for_in(config_copy):
    (config_copy / "platform.yaml").unlink()
    with pytest.raises(ConfigError) as error:
        settings.load_platform("dev")
    assert str(error.value) == (
        f"platform.yaml: (file): does not exist in PLATFORM_CONFIG_DIR={config_copy}"
    )
    (config_copy / "stacks" / "registry" / "Pulumi.prod.yaml").unlink()
    with pytest.raises(ConfigError) as error:
        load_layer_files(layers.get("registry"), "prod")
    assert str(error.value) == (
        "stacks/registry/Pulumi.prod.yaml: (file): does not exist in"
        f" PLATFORM_CONFIG_DIR={config_copy}"
    )


@pytest.fixture
def runner(monkeypatch) -> PulumiRunner:
    """A PulumiRunner that believes the CLI and credentials exist."""
    monkeypatch.setattr(automation.shutil, "which", lambda name: "/usr/local/bin/pulumi")
    monkeypatch.setattr(automation, "check_aws_credentials", lambda: None)
    return PulumiRunner(environ={"PULUMI_CONFIG_PASSPHRASE": "test"}, echo=lambda line: None)


def test_a_real_stack_command_refuses_another_configuration(runner):
    # Pulumi reads each stack file next to the layer's Pulumi.yaml: it would deploy the
    # repository's configuration while the plan showed another one.
    with pytest.raises(PlatformError) as error:
        runner.exists("registry", "dev")
    assert str(error.value) == (
        f"PLATFORM_CONFIG_DIR is set ({FIXTURE_CONFIG}): a real stack command reads platform.yaml"
        " and the stack files in the repository, where Pulumi reads them; unset"
        " PLATFORM_CONFIG_DIR (it is for the offline plan and the tests)"
    )


def test_with_the_repositorys_configuration_a_stack_command_goes_on(runner, monkeypatch):
    monkeypatch.setattr(layers, "CONFIG_ROOT", REPO_ROOT)
    seen: list[str] = []

    class Workspace:
        def __init__(self, work_dir: str, **_: object) -> None:
            seen.append(work_dir)
            raise RuntimeError("stop here")

    import pulumi.automation

    monkeypatch.setattr(pulumi.automation, "LocalWorkspace", Workspace)
    with pytest.raises(RuntimeError, match="stop here"):
        runner.exists("registry", "dev")
    assert seen == [str(REPO_ROOT / "stacks" / "registry")]

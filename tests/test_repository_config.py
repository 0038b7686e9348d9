"""The repository's own configuration: the ``platform.yaml`` and stack files a team writes.

Every other test runs on the configuration the tests own (``tests/fixtures/config``, see
``tests/conftest.py``). These check the one at the repository's root, whatever its values (a
team's namespace, accounts, regions, environments, services): it is complete, and it plans
offline, every environment, with no mandatory policy violation. The plan runs as ``./dev synth``
does, in a separate process without ``PLATFORM_CONFIG_DIR``, so it reads what a deploy reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from shared.layers import CONFIG_DIR_VARIABLE, LAYERS, REPO_ROOT
from shared.settings import read_yaml
from tests.conftest import FIXTURE_CONFIG

PLAN = """
import json, sys
from pathlib import Path
from shared.errors import PlatformError
from shared.layers import CONFIG_ROOT, REPO_ROOT
from shared.settings import environments
from toolbox.synth import synth

assert CONFIG_ROOT == REPO_ROOT, CONFIG_ROOT
found = {}
try:
    for env in environments():
        result = synth(env, out_dir=Path(sys.argv[1]))
        found[env] = {
            name: {
                "stack": plan.stack,
                "resources": len(plan.resources),
                "violations": [
                    f"{v.policy}: {v.message}" for v in result.verdicts[name].violations
                ],
            }
            for name, plan in result.plans.items()
        }
except PlatformError as exc:
    sys.exit(f"error: {exc}")
print(json.dumps(found))
"""


def _environments(root: Path) -> list[str]:
    return [str(name) for name in read_yaml(root / "platform.yaml")["environments"]]


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict[str, Any]]]:
    """Every environment of the repository's platform.yaml, planned: per layer its stack, the
    number of resources and the policy violations."""
    out = tmp_path_factory.mktemp("plan")
    env = {key: value for key, value in os.environ.items() if key != CONFIG_DIR_VARIABLE}
    done = subprocess.run(
        [sys.executable, "-c", PLAN, str(out)], cwd=REPO_ROOT, env=env, capture_output=True,
        text=True, check=False, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_environment_of_the_repository_plans_every_layer(planned):
    assert list(planned) == _environments(REPO_ROOT)
    for env, layers in planned.items():
        assert list(layers) == [layer.name for layer in LAYERS], env
        for name, plan in layers.items():
            assert plan["resources"] > 0, (env, name)
            assert plan["stack"].endswith(f"/{env}"), (env, name)


def test_the_repositorys_plans_pass_every_mandatory_policy(planned):
    violations = {
        (env, name): plan["violations"]
        for env, layers in planned.items()
        for name, plan in layers.items()
        if plan["violations"]
    }
    assert violations == {}


@pytest.mark.parametrize("root", [REPO_ROOT, FIXTURE_CONFIG], ids=["repository", "fixture"])
def test_each_environment_has_one_stack_file_per_layer_and_no_stack_file_is_stray(root):
    # A stack file for an environment platform.yaml does not define would never be read: it is
    # a leftover or a misspelt environment.
    wanted = {f"Pulumi.{env}.yaml" for env in _environments(root)}
    for layer in LAYERS:
        folder = root / "stacks" / layer.name
        assert {path.name for path in folder.glob("Pulumi.*.yaml")} == wanted, layer.name


def test_the_tests_configuration_holds_nothing_but_configuration():
    # The code (each Pulumi.yaml, the programs) stays with the code; the fixture is only what a
    # team writes: platform.yaml and the stack files.
    files = sorted(
        path.relative_to(FIXTURE_CONFIG).as_posix()
        for path in FIXTURE_CONFIG.rglob("*")
        if path.is_file()
    )
    assert files == [
        "platform.yaml",
        *(
            f"stacks/{layer}/Pulumi.{env}.yaml"
            for layer in ("foundation", "pipeline", "registry")
            for env in ("dev", "prod")
        ),
    ]

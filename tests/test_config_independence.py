"""The suite belongs to the code, not to the sample organisation: it passes for another one.

A copy of the repository (its HEAD and the working tree's changes, so the current code) is
pointed at another organisation: ``./dev init`` sets the namespace, every environment's account,
the region, the email, the repositories, the branch and the ECS names; the test then adds what
init does not cover: an environment more (``staging``) with its stack files, a service more
(under ``services:``, with settings of its own, one for the new environment only), an S3
source with approval on in the first environment, a CodeConnections source in the new one. It
reads the repository's configuration only for its environments, so it holds for any. The suite
then runs in the copy (this module excluded; with two workers) and passes: the layers' tests read
the configuration they own (``tests/fixtures/config``), and the repository's own is checked
without assuming its values (``tests/test_repository_config.py``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from shared.layers import CONFIG_DIR_VARIABLE, LAYERS, REPO_ROOT

GIT = ("git", "-c", "user.name=test", "-c", "user.email=test@example.com")

ORGANISATION = (
    "--namespace", "globex", "--region", "eu-west-2", "--email", "platform@globex.example",
    "--repository", "github.com/globex/infrastructure", "--github-owner", "globex-corp",
    "--github-branch", "trunk", "--ecs-cluster", "shop",
    "--service", "storefront", "--service", "search",
)  # fmt: skip
"""``./dev init``'s flags for the other organisation, but the accounts (one per environment).
Its services are its own (init names them; each one's GitHub repository and ECS service default
to its name)."""

EXTRA = {"accountId": "345678901234", "region": "ap-southeast-2", "protect": False}
"""The environment added (``staging``, or another name if the repository has one already)."""
CONNECTION = (
    "arn:aws:codeconnections:ap-southeast-2:345678901234:connection/"
    "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
)


def _fresh(name: str, taken: list[str]) -> str:
    """``name``, or ``name`` with the first number that makes it new."""
    return next(n for n in (name, *(f"{name}{i}" for i in range(2, 99))) if n not in taken)


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        [*GIT, "-C", str(root), *args], capture_output=True, text=True, check=True
    ).stdout


def _copy_of_the_work_tree(target: Path) -> None:
    """A clone of HEAD with the working tree's changes committed on top: the current code."""
    head = _git(REPO_ROOT, "rev-parse", "HEAD").strip()
    subprocess.run([*GIT, "clone", "-q", "--no-checkout", str(REPO_ROOT), str(target)], check=True)
    _git(target, "checkout", "-q", head)
    changed = _git(REPO_ROOT, "ls-files", "-z", "--modified", "--others", "--exclude-standard")
    for name in filter(None, changed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target / name)
    for name in filter(None, _git(REPO_ROOT, "ls-files", "-z", "--deleted").split("\0")):
        (target / name).unlink(missing_ok=True)
    _git(target, "add", "-A")
    _git(target, "commit", "-q", "--allow-empty", "-m", "the working tree")


def _environment() -> dict[str, str]:
    """This process's environment without the tests' config root or pytest's own variables."""
    return {
        key: value
        for key, value in os.environ.items()
        if key != CONFIG_DIR_VARIABLE and not key.startswith("PYTEST_")
    }


class _Dumper(yaml.SafeDumper):
    """Lists indented under their key, as the repository's yamllint configuration wants."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)


def _write(path: Path, data: dict) -> None:
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
    path.write_text(text, encoding="utf-8")


def _read(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _another_organisation(root: Path) -> None:
    """Whatever the repository's configuration is: init's values, then an environment more, a
    service more, an S3 source with approval in the first environment and CodeConnections in the
    new one."""
    environments = list(_read(root / "platform.yaml")["environments"])
    accounts = [
        part
        for i, env in enumerate(environments)
        for part in ("--account", f"{env}={123456789012 + 1_000_001 * i}")
    ]
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "init", *ORGANISATION, *accounts], cwd=root,
        env=_environment(), stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # What init does not cover, written as a team would (a valid file, whatever its layout).
    platform = _read(root / "platform.yaml")
    first, extra = environments[0], _fresh("staging", environments)
    platform["environments"][extra] = EXTRA
    services = dict(platform.get("services") or {"app": {}})
    service = _fresh("billing", list(services))
    # A service of its own: its repository, source, ECS service and approval differ, and it
    # bakes for longer in the new environment only.
    services[service] = {
        "repositoryName": f"{service}-images",
        "keepImages": 5,
        "githubRepo": f"{service}-api",
        "ecsService": f"{service}-web",
        "requireApproval": True,
        "environments": {extra: {"bakeMinutes": 30}},
    }
    platform["services"] = services
    _write(root / "platform.yaml", platform)
    for layer in LAYERS:
        folder = root / "stacks" / layer.name
        shutil.copyfile(folder / f"Pulumi.{first}.yaml", folder / f"Pulumi.{extra}.yaml")
    key = "platform-pipeline:{}".format
    pipeline = root / "stacks" / "pipeline"
    config = _read(pipeline / f"Pulumi.{first}.yaml").get("config") or {}
    for name in ("connectionArn", "triggerPaths"):  # settings of the other sources
        config.pop(key(name), None)
    config[key("sourceProvider")] = "s3"
    config[key("requireApproval")] = True
    _write(pipeline / f"Pulumi.{first}.yaml", {"config": config})
    config = _read(pipeline / f"Pulumi.{extra}.yaml").get("config") or {}
    config[key("sourceProvider")] = "codeconnections"
    config[key("connectionArn")] = CONNECTION
    _write(pipeline / f"Pulumi.{extra}.yaml", {"config": config})
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "our organisation")


def test_the_suite_passes_for_another_organisation(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    _copy_of_the_work_tree(copy)
    # The same environment and installed tools (both are gitignored, so not in the clone).
    (copy / ".venv").symlink_to(sys.prefix)
    if (REPO_ROOT / "node_modules").is_dir():
        (copy / "node_modules").symlink_to(REPO_ROOT / "node_modules")
    # The plans are stored by the content of every input (code, configuration, lock), so the
    # copy may reuse this checkout's: a plan of the same inputs is the same plan.
    plans = REPO_ROOT / "build" / "plancache"
    plans.mkdir(parents=True, exist_ok=True)
    (copy / "build").mkdir()
    (copy / "build" / "plancache").symlink_to(plans)
    _another_organisation(copy)
    # Its root configuration is no longer the sample's (the fixture still is).
    assert "acme" not in (copy / "platform.yaml").read_text(encoding="utf-8")
    assert (copy / "tests" / "fixtures" / "config" / "platform.yaml").read_bytes() == (
        REPO_ROOT / "tests" / "fixtures" / "config" / "platform.yaml"
    ).read_bytes()

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider",
         "--ignore", "tests/test_config_independence.py"],
        cwd=copy, env=_environment(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        check=False, timeout=1800,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]

"""The tasks that wire several functions together, run as a user runs them (``./dev TASK``).

invoke parses the flags of the real task menu (the ``cli`` fixture), the task runs preflight,
the orchestration and the runner, and the tests read what it printed, its exit code and what it
asked the runner to do. Pulumi is the recording runner of the orchestration tests
(tests/test_orchestration.py); what preflight reads and the source upload are moto's. Two seams
stand in for what this machine lacks, the ones the other task tests use: ``tasks._runner`` (the
Pulumi CLI) and ``toolbox.preflight.for_environment`` (the real checks, on moto, with this
module's own pipeline config and the pinned CLI version).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

import tasks
from shared.contracts import CONTRACTS
from shared.settings import load_platform
from tests.test_affected import TREE, commit, git, write
from tests.test_orchestration import FakeRunner
from toolbox import affected, drift
from toolbox import preflight as preflight_module
from toolbox.drift import DriftedResource
from toolbox.preflight import Preflight, read_pipeline_args

REPO = Path(__file__).resolve().parent.parent
ENV = "dev"
ALL = ["foundation", "registry", "pipeline"]
TOKEN = "ghp_exampleexampleexampleexample0000"  # a stand-in
CLUSTER = "orders"
SERVICES = {"app": "orders-api", "worker": "orders-worker"}
"""Each service of the fixture configuration -> the ECS service this module gives it."""
ROLES = ("orders-task", "orders-task-execution")
"""The task and execution roles, shared by both services."""
TRUST = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
    '{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
)
SOURCE_BUCKET = "orders-source-bucket"
PREFLIGHT_FAILED = "error: preflight dev failed: {}; nothing was touched (see the lines above)"


@functools.cache
def pipeline_config(environment: str) -> Any:
    """The pipeline's config as this module sets it: each service on the GitHub source (its
    token secret), with the ECS service this module creates for it, no CodeCommit mirror; the
    rest as the stack files say."""
    layer = read_pipeline_args(environment)
    account = load_platform(environment).account_id
    return dataclasses.replace(
        layer,
        pipelines=tuple(
            dataclasses.replace(
                args,
                source_provider="github",
                ecs_cluster=CLUSTER,
                ecs_service=SERVICES[args.service],
                ecs_task_family=SERVICES[args.service],
                ecs_role_arns=tuple(f"arn:aws:iam::{account}:role/{role}" for role in ROLES),
                source=dataclasses.replace(args.source, codecommit_trigger=False),
            )
            for args in layer.pipelines
        ),
    )


@dataclasses.dataclass
class World:
    """The recording runner and the moto account a task runs against."""

    runner: FakeRunner
    session: Any
    token_secret: str

    def deployed(self, *layers: str, commit: str | None = None) -> None:
        """Make ``layers``' stacks exist (with their exports), recording ``commit`` if given."""
        for layer in layers:
            self.runner.stacks[layer] = dict(self.runner.exports[layer])
            if commit is not None:
                self.runner.commits[layer] = commit

    def store_token(self) -> None:
        self.session.client("secretsmanager").put_secret_value(
            SecretId=self.token_secret, SecretString=TOKEN
        )


def _exports(token_secret: str) -> dict[str, dict[str, Any]]:
    """What each layer's stack exports once deployed: every key its contract promises."""
    exports = {layer: {spec.key: spec.kind() for spec in CONTRACTS[layer].specs()} for layer in ALL}
    exports["foundation"]["githubTokenSecretArn"] = token_secret
    exports["foundation"]["sourceBucketName"] = SOURCE_BUCKET
    return exports


@pytest.fixture
def world(monkeypatch, tmp_path) -> Iterator[World]:
    """No stack deployed, an account as the pipeline needs it, the token secret without a value."""
    platform = load_platform(ENV)
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", platform.region)
    monkeypatch.setenv("MOTO_ACCOUNT_ID", platform.account_id)
    with mock_aws():
        session = boto3.Session(region_name=platform.region)
        ecs, iam = session.client("ecs"), session.client("iam")
        ecs.create_cluster(clusterName=CLUSTER)
        for service in SERVICES.values():
            ecs.register_task_definition(
                family=service,
                containerDefinitions=[{"name": service, "image": "nginx", "memory": 512}],
            )
            ecs.create_service(
                cluster=CLUSTER, serviceName=service, taskDefinition=service, desiredCount=0
            )
        for role in ROLES:
            iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST)
        s3 = session.client("s3")
        s3.create_bucket(Bucket=SOURCE_BUCKET)
        s3.put_bucket_versioning(
            Bucket=SOURCE_BUCKET, VersioningConfiguration={"Status": "Enabled"}
        )
        secret = session.client("secretsmanager").create_secret(
            Name="orders-foundation-github-token-dev"
        )["ARN"]
        runner = FakeRunner(exports=_exports(secret))
        environ = {
            "PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}",
            "PULUMI_CONFIG_PASSPHRASE": "not-a-secret",
        }
        pinned = (REPO / ".pulumi.version").read_text(encoding="utf-8").strip().removeprefix("v")

        def checks(environment: str, runner_: Any = None) -> Preflight:
            reader = runner_ if runner_ is not None else runner

            def foundation_outputs() -> dict[str, Any] | None:
                if not reader.exists("foundation", environment):
                    return None
                return reader.outputs("foundation", environment)

            return Preflight(
                environment,
                session,
                environ=environ,
                cli_version=lambda: pinned,
                foundation_outputs=foundation_outputs,
                pipeline_args=pipeline_config,
            )

        monkeypatch.setattr(tasks, "_runner", lambda: runner)
        monkeypatch.setattr(preflight_module, "for_environment", checks)
        yield World(runner, session, secret)


def _step(printed: str, status: str, layer: str) -> str:
    """The report's line for ``layer``, which must say ``status`` (``  applied  registry ...``)."""
    (found,) = [line for line in printed.splitlines() if line.split()[:2] == [status, layer]]
    return found


def _check(printed: str, result: str, name: str) -> str:
    """Preflight's line for the check ``name`` (``  pass  github-token  ...``)."""
    (found,) = [line for line in printed.splitlines() if line.split()[:2] == [result, name]]
    return found


@pytest.fixture
def head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The HEAD of a committed checkout of the test's own, which ``./dev deploy`` records and
    ``--changed`` compares with (the real functions, pointed at that checkout instead of this
    repository, whose working tree may hold uncommitted changes)."""
    checkout = tmp_path / "checkout"
    git(checkout.parent, "init", "-q", "--template=", "-b", "main", str(checkout))
    write(checkout, TREE)
    found = commit(checkout, "initial")
    monkeypatch.setattr(
        affected, "commits_to_record", functools.partial(affected.commits_to_record, checkout)
    )
    monkeypatch.setattr(
        affected,
        "changed_since_deployed",
        functools.partial(affected.changed_since_deployed, root=checkout),
    )
    return found


@pytest.fixture
def clean_inputs(head: str) -> str:
    """HEAD of the test's checkout, where no layer's inputs have uncommitted changes."""
    assert "-dirty" not in "".join(affected.commits_to_record().values())
    return head


# -- deploy -----------------------------------------------------------------------------------


def test_deploy_stops_before_the_pipeline_while_the_token_is_missing(world, cli):
    code, printed = cli("deploy", "--env", ENV, "--yes")

    assert code == 1
    assert world.runner.ops("up") == ["foundation", "registry"]
    stopped = _step(printed, "STOPPED", "pipeline")
    assert f"put-secret-value --secret-id {world.token_secret}" in stopped
    assert printed.splitlines()[0].startswith("preflight dev (before ")
    assert printed.splitlines()[-1].startswith("error: deploy dev stopped before pipeline: ")
    assert "pipeline" not in world.runner.commits


def test_deploy_goes_on_to_the_pipeline_once_the_token_is_stored(world, cli):
    cli("deploy", "--env", ENV, "--yes")
    world.store_token()
    world.runner.calls.clear()

    code, printed = cli("deploy", "--env", ENV, "--yes")

    assert code == 0, printed
    assert world.runner.ops("up") == ALL
    assert _step(printed, "applied", "pipeline")
    assert TOKEN not in printed


def test_after_a_deploy_each_stack_records_the_commit_it_came_from(world, cli, head):
    world.store_token()

    code, printed = cli("deploy", "--env", ENV, "--yes")

    assert code == 0, printed
    assert sorted(world.runner.commits) == sorted(ALL)
    for layer in ALL:  # HEAD; HEAD-dirty for a layer whose inputs have uncommitted changes
        assert world.runner.commits[layer] in (head, f"{head}-dirty")
        assert f"recorded commit {head[:12]}" in _step(printed, "applied", layer)


def test_a_failed_preflight_stops_the_deploy_before_any_stack(world, cli):
    world.store_token()
    world.session.client("iam").delete_role(RoleName=ROLES[0])

    code, printed = cli("deploy", "--env", ENV, "--yes")

    assert code == 1
    assert printed.splitlines()[-1] == PREFLIGHT_FAILED.format("ecs-task-role")
    assert world.runner.ops("up") == []


def test_deploy_changed_skips_the_stacks_at_their_commit_and_deploys_the_rest(
    world, cli, clean_inputs
):
    world.store_token()
    world.deployed("foundation", "registry", commit=clean_inputs)

    code, printed = cli("deploy", "--env", ENV, "--yes", "--changed")

    assert code == 0, printed
    decisions = [line.split(":")[0].split() for line in printed.splitlines()[:3]]
    assert decisions == [["skip", "foundation"], ["skip", "registry"], ["deploy", "pipeline"]]
    assert world.runner.ops("up") == ["pipeline"]
    assert world.runner.commits["pipeline"] == clean_inputs
    assert _step(printed, "skipped", "foundation")
    assert _step(printed, "applied", "pipeline")


def test_deploy_changed_with_every_stack_at_its_commit_deploys_nothing(world, cli, clean_inputs):
    world.deployed(*ALL, commit=clean_inputs)

    code, printed = cli("deploy", "--env", ENV, "--yes", "--changed")

    assert code == 0, printed
    assert printed.splitlines()[-1] == (
        "nothing to deploy in dev: every stack is at its recorded commit"
    )
    assert world.runner.ops("up") == []
    assert "preflight dev" not in printed


def test_deploy_changed_deploys_a_stack_whose_last_deploy_failed(world, cli, clean_inputs):
    world.store_token()
    world.deployed(*ALL, commit=clean_inputs)
    world.runner.last_failed.add("registry")

    code, printed = cli("deploy", "--env", ENV, "--yes", "--changed")

    assert code == 0, printed
    assert world.runner.ops("up") == ["registry", "pipeline"]  # and what depends on it


# -- preview ----------------------------------------------------------------------------------


def test_preview_checks_first_then_previews_every_deployed_stack(world, cli):
    world.store_token()
    world.deployed(*ALL)

    code, printed = cli("preview", "--env", ENV)

    assert code == 0, printed
    assert printed.splitlines()[0].startswith("preflight dev (before ")
    assert _check(printed, "pass", "github-token")
    assert world.runner.ops("preview") == ALL
    assert printed.splitlines()[-len(ALL) - 1] == "preview dev:"


def test_preview_skips_the_stacks_not_deployed_yet(world, cli):
    code, printed = cli("preview", "--env", ENV)

    assert code == 0, printed
    assert world.runner.ops("preview") == []
    assert "./dev deploy --layer foundation --env dev" in _step(printed, "skipped", "foundation")


def test_preview_stops_at_a_failed_preflight_before_any_stack(world, cli):
    world.deployed(*ALL)  # the token secret has no value

    code, printed = cli("preview", "--env", ENV)

    assert code == 1
    assert printed.splitlines()[-1] == PREFLIGHT_FAILED.format("github-token")
    assert world.runner.ops("preview") == []


def test_a_failed_preview_exits_1_and_the_other_stacks_are_still_previewed(world, cli):
    world.store_token()
    world.deployed(*ALL)
    world.runner.fail[("preview", "registry")] = "preview of registry failed: a bad input"

    code, printed = cli("preview", "--env", ENV)

    assert code == 1
    assert world.runner.ops("preview") == ALL
    assert printed.splitlines()[-1] == (
        "error: preview dev failed at registry: preview of registry failed: a bad input"
    )


# -- destroy ----------------------------------------------------------------------------------


def test_destroy_checks_first_then_destroys_in_reverse_order(world, cli):
    world.deployed(*ALL)

    code, printed = cli("destroy", "--env", ENV, "--yes")

    assert code == 0, printed
    assert printed.splitlines()[0].startswith("preflight dev (before ")
    assert world.runner.ops("destroy") == ["pipeline", "registry", "foundation"]
    assert world.runner.stacks == {}


def test_destroy_refuses_a_layer_while_a_downstream_stack_exists(world, cli):
    world.deployed(*ALL)

    code, printed = cli("destroy", "--env", ENV, "--layer", "foundation", "--yes")

    assert code == 1
    assert printed.splitlines()[-1].startswith("error: refusing to destroy foundation in dev: ")
    assert "--force" in printed.splitlines()[-1]
    assert world.runner.ops("destroy") == []


def test_destroy_without_yes_and_no_terminal_destroys_nothing(world, cli):
    world.deployed(*ALL)

    code, printed = cli("destroy", "--env", ENV)

    assert code == 1
    assert printed.splitlines()[-1] == (
        "error: nothing destroyed in dev: not confirmed (pass --yes to skip the prompt)"
    )
    assert world.runner.ops("destroy") == []


def test_destroy_stops_at_a_failed_preflight_before_any_stack(world, cli, monkeypatch):
    world.deployed(*ALL)
    monkeypatch.setenv("MOTO_ACCOUNT_ID", "999999999999")  # credentials of another account

    code, printed = cli("destroy", "--env", ENV, "--yes")

    assert code == 1
    assert printed.splitlines()[-1] == PREFLIGHT_FAILED.format("aws-account")
    assert world.runner.ops("destroy") == []


# -- drift ------------------------------------------------------------------------------------

DRIFTED = DriftedResource(
    urn="urn:pulumi:dev::platform-registry::aws:ecr/repository:Repository::app",
    type="aws:ecr/repository:Repository",
    op="update",
    properties=("imageScanningConfiguration.scanOnPush (update)",),
)


class RecordingGh:
    """The gh CLI as the drift task calls it: no open issue; creating one answers its URL."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, *args: str) -> str:
        self.calls.append(args)
        if args[:2] == ("issue", "list"):
            return "[]"
        return "https://github.com/acme/platform/issues/12\n"


def test_drift_per_layer_reports_then_one_issue_as_ci_runs_it(world, cli, tmp_path, monkeypatch):
    world.deployed(*ALL)
    world.runner.drifted["registry"] = [DRIFTED]
    reports = tmp_path / "reports"
    codes = {}
    for layer in ALL:  # CI: one job per layer, each hands on its report
        path = reports / f"{layer}.json"
        codes[layer], _ = cli("drift", "--env", ENV, "--layer", layer, "--report", str(path))
    assert codes == {"foundation": 0, "registry": 2, "pipeline": 0}
    assert json.loads((reports / "registry.json").read_text())["layers"][0]["status"] == "DRIFTED"
    gh = RecordingGh()
    monkeypatch.setattr(drift, "gh", gh)

    code, printed = cli("drift", "--env", ENV, "--issue", str(reports))

    assert code == 0, printed
    assert [call[:2] for call in gh.calls] == [("issue", "list"), ("issue", "create")]
    assert printed.splitlines()[-1] == "drift issue #12: opened (drifted: registry)"
    # the issue step read the reports, not the stacks
    assert world.runner.ops("refresh_preview") == ALL


def test_drift_of_every_layer_exits_2_naming_the_drifted_one(world, cli):
    world.deployed(*ALL)
    world.runner.drifted["registry"] = [DRIFTED]

    code, printed = cli("drift", "--env", ENV)

    assert code == 2
    assert world.runner.ops("refresh_preview") == ALL
    assert "imageScanningConfiguration.scanOnPush (update)" in printed
    assert printed.splitlines()[-1] == "error: drift in dev: registry (see above)"


# -- publish-source ---------------------------------------------------------------------------


@pytest.fixture
def app(tmp_path) -> Path:
    folder = tmp_path / "app"
    (folder / "src").mkdir(parents=True)
    (folder / "Dockerfile").write_text("FROM node:20\n")
    (folder / "src" / "index.js").write_text("console.log('hi')\n")
    return folder


@pytest.fixture
def s3_sourced(config_copy):
    """The tests' configuration with every service on the S3 source (keys by default)."""
    (config_copy / "stacks" / "pipeline" / "Pulumi.dev.yaml").write_text(
        "config:\n  platform-pipeline:sourceProvider: s3\n", encoding="utf-8"
    )
    return config_copy


def test_publish_source_uploads_to_the_deployed_foundations_bucket(world, cli, app, s3_sourced):
    world.deployed("foundation")

    code, printed = cli("publish-source", "--env", ENV, "--path", str(app))

    assert code == 0, printed
    (version,) = world.session.client("s3").list_object_versions(Bucket=SOURCE_BUCKET)["Versions"]
    assert version["Key"] == "source/app.zip"  # the first service's, by default
    assert printed.splitlines()[-1] == (
        f"published 2 file(s), {version['Size']} bytes, to s3://{SOURCE_BUCKET}/{version['Key']}"
        f" (version {version['VersionId']}); the pipeline starts on it"
    )
    assert ("outputs", "foundation") in world.runner.calls


def test_publish_source_names_the_service_whose_source_it_is(world, cli, app, s3_sourced):
    world.deployed("foundation")

    code, printed = cli("publish-source", "--env", ENV, "--path", str(app), "--service", "worker")

    assert code == 0, printed
    (version,) = world.session.client("s3").list_object_versions(Bucket=SOURCE_BUCKET)["Versions"]
    assert version["Key"] == "source/worker.zip"
    assert f"to s3://{SOURCE_BUCKET}/source/worker.zip" in printed.splitlines()[-1]


def test_publish_source_with_a_foundation_that_exports_no_bucket_uploads_nothing(
    world, cli, app, s3_sourced
):
    world.deployed("foundation")
    del world.runner.stacks["foundation"]["sourceBucketName"]

    code, printed = cli("publish-source", "--env", ENV, "--path", str(app))

    assert code == 1
    assert printed.splitlines()[-1] == (
        "error: the foundation stack of dev exports no sourceBucketName;"
        " run `./dev deploy --layer foundation --env dev`"
    )
    assert "Versions" not in world.session.client("s3").list_object_versions(Bucket=SOURCE_BUCKET)


def test_publish_source_of_a_missing_folder_is_one_line_before_any_upload(world, cli, tmp_path):
    world.deployed("foundation")

    code, printed = cli("publish-source", "--env", ENV, "--path", str(tmp_path / "nowhere"))

    assert code == 1
    assert printed.splitlines()[-1] == (
        f"error: {tmp_path / 'nowhere'}: not a folder (allowed: the application's source folder)"
    )
    assert "Versions" not in world.session.client("s3").list_object_versions(Bucket=SOURCE_BUCKET)

"""Preflight against moto: a conforming account passes every check, each broken one fails alone.

moto has no CodeConnections API, so the connection is answered by botocore's Stubber with the
GetConnection response shape of the API reference. The expected check names and lines are
written here, not read from toolbox/preflight.py.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from invoke import Context, Exit
from moto import mock_aws

from shared.errors import ConfigError
from tests.moto_support import OneClientEach
from toolbox import preflight as preflight_module
from toolbox.preflight import Preflight, Purpose, read_pipeline_args

REPO = Path(__file__).resolve().parent.parent
PINNED_CLI = (REPO / ".pulumi.version").read_text().strip()
ACCOUNT = "111111111111"  # platform.yaml: environments.dev.accountId
REGION = "us-east-1"
STATE_BUCKET = "acme-pulumi-state"
TOKEN = "ghp_exampleexampleexampleexample0000"
CONNECTION = (
    "arn:aws:codeconnections:us-east-1:111111111111:connection/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
)
EVERY_CHECK = [
    "pulumi-cli",
    "state-backend",
    "secrets-provider",
    "aws-credentials",
    "aws-account",
    "aws-region",
    "ecs-cluster",  # app and worker share cluster app: one line
    "ecs-service",  # app's
    "ecs-task-role",
    "ecs-execution-role",
    "codecommit-repository",
    "ecs-service",  # worker's
    "ecs-task-role",
    "ecs-execution-role",
    "codecommit-repository",
    "github-token",
]
"""The checks of the fixture configuration's two services (app, worker) in cluster app."""


@pytest.fixture(scope="module")
def account(aws_session) -> Iterator[Account]:
    """One moto account 111111111111 (dev's) per module, built once as a team would have it.

    The tests read it and pass; a test that needs a piece missing takes it away with
    ``without`` (put back after it), and a token in another state is a secret of its own
    (``token_secret``). Building it per test cost ~0.15 s each: clients, mock_aws, the creates.
    """
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_REGION", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", REGION)
        patch.setenv("MOTO_ACCOUNT_ID", ACCOUNT)
        with mock_aws():
            session = OneClientEach(aws_session(REGION))
            yield Account(session, build_account(session))


@dataclasses.dataclass(frozen=True)
class Account:
    session: OneClientEach
    secret_arn: str
    """The foundation's token secret, holding TOKEN."""


@pytest.fixture
def aws(account: Account) -> OneClientEach:
    """The module's conforming account, with credentials and the region set."""
    return account.session


@pytest.fixture
def arn(account: Account) -> str:
    """The ARN of the account's token secret (it holds TOKEN)."""
    return account.secret_arn


TRUST = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
    '{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
)


def build_account(session) -> str:
    """What the pipeline layer points at, as a team would have it; returns the secret's ARN."""
    ecs, iam = session.client("ecs"), session.client("iam")
    session.client("s3").create_bucket(Bucket=STATE_BUCKET)
    ecs.create_cluster(clusterName="app")
    for service in ("app", "worker"):
        ecs.register_task_definition(
            family=service,
            containerDefinitions=[{"name": service, "image": "nginx", "memory": 512}],
        )
        ecs.create_service(
            cluster="app", serviceName=service, taskDefinition=service, desiredCount=0
        )
        for role in (f"{service}-task", f"{service}-task-execution"):
            iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST)
        session.client("codecommit").create_repository(repositoryName=service)
    secrets = session.client("secretsmanager")
    return secrets.create_secret(Name="acme-foundation-github-token-dev", SecretString=TOKEN)["ARN"]


def _hide_ecs(*entries: tuple[str, str]):
    """Take ECS entries (store, key) out of moto's store as if never created.

    Deleting through the API leaves them INACTIVE for a while (as ECS does), not MISSING.
    """

    def take(session) -> Callable[[], None]:
        # Imported here, not at collection: moto's ECS pulls in EC2, a heavy import that most
        # tests of this module do not need.
        from moto.ecs.models import ecs_backends

        backend = ecs_backends[ACCOUNT][REGION]
        taken = [
            (store, key, getattr(backend, store).pop(key))
            for store, key in entries
            if key in getattr(backend, store)
        ]

        def put_back() -> None:
            for store, key, entry in taken:
                getattr(backend, store)[key] = entry

        return put_back

    return take


def _delete_role(name: str):
    def take(session) -> Callable[[], None]:
        iam = session.client("iam")
        iam.delete_role(RoleName=name)
        return lambda: iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)

    return take


def _delete_repository(session) -> Callable[[], None]:
    codecommit = session.client("codecommit")
    codecommit.delete_repository(repositoryName="app")
    return lambda: codecommit.create_repository(repositoryName="app")


PIECES: dict[str, Callable[[Any], Callable[[], None]]] = {
    "cluster": _hide_ecs(  # and its services
        ("clusters", "app"), ("services", "app:app"), ("services", "app:worker")
    ),
    "service": _hide_ecs(("services", "app:app")),
    "worker-service": _hide_ecs(("services", "app:worker")),
    "app-task": _delete_role("app-task"),
    "app-task-execution": _delete_role("app-task-execution"),
    "codecommit": _delete_repository,
}
"""What a test may take away from the account -> how it is taken (returns how it comes back)."""


@pytest.fixture
def without(account: Account) -> Iterator[Callable[..., None]]:
    """Take pieces away from the account for one test; after it, they are put back and the
    account passes every check again (the next test starts from a conforming account)."""
    undo: list[Callable[[], None]] = []

    def take(*pieces: str) -> None:
        for piece in pieces:
            undo.append(PIECES[piece](account.session))

    yield take
    for put_back in reversed(undo):
        put_back()
    report = checks(account.session, account.secret_arn).run(("foundation", "pipeline"))
    assert report.ok, report.lines()


_secrets = itertools.count()


def token_secret(session, token: str | None) -> str:
    """A token secret of the test's own holding ``token`` (None: no value stored); its ARN."""
    name = f"acme-foundation-github-token-dev-{next(_secrets)}"
    secrets = session.client("secretsmanager")
    if token is None:
        return secrets.create_secret(Name=name)["ARN"]
    return secrets.create_secret(Name=name, SecretString=token)["ARN"]


pipeline_config = functools.cache(read_pipeline_args)
"""The pipeline's config, read once per environment: the stack files do not change during a run,
and a read costs ~25 ms (``test_the_pipeline_config_is_read_through_the_layers_own_reader``
covers the reader and the checks' default)."""


def each_pipeline(environment: str, source: dict[str, Any] | None = None, **changes: Any):
    """The pipeline config with ``changes`` (and ``source`` changes) made to every service's."""
    layer = pipeline_config(environment)
    return dataclasses.replace(
        layer,
        pipelines=tuple(
            dataclasses.replace(
                p, source=dataclasses.replace(p.source, **(source or {})), **changes
            )
            for p in layer.pipelines
        ),
    )


def only_the_app(environment: str):
    """The pipeline config of a one-service platform: the application alone."""
    layer = pipeline_config(environment)
    return dataclasses.replace(layer, pipelines=(layer.pipeline("app"),))


def checks(session, secret_arn: str | None, **overrides: Any) -> Preflight:
    """The preflight of dev on ``session``: S3 state, a passphrase, the pinned CLI."""
    options: dict[str, Any] = {
        "environ": {"PULUMI_BACKEND_URL": f"s3://{STATE_BUCKET}", "PULUMI_CONFIG_PASSPHRASE": "x"},
        "cli_version": lambda: PINNED_CLI,
        "foundation_outputs": lambda: (
            None if secret_arn is None else {"githubTokenSecretArn": secret_arn}
        ),
        "pipeline_args": pipeline_config,
    }
    options.update(overrides)
    return Preflight("dev", session, **options)


def names(report) -> list[str]:
    return [result.name for result in report.results]


# -- a conforming account ----------------------------------------------------------------------


def test_a_conforming_account_passes_every_check_with_one_line_each(aws, arn):
    report = checks(aws, arn).run(("foundation", "registry", "pipeline"))

    assert report.ok, report.lines()
    assert names(report) == EVERY_CHECK
    lines = report.lines()
    assert lines[0] == "preflight dev:"
    assert len(lines) == 1 + len(EVERY_CHECK)
    assert all(line.startswith("  pass  ") for line in lines[1:])
    assert report.summary() == "preflight dev: every check passed"
    assert TOKEN not in "\n".join(lines)


def test_each_service_has_its_own_lines_and_what_they_share_has_one_naming_both(aws, arn):
    report = checks(aws, arn).run(("pipeline",))

    assert [(r.name, r.detail) for r in report.results[6:-1]] == [
        ("ecs-cluster", "app, worker: app ACTIVE"),
        ("ecs-service", "app: app ACTIVE in app, family app"),
        ("ecs-task-role", "app: arn:aws:iam::111111111111:role/app-task"),
        ("ecs-execution-role", "app: arn:aws:iam::111111111111:role/app-task-execution"),
        ("codecommit-repository", "app: app"),
        ("ecs-service", "worker: worker ACTIVE in app, family worker"),
        ("ecs-task-role", "worker: arn:aws:iam::111111111111:role/worker-task"),
        ("ecs-execution-role", "worker: arn:aws:iam::111111111111:role/worker-task-execution"),
        ("codecommit-repository", "worker: worker"),
    ]


def test_a_single_service_lines_name_no_service(aws, arn):
    report = checks(aws, arn, pipeline_args=only_the_app).run(("pipeline",))

    assert [(r.name, r.detail) for r in report.results[6:-1]] == [
        ("ecs-cluster", "app ACTIVE"),
        ("ecs-service", "app ACTIVE in app, family app"),
        ("ecs-task-role", "arn:aws:iam::111111111111:role/app-task"),
        ("ecs-execution-role", "arn:aws:iam::111111111111:role/app-task-execution"),
        ("codecommit-repository", "app"),
    ]


def test_a_service_running_another_task_family_fails_before_the_deploy_would(aws, arn):
    """The pipeline role may register revisions of ``ecsTaskFamily`` only; a service running
    another family would fail the Deploy stage's RegisterTaskDefinition mid-release."""

    def family_web(environment: str):
        layer = only_the_app(environment)
        (app,) = layer.pipelines
        return dataclasses.replace(
            layer, pipelines=(dataclasses.replace(app, ecs_task_family="web"),)
        )

    report = checks(aws, arn, pipeline_args=family_web).run(("pipeline",))

    (service,) = [r for r in report.results if r.name == "ecs-service"]
    assert not service.ok
    assert service.detail == (
        "service app in cluster app runs task definition family 'app', but the pipeline may"
        " register revisions of 'web' only: set ecsTaskFamily: app"
        " (platform-pipeline:ecsTaskFamily, or under the service in platform.yaml)"
    )


def test_the_pipeline_config_is_read_through_the_layers_own_reader():
    layer = read_pipeline_args("prod")
    app, worker = layer.pipeline("app"), layer.pipeline("worker")

    assert (app.ecs_cluster, worker.ecs_cluster) == ("app", "app")
    assert (app.ecs_service, worker.ecs_service) == ("app", "worker")
    assert app.ecs_role_arns == (
        "arn:aws:iam::222222222222:role/app-task",
        "arn:aws:iam::222222222222:role/app-task-execution",
    )
    assert worker.ecs_role_arns == (
        "arn:aws:iam::222222222222:role/worker-task",
        "arn:aws:iam::222222222222:role/worker-task-execution",
    )
    assert app.require_approval is True  # prod's own delta, from Pulumi.prod.yaml
    assert (app.source_provider, worker.source_provider) == ("github", "github")
    assert (app.github_repo, worker.github_repo) == ("app", "worker-service")
    # ... and it is what the checks read unless told otherwise (the tests use a cached read).
    assert Preflight("prod", session=None).pipeline_args is read_pipeline_args


# -- each broken account fails with its own line -----------------------------------------------


WORKER_MISSING = (
    "worker: service worker in cluster app is MISSING: create it, or set ecsService under"
    " services.worker in platform.yaml"
)
APP_EXECUTION_ROLE = "set ecsExecutionRoleName under services.app in platform.yaml"


@pytest.mark.parametrize(
    ("missing", "failing", "says"),
    [
        ({"cluster"}, ["ecs-cluster", "ecs-service"], "app, worker: cluster app is MISSING"),
        ({"service"}, ["ecs-service"], "app: service app in cluster app is MISSING"),
        ({"worker-service"}, ["ecs-service"], WORKER_MISSING),
        ({"app-task"}, ["ecs-task-role"], "app: role arn:aws:iam::111111111111:role/app-task "),
        ({"app-task-execution"}, ["ecs-execution-role"], APP_EXECUTION_ROLE),
        ({"codecommit"}, ["codecommit-repository"], "app: repository app cannot be read"),
    ],
    ids=["missing-cluster", "missing-service", "missing-worker-service", "missing-task-role",
         "missing-execution-role", "missing-codecommit-repository"],
)  # fmt: skip
def test_a_missing_resource_fails_its_own_check(aws, arn, without, missing, failing, says):
    without(*missing)

    report = checks(aws, arn).run(("pipeline",))

    assert list(report.failures) == failing
    assert says in "\n".join(report.lines())
    assert report.summary().startswith(f"preflight dev failed: {', '.join(failing)};")


def test_a_single_service_is_told_the_layers_setting(aws, arn, without):
    without("service")

    report = checks(aws, arn, pipeline_args=only_the_app).run(("pipeline",))

    (result,) = [r for r in report.results if not r.ok]
    assert result.detail == (
        "service app in cluster app is MISSING: create it, or set platform-pipeline:ecsService"
    )


def test_a_shared_cluster_is_the_layers_setting_whatever_the_services(aws, arn, without):
    without("cluster")

    report = checks(aws, arn).run(("pipeline",))

    assert report.results[6].detail == (
        "app, worker: cluster app is MISSING: create it, or set platform-pipeline:ecsCluster"
    )


def test_wrong_account_fails_and_skips_what_would_be_looked_up_in_it(aws, arn, monkeypatch):
    monkeypatch.setenv("MOTO_ACCOUNT_ID", "999999999999")

    report = checks(aws, arn).run(("foundation", "registry", "pipeline"))

    assert report.failures == ("aws-account",)
    line = next(r for r in report.results if r.name == "aws-account").line()
    assert "credentials are for account 999999999999, but dev deploys to 111111111111" in line
    assert "environments.dev.accountId" in line
    skipped = [r.name for r in report.results if r.skipped]
    assert skipped == [*EVERY_CHECK[6:11], "github-token"]  # each once, not once per service


def test_wrong_region_fails(aws, arn):
    environ = {"PULUMI_CONFIG_PASSPHRASE": "x", "AWS_REGION": "eu-west-1"}
    environ["PULUMI_BACKEND_URL"] = f"s3://{STATE_BUCKET}"

    report = checks(aws, arn, environ=environ).run(("registry",))

    assert report.failures == ("aws-region",)
    assert "configured region is eu-west-1, but dev is in us-east-1" in "\n".join(report.lines())


def test_no_credentials_fails_one_line_and_runs_no_aws_call(aws, monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    environ = {"PULUMI_CONFIG_PASSPHRASE": "x", "PULUMI_BACKEND_URL": f"file://{tmp_path}"}

    report = checks(boto3.Session(), None, environ=environ).run(("foundation", "pipeline"))

    assert report.failures == ("aws-credentials",)
    assert "no AWS credentials found: set AWS_PROFILE" in "\n".join(report.lines())
    assert "aws-account" not in names(report)
    assert all(r.skipped for r in report.results[4:])


def test_empty_token_secret_fails_with_the_command_that_stores_it(aws):
    arn = token_secret(aws, None)

    report = checks(aws, arn).run(("pipeline",))

    assert report.failures == ("github-token",)
    line = report.results[-1].line()
    assert "the GitHub token secret has no value" in line
    assert (
        f"aws secretsmanager put-secret-value --secret-id {arn}"
        " --secret-string file://github-token.txt --region us-east-1"
    ) in line


def test_a_blank_token_value_counts_as_empty(aws):
    arn = token_secret(aws, "  \n")

    report = checks(aws, arn).run(("pipeline",))

    assert report.failures == ("github-token",)
    assert "the GitHub token secret is empty" in report.results[-1].detail


def test_token_is_skipped_while_the_foundation_is_not_deployed(aws):
    report = checks(aws, None).run(("foundation", "registry", "pipeline"))

    assert report.ok
    token = report.results[-1]
    assert (token.name, token.skipped) == ("github-token", True)
    assert "`./dev deploy --env dev` stops before the pipeline layer" in token.detail


def test_wrong_cli_version_fails_with_the_install_command(aws, arn):
    report = checks(aws, arn, cli_version=lambda: "3.100.0").run(("registry",))

    assert report.failures == ("pulumi-cli",)
    assert f"version 3.100.0 installed, the repository pins {PINNED_CLI}" in report.lines()[1]
    assert f"sh -s -- --version {PINNED_CLI}" in report.lines()[1]


def test_missing_cli_fails_with_the_install_line(aws, arn, monkeypatch):
    monkeypatch.setattr(preflight_module, "require_cli", _no_cli)

    report = checks(aws, arn, cli_version=preflight_module.installed_cli_version).run(("registry",))

    assert report.failures == ("pulumi-cli",)
    assert "pulumi CLI not found" in report.lines()[1]


def _no_cli() -> str:
    from toolbox.automation import CLI_MISSING, MissingToolError

    raise MissingToolError(CLI_MISSING)


def test_missing_state_bucket_and_missing_passphrase_fail(aws, arn):
    environ = {"PULUMI_BACKEND_URL": "s3://no-such-state-bucket"}

    report = checks(aws, arn, environ=environ).run(("registry",))

    assert report.failures == ("state-backend", "secrets-provider")
    text = "\n".join(report.lines())
    assert "bucket no-such-state-bucket cannot be reached" in text
    assert "no secrets passphrase for registry (dev)" in text


def test_a_kms_secrets_provider_must_name_a_key_that_exists(aws, arn):
    aws.client("kms").create_alias(
        AliasName="alias/pulumi-state",
        TargetKeyId=aws.client("kms").create_key()["KeyMetadata"]["KeyId"],
    )
    base = {"PULUMI_BACKEND_URL": f"s3://{STATE_BUCKET}"}

    good = checks(
        aws, arn, environ={**base, "PULUMI_SECRETS_PROVIDER": "awskms://alias/pulumi-state"}
    )
    bad = checks(aws, arn, environ={**base, "PULUMI_SECRETS_PROVIDER": "awskms://alias/gone"})

    assert good.run(("registry",)).ok
    assert bad.run(("registry",)).failures == ("secrets-provider",)


# -- CodeConnections, through botocore's Stubber -------------------------------------------------


class StubbedConnections:
    """A session whose codeconnections client answers GetConnection with ``status``."""

    def __init__(self, session, status: str, calls: int = 2) -> None:
        self.session = session
        self.region_name = session.region_name
        self.client_ = boto3.client("codeconnections", region_name=REGION)
        self.stubber = Stubber(self.client_)
        for _ in range(calls):  # each service's connection is looked up
            self.stubber.add_response(
                "get_connection",
                {
                    "Connection": {
                        "ConnectionName": "github-acme",
                        "ConnectionArn": CONNECTION,
                        "ProviderType": "GitHub",
                        "OwnerAccountId": ACCOUNT,
                        "ConnectionStatus": status,
                    }
                },
                {"ConnectionArn": CONNECTION},
            )
        self.stubber.activate()

    def get_credentials(self):
        return self.session.get_credentials()

    def client(self, service: str, **kwargs: Any):
        if service == "codeconnections":
            return self.client_
        return self.session.client(service, **kwargs)


def codeconnections(environment: str):
    return each_pipeline(environment, source_provider="codeconnections", connection_arn=CONNECTION)


@pytest.mark.parametrize(("status", "ok"), [("AVAILABLE", True), ("PENDING", False)])
def test_a_connection_must_be_available(aws, status, ok):
    session = StubbedConnections(aws, status)

    report = checks(session, None, pipeline_args=codeconnections).run(("pipeline",))

    session.stubber.assert_no_pending_responses()
    assert "github-token" not in names(report)
    (connection,) = [r for r in report.results if r.name == "connection"]  # one, both services'
    if ok:
        assert report.ok
        assert connection.detail == f"app, worker: {CONNECTION} AVAILABLE"
    else:
        assert report.failures == ("connection",)
        assert connection.detail.startswith(f"app, worker: connection {CONNECTION} is PENDING")
        assert "Update pending connection" in connection.detail


# -- which checks each command runs --------------------------------------------------------------


@pytest.mark.parametrize(
    ("purpose", "expected"),
    [
        (Purpose.PREFLIGHT, EVERY_CHECK),
        (Purpose.PREVIEW, EVERY_CHECK),
        (Purpose.DEPLOY, EVERY_CHECK[:-1]),  # the token: before the pipeline layer, see ready()
        (Purpose.REFRESH, EVERY_CHECK[:6]),
        (Purpose.DESTROY, EVERY_CHECK[:6]),  # no token, and the ECS service may be gone already
    ],
)
def test_each_command_runs_only_the_checks_relevant_to_it(aws, arn, purpose, expected):
    report = checks(aws, arn).run(("foundation", "registry", "pipeline"), purpose)

    assert names(report) == expected


def test_layers_without_the_pipeline_need_no_pipeline_checks(aws, arn, without):
    without("cluster", "codecommit")

    report = checks(aws, arn).run(("foundation", "registry"))

    assert names(report) == EVERY_CHECK[:6]
    assert report.ok


def test_a_bad_pipeline_config_is_the_readers_own_line(aws, arn):
    def broken(environment: str):
        raise ConfigError("stacks/pipeline/Pulumi.dev.yaml", "platform-pipeline:ecsCluster", "bad")

    report = checks(aws, arn, pipeline_args=broken).run(("pipeline",))

    assert report.failures == ("pipeline-config",)
    assert (
        "stacks/pipeline/Pulumi.dev.yaml: platform-pipeline:ecsCluster: bad" in report.lines()[-1]
    )


# -- ready(): the deploy's check before the pipeline layer ---------------------------------------


def test_ready_stops_the_pipeline_until_the_token_is_stored_and_then_lets_it_go(aws):
    arn = token_secret(aws, None)
    check = checks(aws, None)
    upstream = {"foundation": {"githubTokenSecretArn": arn}, "registry": {}}

    assert check.ready("foundation", {}) is None
    assert check.ready("registry", {"foundation": {}}) is None
    stopped = check.ready("pipeline", upstream)
    assert stopped is not None
    assert "\n" not in stopped
    assert f"--secret-id {arn} --secret-string file://github-token.txt" in stopped
    assert "then rerun `./dev deploy --env dev`" in stopped

    aws.client("secretsmanager").put_secret_value(SecretId=arn, SecretString=TOKEN)
    assert check.ready("pipeline", upstream) is None


def test_ready_needs_no_token_with_a_connection(aws):
    arn = token_secret(aws, None)
    check = checks(aws, None, pipeline_args=codeconnections)

    assert check.ready("pipeline", {"foundation": {"githubTokenSecretArn": arn}}) is None


# -- the task -------------------------------------------------------------------------------------


def test_preflight_task_prints_each_line_and_exits_1_with_one_line(
    aws, arn, without, monkeypatch, capsys
):
    import tasks

    without("service")
    monkeypatch.setattr(
        preflight_module, "for_environment", lambda env, runner=None: checks(aws, arn)
    )

    with pytest.raises(Exit) as stopped:
        tasks.preflight(Context(), env="dev")

    assert stopped.value.code == 1
    assert stopped.value.message == (
        "error: preflight dev failed: ecs-service; nothing was touched (see the lines above)"
    )
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "preflight dev:"
    assert len(printed) == 1 + len(EVERY_CHECK)


def test_preflight_task_passes_on_a_conforming_account(aws, arn, monkeypatch, capsys):
    import tasks

    monkeypatch.setattr(
        preflight_module, "for_environment", lambda env, runner=None: checks(aws, arn)
    )

    tasks.preflight(Context(), env="dev", layer="registry")

    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "preflight dev:"
    assert [line.split()[:2] for line in printed[1:]] == [
        ["pass", name] for name in EVERY_CHECK[:6]
    ]


# -- sources: what each one needs before a deploy ----------------------------------------------


def s3_source(environment: str):
    return each_pipeline(environment, source_provider="s3")


def without_mirror(environment: str):
    return each_pipeline(environment, source={"codecommit_trigger": False})


def test_the_s3_source_needs_no_token(aws):
    check = checks(aws, None, pipeline_args=s3_source)

    report = check.run(("pipeline",))

    assert report.ok, report.lines()
    assert "github-token" not in names(report)
    assert check.ready("pipeline", {"foundation": {"githubTokenSecretArn": "unused"}}) is None


def test_without_the_mirror_rule_the_mirror_is_not_looked_for(aws, arn, without):
    without("codecommit")

    report = checks(aws, arn, pipeline_args=without_mirror).run(("pipeline",))

    assert report.ok, report.lines()
    assert "codecommit-repository" not in names(report)


# -- issue 23: what would fail midway in a fresh account ----------------------------------------


class Stubbed:
    """A session whose ``service`` client is answered by botocore's Stubber (moto implements
    neither Lambda's GetAccountSettings nor IAM's SimulatePrincipalPolicy); the rest is moto."""

    def __init__(self, session, service: str) -> None:
        self.session = session
        self.service = service
        self.region_name = session.region_name
        self.client_ = boto3.client(service, region_name=REGION)
        self.stubber = Stubber(self.client_)

    def get_credentials(self):
        return self.session.get_credentials()

    def client(self, service: str, **kwargs: Any):
        if service == self.service:
            return self.client_
        return self.session.client(service, **kwargs)


def reserving(environment: str):
    """The pipeline config with ``reserveConcurrency: true`` (recorder 5, deploy handler 2):
    the recorder once, a deploy handler per service (app, worker)."""
    return dataclasses.replace(
        pipeline_config(environment), reserved_concurrency={"recorder": 5, "deploy-handler": 2}
    )


def reserving_the_app_alone(environment: str):
    return dataclasses.replace(only_the_app(environment), **_reservation(reserving(environment)))


def _reservation(layer) -> dict[str, Any]:
    return {"reserved_concurrency": layer.reserved_concurrency}


HANDLERS = (
    "acme-pipeline-recorder-dev",
    "acme-pipeline-app-deploy-handler-dev",
    "acme-pipeline-worker-deploy-handler-dev",
)


def _concurrency(
    aws, limit: int, unreserved: int, held: dict[str, int], functions: tuple[str, ...] = HANDLERS
) -> Stubbed:
    """Lambda with this limit; ``held``: what each existing function of the layer reserves."""
    session = Stubbed(aws, "lambda")
    session.stubber.add_response(
        "get_account_settings",
        {
            "AccountLimit": {
                "TotalCodeSize": 80530636800,
                "CodeSizeUnzipped": 262144000,
                "CodeSizeZipped": 52428800,
                "ConcurrentExecutions": limit,
                "UnreservedConcurrentExecutions": unreserved,
            },
            "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": len(held)},
        },
        {},
    )
    for name in functions:
        if name in held:
            session.stubber.add_response(
                "get_function_concurrency",
                {"ReservedConcurrentExecutions": held[name]},
                {"FunctionName": name},
            )
        else:
            session.stubber.add_client_error(
                "get_function_concurrency",
                "ResourceNotFoundException",
                "Function not found",
                404,
                expected_params={"FunctionName": name},
            )
    session.stubber.activate()
    return session


def test_a_fresh_account_of_ten_cannot_reserve_and_preflight_says_what_to_do(aws):
    session = _concurrency(aws, limit=10, unreserved=10, held={})

    report = checks(session, None, pipeline_args=reserving).run(("pipeline",), Purpose.DEPLOY)

    session.stubber.assert_no_pending_responses()
    assert report.failures == ("lambda-concurrency",)
    (result,) = [r for r in report.results if r.name == "lambda-concurrency"]
    assert result.detail == (
        "the account allows 10 concurrent executions (10 unreserved); the handlers reserve 9"
        " (the recorder 5, the deploy handlers of 2 services 2 each) and Lambda keeps 100"
        " unreserved, so 109 are needed: request them (`aws service-quotas"
        " request-service-quota-increase --service-code lambda --quota-code L-B99A9384"
        " --desired-value 109 --region us-east-1`), or set platform-pipeline:reserveConcurrency"
        " false in stacks/pipeline/Pulumi.dev.yaml"
    )


def test_one_service_reserves_for_the_recorder_and_its_own_deploy_handler(aws):
    session = _concurrency(aws, 10, 10, {}, functions=HANDLERS[:2])

    report = checks(session, None, pipeline_args=reserving_the_app_alone).run(
        ("pipeline",), Purpose.DEPLOY
    )

    session.stubber.assert_no_pending_responses()
    (result,) = [r for r in report.results if r.name == "lambda-concurrency"]
    assert result.detail.startswith(
        "the account allows 10 concurrent executions (10 unreserved); the handlers reserve 7"
        " (the recorder 5, the deploy handlers of 1 service 2 each) and Lambda keeps 100"
        " unreserved, so 107 are needed"
    )


@pytest.mark.parametrize(
    ("limit", "unreserved", "held", "ok"),
    [
        (1000, 1000, {}, True),
        (109, 109, {}, True),  # 5 + 2 * 2 reserved, 100 left
        (108, 108, {}, False),
        # A redeploy: the functions' own reservations already left the unreserved pool.
        (109, 100, {HANDLERS[0]: 5, HANDLERS[1]: 2, HANDLERS[2]: 2}, True),
        # Only the application's handlers exist yet: the worker's 2 still need room.
        (109, 102, {HANDLERS[0]: 5, HANDLERS[1]: 2}, True),
        (108, 101, {HANDLERS[0]: 5, HANDLERS[1]: 2}, False),
        # Another function of the account reserves 50 of 150.
        (150, 100, {}, False),
    ],
)
def test_the_reservation_fits_when_100_stay_unreserved(aws, limit, unreserved, held, ok):
    session = _concurrency(aws, limit, unreserved, held)

    report = checks(session, None, pipeline_args=reserving).run(("pipeline",), Purpose.DEPLOY)

    session.stubber.assert_no_pending_responses()
    assert report.ok is ok, report.lines()


def test_without_reservation_lambda_is_not_asked(aws):
    report = checks(aws, None).run(("pipeline",), Purpose.DEPLOY)

    assert "lambda-concurrency" not in names(report)


# -- the GitHub token's access to the repository's hooks ----------------------------------------


def test_a_token_without_admin_on_the_repository_fails_before_the_deploy(aws, arn):
    asked: list[tuple[str, str]] = []

    def github(url: str, token: str) -> int:
        asked.append((url, token))
        return 404

    report = checks(aws, arn, github=github).run(("pipeline",))

    assert asked == [
        ("https://api.github.com/repos/acme/app/hooks", TOKEN),
        ("https://api.github.com/repos/acme/worker-service/hooks", TOKEN),
    ]
    assert report.failures == ("github-hooks",)
    assert (
        "worker: the GitHub token sees no such repository (404) on acme/worker-service's"
        in (report.lines()[-1])
    )
    line = report.lines()[-2]
    assert "app: the GitHub token sees no such repository (404) on acme/app's webhooks" in line
    assert "admin:repo_hook" in line
    assert "platform-pipeline:githubWebhook false" in line
    assert TOKEN not in "\n".join(report.lines())


@pytest.mark.parametrize(("status", "ok"), [(200, True), (403, False), (401, False)])
def test_the_hooks_answer_decides(aws, arn, status, ok):
    report = checks(aws, arn, github=lambda url, token: status).run(("pipeline",))

    assert names(report)[-3:] == ["github-token", "github-hooks", "github-hooks"]  # app, worker
    assert report.ok is ok


def test_services_of_one_repository_share_its_hooks_line(aws, arn):
    def one_repository(environment: str):
        return each_pipeline(environment, github_repo="app")

    report = checks(aws, arn, github=lambda url, token: 200, pipeline_args=one_repository).run(
        ("pipeline",)
    )

    assert report.results[-1].detail == "app, worker: the token may manage the webhooks of acme/app"
    assert names(report)[-2:] == ["github-token", "github-hooks"]


def test_the_deploy_checks_the_hooks_with_the_token_before_the_pipeline_layer(aws, arn):
    check = checks(aws, None, github=lambda url, token: 403)

    stopped = check.ready("pipeline", {"foundation": {"githubTokenSecretArn": arn}})

    assert stopped is not None
    assert "is refused (403) on acme/app's webhooks" in stopped


def test_without_the_webhook_github_is_not_asked(aws, arn):
    def no_webhook(environment: str):
        return each_pipeline(environment, source={"github_webhook": False})

    def github(url: str, token: str) -> int:
        raise AssertionError("GitHub asked although the webhook is registered by hand")

    report = checks(aws, arn, github=github, pipeline_args=no_webhook).run(("pipeline",))

    assert report.ok
    assert "github-hooks" not in names(report)


# -- the deployer's own permissions ---------------------------------------------------------------

ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/acme-deploy"


def _simulation(aws, answers: list[tuple[list[str], list[str], str | None]]) -> Stubbed:
    """IAM answering each SimulatePrincipalPolicy call in turn: (asked, denied, next marker)."""
    session = Stubbed(aws, "iam")
    marker: str | None = None
    for asked, denied, following in answers:
        params: dict[str, Any] = {"PolicySourceArn": ROLE_ARN, "ActionNames": asked}
        if marker:
            params["Marker"] = marker
        response: dict[str, Any] = {
            "EvaluationResults": [
                {
                    "EvalActionName": action,
                    "EvalResourceName": "*",
                    "EvalDecision": "implicitDeny" if action in denied else "allowed",
                }
                for action in asked
            ],
            "IsTruncated": following is not None,
        }
        if following is not None:
            response["Marker"] = following
        session.stubber.add_response("simulate_principal_policy", response, params)
        marker = following
    session.stubber.activate()
    return session


def _as_deploy_role(monkeypatch, session) -> None:
    """STS answers as a session of the acme-deploy role (moto's answer is its root user)."""
    sts = session.session.client("sts")
    monkeypatch.setattr(
        sts,
        "get_caller_identity",
        lambda: {
            "Account": ACCOUNT,
            "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/acme-deploy/gha-1234",
            "UserId": "AROAEXAMPLE:gha-1234",
        },
    )


def test_denied_deploy_actions_are_one_line_a_few_named_and_the_rest_counted(aws, monkeypatch):
    actions = [f"svc:Action{n:02}" for n in range(25)]
    denied = ["svc:Action03", "svc:Action07", "svc:Action21", "svc:Action22", "svc:Action24"]
    session = _simulation(aws, [(actions[:20], denied, None), (actions[20:], denied, None)])
    _as_deploy_role(monkeypatch, session)

    report = checks(session, None, deploy_policy_actions=lambda env: actions).run(
        ("foundation",), Purpose.DEPLOY
    )

    session.stubber.assert_no_pending_responses()
    assert report.failures == ("deploy-permissions",)
    (result,) = [r for r in report.results if r.name == "deploy-permissions"]
    assert result.detail == (
        f"{ROLE_ARN} is denied 5 of the 25 actions the deploy policy holds: svc:Action03,"
        " svc:Action07, svc:Action21 and 2 more; attach the policy of `./dev operator-policy"
        " --role deploy --env dev`"
    )


def test_every_page_of_a_simulation_is_read(aws, monkeypatch):
    actions = ["svc:A", "svc:B", "svc:C"]
    session = _simulation(aws, [(actions, [], "page-2"), (actions, ["svc:C"], None)])
    _as_deploy_role(monkeypatch, session)

    report = checks(session, None, deploy_policy_actions=lambda env: actions).run(
        ("foundation",), Purpose.DEPLOY
    )

    session.stubber.assert_no_pending_responses()
    assert report.failures == ("deploy-permissions",)
    assert "is denied 1 of the 3 actions the deploy policy holds: svc:C;" in report.lines()[-1]


def test_a_role_allowed_every_action_passes(aws, monkeypatch):
    actions = ["svc:A", "svc:B"]
    session = _simulation(aws, [(actions, [], None)])
    _as_deploy_role(monkeypatch, session)

    report = checks(session, None, deploy_policy_actions=lambda env: actions).run(
        ("foundation",), Purpose.DEPLOY
    )

    assert report.ok, report.lines()
    assert report.lines()[-1].endswith(f"{ROLE_ARN} is allowed all 2 deploy actions")


def test_a_preview_holds_its_caller_to_no_deploy_policy(aws, monkeypatch):
    # CI previews with the read-only preview role: simulating the deploy policy would fail it.
    session = Stubbed(aws, "iam")  # no simulation answer queued: a simulation would fail
    session.stubber.activate()
    _as_deploy_role(monkeypatch, session)

    report = checks(session, None, deploy_policy_actions=lambda env: ["svc:A"]).run(
        ("foundation",), Purpose.PREVIEW
    )

    assert report.ok, report.lines()
    assert "deploy-permissions" not in names(report)


def test_a_role_that_may_not_simulate_is_skipped_not_failed(aws, monkeypatch):
    session = Stubbed(aws, "iam")
    session.stubber.add_client_error("simulate_principal_policy", "AccessDenied", "no", 403)
    session.stubber.activate()
    _as_deploy_role(monkeypatch, session)

    report = checks(session, None, deploy_policy_actions=lambda env: ["svc:A"]).run(
        ("foundation",), Purpose.DEPLOY
    )

    assert report.ok
    (result,) = [r for r in report.results if r.name == "deploy-permissions"]
    assert result.skipped
    assert "iam:SimulatePrincipalPolicy on itself" in result.detail


@pytest.mark.parametrize(
    ("caller", "principal"),
    [
        (
            "arn:aws:sts::111111111111:assumed-role/acme-deploy/gha-1",
            "arn:aws:iam::111111111111:role/acme-deploy",
        ),
        ("arn:aws:iam::111111111111:user/ops/alice", "arn:aws:iam::111111111111:user/ops/alice"),
        ("arn:aws:iam::111111111111:root", None),
        ("arn:aws:sts::111111111111:federated-user/bob", None),
    ],
)
def test_the_caller_maps_to_the_principal_whose_policies_apply(caller, principal):
    assert preflight_module.principal_arn(caller) == principal


def test_the_simulated_actions_are_the_generated_deploy_policys():
    actions = preflight_module.deploy_actions("dev")

    assert actions == tuple(sorted(set(actions)))
    for action in ("iam:PassRole", "lambda:PutFunctionConcurrency", "codepipeline:CreatePipeline"):
        assert action in actions

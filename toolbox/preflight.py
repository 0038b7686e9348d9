"""``./dev preflight``: what a real run needs, checked before any stack is touched.

One pass/fail line per check, so a first deploy in a fresh account either works or stops before
it changes anything, saying what to fix:

- tooling: the Pulumi CLI is installed at the version in ``.pulumi.version``; the state backend
  and the secrets provider (or passphrase) of the selected layers are usable;
- the account: AWS credentials are present, STS GetCallerIdentity names the environment's
  ``accountId`` (platform.yaml), and the configured region is the environment's;
- the pipeline layer's outside world (read through the layer's own config reader): the ECS
  cluster and service (ACTIVE), the task and execution roles it may pass, the CodeCommit
  repository of the trigger, the CodeConnections connection (AVAILABLE) with
  ``sourceProvider: codeconnections``, and with ``sourceProvider: github`` a current value in the
  foundation's token secret (never printed) and, with the webhook on, that the token may read the
  repository's hooks (GitHub asks for admin on the repository); with ``reserveConcurrency``, that
  the account's Lambda concurrency leaves room for the reservation;
- the deployer's own permissions: ``iam:SimulatePrincipalPolicy`` on the caller's role for every
  action of the generated deploy policy (``toolbox/operator_policy.py``), before a deploy and by
  ``./dev preflight``; not before a preview, which CI runs with the read-only preview role;
- the account's quotas (``toolbox/quotas.py``): what the offline plan creates (pipelines, build
  projects, rules per event bus, repositories, log groups, roles) fits the applied values in
  Service Quotas beside what the account already has, before a deploy and by ``./dev preflight``.

Which checks run depends on the command (:class:`Purpose`): refresh and destroy run no program,
so they need the tooling and the account only; a deploy checks the token just before the
pipeline layer (:meth:`Preflight.ready`), after the foundation that holds the secret is up.

Everything a check touches is injected (a boto3 Session, the environment variables, the CLI
version, the foundation's outputs), so the tests run every check against moto, and against
botocore's Stubber where moto lacks the API. The AWS APIs and the permissions they need are
listed in docs/operations.md.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess  # nosec B404 - runs the Pulumi CLI by absolute path, no shell
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse
from urllib.request import Request, urlopen

from botocore.exceptions import BotoCoreError, ClientError

from shared.errors import PlatformError
from shared.layers import REPO_ROOT
from shared.layers import get as get_layer
from shared.settings import Platform, load_platform
from toolbox.automation import backend_url, check_secrets, require_cli, secrets_provider
from toolbox.layer_config import read_pipeline_args

if TYPE_CHECKING:
    from shared.stackconfig import LayerFiles
    from stacks.pipeline.config import LayerArgs, PipelineArgs
    from toolbox.offline import LayerPlan
    from toolbox.synth import SynthResult

VERSION_FILE = REPO_ROOT / ".pulumi.version"
"""The Pulumi CLI version the repository is tested with (CI installs exactly this one)."""

PIPELINE = "pipeline"
"""The layer that reads the GitHub token secret when it deploys (``sourceProvider: github``)."""

GITHUB_API = "https://api.github.com"

SIMULATE_BATCH = 20
"""Action names per SimulatePrincipalPolicy call. The API reference sets no maximum, but each
action is evaluated for each resource and large requests are refused in practice (nccgroup/PMapper
chunks its simulations for that reason); the answers are paginated besides (``Marker``)."""

LAYER_SETTING: Callable[[str], str] = "platform-pipeline:{}".format
"""Where a failed check tells the operator to set a pipeline setting: the layer's key."""

DENIED_NAMED = 3
"""How many denied actions the one line names; the rest are counted."""

TOKEN_FILE = "github-token.txt"  # noqa: S105 - a file name, not a credential  # nosec B105
"""The file the operator writes the token to, so it never lands in the shell's history."""


class Purpose(StrEnum):
    """The command a preflight runs for; it decides which checks are relevant."""

    PREFLIGHT = "preflight"
    """``./dev preflight``: every check of the selected layers."""
    PREVIEW = "preview"
    """A preview runs the programs: everything, the token included."""
    DEPLOY = "deploy"
    """Everything but the token, which :meth:`Preflight.ready` checks before the pipeline layer."""
    REFRESH = "refresh"
    """No program runs: tooling and account only."""
    DESTROY = "destroy"
    """No program runs, and what the pipeline points at may already be gone: tooling, account."""


PROGRAM_PURPOSES = (Purpose.PREFLIGHT, Purpose.PREVIEW, Purpose.DEPLOY)
"""The commands that run the layers' programs, and so need what the programs point at."""

DEPLOYER_PURPOSES = (Purpose.PREFLIGHT, Purpose.DEPLOY)
"""The commands whose caller must hold the deploy policy: a preview's caller holds the read-only
preview role (``./dev operator-policy --role preview``), which the deploy policy's simulation
would fail."""


@dataclass(frozen=True)
class CheckResult:
    """One check: passed, failed, or skipped because a check it depends on failed."""

    name: str
    ok: bool
    detail: str
    skipped: bool = False

    def line(self, width: int = 0) -> str:
        """``  pass  name  detail`` (``FAIL`` or ``skip`` likewise)."""
        mark = "skip" if self.skipped else "pass" if self.ok else "FAIL"
        return f"  {mark}  {self.name:<{width}}  {self.detail}"


def passed(name: str, detail: str) -> CheckResult:
    """A check that passed."""
    return CheckResult(name, True, detail)


def failed(name: str, detail: str) -> CheckResult:
    """A check that failed, with what to do in ``detail``."""
    return CheckResult(name, False, detail)


def skipped(name: str, detail: str) -> CheckResult:
    """A check that could not run; it does not fail the preflight by itself."""
    return CheckResult(name, True, detail, skipped=True)


@dataclass(frozen=True)
class PreflightReport:
    """The results of one preflight, in the order the checks ran."""

    environment: str
    purpose: Purpose
    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        """True unless a check failed (a skipped check does not count)."""
        return all(result.ok for result in self.results)

    @property
    def failures(self) -> tuple[str, ...]:
        """The names of the failed checks, each once (``quotas`` fails one line per quota)."""
        return tuple(dict.fromkeys(result.name for result in self.results if not result.ok))

    def lines(self) -> list[str]:
        """The report as the task prints it: a header, then one line per check."""
        width = max((len(result.name) for result in self.results), default=0)
        head = f"preflight {self.environment}" + (
            "" if self.purpose is Purpose.PREFLIGHT else f" (before {self.purpose.value})"
        )
        return [f"{head}:", *(result.line(width) for result in self.results)]

    def summary(self) -> str:
        """One line: the failed checks, or that everything passed."""
        if self.ok:
            return f"preflight {self.environment}: every check passed"
        return (
            f"preflight {self.environment} failed: {', '.join(self.failures)}; nothing was"
            " touched (see the lines above)"
        )


def required_cli_version(path: Path = VERSION_FILE) -> str:
    """The version in ``.pulumi.version`` (without a leading ``v``)."""
    return path.read_text(encoding="utf-8").strip().removeprefix("v")


def installed_cli_version() -> str:
    """The installed Pulumi CLI's version (MissingToolError when there is none)."""
    path = require_cli()
    result = subprocess.run(  # noqa: S603 - an absolute path from shutil.which, fixed argument  # nosec B603
        [path, "version"], capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout.strip().removeprefix("v")


def store_token_command(secret_arn: str, region: str) -> str:
    """The command that stores the GitHub token, read from a file (not the shell's history)."""
    return (
        f"aws secretsmanager put-secret-value --secret-id {secret_arn}"
        f" --secret-string file://{TOKEN_FILE} --region {region}"
    )


def github_status(url: str, token: str) -> int:
    """The HTTP status of an authenticated GET on GitHub's REST API (never the body, never the
    token); 0 when GitHub cannot be reached."""
    from urllib.error import HTTPError, URLError

    request = Request(  # noqa: S310 - a fixed https:// URL of GitHub's API
        url,
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        },
    )
    try:
        with urlopen(request, timeout=20) as response:  # noqa: S310  # nosec B310
            return int(response.status)
    except HTTPError as exc:
        return int(exc.code)
    except (URLError, OSError):
        return 0


def deploy_actions(environment: str, backend_url: str = "") -> tuple[str, ...]:
    """Every action of the deploy policy ``./dev operator-policy --role deploy`` generates for
    ``environment`` (its resources aside), sorted; ``iam:PassRole`` included."""
    from toolbox import operator_policy

    document = operator_policy.policy(
        operator_policy.DEPLOY,
        load_platform(environment),
        state=operator_policy.state_bucket(backend_url),
    )
    actions = {"iam:PassRole"}  # the deploy passes the layers' roles (needs the plans to name)
    for statement in document["Statement"]:
        found = statement["Action"]
        actions.update([found] if isinstance(found, str) else found)
    return tuple(sorted(actions))


def principal_arn(caller: str) -> str | None:
    """The IAM ARN whose policies apply to ``caller`` (GetCallerIdentity's Arn): an assumed
    role's session maps to its role; a user is itself; anything else (root, federated) None.

    A role's path is not in its session's ARN: a role under a path is simulated without it."""
    parts = caller.split(":", 5)
    if len(parts) != 6:
        return None
    partition, service, account, resource = parts[1], parts[2], parts[4], parts[5]
    if service == "sts" and resource.startswith("assumed-role/"):
        return f"arn:{partition}:iam::{account}:role/{resource.split('/')[1]}"
    if service == "iam" and resource.startswith(("user/", "role/")):
        return caller
    return None


def _aws_error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
    return str(exc)


def _role_name(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


@dataclass
class Preflight:
    """The checks of one environment, with everything they touch injectable."""

    environment: str
    session: Any
    """A boto3 Session (tests pass one inside ``moto.mock_aws``)."""
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    cli_version: Callable[[], str] = installed_cli_version
    """The installed CLI's version; raises MissingToolError when there is none."""
    foundation_outputs: Callable[[], Mapping[str, Any] | None] = lambda: None
    """The foundation stack's outputs, None when it is not deployed (raises PlatformError when
    they cannot be read)."""
    pipeline_args: Callable[[str], LayerArgs] = read_pipeline_args
    placeholders: Callable[[str], CheckResult] | None = None
    """The check for the sample configuration's placeholders (:func:`check_placeholders`);
    None skips it (the tests of the other checks run on the sample configuration)."""
    github: Callable[[str, str], int] | None = None
    """GET a GitHub API URL with the token, giving the HTTP status (:func:`github_status`); None
    skips the webhook-permission check (the tests of the other checks make no HTTP call)."""
    deploy_policy_actions: Callable[[str], Sequence[str]] | None = None
    """The deploy policy's actions for an environment (:func:`deploy_actions`); None skips the
    simulation of the deployer's permissions."""
    offline_plan: Callable[[str], CheckResult] | None = None
    """The environment's offline plan judged as ``./dev synth`` judges it
    (:func:`check_offline_plan`); None skips it (the tests of the other checks plan nothing)."""
    plans: Callable[[str], Mapping[str, LayerPlan]] | None = None
    """The environment's offline plans by layer (:meth:`OfflinePlan.plans`), whose resources the
    quota check counts; None skips the quota check."""
    _clients: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    @property
    def platform(self) -> Platform:
        """The environment's settings from platform.yaml."""
        return load_platform(self.environment)

    def client(self, service: str) -> Any:
        """A client in the environment's region, whatever the session's default (one each)."""
        if service not in self._clients:
            self._clients[service] = self.session.client(service, region_name=self.platform.region)
        return self._clients[service]

    # -- the run ---------------------------------------------------------------------------

    def run(self, layers: Sequence[str], purpose: Purpose = Purpose.PREFLIGHT) -> PreflightReport:
        """Run the checks ``purpose`` needs for ``layers``; never raises for a failed check."""
        results = [self.check_cli(), self.check_backend(), self.check_secrets(layers)]
        if self.offline_plan is not None and purpose in PROGRAM_PURPOSES:
            results.insert(0, self.offline_plan(self.environment))
        if self.placeholders is not None and purpose in PROGRAM_PURPOSES:
            results.insert(0, self.placeholders(self.environment))
        account = [self.check_credentials()]
        if account[0].ok:
            account += [self.check_account(), self.check_region()]
        results += account
        reachable = all(result.ok for result in account)
        if self.deploy_policy_actions is not None and purpose in DEPLOYER_PURPOSES:
            results.append(
                self.check_permissions()
                if reachable
                else skipped("deploy-permissions", "needs working AWS credentials")
            )
        if self.plans is not None and purpose in DEPLOYER_PURPOSES:
            results += (
                self.check_quotas(layers)
                if reachable
                else [skipped("quotas", "needs working AWS credentials in the right account")]
            )
        if PIPELINE in layers and purpose in PROGRAM_PURPOSES:
            results += self._pipeline_checks(purpose, reachable)
        return PreflightReport(self.environment, purpose, tuple(results))

    def _pipeline_checks(self, purpose: Purpose, reachable: bool) -> list[CheckResult]:
        try:
            layer = self.pipeline_args(self.environment)
        except PlatformError as exc:
            return [failed("pipeline-config", str(exc))]
        pipelines = layer.pipelines
        names = ["ecs-cluster", "ecs-service", "ecs-task-role", "ecs-execution-role"]
        if any(p.source.codecommit_trigger for p in pipelines):  # no mirror rule, no mirror
            names.append("codecommit-repository")
        if layer.reserved_concurrency:
            names.append("lambda-concurrency")
        if any(p.source_provider == "codeconnections" for p in pipelines):
            names.append("connection")
        github = [p for p in pipelines if p.source_provider == "github"]
        if github and purpose is not Purpose.DEPLOY:
            names.append("github-token")  # the s3 source needs no token
        if not reachable:
            return [
                skipped(name, "needs working AWS credentials in the right account")
                for name in names
            ]
        several = len(pipelines) > 1
        results = _by_service(
            [
                (args.service, result)
                for args in pipelines
                for result in self._service_checks(args, several)
            ],
            several,
        )
        if "lambda-concurrency" in names:
            results.append(self.check_concurrency(layer))
        if "github-token" in names:
            token = self.check_token_of_foundation()
            results.append(token)
            if token.ok and not token.skipped:
                hooks = [
                    (args.service, self.check_hooks(args, self._token_arn()))
                    for args in github
                    if self._hooks_wanted(args)
                ]
                results += _by_service(hooks, several)
        return results

    def _service_checks(self, args: PipelineArgs, several: bool) -> list[CheckResult]:
        """What one service's pipeline points at: its ECS service, roles, mirror, connection.

        With ``several`` services, a failure names the service's own entry in platform.yaml as
        the place to fix it (the layer's value is every service's, ``{service}`` aside)."""
        where = _where_to_set(args.service if several else "")
        each = [
            self.check_cluster(args),
            self.check_service(args, where),
            self.check_role("ecs-task-role", args.ecs_role_arns[0], where),
            self.check_role("ecs-execution-role", args.ecs_role_arns[1], where),
        ]
        if args.source.codecommit_trigger:
            each.append(self.check_codecommit(args, where))
        if args.source_provider == "codeconnections":
            each.append(self.check_connection(args.connection_arn))
        return each

    def _hooks_wanted(self, args: PipelineArgs) -> bool:
        return self.github is not None and args.source.github_webhook

    def _token_arn(self) -> str:
        outputs = self.foundation_outputs() or {}
        return str(outputs["githubTokenSecretArn"])

    def ready(self, layer: str, upstream: Mapping[str, Mapping[str, Any]]) -> str | None:
        """Why ``layer`` cannot be deployed yet beyond its upstream stacks, or None.

        Called by the deploy after the upstream layers are up: the pipeline layer with
        ``sourceProvider: github`` needs a value in the secret the foundation just created.
        """
        if layer != PIPELINE:
            return None
        github = [
            p
            for p in self.pipeline_args(self.environment).pipelines
            if p.source_provider == "github"
        ]
        if not github:
            return None
        arn = str(upstream["foundation"]["githubTokenSecretArn"])
        result = self.check_token(arn)
        for args in github:
            if result.ok and self._hooks_wanted(args):
                (result,) = _by_service([(args.service, self.check_hooks(args, arn))], True)
        return None if result.ok else result.detail

    # -- tooling -------------------------------------------------------------------------------

    def check_cli(self) -> CheckResult:
        """The Pulumi CLI is installed, at the version in ``.pulumi.version``."""
        wanted = required_cli_version()
        try:
            found = self.cli_version()
        except PlatformError as exc:
            return failed("pulumi-cli", str(exc))
        except (OSError, subprocess.SubprocessError) as exc:
            return failed("pulumi-cli", f"`pulumi version` failed ({exc}); reinstall the CLI")
        if found != wanted:
            return failed(
                "pulumi-cli",
                f"version {found} installed, the repository pins {wanted} (.pulumi.version):"
                f" curl -fsSL https://get.pulumi.com | sh -s -- --version {wanted}",
            )
        return passed("pulumi-cli", f"version {found}")

    def check_backend(self) -> CheckResult:
        """The state backend can be reached: a writable folder, or an S3 bucket that exists."""
        try:
            url = backend_url(self.environ)
        except PlatformError as exc:
            return failed("state-backend", str(exc))
        parsed = urlparse(url)
        if parsed.scheme == "file":
            folder = Path(parsed.path)
            usable = folder if folder.exists() else folder.parent
            if os.access(usable, os.W_OK):
                return passed("state-backend", url)
            return failed("state-backend", f"{url}: {usable} is not writable")
        if parsed.scheme == "s3":
            try:
                self.client("s3").head_bucket(Bucket=parsed.netloc)
            except (ClientError, BotoCoreError) as exc:
                return failed(
                    "state-backend",
                    f"{url}: bucket {parsed.netloc} cannot be reached ({_aws_error(exc)}); create"
                    " it or fix PULUMI_BACKEND_URL",
                )
            return passed("state-backend", url)
        return passed("state-backend", f"{url} (the CLI checks its login when it runs)")

    def check_secrets(self, layers: Sequence[str]) -> CheckResult:
        """Each selected stack's secrets can be decrypted without a prompt."""
        try:
            for layer in layers:
                check_secrets(layer, self.environment, self.environ)
        except PlatformError as exc:
            return failed("secrets-provider", str(exc))
        passphrase_file = self.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")
        if not self.environ.get("PULUMI_CONFIG_PASSPHRASE") and passphrase_file:
            if not os.access(passphrase_file, os.R_OK):
                return failed(
                    "secrets-provider",
                    f"PULUMI_CONFIG_PASSPHRASE_FILE={passphrase_file} cannot be read",
                )
            return passed("secrets-provider", "passphrase file")
        providers = {secrets_provider(layer, self.environment, self.environ) for layer in layers}
        kms = sorted(p for p in providers if p and p.startswith("awskms://"))
        for provider in kms:
            problem = self._kms_provider_problem(provider)
            if problem:
                return failed("secrets-provider", problem)
        return passed("secrets-provider", ", ".join(kms) or "passphrase")

    def _kms_provider_problem(self, provider: str) -> str | None:
        parsed = urlparse(provider)
        key = f"{parsed.netloc}{parsed.path}"
        region = parse_qs(parsed.query).get("region", [self.platform.region])[0]
        try:
            self.session.client("kms", region_name=region).describe_key(KeyId=key)
        except (ClientError, BotoCoreError) as exc:
            return f"{provider}: key {key} cannot be used ({_aws_error(exc)})"
        return None

    # -- the account -------------------------------------------------------------------------

    def check_credentials(self) -> CheckResult:
        """boto3's default chain finds credentials."""
        if self.session.get_credentials() is None:
            return failed(
                "aws-credentials",
                "no AWS credentials found: set AWS_PROFILE (or run `aws sso login`), or export"
                " AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
            )
        return passed("aws-credentials", "found")

    def check_account(self) -> CheckResult:
        """STS GetCallerIdentity names the environment's account."""
        wanted = self.platform.account_id
        try:
            identity = self.client("sts").get_caller_identity()
        except (ClientError, BotoCoreError) as exc:
            return failed("aws-account", f"STS GetCallerIdentity failed: {_aws_error(exc)}")
        if identity["Account"] != wanted:
            return failed(
                "aws-account",
                f"credentials are for account {identity['Account']}, but {self.environment}"
                f" deploys to {wanted} (platform.yaml environments.{self.environment}.accountId):"
                " switch AWS_PROFILE",
            )
        return passed("aws-account", f"{wanted} as {identity['Arn']}")

    def check_region(self) -> CheckResult:
        """The configured region is the environment's: ``AWS_REGION`` (the AWS CLI's first
        choice) when set, else boto3's (``AWS_DEFAULT_REGION``, the profile's ``region``)."""
        wanted = self.platform.region
        found = self.environ.get("AWS_REGION") or self.session.region_name
        if found != wanted:
            return failed(
                "aws-region",
                f"the configured region is {found or 'unset'}, but {self.environment} is in"
                f" {wanted} (platform.yaml): export AWS_REGION={wanted}"
                f" AWS_DEFAULT_REGION={wanted}",
            )
        return passed("aws-region", wanted)

    # -- what the pipeline points at ---------------------------------------------------------

    def check_cluster(self, args: PipelineArgs) -> CheckResult:
        """The ECS cluster exists and is ACTIVE."""
        name = args.ecs_cluster
        try:
            found = self.client("ecs").describe_clusters(clusters=[name])
        except (ClientError, BotoCoreError) as exc:
            return failed("ecs-cluster", f"{name}: {_aws_error(exc)}")
        status = next((c["status"] for c in found.get("clusters", [])), "MISSING")
        if status != "ACTIVE":
            return failed(
                "ecs-cluster",
                f"cluster {name} is {status}: create it, or set platform-pipeline:ecsCluster",
            )
        return passed("ecs-cluster", f"{name} ACTIVE")

    def check_service(
        self, args: PipelineArgs, where: Callable[[str], str] = LAYER_SETTING
    ) -> CheckResult:
        """The ECS service exists in that cluster, is ACTIVE, and runs a task definition of the
        family the pipeline may register revisions of (``ecsTaskFamily``): else the Deploy
        stage's RegisterTaskDefinition would be refused halfway through a release."""
        cluster, name = args.ecs_cluster, args.ecs_service
        try:
            found = self.client("ecs").describe_services(cluster=cluster, services=[name])
        except (ClientError, BotoCoreError) as exc:
            return failed("ecs-service", f"{name} in {cluster}: {_aws_error(exc)}")
        service = next(iter(found.get("services", [])), {})
        status = service.get("status", "MISSING")
        if status != "ACTIVE":
            return failed(
                "ecs-service",
                f"service {name} in cluster {cluster} is {status}: create it, or set"
                f" {where('ecsService')}",
            )
        running = str(service.get("taskDefinition", ""))
        family = running.rsplit("/", 1)[-1].rsplit(":", 1)[0]
        if family != args.ecs_task_family:
            return failed(
                "ecs-service",
                f"service {name} in cluster {cluster} runs task definition family {family!r},"
                f" but the pipeline may register revisions of {args.ecs_task_family!r} only: set"
                f" ecsTaskFamily: {family} (platform-pipeline:ecsTaskFamily, or under the"
                " service in platform.yaml)",
            )
        return passed("ecs-service", f"{name} ACTIVE in {cluster}, family {family}")

    def check_role(
        self, check: str, arn: str, where: Callable[[str], str] = LAYER_SETTING
    ) -> CheckResult:
        """A role the deploy may pass to ECS tasks exists."""
        try:
            self.client("iam").get_role(RoleName=_role_name(arn))
        except (ClientError, BotoCoreError) as exc:
            key = "ecsTaskRoleName" if check == "ecs-task-role" else "ecsExecutionRoleName"
            return failed(
                check,
                f"role {arn} cannot be read ({_aws_error(exc)}): create it, or set {where(key)}",
            )
        return passed(check, arn)

    def check_codecommit(
        self, args: PipelineArgs, where: Callable[[str], str] = LAYER_SETTING
    ) -> CheckResult:
        """The CodeCommit repository whose pushes start the pipeline exists."""
        name = args.codecommit_repository_arn.rsplit(":", 1)[-1]
        try:
            self.client("codecommit").get_repository(repositoryName=name)
        except (ClientError, BotoCoreError) as exc:
            return failed(
                "codecommit-repository",
                f"repository {name} cannot be read ({_aws_error(exc)}): create the mirror, or set"
                f" {where('codecommitRepository')}",
            )
        return passed("codecommit-repository", name)

    def check_connection(self, arn: str) -> CheckResult:
        """The CodeConnections connection exists and is AVAILABLE (authorised in the console)."""
        service = arn.split(":")[2]  # codeconnections, or the older codestar-connections
        try:
            found = self.client(service).get_connection(ConnectionArn=arn)
        except (ClientError, BotoCoreError) as exc:
            return failed("connection", f"{arn}: {_aws_error(exc)}")
        status = found["Connection"]["ConnectionStatus"]
        if status != "AVAILABLE":
            return failed(
                "connection",
                f"connection {arn} is {status}: finish its authorisation in the console"
                " (Developer Tools > Settings > Connections > Update pending connection)",
            )
        return passed("connection", f"{arn} AVAILABLE")

    def check_token_of_foundation(self) -> CheckResult:
        """The token check, with the secret's ARN from the foundation's outputs."""
        try:
            outputs = self.foundation_outputs()
        except PlatformError as exc:
            return failed("github-token", f"cannot read the foundation's outputs: {exc}")
        if outputs is None:
            return skipped(
                "github-token",
                "the foundation (which holds the token secret) is not deployed yet;"
                f" `./dev deploy --env {self.environment}` stops before the pipeline layer with"
                " the command that stores the token",
            )
        return self.check_token(str(outputs["githubTokenSecretArn"]))

    def check_token(self, arn: str) -> CheckResult:
        """The token secret has a non-empty AWSCURRENT value (never printed, never kept)."""
        region = self.platform.region
        fix = (
            f"store the token: `{store_token_command(arn, region)}` ({TOKEN_FILE} holds only the"
            f" token, see docs/pipeline.md), then rerun `./dev deploy --env {self.environment}`"
        )
        secrets = self.client("secretsmanager")
        try:
            described = secrets.describe_secret(SecretId=arn)
        except (ClientError, BotoCoreError) as exc:
            return failed("github-token", f"secret {arn} cannot be read ({_aws_error(exc)})")
        stages = described.get("VersionIdsToStages") or {}
        if not any("AWSCURRENT" in labels for labels in stages.values()):
            return failed("github-token", f"the GitHub token secret has no value; {fix}")
        try:
            value = secrets.get_secret_value(SecretId=arn).get("SecretString") or ""
        except (ClientError, BotoCoreError) as exc:
            return failed("github-token", f"secret {arn} cannot be read ({_aws_error(exc)})")
        if not value.strip():
            return failed("github-token", f"the GitHub token secret is empty; {fix}")
        return passed("github-token", f"{arn} has a current value (not shown)")

    def check_hooks(self, args: PipelineArgs, arn: str) -> CheckResult:
        """The token may read the repository's webhooks, which creating one needs.

        ``GET /repos/{owner}/{repo}/hooks`` needs admin on the repository (a classic token's
        ``admin:repo_hook`` scope, a fine-grained token's "Webhooks" permission); GitHub answers
        403, or 404 to hide a repository the token may not see. The token is never printed.
        """
        repo = f"{args.github_owner}/{args.github_repo}"
        if self.github is None:
            return skipped("github-hooks", "no GitHub client")
        try:
            token = self.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        except (ClientError, BotoCoreError, KeyError) as exc:
            return failed("github-hooks", f"secret {arn} cannot be read ({_aws_error(exc)})")
        status = self.github(f"{GITHUB_API}/repos/{repo}/hooks", token.strip())
        if status == 200:
            return passed("github-hooks", f"the token may manage the webhooks of {repo}")
        why = {
            401: "is not valid (401)",
            403: "is refused (403)",
            404: "sees no such repository (404)",
        }
        if status in why:
            return failed(
                "github-hooks",
                f"the GitHub token {why[status]} on {repo}'s webhooks: creating the webhook needs"
                " admin on the repository (classic token: admin:repo_hook; fine-grained: Webhooks"
                " read and write); store a token that has it, or set"
                " platform-pipeline:githubWebhook false and register the webhook by hand",
            )
        if status == 0:
            return failed(
                "github-hooks", f"{GITHUB_API} cannot be reached to check {repo}'s webhooks"
            )
        return failed("github-hooks", f"GitHub answered {status} for {repo}'s webhooks")

    def check_concurrency(self, layer: LayerArgs) -> CheckResult:
        """The account's Lambda concurrency leaves room for the handlers' reservation.

        Lambda refuses a reservation that would leave fewer than 100 concurrent executions
        unreserved; what this layer's functions already reserve (a redeploy) counts as room.
        The recorder reserves once, each service's deploy handler once per service.
        """
        from stacks.pipeline import names as physical
        from stacks.pipeline.config import UNRESERVED_MINIMUM

        functions = [physical.function(layer.label, layer.recorder.key)] + [
            physical.function(p.label, p.releases.deploy_handler.key) for p in layer.pipelines
        ]
        lam = self.client("lambda")
        try:
            limits = lam.get_account_settings()["AccountLimit"]
            held = 0
            for function in functions:
                try:
                    found = lam.get_function_concurrency(FunctionName=function)
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                        raise
                    continue
                held += int(found.get("ReservedConcurrentExecutions") or 0)
        except (ClientError, BotoCoreError) as exc:
            return failed("lambda-concurrency", f"Lambda: {_aws_error(exc)}")
        limit = int(limits["ConcurrentExecutions"])
        unreserved = int(limits["UnreservedConcurrentExecutions"])
        total = layer.reserved_total
        left = unreserved + held - total
        if left >= UNRESERVED_MINIMUM:
            return passed(
                "lambda-concurrency", f"reserving {total} leaves {left} of {limit} unreserved"
            )
        needed = limit + UNRESERVED_MINIMUM - left
        services = len(layer.pipelines)
        each = layer.reserved_concurrency
        return failed(
            "lambda-concurrency",
            f"the account allows {limit} concurrent executions ({unreserved} unreserved); the"
            f" handlers reserve {total} (the recorder {each[layer.recorder.key]}, the deploy"
            f" handlers of {services} service{'s' if services != 1 else ''}"
            f" {each['deploy-handler']} each) and Lambda keeps {UNRESERVED_MINIMUM} unreserved, so"
            f" {needed} are needed: request them (`aws service-quotas"
            " request-service-quota-increase --service-code lambda --quota-code L-B99A9384"
            f" --desired-value {needed} --region {self.platform.region}`), or set"
            " platform-pipeline:reserveConcurrency false in"
            f" stacks/pipeline/Pulumi.{self.environment}.yaml",
        )

    def check_quotas(self, layers: Sequence[str]) -> list[CheckResult]:
        """What the layers' offline plans create fits the account's quotas (toolbox/quotas.py):
        one line per quota that would be exceeded, or that could not be read; else one line."""
        from toolbox import quotas

        if self.plans is None:
            return [skipped("quotas", "no offline plan to count")]
        try:
            plans = self.plans(self.environment)
        except PlatformError as exc:
            return [skipped("quotas", f"the offline plan failed, nothing to count ({exc})")]
        resources = [r for name in layers if name in plans for r in plans[name].resources]

        def client(service: str, region: str) -> Any:
            if region == self.platform.region:
                return self.client(service)
            return self.session.client(service, region_name=region)

        rooms, findings = quotas.check(resources, client, self.platform.region)
        if findings:
            return [failed("quotas", finding.detail) for finding in findings]
        if not rooms:
            return [passed("quotas", "the selected layers create nothing a quota here counts")]
        return [passed("quotas", f"room for the plan: {quotas.summary(rooms)}")]

    def check_permissions(self) -> CheckResult:
        """The caller's own policies allow every action of the generated deploy policy.

        ``iam:SimulatePrincipalPolicy`` on the caller's role (or user), in batches of
        :data:`SIMULATE_BATCH` actions, every page read. It simulates the actions on any
        resource: it finds an action the role lacks, not one granted on the wrong resource.
        A caller that may not simulate is skipped with the permission it would need.
        """
        if self.deploy_policy_actions is None:
            return skipped("deploy-permissions", "no deploy policy to simulate")
        try:
            caller = self.client("sts").get_caller_identity()["Arn"]
        except (ClientError, BotoCoreError) as exc:
            return failed("deploy-permissions", f"STS GetCallerIdentity failed: {_aws_error(exc)}")
        principal = principal_arn(caller)
        if principal is None:
            return skipped(
                "deploy-permissions", f"{caller} is not a role or user: nothing to simulate"
            )
        actions = list(self.deploy_policy_actions(self.environment))
        try:
            denied = self._denied(principal, actions)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("AccessDenied", "AccessDeniedException"):
                return skipped(
                    "deploy-permissions",
                    f"{principal} may not simulate its own policies (it needs"
                    " iam:SimulatePrincipalPolicy on itself); a missing permission shows when"
                    " the deploy needs it",
                )
            return failed("deploy-permissions", f"{principal}: {_aws_error(exc)}")
        except BotoCoreError as exc:
            return failed("deploy-permissions", f"{principal}: {_aws_error(exc)}")
        if not denied:
            return passed(
                "deploy-permissions", f"{principal} is allowed all {len(actions)} deploy actions"
            )
        named = ", ".join(denied[:DENIED_NAMED])
        rest = len(denied) - DENIED_NAMED
        more = f" and {rest} more" if rest > 0 else ""
        return failed(
            "deploy-permissions",
            f"{principal} is denied {len(denied)} of the {len(actions)} actions the deploy"
            f" policy holds: {named}{more}; attach the policy of `./dev operator-policy --role"
            f" deploy --env {self.environment}`",
        )

    def _denied(self, principal: str, actions: Sequence[str]) -> list[str]:
        """The actions the principal's policies do not allow, sorted (every batch, every page)."""
        denied: set[str] = set()
        iam_client = self.client("iam")
        for start in range(0, len(actions), SIMULATE_BATCH):
            batch = list(actions[start : start + SIMULATE_BATCH])
            marker: str | None = None
            while True:
                extra = {"Marker": marker} if marker else {}
                page = iam_client.simulate_principal_policy(
                    PolicySourceArn=principal, ActionNames=batch, **extra
                )
                denied.update(
                    result["EvalActionName"]
                    for result in page.get("EvaluationResults", [])
                    if result["EvalDecision"] != "allowed"
                )
                if not page.get("IsTruncated"):
                    break
                marker = page["Marker"]
        return sorted(denied)


def _where_to_set(service: str) -> Callable[[str], str]:
    """Where a failed check of ``service``'s resource tells the operator to set ``key``: the
    layer's setting, or with several services (``service`` given) the service's own entry in
    platform.yaml, since the layer's value is every service's."""
    if not service:
        return LAYER_SETTING
    return lambda key: f"{key} under services.{service} in platform.yaml"


def _by_service(pairs: list[tuple[str, CheckResult]], several: bool) -> list[CheckResult]:
    """Each (service, result) once per distinct result, in order: services that share a cluster,
    a role or a repository share its line, which with ``several`` services names them all
    (``app, worker: app ACTIVE``)."""
    services: dict[CheckResult, list[str]] = {}
    for service, result in pairs:
        services.setdefault(result, []).append(service)
    if not several:
        return list(services)
    return [
        dataclasses.replace(result, detail=f"{', '.join(named)}: {result.detail}")
        for result, named in services.items()
    ]


class PreflightError(PlatformError):
    """A preflight check failed; the message is the report's one-line summary."""


def gate(
    check: Preflight, purpose: Purpose, echo: Callable[[str], None] = print
) -> Callable[[tuple[str, ...]], None]:
    """The orchestration's ``preflight`` step: run the checks, print them, raise on a failure."""

    def run(layers: tuple[str, ...]) -> None:
        report = check.run(layers, purpose)
        for line in report.lines():
            echo(line)
        if not report.ok:
            raise PreflightError(report.summary())

    return run


def for_environment(environment: str, runner: Any = None) -> Preflight:
    """The real checks: boto3's default session, this process's environment, the CLI, and the
    foundation's outputs read through ``runner`` (a PulumiRunner; made on demand if None)."""
    import boto3

    from toolbox.automation import PulumiRunner

    def foundation_outputs() -> Mapping[str, Any] | None:
        reader = runner if runner is not None else PulumiRunner()
        if not reader.exists("foundation", environment):
            return None
        return reader.outputs("foundation", environment)

    def actions(env: str) -> tuple[str, ...]:
        return deploy_actions(env, os.environ.get("PULUMI_BACKEND_URL", ""))

    offline = OfflinePlan()
    return Preflight(
        environment,
        boto3.Session(),
        foundation_outputs=foundation_outputs,
        placeholders=check_placeholders,
        offline_plan=offline.check,
        plans=offline.plans,
        github=github_status,
        deploy_policy_actions=actions,
    )


@dataclass
class OfflinePlan:
    """An environment's offline plan, made once for the checks that read it: the
    ``offline-plan`` check judges it, the ``quotas`` check counts its resources."""

    out_dir: Path | None = None
    """Where the plan files are written (``build/plan`` when None)."""
    _made: dict[str, SynthResult | PlatformError] = field(default_factory=dict, repr=False)

    def result(self, environment: str) -> SynthResult:
        """``./dev synth``'s result for ``environment`` (planned on the first call only); the
        PlatformError of a plan that failed, raised again on every call."""
        from toolbox.synth import synth

        if environment not in self._made:
            try:
                self._made[environment] = (
                    synth(environment)
                    if self.out_dir is None
                    else synth(environment, out_dir=self.out_dir)
                )
            except PlatformError as exc:
                self._made[environment] = exc
        made = self._made[environment]
        if isinstance(made, PlatformError):
            raise made
        return made

    def plans(self, environment: str) -> Mapping[str, LayerPlan]:
        """The plans by layer."""
        return self.result(environment).plans

    def check(self, environment: str) -> CheckResult:
        """The plan judged as ``./dev synth`` judges it (:func:`check_offline_plan`)."""
        try:
            result = self.result(environment)
        except PlatformError as exc:
            return failed("offline-plan", str(exc))
        if result.violations:
            return failed(
                "offline-plan",
                f"{result.violations} policy violation(s) or AWS spec finding(s) in the offline"
                f" plan; `./dev synth --env {environment}` names each",
            )
        return passed("offline-plan", "the policy pack and AWS's specs find nothing")


def check_offline_plan(environment: str, out_dir: Path | None = None) -> CheckResult:
    """The environment planned offline and judged as ``./dev synth`` judges it: the policy pack,
    and AWS's published specs (the SAR, CloudFormation's handler permissions and resource
    schemas), which a real preview's engine does not check; a finding stops a preview or a
    deploy before any stack is touched."""
    return OfflinePlan(out_dir).check(environment)


SAMPLE_NAMESPACE = "acme"
SAMPLE_EMAIL = "devops@company.com"
SAMPLE_ACCOUNT = re.compile(r"(\d)\1{11}")
"""The sample's account ids (``111111111111``, ``222222222222``): twelve times one digit."""


def placeholders_in(platform: Platform, foundation: LayerFiles) -> list[str]:
    """Where the sample's values are still set: ``<file> <key> '<value>'`` each."""
    found = []
    if platform.namespace == SAMPLE_NAMESPACE:
        found.append(f"platform.yaml namespace '{SAMPLE_NAMESPACE}'")
    if SAMPLE_ACCOUNT.fullmatch(platform.account_id):
        found.append(
            f"platform.yaml environments.{platform.environment}.accountId '{platform.account_id}'"
        )
    key = "platform-foundation:notificationEmail"
    email = foundation.values.get(key, foundation.defaults().get(key))
    if email == SAMPLE_EMAIL:
        where = (
            f"{foundation.stack_file} {key}"
            if key in foundation.values
            else f"{foundation.project_file} config.notificationEmail.default"
        )
        found.append(f"{where} '{SAMPLE_EMAIL}'")
    return found


def check_placeholders(environment: str) -> CheckResult:
    """Fail while the environment still uses a value the sample configuration ships with.

    Those values plan offline, but a real deploy with them would name resources after the
    sample organisation, look for an account that is not the team's, and mail failures to
    nobody; ``./dev init`` replaces them all.
    """
    from shared.stackconfig import load_layer_files

    files = load_layer_files(get_layer("foundation"), environment)
    found = placeholders_in(load_platform(environment), files)
    if not found:
        return passed("placeholders", "no sample value left")
    return failed(
        "placeholders",
        f"the sample configuration's placeholder(s) are still set: {', '.join(found)};"
        " `./dev init` replaces them",
    )


__all__ = [
    "DEPLOYER_PURPOSES",
    "PIPELINE",
    "PROGRAM_PURPOSES",
    "CheckResult",
    "OfflinePlan",
    "Preflight",
    "PreflightError",
    "PreflightReport",
    "Purpose",
    "check_offline_plan",
    "check_placeholders",
    "deploy_actions",
    "for_environment",
    "gate",
    "github_status",
    "installed_cli_version",
    "principal_arn",
    "read_pipeline_args",
    "required_cli_version",
    "store_token_command",
]

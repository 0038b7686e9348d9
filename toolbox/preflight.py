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
  foundation's token secret (never printed).

Which checks run depends on the command (:class:`Purpose`): refresh and destroy run no program,
so they need the tooling and the account only; a deploy checks the token just before the
pipeline layer (:meth:`Preflight.ready`), after the foundation that holds the secret is up.

Everything a check touches is injected (a boto3 Session, the environment variables, the CLI
version, the foundation's outputs), so the tests run every check against moto, and against
botocore's Stubber where moto lacks the API. The AWS APIs and the permissions they need are
listed in docs/operations.md.
"""

from __future__ import annotations

import os
import re
import subprocess  # nosec B404 - runs the Pulumi CLI by absolute path, no shell
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

from botocore.exceptions import BotoCoreError, ClientError

from shared.errors import PlatformError
from shared.layers import REPO_ROOT
from shared.layers import get as get_layer
from shared.settings import Platform, load_platform
from toolbox.automation import backend_url, check_secrets, require_cli, secrets_provider

if TYPE_CHECKING:
    from shared.stackconfig import LayerFiles
    from stacks.pipeline.config import PipelineArgs

VERSION_FILE = REPO_ROOT / ".pulumi.version"
"""The Pulumi CLI version the repository is tested with (CI installs exactly this one)."""

PIPELINE = "pipeline"
"""The layer that reads the GitHub token secret when it deploys (``sourceProvider: github``)."""

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
        """The names of the failed checks."""
        return tuple(result.name for result in self.results if not result.ok)

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


def read_pipeline_args(environment: str) -> PipelineArgs:
    """The pipeline layer's config, read and validated by the layer's own (pure) reader.

    From the same two files the CLI hands the program (``Pulumi.yaml`` defaults overlaid by
    ``Pulumi.<env>.yaml``); a bad value is the reader's own ConfigError line.
    """
    from shared.naming import Label
    from shared.stackconfig import file_values
    from stacks.pipeline.config import load

    layer = get_layer(PIPELINE)
    platform = load_platform(environment)
    return load(file_values(layer, environment), platform, Label(platform, layer))


def store_token_command(secret_arn: str, region: str) -> str:
    """The command that stores the GitHub token, read from a file (not the shell's history)."""
    return (
        f"aws secretsmanager put-secret-value --secret-id {secret_arn}"
        f" --secret-string file://{TOKEN_FILE} --region {region}"
    )


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
    pipeline_args: Callable[[str], PipelineArgs] = read_pipeline_args
    placeholders: Callable[[str], CheckResult] | None = None
    """The check for the sample configuration's placeholders (:func:`check_placeholders`);
    None skips it (the tests of the other checks run on the sample configuration)."""
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
        if self.placeholders is not None and purpose in PROGRAM_PURPOSES:
            results.insert(0, self.placeholders(self.environment))
        account = [self.check_credentials()]
        if account[0].ok:
            account += [self.check_account(), self.check_region()]
        results += account
        if PIPELINE in layers and purpose in PROGRAM_PURPOSES:
            reachable = all(result.ok for result in account)
            results += self._pipeline_checks(purpose, reachable)
        return PreflightReport(self.environment, purpose, tuple(results))

    def _pipeline_checks(self, purpose: Purpose, reachable: bool) -> list[CheckResult]:
        try:
            args = self.pipeline_args(self.environment)
        except PlatformError as exc:
            return [failed("pipeline-config", str(exc))]
        names = ["ecs-cluster", "ecs-service", "ecs-task-role", "ecs-execution-role"]
        if args.source.codecommit_trigger:  # no mirror rule, no mirror to look for
            names.append("codecommit-repository")
        if args.source_provider == "codeconnections":
            names.append("connection")
        elif args.source_provider == "github" and purpose is not Purpose.DEPLOY:
            names.append("github-token")  # the s3 source needs no token
        if not reachable:
            return [
                skipped(name, "needs working AWS credentials in the right account")
                for name in names
            ]
        results = [
            self.check_cluster(args),
            self.check_service(args),
            self.check_role("ecs-task-role", args.ecs_role_arns[0]),
            self.check_role("ecs-execution-role", args.ecs_role_arns[1]),
        ]
        if "codecommit-repository" in names:
            results.append(self.check_codecommit(args))
        if "connection" in names:
            results.append(self.check_connection(args.connection_arn))
        if "github-token" in names:
            results.append(self.check_token_of_foundation())
        return results

    def ready(self, layer: str, upstream: Mapping[str, Mapping[str, Any]]) -> str | None:
        """Why ``layer`` cannot be deployed yet beyond its upstream stacks, or None.

        Called by the deploy after the upstream layers are up: the pipeline layer with
        ``sourceProvider: github`` needs a value in the secret the foundation just created.
        """
        if layer != PIPELINE:
            return None
        if self.pipeline_args(self.environment).source_provider != "github":
            return None
        arn = str(upstream["foundation"]["githubTokenSecretArn"])
        result = self.check_token(arn)
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

    def check_service(self, args: PipelineArgs) -> CheckResult:
        """The ECS service exists in that cluster and is ACTIVE."""
        cluster, name = args.ecs_cluster, args.ecs_service
        try:
            found = self.client("ecs").describe_services(cluster=cluster, services=[name])
        except (ClientError, BotoCoreError) as exc:
            return failed("ecs-service", f"{name} in {cluster}: {_aws_error(exc)}")
        status = next((s["status"] for s in found.get("services", [])), "MISSING")
        if status != "ACTIVE":
            return failed(
                "ecs-service",
                f"service {name} in cluster {cluster} is {status}: create it, or set"
                " platform-pipeline:ecsService",
            )
        return passed("ecs-service", f"{name} ACTIVE in {cluster}")

    def check_role(self, check: str, arn: str) -> CheckResult:
        """A role the deploy may pass to ECS tasks exists."""
        try:
            self.client("iam").get_role(RoleName=_role_name(arn))
        except (ClientError, BotoCoreError) as exc:
            key = "ecsTaskRoleName" if check == "ecs-task-role" else "ecsExecutionRoleName"
            return failed(
                check,
                f"role {arn} cannot be read ({_aws_error(exc)}): create it, or set"
                f" platform-pipeline:{key}",
            )
        return passed(check, arn)

    def check_codecommit(self, args: PipelineArgs) -> CheckResult:
        """The CodeCommit repository whose pushes start the pipeline exists."""
        name = args.codecommit_repository_arn.rsplit(":", 1)[-1]
        try:
            self.client("codecommit").get_repository(repositoryName=name)
        except (ClientError, BotoCoreError) as exc:
            return failed(
                "codecommit-repository",
                f"repository {name} cannot be read ({_aws_error(exc)}): create the mirror, or set"
                " platform-pipeline:codecommitRepository",
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

    return Preflight(
        environment,
        boto3.Session(),
        foundation_outputs=foundation_outputs,
        placeholders=check_placeholders,
    )


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
    "PIPELINE",
    "PROGRAM_PURPOSES",
    "CheckResult",
    "Preflight",
    "PreflightError",
    "PreflightReport",
    "Purpose",
    "check_placeholders",
    "for_environment",
    "gate",
    "installed_cli_version",
    "read_pipeline_args",
    "required_cli_version",
    "store_token_command",
]

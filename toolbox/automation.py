"""Real deploys: a thin adapter over ``pulumi.automation``, behind the :class:`Runner` interface.

The ordering and safety rules live in :mod:`toolbox.orchestration` and are tested with a
recording fake runner; this module only turns one operation on one layer's stack into Automation
API calls (a LocalWorkspace per layer directory), streams the CLI's output prefixed with the
layer's name, and turns every failure into one line (:class:`~shared.errors.PlatformError`).

Where state and secrets live (see docs/operations.md):

- State backend: ``file://<repo>/.pulumi-state`` by default (git-ignored, no login), or
  ``PULUMI_BACKEND_URL`` (for example ``s3://bucket/prefix`` for a team).
- Secrets provider: a passphrase from ``PULUMI_CONFIG_PASSPHRASE`` or
  ``PULUMI_CONFIG_PASSPHRASE_FILE``, or ``PULUMI_SECRETS_PROVIDER`` (``awskms://alias/...``),
  used when a stack is created; an existing stack keeps the provider recorded in its
  ``Pulumi.<env>.yaml``.

Protected resources stay protected: nothing here passes a flag that bypasses ``protect``.

The policy pack (``policies/``) runs on every preview and every up, through the Automation API's
``policy_packs`` argument (the CLI's ``--policy-pack``). A mandatory violation makes the CLI fail
the command; the engine's policy events (``EngineEvent.policy_event``) name the policies, and the
one line says which (see docs/guardrails.md).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol

from shared import layers
from shared.contracts import create_command, stack_name
from shared.errors import PlatformError
from shared.layers import CONFIG_DIR_VARIABLE, REPO_ROOT
from shared.layers import get as get_layer
from shared.settings import load_platform, read_yaml, relative

if TYPE_CHECKING:
    from pulumi.automation import EngineEvent

DEFAULT_STATE_DIR = REPO_ROOT / ".pulumi-state"
"""Where the default file backend keeps state (git-ignored)."""

POLICY_PACK = REPO_ROOT / "policies"
"""The platform's policy pack, run by every real preview and up (``--policy-pack``)."""
COMMIT_TAG = "platform:commit"
"""The stack tag that records the commit a stack was last deployed from (set after each up)."""

REDACTED = "[secret]"
"""What :meth:`PulumiRunner.outputs` gives for a secret output, as ``pulumi stack output`` does."""

CLI_MISSING = (
    "pulumi CLI not found: install it (curl -fsSL https://get.pulumi.com | sh, or see"
    " https://www.pulumi.com/docs/install/) and AWS credentials, then rerun;"
    " `./dev synth` plans offline without either"
)


class Runner(Protocol):
    """One Pulumi operation on one layer's stack in one environment.

    Implementations raise :class:`PlatformError` (one line) when an operation fails.
    """

    def exists(self, layer: str, env: str) -> bool:
        """Whether the layer's stack exists in the state backend."""
        ...

    def outputs(self, layer: str, env: str) -> dict[str, Any]:
        """The stack's outputs by key (secret values redacted)."""
        ...

    def preview(self, layer: str, env: str) -> None:
        """Show what ``up`` would change (the stack must exist)."""
        ...

    def up(self, layer: str, env: str, yes: bool) -> None:
        """Create or update the stack's resources, creating the stack on first deploy."""
        ...

    def refresh(self, layer: str, env: str) -> None:
        """Bring the stack's state in line with what exists in AWS."""
        ...

    def destroy(self, layer: str, env: str) -> None:
        """Delete the stack's resources (protected ones refuse), then remove the stack."""
        ...

    def deployed_commit(self, layer: str, env: str) -> str | None:
        """The commit the stack records from its last deploy; None when that cannot be trusted.

        None when the stack does not exist, records no commit, or its latest operation did not
        succeed (a failed or interrupted up): ``deploy --changed`` then never skips it.
        """
        ...

    def set_deployed_commit(self, layer: str, env: str, commit: str) -> None:
        """Record on the stack the commit it was just deployed from."""
        ...

    def refresh_preview(
        self, layer: str, env: str, on_event: Callable[[EngineEvent], None]
    ) -> None:
        """A refresh preview of the stack that expects no changes, each engine event to
        ``on_event``: what a drift check collects. Raises PlatformError when the preview exits
        non-zero, which it also does when something drifted (the collector tells which)."""
        ...


UNTOUCHED = "untouched"
"""A stack the operation did not change (it stopped before, or only read)."""
INTERRUPTED = "interrupted"
"""A stack the operation may have changed in part: some resources updated, others not, maybe
with pending operations (resources whose create, update or delete was under way)."""

MUTATING = ("deploy", "destroy", "refresh")
"""The actions of :class:`_translated` that change a stack; a failure in any other leaves it
untouched."""

PENDING_OPERATIONS = re.compile(
    r"pending operations?|interrupted while (?:creating|updating|deleting|reading)", re.IGNORECASE
)
"""What the CLI prints about an interrupted update's leftovers: "Attempting to deploy or update
resources with 1 pending operations from previous deployment", each one "interrupted while
creating" (www.pulumi.com/docs/iac/operations/troubleshooting/interrupted-updates/)."""

EXPIRED_CREDENTIALS = re.compile(
    r"ExpiredToken|RequestExpired|security token included in the request is expired"
    r"|token has expired",
    re.IGNORECASE,
)
"""What AWS answers (through the provider's errors) once the run's credentials have expired:
STS/IAM ``ExpiredToken``/``ExpiredTokenException``, SigV4 ``RequestExpired``."""


class StackFault(PlatformError):
    """An operation on a stack ended early: the message, the state it left the stack in
    (:data:`UNTOUCHED` or :data:`INTERRUPTED`) and what to do before a rerun, commands in
    backticks ('' when rerunning is all it takes)."""

    def __init__(self, reason: str, *, state: str, fix: str = "") -> None:
        super().__init__(f"{reason}; {fix}" if fix else reason)
        self.reason = reason
        self.state = state
        self.fix = fix


class MissingToolError(PlatformError):
    """A tool the command needs (the Pulumi CLI) is not installed."""


class CredentialsError(PlatformError):
    """AWS credentials or the secrets passphrase are not set where they are needed."""


def require_cli() -> str:
    """The path of the Pulumi CLI; MissingToolError with what to do otherwise."""
    path = shutil.which("pulumi")
    if path is None:
        raise MissingToolError(CLI_MISSING)
    return path


def backend_url(environ: Mapping[str, str] | None = None) -> str:
    """``PULUMI_BACKEND_URL`` if set, else the file backend inside the repository.

    On GitHub Actions the file backend would be a fresh, empty state in the runner's checkout
    (a deploy would try to create everything again), so there the variable is required; an
    unset repository secret arrives as an empty string, which counts as unset.
    """
    environ = os.environ if environ is None else environ
    chosen = environ.get("PULUMI_BACKEND_URL")
    if chosen:
        return chosen
    if environ.get("GITHUB_ACTIONS") == "true":
        raise CredentialsError(
            "PULUMI_BACKEND_URL is not set: in CI the state must live in a shared backend"
            " (e.g. s3://bucket/prefix); add the repository secret PULUMI_BACKEND_URL"
        )
    return DEFAULT_STATE_DIR.as_uri()


def secrets_provider(layer: str, env: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The secrets provider for the stack: the environment's choice, the stack file's, or none.

    ``None`` lets Pulumi pick its default (the passphrase provider on a file or S3 backend).
    """
    environ = os.environ if environ is None else environ
    chosen = environ.get("PULUMI_SECRETS_PROVIDER")
    if chosen:
        return chosen
    recorded = _stack_file(layer, env).get("secretsprovider")
    return str(recorded) if recorded else None


def check_secrets(layer: str, env: str, environ: Mapping[str, str] | None = None) -> None:
    """CredentialsError unless the stack's secrets can be decrypted without a prompt."""
    environ = os.environ if environ is None else environ
    # An empty passphrase counts as none: an unset CI secret arrives as "" and must not
    # silently encrypt a stack with an empty passphrase.
    if environ.get("PULUMI_CONFIG_PASSPHRASE") or environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        return
    provider = secrets_provider(layer, env, environ)
    if provider and provider != "passphrase":
        return  # a KMS/Vault provider: the cloud credentials decrypt
    if not provider and backend_url(environ).startswith(("https://", "http://")):
        return  # a Pulumi Cloud backend: its own secrets service
    raise CredentialsError(
        f"no secrets passphrase for {layer} ({env}): set PULUMI_CONFIG_PASSPHRASE (or"
        " PULUMI_CONFIG_PASSPHRASE_FILE), or PULUMI_SECRETS_PROVIDER=awskms://alias/<key> before"
        " the stack is created"
    )


def require_repository_config() -> None:
    """PlatformError unless the configuration is the repository's own.

    Pulumi reads each stack file next to the layer's ``Pulumi.yaml``, so a real stack command
    cannot honour ``PLATFORM_CONFIG_DIR``: it would plan one configuration and deploy another.
    """
    if layers.CONFIG_ROOT != REPO_ROOT:
        raise PlatformError(
            f"{CONFIG_DIR_VARIABLE} is set ({layers.CONFIG_ROOT}): a real stack command reads"
            " platform.yaml and the stack files in the repository, where Pulumi reads them;"
            f" unset {CONFIG_DIR_VARIABLE} (it is for the offline plan and the tests)"
        )


def check_aws_credentials() -> None:
    """CredentialsError unless boto3's default chain finds AWS credentials."""
    import boto3

    if boto3.Session().get_credentials() is None:
        raise CredentialsError(
            "no AWS credentials found: set AWS_PROFILE (or run `aws sso login`), or export"
            " AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; in CI the workflow assumes a role via OIDC"
        )


def _stack_file(layer: str, env: str) -> dict[str, Any]:
    path = get_layer(layer).directory / f"Pulumi.{env}.yaml"
    if not path.exists():
        return {}
    return read_yaml(path)


def ask(question: str) -> bool:
    """Ask a yes/no question on the terminal; False when there is none (CI, pipes)."""
    if not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in {"y", "yes"}


class PulumiRunner:
    """The :class:`Runner` that really runs Pulumi, through the Automation API.

    Creating one checks for the Pulumi CLI first, so a machine without it gets one line saying
    what to install, before anything else happens.
    """

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        echo: Callable[[str], None] = print,
        confirm: Callable[[str], bool] = ask,
    ) -> None:
        self.cli = require_cli()
        self._environ = dict(os.environ if environ is None else environ)
        self.backend_url = backend_url(self._environ)
        self._echo = echo
        self._confirm = confirm

    # -- the Runner interface ---------------------------------------------------------------

    def exists(self, layer: str, env: str) -> bool:
        from pulumi.automation import Stack
        from pulumi.automation.errors import StackNotFoundError

        workspace = self._workspace(layer, env)
        try:
            with _translated("look up", self._stack_name(layer, env)):
                Stack.select(self._stack_name(layer, env), workspace)
        except StackNotFoundError:
            return False
        return True

    def outputs(self, layer: str, env: str) -> dict[str, Any]:
        check_secrets(layer, env, self._environ)
        stack = self._select(layer, env)
        with _translated("read the outputs of", stack.name):
            values = stack.outputs()
        return {key: REDACTED if out.secret else out.value for key, out in values.items()}

    def preview(self, layer: str, env: str) -> None:
        self._ready_to_run(layer, env)
        stack = self._select(layer, env)
        policies = PolicyViolations()
        with _translated("preview", stack.name, policies):
            stack.preview(on_output=self._stream(layer), diff=False, **policies.kwargs())

    def up(self, layer: str, env: str, yes: bool) -> None:
        self._ready_to_run(layer, env)
        stack = self._select(layer, env, create=True)
        if not yes:
            policies = PolicyViolations()
            with _translated("preview", stack.name, policies):
                stack.preview(on_output=self._stream(layer), **policies.kwargs())
            if not self._confirm(f"Deploy {stack.name}?"):
                raise PlatformError(
                    f"{stack.name} not deployed: not confirmed (pass --yes to deploy without a"
                    " prompt, as CI does)"
                )
        policies = PolicyViolations()
        with _translated("deploy", stack.name, policies, cli=self._cli(layer)):
            stack.up(on_output=self._stream(layer), show_secrets=False, **policies.kwargs())

    def refresh(self, layer: str, env: str) -> None:
        self._ready_to_run(layer, env)
        stack = self._select(layer, env)
        with _translated("refresh", stack.name, cli=self._cli(layer)):
            stack.refresh(on_output=self._stream(layer), show_secrets=False)

    def destroy(self, layer: str, env: str) -> None:
        self._ready_to_run(layer, env)
        stack = self._select(layer, env)
        # No exclude_protected/unprotect: a protected resource makes the destroy fail, on purpose.
        with _translated("destroy", stack.name, cli=self._cli(layer)):
            stack.destroy(on_output=self._stream(layer), show_secrets=False)
        # Remove the empty stack so the downstream guard sees it gone; keep the committed
        # Pulumi.<env>.yaml (config is code here).
        with _translated("remove", stack.name):
            stack.workspace.remove_stack(stack.name, preserve_config=True)

    def deployed_commit(self, layer: str, env: str) -> str | None:
        if not self.exists(layer, env):
            return None
        stack = self._select(layer, env)
        with _translated("read the history of", stack.name):
            # The latest operation only: a failed up after a good one leaves the old tag behind.
            latest = stack.history(page_size=1, show_secrets=False)
            tags = stack.list_tags()
        if not latest or latest[0].result != "succeeded":
            return None
        return tags.get(COMMIT_TAG) or None

    def set_deployed_commit(self, layer: str, env: str, commit: str) -> None:
        stack = self._select(layer, env)
        with _translated("tag", stack.name):
            stack.set_tag(COMMIT_TAG, commit)

    def refresh_preview(
        self, layer: str, env: str, on_event: Callable[[EngineEvent], None]
    ) -> None:
        self._ready_to_run(layer, env)
        stack = self._select(layer, env)
        with _translated("check for drift in", stack.name):
            # `pulumi refresh --preview-only --expect-no-changes`: reads every resource from
            # AWS, compares it with the state, changes neither; exits non-zero on drift.
            stack.preview_refresh(
                expect_no_changes=True,
                on_output=self._stream(layer),
                on_event=on_event,
                show_secrets=False,
            )

    # -- helpers ------------------------------------------------------------------------------

    def _stack_name(self, layer: str, env: str) -> str:
        return stack_name(load_platform(env).organization, layer, env)

    def _cli(self, layer: str) -> str:
        """How to run the Pulumi CLI by hand on the layer's stack: its backend and folder."""
        folder = relative(get_layer(layer).directory)
        return f"PULUMI_BACKEND_URL={self.backend_url} pulumi --cwd {folder}"

    def _ready_to_run(self, layer: str, env: str) -> None:
        """The checks before running a layer's program: passphrase, then AWS credentials."""
        check_secrets(layer, env, self._environ)
        check_aws_credentials()

    def _workspace(self, layer: str, env: str) -> Any:
        from pulumi.automation import LocalWorkspace

        require_repository_config()
        if self.backend_url == DEFAULT_STATE_DIR.as_uri():
            DEFAULT_STATE_DIR.mkdir(exist_ok=True)
        env_vars = {"PULUMI_BACKEND_URL": self.backend_url, "PULUMI_SKIP_UPDATE_CHECK": "true"}
        with _translated("start a workspace for", self._stack_name(layer, env)):
            return LocalWorkspace(
                work_dir=str(get_layer(layer).directory),
                env_vars=env_vars,
                secrets_provider=secrets_provider(layer, env, self._environ),
            )

    def _select(self, layer: str, env: str, *, create: bool = False) -> Any:
        from pulumi.automation import Stack
        from pulumi.automation.errors import StackNotFoundError

        name = self._stack_name(layer, env)
        workspace = self._workspace(layer, env)
        if create:
            with _translated("create or select", name):
                return Stack.create_or_select(name, workspace)
        try:
            with _translated("select", name):
                return Stack.select(name, workspace)
        except StackNotFoundError:
            raise PlatformError(
                f"stack {name} does not exist; run `{create_command(layer, env)}`"
            ) from None

    def _stream(self, layer: str) -> Callable[[str], None]:
        def emit(line: str) -> None:
            self._echo(f"[{layer}] {line.rstrip()}")

        return emit


class PolicyViolations:
    """Collects the policy pack's mandatory violations from the engine events of one operation.

    ``kwargs()`` is what every preview and up passes: the pack and this collector as ``on_event``.
    """

    def __init__(self, pack: Any = POLICY_PACK) -> None:
        self.pack = str(pack)
        self.mandatory: list[str] = []
        """Names of the policies with a mandatory violation, in the order reported (unique)."""

    def kwargs(self) -> dict[str, Any]:
        """``policy_packs`` and ``on_event`` for ``Stack.preview`` / ``Stack.up``."""
        return {"policy_packs": [self.pack], "on_event": self.on_event}

    def on_event(self, event: Any) -> None:
        """Record a mandatory policy event (``EngineEvent.policy_event``)."""
        policy = getattr(event, "policy_event", None)
        if policy is None or policy.enforcement_level != "mandatory":
            return
        if policy.policy_name not in self.mandatory:
            self.mandatory.append(policy.policy_name)

    def summary(self) -> str | None:
        """One phrase naming the violated policies, or None when there were none."""
        if not self.mandatory:
            return None
        return (
            f"mandatory policy violation(s): {', '.join(self.mandatory)}"
            " (policies/rules.py; the resources are named in the output above)"
        )


class _translated:
    """Turn the Automation API's exceptions into one line naming the stack.

    StackNotFoundError passes through: callers decide what a missing stack means. When the
    policy pack reported mandatory violations, the line names those policies. A failure of an
    operation is a :class:`StackFault` saying the state it left the stack in and what clears
    the way for a rerun: a lock held by another run (``pulumi cancel``), pending operations of
    an interrupted update (``pulumi refresh``, which asks about each pending create), expired
    credentials (renew them). ``cli`` is how to run the CLI on this stack by hand.
    """

    def __init__(
        self,
        action: str,
        stack: str,
        policies: PolicyViolations | None = None,
        *,
        cli: str = "pulumi",
    ) -> None:
        self.action = action
        self.stack = stack
        self.policies = policies
        self.cli = cli

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> Literal[False]:
        # Literal[False], not bool: it never swallows an exception (it passes or translates
        # it), so a name bound inside the `with` is bound after it.
        from pulumi.automation import errors

        if exc is None or isinstance(exc, (PlatformError, errors.StackNotFoundError)):
            return False
        if isinstance(exc, FileNotFoundError):
            raise MissingToolError(CLI_MISSING) from None
        if isinstance(exc, errors.InvalidVersionError):
            raise MissingToolError(
                f"pulumi CLI too old or unreadable ({exc}): upgrade it"
                " (curl -fsSL https://get.pulumi.com | sh), then rerun"
            ) from None
        cannot = f"cannot {self.action} {self.stack}"
        changes = self.action in MUTATING
        refresh = f"{self.cli} refresh --stack {self.stack}"
        if isinstance(exc, KeyboardInterrupt) and changes:
            raise StackFault(
                f"{cannot}: interrupted; the stack may hold pending operations",
                state=INTERRUPTED,
                fix=f"`{refresh}`",
            ) from None
        if isinstance(exc, errors.ConcurrentUpdateError):
            raise StackFault(
                f"{cannot}: another update holds its lock; wait for it, or if none is running"
                " clear the stale lock",
                state=UNTOUCHED,
                fix=f"`{self.cli} cancel --yes --stack {self.stack}`",
            ) from None
        if isinstance(exc, errors.CommandError):
            text = str(exc)
            state = INTERRUPTED if changes else UNTOUCHED
            if EXPIRED_CREDENTIALS.search(text):
                raise StackFault(
                    f"{cannot}: the AWS credentials expired during the run",
                    state=state,
                    fix="renew the AWS credentials (`aws sso login`, or a new role session)",
                ) from None
            if PENDING_OPERATIONS.search(text):
                raise StackFault(
                    f"{cannot}: it holds pending operations of an interrupted update; check them"
                    " in AWS, then clear them (the refresh asks about each pending create)",
                    state=INTERRUPTED,
                    fix=f"`{refresh}`",
                ) from None
            violated = self.policies.summary() if self.policies else None
            raise StackFault(
                f"{cannot}: {violated or last_error_line(text)}", state=state
            ) from None
        return False


_NOISE = re.compile(r"^\s*(code: -?\d+|stdout:|stderr:|\+|\|)?\s*$")


def last_error_line(text: str) -> str:
    """The most telling line of a CLI failure: the last non-empty line of its stderr."""
    _, _, stderr = text.partition("stderr:")
    lines = [line.strip() for line in (stderr or text).splitlines() if not _NOISE.match(line)]
    return lines[-1] if lines else "pulumi failed (see the output above)"


__all__ = [
    "CLI_MISSING",
    "COMMIT_TAG",
    "INTERRUPTED",
    "POLICY_PACK",
    "REDACTED",
    "UNTOUCHED",
    "CredentialsError",
    "MissingToolError",
    "PolicyViolations",
    "PulumiRunner",
    "Runner",
    "StackFault",
    "backend_url",
    "check_aws_credentials",
    "check_secrets",
    "require_cli",
    "secrets_provider",
]

"""``./dev bootstrap --env E``: what a fresh account needs before the first deploy, in one command.

It creates, only when missing, what docs/operations.md used to ask a person to make by hand:

- the Pulumi state bucket: versioned, SSE-KMS with the key below, a bucket policy that denies
  any request not made over TLS, every public access block on, the bucket owner owning objects;
- the KMS key for Pulumi secrets (rotation on) and its alias (``awskms://alias/...``);
- the GitHub OIDC provider (``token.actions.githubusercontent.com``, audience
  ``sts.amazonaws.com``);
- the three CI roles, each trusting exactly the GitHub subjects that assume it: **deploy**
  (ci-cd.yml's Deploy job, which runs in the ``production`` environment), **preview** (its Build
  job, on pushes to ``main`` and ``release/*``) and **drift** (drift.yml's Detect jobs, which run
  in the GitHub environment ``drift-<env>``). Each gets the managed policies of its own
  ``./dev operator-policy --role`` (preview's reads the state and what the programs' invokes and
  the preflight read, and writes nothing), and an inline policy for the state key alone.

Every item is read first and created (or, for a guard or a trust policy that differs, put
right) only when it is not as it should be, so a second run changes nothing; ``dry_run`` only
reads. The boto3 session is injected: the tests run it against moto.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from shared.errors import ConfigError, PlatformError
from shared.iam import VERSION, Condition, Statement
from shared.settings import PARTITION, Platform

OIDC_HOST = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
PRODUCTION = "production"
"""The GitHub environment ci-cd.yml's Deploy job runs in (its protection rules guard the role)."""
DRIFT_ENVIRONMENT = "drift-{environment}"
"""The GitHub environment drift.yml's Detect jobs run in for a platform environment: it holds
that environment's ``DRIFT_ROLE_ARN`` and ``AWS_REGION``, and no protection rule (a scheduled run
waits for no reviewer); its deployment branches are the default branch only."""
STATE_PREFIX = "platform"
"""The key prefix of the stacks in the state bucket (``s3://<bucket>/platform``)."""
DEPLOY, PREVIEW, DRIFT = "deploy", "preview", "drift"
ROLES = (DEPLOY, PREVIEW, DRIFT)
KEY_ACTIONS = {
    DEPLOY: ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"),
    PREVIEW: ("kms:Decrypt",),
    DRIFT: ("kms:Decrypt", "kms:GenerateDataKey"),
}
"""The state key's use per role: every role decrypts the stacks' secrets and reads the SSE-KMS
state objects; a deploy encrypts secrets; every state or lock object written to the bucket needs
a data key. A preview writes no object and encrypts nothing."""
KEY_POLICY_NAME = "pulumi-state-key"
POLICY_VERSIONS = 5
"""IAM keeps at most five versions of a managed policy; the oldest goes before a new one."""


class BootstrapError(PlatformError):
    """Bootstrap cannot go on (the wrong account, a bucket owned by someone else); one line."""


@dataclass(frozen=True)
class Names:
    """The names bootstrap gives what it creates in one environment."""

    bucket: str
    key_alias: str
    roles: dict[str, str]
    region: str

    @property
    def backend_url(self) -> str:
        """``PULUMI_BACKEND_URL`` for this state bucket."""
        return f"s3://{self.bucket}/{STATE_PREFIX}"

    @property
    def secrets_provider(self) -> str:
        """``PULUMI_SECRETS_PROVIDER`` for this key."""
        return f"awskms://{self.key_alias}?region={self.region}"


def names(platform: Platform) -> Names:
    """Bucket, alias and role names: the namespace first, like every name the layers make; the
    bucket (global) with the account id, the roles (one account may hold two environments) with
    the environment."""
    prefix = platform.namespace
    return Names(
        bucket=f"{prefix}-pulumi-state-{platform.account_id}",
        key_alias=f"alias/{prefix}-pulumi-secrets",
        roles={role: f"{prefix}-ci-{role}-{platform.environment}" for role in ROLES},
        region=platform.region,
    )


def github_repository(platform: Platform) -> str:
    """``OWNER/REPO`` of this repository, from platform.yaml's ``repository`` tag."""
    parsed = urlparse(
        platform.repository if "://" in platform.repository else f"https://{platform.repository}"
    )
    parts = parsed.path.strip("/").removesuffix(".git").split("/")
    if parsed.netloc != "github.com" or len(parts) != 2 or not all(parts):
        raise ConfigError(
            "platform.yaml",
            "repository",
            f"'{platform.repository}' is not a GitHub repository, which the CI roles must trust",
            "github.com/OWNER/REPO (./dev init --repository sets it)",
        )
    return "/".join(parts)


def subjects(repository: str, environment: str) -> dict[str, tuple[str, ...]]:
    """The OIDC ``sub`` each role of ``environment`` trusts: the workflow jobs that assume it,
    and nothing else.

    A job bound to a GitHub environment gets ``repo:OWNER/REPO:environment:NAME`` as its subject
    instead of the ref (GitHub, "OpenID Connect reference", example subject claims): deploy's
    (``production``) and drift's (``drift-<env>``). Pull requests are none of them: the
    pull-request workflow runs without AWS.
    """
    return {
        DEPLOY: (f"repo:{repository}:environment:{PRODUCTION}",),
        PREVIEW: (
            f"repo:{repository}:ref:refs/heads/main",
            f"repo:{repository}:ref:refs/heads/release/*",
        ),
        DRIFT: (
            f"repo:{repository}:environment:{DRIFT_ENVIRONMENT.format(environment=environment)}",
        ),
    }


def _document(*statements: Statement) -> dict[str, Any]:
    return {"Version": VERSION, "Statement": [s.to_dict() for s in statements]}


def provider_arn(account: str) -> str:
    """The GitHub OIDC provider's ARN in ``account``."""
    return f"arn:{PARTITION}:iam::{account}:oidc-provider/{OIDC_HOST}"


def trust_policy(account: str, subs: Sequence[str]) -> dict[str, Any]:
    """A role's trust: GitHub's OIDC tokens for our audience and exactly ``subs``."""
    test = "StringLike" if any("*" in s for s in subs) else "StringEquals"
    conditions = (
        Condition("StringEquals", f"{OIDC_HOST}:aud", (AUDIENCE,)),
        Condition(test, f"{OIDC_HOST}:sub", tuple(subs)),
    )
    return _document(
        Statement(
            "GitHubActions",
            ("sts:AssumeRoleWithWebIdentity",),
            principals={"Federated": (provider_arn(account),)},
            conditions=conditions,
        )
    )


def bucket_policy(bucket: str) -> dict[str, Any]:
    """Deny every request to the state bucket that is not made over TLS."""
    arn = f"arn:{PARTITION}:s3:::{bucket}"
    return _document(
        Statement(
            "DenyInsecureTransport",
            ("s3:*",),
            (arn, f"{arn}/*"),
            effect="Deny",
            principals={"AWS": ("*",)},
            conditions=(Condition("Bool", "aws:SecureTransport", ("false",)),),
        )
    )


def key_policy(role: str, key_arn: str) -> dict[str, Any]:
    """The inline policy that lets ``role`` use the state key, and no other key."""
    return _document(Statement("PulumiStateKey", KEY_ACTIONS[role], (key_arn,)))


def _canonical(value: Any) -> Any:
    """A policy as compared: one-item lists and bare strings alike, lists in order."""
    if isinstance(value, Mapping):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = sorted((_canonical(v) for v in value), key=json.dumps)
        return items[0] if len(items) == 1 else items
    return value


def same_policy(a: Any, b: Any) -> bool:
    """Whether two policy documents (dicts or JSON text, as AWS returns them) say the same."""
    a = json.loads(a) if isinstance(a, str) else a
    b = json.loads(b) if isinstance(b, str) else b
    return _canonical(a) == _canonical(b)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True)
class Step:
    """One item: ``created``, ``exists`` or ``updated`` (``would create``/``would update``
    on a dry run)."""

    outcome: str
    what: str

    def line(self) -> str:
        return f"  {self.outcome:<12}  {self.what}"


@dataclass
class Bootstrap:
    """The bootstrap of one environment's account, everything it touches injected."""

    platform: Platform
    repository: str
    """``OWNER/REPO`` whose workflows the roles trust."""
    policies: Mapping[str, Sequence[Mapping[str, Any]]]
    """The managed policy parts per ``./dev operator-policy`` role (deploy, preview, drift)."""
    session: Any
    dry_run: bool = False
    steps: list[Step] = field(default_factory=list)

    @property
    def names(self) -> Names:
        return names(self.platform)

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name=self.platform.region)

    def _done(self, outcome: str, what: str) -> None:
        if self.dry_run and outcome in ("created", "updated"):
            outcome = "would " + outcome.removesuffix("d")
        self.steps.append(Step(outcome, what))

    def _write(self) -> bool:
        return not self.dry_run

    # -- the run --------------------------------------------------------------------------

    def run(self) -> list[Step]:
        """Every item, in the order they depend on each other; the steps taken."""
        self.check_account()
        key_arn = self.key()
        self.bucket(key_arn)
        self.oidc_provider()
        for role in ROLES:
            self.role(role, self.managed_policies(role), key_arn)
        return self.steps

    def check_account(self) -> None:
        """Refuse to create anything in an account that is not the environment's."""
        wanted = self.platform.account_id
        try:
            found = self.client("sts").get_caller_identity()["Account"]
        except NoCredentialsError:
            raise BootstrapError(
                "bootstrap: no AWS credentials found: set AWS_PROFILE (or run `aws sso login`)"
                f" for the account of {self.platform.environment} ({wanted})"
            ) from None
        except (ClientError, BotoCoreError) as exc:
            raise BootstrapError(f"bootstrap: STS GetCallerIdentity failed: {exc}") from None
        if found != wanted:
            raise BootstrapError(
                f"bootstrap: the credentials are for account {found}, but"
                f" {self.platform.environment} deploys to {wanted} (platform.yaml"
                f" environments.{self.platform.environment}.accountId): switch AWS_PROFILE"
            )

    def key(self) -> str:
        """The state and secrets key (rotation on) and its alias; its ARN."""
        kms, alias = self.client("kms"), self.names.key_alias
        try:
            key = kms.describe_key(KeyId=alias)["KeyMetadata"]
        except ClientError as exc:
            if _code(exc) != "NotFoundException":
                raise
            key = None
        if key is None:
            self._done("created", f"KMS key {alias} (rotation on)")
            if not self._write():
                return (
                    f"arn:{PARTITION}:kms:{self.platform.region}:{self.platform.account_id}:{alias}"
                )
            key = kms.create_key(
                Description=f"Pulumi state and secrets of {self.platform.namespace}",
                Tags=[{"TagKey": k, "TagValue": v} for k, v in self.tags().items()],
            )["KeyMetadata"]
            kms.enable_key_rotation(KeyId=key["KeyId"])
            kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
            return str(key["Arn"])
        self._done("exists", f"KMS key {alias}")
        if not kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"]:
            self._done("updated", f"KMS key {alias}: rotation turned on")
            if self._write():
                kms.enable_key_rotation(KeyId=key["KeyId"])
        return str(key["Arn"])

    def tags(self) -> dict[str, str]:
        """The tags of what bootstrap creates (the layers' tags, with ``ManagedBy`` saying how)."""
        return {
            "Project": self.platform.project,
            "Environment": self.platform.environment,
            "ManagedBy": "dev-bootstrap",
            "Repository": self.platform.repository,
            "CostCenter": self.platform.cost_center,
        }

    def bucket(self, key_arn: str) -> None:
        """The state bucket, then each of its guards that is not in place."""
        s3, bucket = self.client("s3"), self.names.bucket
        try:
            s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=self.platform.account_id)
        except ClientError as exc:
            if _code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise BootstrapError(
                    f"bootstrap: the state bucket {bucket} exists but is not this account's"
                    f" ({_code(exc)}); bucket names are global: pick another namespace"
                ) from None
            self._done("created", f"S3 bucket {bucket}")
            if not self._write():
                return
            where = {}
            if self.platform.region != "us-east-1":  # us-east-1 takes no location constraint
                where = {"CreateBucketConfiguration": {"LocationConstraint": self.platform.region}}
            s3.create_bucket(Bucket=bucket, ObjectOwnership="BucketOwnerEnforced", **where)
            s3.put_bucket_tagging(
                Bucket=bucket,
                Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in self.tags().items()]},
            )
        else:
            self._done("exists", f"S3 bucket {bucket}")
        for guard in (self._versioning, self._encryption, self._public_access, self._tls_only):
            guard(s3, bucket, key_arn)

    def _absent(self, read: Callable[[], Any], *missing: str) -> Any:
        """What ``read`` returns, or None when it fails with one of the ``missing`` codes."""
        try:
            return read()
        except ClientError as exc:
            if _code(exc) in missing:
                return None
            raise

    def _guard(self, bucket: str, what: str, ok: bool, put: Callable[[], Any]) -> None:
        if ok:
            self._done("exists", f"S3 bucket {bucket}: {what}")
            return
        self._done("created", f"S3 bucket {bucket}: {what}")
        if self._write():
            put()

    def _versioning(self, s3: Any, bucket: str, key_arn: str) -> None:
        found = self._absent(lambda: s3.get_bucket_versioning(Bucket=bucket), "NoSuchBucket")
        self._guard(
            bucket,
            "versioning",
            (found or {}).get("Status") == "Enabled",
            lambda: s3.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
            ),
        )

    def _encryption(self, s3: Any, bucket: str, key_arn: str) -> None:
        found = self._absent(
            lambda: s3.get_bucket_encryption(Bucket=bucket),
            "ServerSideEncryptionConfigurationNotFoundError",
            "NoSuchBucket",
        )
        rules = ((found or {}).get("ServerSideEncryptionConfiguration") or {}).get("Rules", [])
        default = rules[0].get("ApplyServerSideEncryptionByDefault", {}) if rules else {}
        self._guard(
            bucket,
            "SSE-KMS with the state key",
            default.get("SSEAlgorithm") == "aws:kms" and bool(default.get("KMSMasterKeyID")),
            lambda: s3.put_bucket_encryption(
                Bucket=bucket,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {
                            "ApplyServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": key_arn,
                            },
                            "BucketKeyEnabled": True,
                        }
                    ]
                },
            ),
        )

    def _public_access(self, s3: Any, bucket: str, key_arn: str) -> None:
        blocks = dict.fromkeys(
            ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"),
            True,
        )
        found = self._absent(
            lambda: s3.get_public_access_block(Bucket=bucket),
            "NoSuchPublicAccessBlockConfiguration",
            "NoSuchBucket",
        )
        self._guard(
            bucket,
            "all public access blocked",
            (found or {}).get("PublicAccessBlockConfiguration") == blocks,
            lambda: s3.put_public_access_block(
                Bucket=bucket, PublicAccessBlockConfiguration=blocks
            ),
        )

    def _tls_only(self, s3: Any, bucket: str, key_arn: str) -> None:
        found = self._absent(
            lambda: s3.get_bucket_policy(Bucket=bucket), "NoSuchBucketPolicy", "NoSuchBucket"
        )
        wanted = bucket_policy(bucket)
        current = json.loads(found["Policy"]) if found else {"Version": VERSION, "Statement": []}
        (deny,) = wanted["Statement"]
        present = any(same_policy(s, deny) for s in current.get("Statement", []))
        # A policy someone added statements to keeps them: ours is added beside them.
        merged = {**current, "Statement": [*current.get("Statement", []), deny]}
        self._guard(
            bucket,
            "TLS-only bucket policy",
            present,
            lambda: s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(merged)),
        )

    def oidc_provider(self) -> None:
        """GitHub's OIDC provider, with our audience."""
        iam, arn = self.client("iam"), provider_arn(self.platform.account_id)
        found = self._absent(
            lambda: iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn),
            "NoSuchEntity",
        )
        if found is None:
            self._done("created", f"OIDC provider {OIDC_HOST} (audience {AUDIENCE})")
            if self._write():
                iam.create_open_id_connect_provider(
                    Url=f"https://{OIDC_HOST}",
                    ClientIDList=[AUDIENCE],
                    Tags=[{"Key": k, "Value": v} for k, v in self.tags().items()],
                )
            return
        self._done("exists", f"OIDC provider {OIDC_HOST}")
        if AUDIENCE not in found.get("ClientIDList", []):
            self._done("updated", f"OIDC provider {OIDC_HOST}: audience {AUDIENCE} added")
            if self._write():
                iam.add_client_id_to_open_id_connect_provider(
                    OpenIDConnectProviderArn=arn, ClientID=AUDIENCE
                )

    def managed_policies(self, role: str) -> list[str]:
        """The managed policies of one ``./dev operator-policy`` role, made current; their ARNs.

        Named as ``./dev operator-policy --out`` names the files (``platform-<role>-<env>-N``).
        One that exists with another document gets a new default version (IAM keeps five).
        """
        iam, arns = self.client("iam"), []
        for number, document in enumerate(self.policies[role], 1):
            name = f"platform-{role}-{self.platform.environment}-{number}"
            arn = f"arn:{PARTITION}:iam::{self.platform.account_id}:policy/{name}"
            arns.append(arn)
            found = self._absent(lambda arn=arn: iam.get_policy(PolicyArn=arn), "NoSuchEntity")
            if found is None:
                self._done("created", f"IAM policy {name}")
                if self._write():
                    iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))
                continue
            version = found["Policy"]["DefaultVersionId"]
            current = iam.get_policy_version(PolicyArn=arn, VersionId=version)
            if same_policy(current["PolicyVersion"]["Document"], document):
                self._done("exists", f"IAM policy {name}")
                continue
            self._done("updated", f"IAM policy {name}: a new default version")
            if self._write():
                versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
                old = sorted(
                    (v for v in versions if not v["IsDefaultVersion"]),
                    key=lambda v: v["CreateDate"],
                )
                if len(versions) >= POLICY_VERSIONS and old:
                    iam.delete_policy_version(PolicyArn=arn, VersionId=old[0]["VersionId"])
                iam.create_policy_version(
                    PolicyArn=arn, PolicyDocument=json.dumps(document), SetAsDefault=True
                )
        return arns

    def role(self, role: str, policy_arns: Sequence[str], key_arn: str) -> None:
        """One CI role: its trust, its managed policies attached, its use of the state key."""
        iam, name = self.client("iam"), self.names.roles[role]
        subs = subjects(self.repository, self.platform.environment)[role]
        trust = trust_policy(self.platform.account_id, subs)
        found = self._absent(lambda: iam.get_role(RoleName=name), "NoSuchEntity")
        if found is None:
            self._done("created", f"IAM role {name} ({', '.join(subs)})")
            if self._write():
                iam.create_role(
                    RoleName=name,
                    AssumeRolePolicyDocument=json.dumps(trust),
                    Description=f"CI {role} role of {self.platform.environment}",
                    Tags=[{"Key": k, "Value": v} for k, v in self.tags().items()],
                )
            attached: set[str] = set()
        else:
            if same_policy(found["Role"]["AssumeRolePolicyDocument"], trust):
                self._done("exists", f"IAM role {name}")
            else:
                self._done("updated", f"IAM role {name}: trust set to exactly its subjects")
                if self._write():
                    iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
            listed = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
            attached = {p["PolicyArn"] for p in listed}
        for arn in policy_arns:
            if arn in attached:
                continue
            self._done("created", f"IAM role {name}: {arn.rsplit('/', 1)[-1]} attached")
            if self._write():
                iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        inline = key_policy(role, key_arn)
        current = None
        if found is not None:
            current = self._absent(
                lambda: iam.get_role_policy(RoleName=name, PolicyName=KEY_POLICY_NAME),
                "NoSuchEntity",
            )
        if current is not None and same_policy(current["PolicyDocument"], inline):
            self._done("exists", f"IAM role {name}: {KEY_POLICY_NAME} policy")
            return
        self._done("created", f"IAM role {name}: {KEY_POLICY_NAME} policy")
        if self._write():
            iam.put_role_policy(
                RoleName=name, PolicyName=KEY_POLICY_NAME, PolicyDocument=json.dumps(inline)
            )

    def next_steps(self) -> list[str]:
        """What to set where, once the account is ready."""
        account, names_ = self.platform.account_id, self.names
        role = f"arn:{PARTITION}:iam::{account}:role/"
        drift = DRIFT_ENVIRONMENT.format(environment=self.platform.environment)
        return [
            f"export PULUMI_BACKEND_URL={names_.backend_url}"
            f" PULUMI_SECRETS_PROVIDER='{names_.secrets_provider}'",
            "GitHub repository settings (docs/operations.md): secret PULUMI_BACKEND_URL,"
            f" variables PULUMI_SECRETS_PROVIDER, AWS_REGION={self.platform.region},"
            f" AWS_ROLE_ARN={role}{names_.roles[DEPLOY]},"
            f" PREVIEW_ROLE_ARN={role}{names_.roles[PREVIEW]}",
            f"GitHub environment {drift} (deployment branches: the default branch only, no"
            f" reviewers): variables DRIFT_ROLE_ARN={role}{names_.roles[DRIFT]},"
            f" AWS_REGION={self.platform.region}",
        ]


def report(steps: Sequence[Step], environment: str, dry_run: bool) -> list[str]:
    """The lines the task prints: one per item, then the count of changes."""
    changes = [s for s in steps if s.outcome != "exists"]
    head = f"bootstrap {environment}" + (" (dry run: nothing changed)" if dry_run else "") + ":"
    tail = (
        f"{len(changes)} change(s) {'to make' if dry_run else 'made'},"
        f" {len(steps) - len(changes)} already in place"
    )
    return [head, *(step.line() for step in steps), tail]


def operator_policies(environment: str, backend_url: str) -> dict[str, list[dict[str, Any]]]:
    """The managed policy parts ``./dev operator-policy`` generates, for each CI role, with the
    state statements of ``backend_url`` (the bucket bootstrap makes)."""
    from toolbox.operator_policy import for_environment, managed_policies

    return {
        role: managed_policies(for_environment(environment, role, backend_url)[0]) for role in ROLES
    }


def for_environment(environment: str, dry_run: bool = False, session: Any = None) -> Bootstrap:
    """The real bootstrap: platform.yaml's settings, the generated policies, boto3's session."""
    import boto3

    from shared.settings import load_platform

    platform = load_platform(environment)
    repository = github_repository(platform)
    session = session or boto3.Session()
    # The account first: the policies take an offline plan, not worth making for a wrong one.
    Bootstrap(platform, repository, {}, session).check_account()
    policies = operator_policies(environment, names(platform).backend_url)
    return Bootstrap(platform, repository, policies, session, dry_run=dry_run)


TOKEN_KEY = "githubToken"  # noqa: S105 - a config key, not a credential  # nosec B105
"""The foundation's secret config key whose value its program stores in the token secret."""


def read_token(path: Path) -> str:
    """The GitHub token in ``path`` (one line; a trailing newline is not part of it)."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise PlatformError(f"store-token: {path}: cannot be read ({exc.strerror})") from None
    if not token or "\n" in token:
        raise PlatformError(
            f"store-token: {path}: must hold the token alone, on one line (it holds"
            f" {'nothing' if not token else 'several lines'})"
        )
    return token


def store_token(environment: str, token: str, runner: Any = None) -> str:
    """Set the foundation stack's ``githubToken`` as a Pulumi secret; the line to print.

    Before the first deploy, so the foundation stores it in the token secret when it creates
    it, and the pipeline layer deploys in the same run. The stack is created when it does not
    exist yet (with the secrets provider of PULUMI_SECRETS_PROVIDER, as a deploy would), and
    the value is encrypted into ``stacks/foundation/Pulumi.<env>.yaml``: commit that file.
    """
    from pulumi.automation import ConfigValue

    from toolbox.automation import PulumiRunner, check_secrets

    if not token.strip() or "\n" in token.strip():
        raise PlatformError("store-token: the token must be one non-empty line")
    runner = runner if runner is not None else PulumiRunner()
    check_secrets("foundation", environment)  # a passphrase or provider to encrypt it with
    # PulumiRunner creates stacks only inside `up`; selecting-or-creating one here is the
    # same call the deploy makes (its `_select(create=True)`).
    stack = runner._select("foundation", environment, create=True)
    stack.set_config(TOKEN_KEY, ConfigValue(value=token.strip(), secret=True))
    return (
        f"stored the GitHub token as the secret {TOKEN_KEY} of {stack.name}; commit"
        f" stacks/foundation/Pulumi.{environment}.yaml"
    )

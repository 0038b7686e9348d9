"""``./dev bootstrap``: a fresh account made ready for the first deploy, against moto.

The roles get the managed policies ``./dev operator-policy`` generates for prod (computed once
for the module: they come from the offline plan).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest

from shared.errors import ConfigError, PlatformError
from shared.settings import Platform
from tests.moto_support import fresh_account, moto_for_the_module
from toolbox.bootstrap import (
    Bootstrap,
    BootstrapError,
    github_repository,
    operator_policies,
    read_token,
    report,
    store_token,
)

REGION = "eu-west-1"
moto_session = moto_for_the_module(REGION)
REPO = "globex/platform"
OIDC = "token.actions.githubusercontent.com"


@pytest.fixture(scope="module")
def policies() -> dict[str, list[dict[str, Any]]]:
    return operator_policies("prod", "s3://globex-pulumi-state-123456789012/platform")


def platform(account: str, repository: str = f"github.com/{REPO}") -> Platform:
    return Platform(
        namespace="globex",
        project="container-platform",
        cost_center="cc-1",
        repository=repository,
        organization="organization",
        environment="prod",
        account_id=account,
        region=REGION,
        protect=True,
    )


@pytest.fixture
def account(monkeypatch) -> str:
    return fresh_account(monkeypatch)


@pytest.fixture
def run(moto_session, policies, account) -> Iterator[Any]:
    def go(dry_run: bool = False) -> list:
        boot = Bootstrap(platform(account), REPO, policies, moto_session, dry_run=dry_run)
        return boot.run()

    yield go


def outcomes(steps: list) -> set[str]:
    return {step.outcome for step in steps}


def test_a_first_run_creates_everything_and_a_second_creates_nothing(
    run, moto_session, policies, account
) -> None:
    first = run()
    assert outcomes(first) == {"created"}
    created = {step.what for step in first}
    assert "KMS key alias/globex-pulumi-secrets (rotation on)" in created
    assert f"S3 bucket globex-pulumi-state-{account}" in created
    assert f"OIDC provider {OIDC} (audience sts.amazonaws.com)" in created
    parts = sum(len(policies[role]) for role in ("deploy", "preview", "drift"))
    # bucket + 4 guards, key, provider, the policies, 3 roles with their attachments and key use
    assert len(first) == 1 + 5 + 1 + parts + 3 * 2 + parts

    second = run()
    assert outcomes(second) == {"exists"}
    assert len(second) == len(first) - parts  # attachments: no lines
    assert (
        report(second, "prod", dry_run=False)[-1]
        == f"0 change(s) made, {len(second)} already in place"
    )


def test_the_state_bucket_is_versioned_kms_encrypted_tls_only_and_private(
    run, moto_session, account
) -> None:
    run()
    s3, bucket = moto_session.client("s3"), f"globex-pulumi-state-{account}"
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] == REGION
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    key = moto_session.client("kms").describe_key(KeyId="alias/globex-pulumi-secrets")
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": key["KeyMetadata"]["Arn"],
    }
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    (deny,) = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": ["false"]}}
    assert deny["Resource"] == [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    kms = moto_session.client("kms")
    assert kms.get_key_rotation_status(KeyId=key["KeyMetadata"]["KeyId"])["KeyRotationEnabled"]


def test_each_role_trusts_exactly_the_github_subjects_that_assume_it(
    run, moto_session, account
) -> None:
    run()
    iam = moto_session.client("iam")
    provider = f"arn:aws:iam::{account}:oidc-provider/{OIDC}"
    found = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=provider)
    assert found["ClientIDList"] == ["sts.amazonaws.com"]

    def trust(role: str) -> dict:
        document = iam.get_role(RoleName=f"globex-ci-{role}-prod")["Role"]
        (statement,) = document["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Federated": [provider]}
        assert statement["Action"] == ["sts:AssumeRoleWithWebIdentity"]
        return statement["Condition"]

    assert trust("deploy") == {
        "StringEquals": {
            f"{OIDC}:aud": ["sts.amazonaws.com"],
            f"{OIDC}:sub": ["repo:globex/platform:environment:production"],
        }
    }
    assert trust("preview") == {
        "StringEquals": {f"{OIDC}:aud": ["sts.amazonaws.com"]},
        "StringLike": {
            f"{OIDC}:sub": [
                "repo:globex/platform:ref:refs/heads/main",
                "repo:globex/platform:ref:refs/heads/release/*",
            ]
        },
    }
    # drift.yml's Detect jobs run in the GitHub environment drift-prod: their subject.
    assert trust("drift") == {
        "StringEquals": {
            f"{OIDC}:aud": ["sts.amazonaws.com"],
            f"{OIDC}:sub": ["repo:globex/platform:environment:drift-prod"],
        }
    }


def test_the_roles_carry_the_generated_policies_and_the_state_key_only(
    run, moto_session, policies, account
) -> None:
    run()
    iam = moto_session.client("iam")

    def attached(role: str) -> list[str]:
        listed = iam.list_attached_role_policies(RoleName=f"globex-ci-{role}-prod")
        return sorted(p["PolicyName"] for p in listed["AttachedPolicies"])

    for role in ("deploy", "preview", "drift"):
        assert attached(role) == [
            f"platform-{role}-prod-{n}" for n in range(1, len(policies[role]) + 1)
        ]

    def stored(name: str) -> dict:
        arn = f"arn:aws:iam::{account}:policy/{name}"
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        found = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]
        document = found["Document"]
        return json.loads(document) if isinstance(document, str) else document

    assert stored("platform-drift-prod-1") == policies["drift"][0]
    assert stored("platform-preview-prod-1") == policies["preview"][0]
    key = moto_session.client("kms").describe_key(KeyId="alias/globex-pulumi-secrets")

    def key_use(role: str) -> list[str]:
        name = f"globex-ci-{role}-prod"
        inline = iam.get_role_policy(RoleName=name, PolicyName="pulumi-state-key")
        (statement,) = inline["PolicyDocument"]["Statement"]
        assert statement["Resource"] == [key["KeyMetadata"]["Arn"]]
        return statement["Action"]

    assert key_use("drift") == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert key_use("preview") == ["kms:Decrypt"]  # it reads the state and the stacks' secrets


def test_a_dry_run_changes_nothing(run, moto_session, account) -> None:
    steps = run(dry_run=True)
    assert outcomes(steps) == {"would create"}
    assert moto_session.client("s3").list_buckets()["Buckets"] == []
    assert moto_session.client("kms").list_keys()["Keys"] == []
    iam = moto_session.client("iam")
    assert iam.list_roles()["Roles"] == []
    assert iam.list_policies(Scope="Local")["Policies"] == []
    assert iam.list_open_id_connect_providers()["OpenIDConnectProviderList"] == []
    assert report(steps, "prod", dry_run=True)[0] == "bootstrap prod (dry run: nothing changed):"


def test_a_guard_taken_off_is_put_back_and_nothing_else_changes(run, moto_session, account) -> None:
    run()
    s3, bucket = moto_session.client("s3"), f"globex-pulumi-state-{account}"
    s3.delete_public_access_block(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    changed = [step for step in run() if step.outcome != "exists"]
    assert [step.what for step in changed] == [
        f"S3 bucket {bucket}: versioning",
        f"S3 bucket {bucket}: all public access blocked",
    ]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"


def test_a_trust_widened_by_hand_is_set_back_to_exactly_its_subjects(
    run, moto_session, account
) -> None:
    run()
    iam = moto_session.client("iam")
    role = iam.get_role(RoleName="globex-ci-deploy-prod")["Role"]
    wide = role["AssumeRolePolicyDocument"]
    wide["Statement"][0]["Condition"]["StringEquals"][f"{OIDC}:sub"] = ["repo:globex/platform:*"]
    iam.update_assume_role_policy(RoleName="globex-ci-deploy-prod", PolicyDocument=json.dumps(wide))
    changed = [step.what for step in run() if step.outcome != "exists"]
    assert changed == ["IAM role globex-ci-deploy-prod: trust set to exactly its subjects"]
    document = iam.get_role(RoleName="globex-ci-deploy-prod")["Role"]["AssumeRolePolicyDocument"]
    sub = document["Statement"][0]["Condition"]["StringEquals"][f"{OIDC}:sub"]
    assert sub == ["repo:globex/platform:environment:production"]


def test_each_environments_drift_role_trusts_its_own_github_environment(
    moto_session, policies, account
) -> None:
    dev = dataclasses.replace(platform(account), environment="dev")
    boot = Bootstrap(dev, REPO, policies, moto_session)
    boot.run()
    role = moto_session.client("iam").get_role(RoleName="globex-ci-drift-dev")["Role"]
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Condition"]["StringEquals"][f"{OIDC}:sub"] == [
        "repo:globex/platform:environment:drift-dev"
    ]
    assert boot.next_steps()[-1] == (
        "GitHub environment drift-dev (deployment branches: the default branch only, no"
        " reviewers): variables"
        f" DRIFT_ROLE_ARN=arn:aws:iam::{account}:role/globex-ci-drift-dev,"
        f" AWS_REGION={REGION}"
    )


def test_credentials_of_another_account_create_nothing(moto_session, policies, account) -> None:
    boot = Bootstrap(platform("999999999999"), REPO, policies, moto_session)
    with pytest.raises(BootstrapError) as caught:
        boot.run()
    assert str(caught.value) == (
        f"bootstrap: the credentials are for account {account}, but prod deploys to"
        " 999999999999 (platform.yaml environments.prod.accountId): switch AWS_PROFILE"
    )
    assert moto_session.client("s3").list_buckets()["Buckets"] == []


@pytest.mark.parametrize(
    ("repository", "expected"),
    [
        ("github.com/globex/platform", "globex/platform"),
        ("https://github.com/globex/platform.git", "globex/platform"),
    ],
)
def test_the_trusted_repository_comes_from_the_repository_tag(repository, expected) -> None:
    assert github_repository(platform("123456789012", repository)) == expected


def test_a_repository_tag_that_is_not_on_github_is_one_line() -> None:
    with pytest.raises(ConfigError) as caught:
        github_repository(platform("123456789012", "gitlab.com/globex/platform"))
    assert str(caught.value) == (
        "platform.yaml: repository: 'gitlab.com/globex/platform' is not a GitHub repository,"
        " which the CI roles must trust (allowed: github.com/OWNER/REPO (./dev init --repository"
        " sets it))"
    )


# -- store-token: the GitHub token as the foundation's Pulumi secret, before the first deploy ---


class RecordingStack:
    name = "organization/platform-foundation/dev"

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}

    def set_config(self, key: str, value: Any) -> None:
        self.config[key] = value


class RecordingRunner:
    def __init__(self) -> None:
        self.stack = RecordingStack()
        self.selected: list[tuple[str, str, bool]] = []

    def _select(self, layer: str, env: str, *, create: bool = False) -> RecordingStack:
        self.selected.append((layer, env, create))
        return self.stack


def test_the_token_becomes_the_foundations_secret_config_on_a_created_stack(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "correct horse")
    token_file = tmp_path / "github-token.txt"
    token_file.write_text("ghp_example\n", encoding="utf-8")
    runner = RecordingRunner()
    line = store_token("dev", read_token(token_file), runner)
    assert runner.selected == [("foundation", "dev", True)]
    value = runner.stack.config["githubToken"]
    assert (value.value, value.secret) == ("ghp_example", True)
    assert line == (
        "stored the GitHub token as the secret githubToken of"
        " organization/platform-foundation/dev; commit stacks/foundation/Pulumi.dev.yaml"
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [("", "it holds nothing"), ("ghp_a\nghp_b\n", "it holds several lines")],
)
def test_a_token_file_that_is_not_one_token_is_one_line(tmp_path, content, problem) -> None:
    path = tmp_path / "github-token.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PlatformError) as caught:
        read_token(path)
    assert str(caught.value) == (
        f"store-token: {path}: must hold the token alone, on one line ({problem})"
    )


def test_no_stack_is_touched_without_a_passphrase_to_encrypt_the_token(monkeypatch) -> None:
    for name in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("PULUMI_SECRETS_PROVIDER", raising=False)
    runner = RecordingRunner()
    with pytest.raises(PlatformError):
        store_token("dev", "ghp_example", runner)
    assert runner.selected == []

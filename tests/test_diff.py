"""``./dev diff``: the plan-to-plan diff, the policy verdicts, replacement and the gate.

Most tests compare two small hand-written plans (the format of ``build/plan/<env>/<layer>.json``).
Two run the real thing on throwaway git repositories: a docs-only commit (nothing is planned),
and a copy of this repository with a commit that changes a role's policy and adds a secret (both
sides planned, the base in a temporary worktree). The expected values are written out.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from invoke.context import Context
from invoke.exceptions import Exit

import tasks
from shared.errors import PlatformError
from shared.layers import CONFIG_DIR_VARIABLE, REPO_ROOT
from tests.conftest import FIXTURE_CONFIG
from tests.test_affected import TREE, commit, git, write
from toolbox import diff as plan_diff
from toolbox.diff import compare_plans, compare_policies, expand_action, replacement

ACCOUNT = "111111111111"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE = "aws:iam/role:Role"
REPOSITORY = "aws:ecr/repository:Repository"


def resource(type_: str, label: str, /, **inputs: Any) -> dict[str, Any]:
    """One resource of a plan file, as synth writes it."""
    return {
        "custom": True,
        "deleteBeforeReplace": False,
        "inputs": inputs,
        "name": label,
        "parent": None,
        "protect": False,
        "provider": "urn:pulumi:dev::p::pulumi:providers:aws::aws-dev",
        "type": type_,
        "urn": f"urn:pulumi:dev::p::{type_}::{label}",
    }


def plan(*resources: dict[str, Any], **exports: Any) -> dict[str, Any]:
    return {"environment": "dev", "layer": "x", "stack": "s", "resources": list(resources),
            "exports": exports}  # fmt: skip


def document(*statements: dict[str, Any]) -> str:
    """A policy document as the plans hold it: a JSON string."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def role_policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return resource(ROLE_POLICY, "build-policy", name="least-privilege", role="build",
                    policy=document(*statements))  # fmt: skip


def trust(*services: str) -> dict[str, Any]:
    return resource(ROLE, "build-role", name="build", assumeRolePolicy=document({
        "Sid": "TrustService", "Effect": "Allow", "Principal": {"Service": list(services)},
        "Action": ["sts:AssumeRole"],
        "Condition": {"StringEquals": {"aws:SourceAccount": [ACCOUNT]}},
    }))  # fmt: skip


READ = {"Sid": "ReadArtifacts", "Effect": "Allow", "Action": ["s3:GetObject"],
        "Resource": ["arn:aws:s3:::artifacts/app/*"]}  # fmt: skip
PUSH = {"Sid": "PushImage", "Effect": "Allow", "Action": ["ecr:PutImage"],
        "Resource": [f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/app"]}  # fmt: skip
QUEUE = {
    "Sid": "OnlyItsRule", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
    "Action": "sqs:SendMessage", "Resource": f"arn:aws:sqs:us-east-1:{ACCOUNT}:dlq",
    "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:aws:events:us-east-1:{ACCOUNT}:rule/r"}},
}  # fmt: skip


def one(old: dict[str, Any] | None, new: dict[str, Any] | None):
    """The single resource change between two one-resource plans."""
    layer = compare_plans("x", plan(old) if old else plan(), plan(new) if new else plan())
    (change,) = layer.resources
    return change


def findings(change) -> list[tuple[str, str, tuple[str, ...], bool]]:
    return [
        (f.kind, f.detail, f.levels, f.gated)
        for policy in change.policies
        for statement in policy.statements
        for f in statement.broadening
    ]


def verdicts(change) -> dict[str, str]:
    return {s.sid: s.verdict for p in change.policies for s in p.statements}


# -- the cases of the issue, plan against plan ----------------------------------------------------


def test_an_added_resource_is_added_with_its_inputs():
    layer = compare_plans("x", plan(), plan(resource("aws:sqs/queue:Queue", "dlq", name="q")))

    (change,) = layer.resources
    assert (change.action, change.name) == ("add", "dlq")
    assert [p.line() for p in change.properties] == ['name: (none) -> "q"']
    assert layer.summary() == "1 added"


def test_a_removed_resource_is_removed():
    layer = compare_plans("x", plan(resource("aws:sqs/queue:Queue", "dlq", name="q")), plan())

    assert [(r.action, r.name) for r in layer.resources] == [("remove", "dlq")]


def test_identical_plans_and_reordered_json_are_no_change():
    reordered = dict(READ, Action=["s3:GetObject"], Resource=READ["Resource"])
    reordered = {key: reordered[key] for key in reversed(list(reordered))}
    layer = compare_plans("x", plan(role_policy(READ)), plan(role_policy(reordered)))

    assert layer.resources == ()
    assert layer.summary() == "unchanged"


def test_widening_a_resource_arn_broadens_read_which_is_reported_not_gated():
    wider = dict(READ, Resource=["arn:aws:s3:::artifacts/*"])
    change = one(role_policy(READ), role_policy(wider))

    assert change.action == "update"
    assert findings(change) == [("resource widened", "arn:aws:s3:::artifacts/*", ("Read",), False)]
    assert plan_diff.Diff("b" * 40, "working tree", {"dev": (compare_plans("x", plan(
        role_policy(READ)), plan(role_policy(wider))),)}).gate is False  # fmt: skip


def test_narrowing_a_resource_arn_is_narrowing():
    narrower = dict(READ, Resource=["arn:aws:s3:::artifacts/app/v1/*"])
    change = one(role_policy(READ), role_policy(narrower))

    assert verdicts(change) == {"ReadArtifacts": "narrowing"}
    assert findings(change) == []


def test_adding_a_write_action_broadens_write_and_is_gated():
    wider = dict(PUSH, Action=["ecr:PutImage", "ecr:DeleteRepository"])
    change = one(role_policy(PUSH), role_policy(wider))

    assert verdicts(change) == {"PushImage": "broadening"}
    assert findings(change) == [("action added", "ecr:DeleteRepository", ("Write",), True)]


def test_each_access_level_an_added_action_reaches_is_its_own_finding():
    wider = dict(PUSH, Action=["ecr:PutImage", "ecr:ListImages", "ecr:SetRepositoryPolicy"])
    change = one(role_policy(PUSH), role_policy(wider))

    assert findings(change) == [
        ("action added", "ecr:ListImages", ("List",), False),
        ("action added", "ecr:SetRepositoryPolicy", ("Permissions management",), True),
    ]


def test_a_wildcard_is_expanded_from_the_sar_and_names_every_level_it_reaches():
    change = one(role_policy(PUSH), role_policy(dict(PUSH, Action=["ecr:*"])))

    assert findings(change) == [
        ("action added", "ecr:*", ("Read",), False),
        ("action added", "ecr:*", ("List",), False),
        ("action added", "ecr:*", ("Write",), True),
        ("action added", "ecr:*", ("Permissions management",), True),
        ("action added", "ecr:*", ("Tagging",), False),
    ]


def test_a_wildcard_that_names_what_was_there_adds_nothing():
    get_star = dict(READ, Action=["s3:GetObject*"])
    change = one(role_policy(get_star), role_policy(READ))

    assert verdicts(change) == {"ReadArtifacts": "narrowing"}


def test_dropping_a_condition_broadens_the_statements_actions():
    old = resource("aws:sqs/queuePolicy:QueuePolicy", "dlq-policy", policy=document(QUEUE))
    unconditional = {k: v for k, v in QUEUE.items() if k != "Condition"}
    new = resource("aws:sqs/queuePolicy:QueuePolicy", "dlq-policy", policy=document(unconditional))
    change = one(old, new)

    assert findings(change) == [("condition removed", "ArnEquals aws:sourcearn", ("Write",), True)]


def test_adding_a_value_to_a_condition_relaxes_it():
    old = resource("aws:sqs/queuePolicy:QueuePolicy", "dlq-policy", policy=document(QUEUE))
    relaxed = dict(QUEUE, Condition={"ArnEquals": {"aws:SourceArn": [
        f"arn:aws:events:us-east-1:{ACCOUNT}:rule/r", f"arn:aws:events:us-east-1:{ACCOUNT}:rule/s",
    ]}})  # fmt: skip
    change = one(old, resource("aws:sqs/queuePolicy:QueuePolicy", "dlq-policy",
                               policy=document(relaxed)))  # fmt: skip

    assert findings(change) == [(
        "condition relaxed",
        f"ArnEquals aws:sourcearn: arn:aws:events:us-east-1:{ACCOUNT}:rule/s",
        ("Write",),
        True,
    )]  # fmt: skip


def test_adding_a_trust_principal_is_gated_as_trust():
    change = one(trust("codebuild.amazonaws.com"),
                 trust("codebuild.amazonaws.com", "lambda.amazonaws.com"))  # fmt: skip

    (policy,) = change.policies
    assert policy.trust is True
    ((statement),) = policy.changed
    (finding,) = statement.broadening
    assert (finding.kind, finding.detail, finding.trust) == (
        "principal added",
        "Service lambda.amazonaws.com",
        True,
    )
    assert change.action == "update"  # AssumeRolePolicyDocument is updated in place


def test_a_new_role_adds_its_trust_principals():
    change = one(None, trust("codebuild.amazonaws.com"))

    (finding,) = [f for p in change.policies for s in p.statements for f in s.broadening]
    assert finding.kind == "statement added"
    assert finding.trust is True


def test_removing_a_deny_statement_broadens():
    deny = {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": "arn:aws:s3:::artifacts/*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}  # fmt: skip
    old = resource("aws:s3/bucketPolicy:BucketPolicy", "artifacts-policy", policy=document(deny))
    new = resource("aws:s3/bucketPolicy:BucketPolicy", "artifacts-policy", policy=document())
    change = one(old, new)

    assert verdicts(change) == {"DenyInsecureTransport": "broadening"}
    assert [f[0] for f in findings(change)] == ["statement removed"]


def test_removing_an_allow_statement_narrows():
    change = one(role_policy(READ, PUSH), role_policy(READ))

    assert verdicts(change) == {"ReadArtifacts": "unchanged", "PushImage": "narrowing"}
    assert findings(change) == []


def test_a_lambda_permission_is_read_as_the_statement_it_adds():
    permission = resource("aws:lambda/permission:Permission", "invoke",
                          action="lambda:InvokeFunction", function="recorder",
                          principal="events.amazonaws.com",
                          sourceArn=f"arn:aws:events:us-east-1:{ACCOUNT}:rule/r")  # fmt: skip
    change = one(None, permission)

    (finding,) = [f for p in change.policies for s in p.statements for f in s.broadening]
    assert finding.detail == (
        "Allow lambda:InvokeFunction; principals Service events.amazonaws.com"
    )
    assert finding.levels == ("Write",)


def test_an_action_the_sar_does_not_know_is_unknown_and_gated():
    assert expand_action("nosuchservice:DoThing") == {"nosuchservice:dothing": "Unknown"}
    unknown = dict(PUSH, Action=["ecr:PutImage", "nosuchservice:DoThing"])
    change = one(role_policy(PUSH), role_policy(unknown))

    assert findings(change) == [("action added", "nosuchservice:DoThing", ("Unknown",), True)]


def test_a_policy_is_compared_statement_by_statement_by_sid():
    changes = compare_policies(
        {"Statement": [READ, PUSH]}, {"Statement": [dict(PUSH, Action=["ecr:PutImage"]), READ]}
    )

    assert [(c.sid, c.verdict) for c in changes] == [
        ("PushImage", "unchanged"),
        ("ReadArtifacts", "unchanged"),
    ]


# -- replacement, from the CloudFormation schemas -------------------------------------------------


def test_changing_a_create_only_property_replaces_the_resource():
    old = resource(REPOSITORY, "repository", name="app-dev", imageTagMutability="IMMUTABLE")
    new = resource(REPOSITORY, "repository", name="app-prod", imageTagMutability="IMMUTABLE")
    change = one(old, new)

    assert change.action == "replace"
    assert change.note == "replaced: create-only name (RepositoryName)"
    assert [p.line() for p in change.properties] == [
        'name: "app-dev" -> "app-prod" (forces replacement)'
    ]


def test_an_updatable_property_is_an_update():
    old = resource(REPOSITORY, "repository", name="app", imageTagMutability="MUTABLE")
    new = resource(REPOSITORY, "repository", name="app", imageTagMutability="IMMUTABLE")

    assert one(old, new).action == "update"


def test_an_unmapped_input_possibly_replaces_when_a_create_only_property_is_unaccounted():
    # A Role's create-only properties are RoleName and Path; no input here sets Path, and
    # inlinePolicies maps to no schema property (the schema calls them Policies).
    old = resource(ROLE, "role", name="r", inlinePolicies=[{"name": "a"}])
    new = resource(ROLE, "role", name="r", inlinePolicies=[{"name": "b"}])

    assert replacement(ROLE, ["inlinePolicies"], ["name", "inlinePolicies"]) == {
        "inlinePolicies": "maybe"
    }
    assert one(old, new).action == "possibly-replace"
    # With Path set, every create-only property is accounted for: an update.
    assert replacement(ROLE, ["inlinePolicies"], ["name", "path", "inlinePolicies"]) == {
        "inlinePolicies": "no"
    }


def test_the_diff_and_synths_record_name_a_create_only_input_alike():
    # One name table (toolbox/specs/schemas.py) maps pulumi-aws's principalOrgId to the schema's
    # create-only PrincipalOrgID, for the diff's verdict and for synth's record of create-only
    # inputs in <layer>.specs.json.
    from toolbox.specs import schemas

    inputs = {"action": "lambda:InvokeFunction", "function": "recorder",
              "principal": "events.amazonaws.com", "principalOrgId": "o-aaaaaaaaaa"}  # fmt: skip
    old = resource("aws:lambda/permission:Permission", "invoke", **inputs)
    new = resource("aws:lambda/permission:Permission", "invoke",
                   **dict(inputs, principalOrgId="o-bbbbbbbbbb"))  # fmt: skip

    assert one(old, new).note == "replaced: create-only principalOrgId (PrincipalOrgID)"
    planned = SimpleNamespace(type=new["type"], name="invoke", inputs=new["inputs"], custom=True)
    assert "principalOrgId" in schemas.check("x", planned).create_only


def test_a_type_without_a_schema_is_not_judged():
    old = resource("aws:s3/bucketVersioning:BucketVersioning", "v", bucket="a",
                   versioningConfiguration={"status": "Enabled"})  # fmt: skip
    new = resource("aws:s3/bucketVersioning:BucketVersioning", "v", bucket="a",
                   versioningConfiguration={"status": "Suspended"})  # fmt: skip
    change = one(old, new)

    assert (change.action, change.note) == (
        "update",
        "replacement not judged: no CloudFormation schema",
    )
    assert [p.as_dict() for p in change.properties] == [{
        "path": "versioningConfiguration.status", "old": "Enabled", "new": "Suspended",
        "replaces": "not judged",
    }]  # fmt: skip


# -- output ---------------------------------------------------------------------------------------


def sample() -> plan_diff.Diff:
    layers = (
        compare_plans("foundation", plan(), plan()),
        compare_plans("pipeline", plan(role_policy(READ), trust("codebuild.amazonaws.com")),
                      plan(role_policy(dict(READ, Resource=["*"])),
                           trust("codebuild.amazonaws.com", "lambda.amazonaws.com"),
                           resource("aws:secretsmanager/secretVersion:SecretVersion", "token",
                                    secretString="[secret]"))),
    )  # fmt: skip
    return plan_diff.Diff("a" * 40, "working tree", {"dev": layers})


def test_the_json_carries_the_gate_and_counts():
    data = sample().as_dict()

    assert data["gate"] is True
    assert data["gate_reasons"] == [
        "dev/pipeline: build-role: principal added: Service lambda.amazonaws.com (Write) [trust]"
    ]
    assert data["counts"] == {"add": 1, "remove": 0, "update": 2, "replace": 0,
                              "possibly-replace": 0, "broadening": 2}  # fmt: skip
    assert data["environments"]["dev"]["foundation"]["resources"] == []


def test_the_text_has_one_line_per_unchanged_layer_and_the_gate_last():
    lines = sample().lines()

    assert lines[0] == f"plan diff from {'a' * 12} to working tree"
    assert lines[1] == "dev/foundation: unchanged"
    assert lines[2] == "dev/pipeline: 1 added, 2 updated"
    assert "        + resource widened: * (Read)" in lines
    assert lines[-2] == (
        "gate: needs a security review (Write, Permissions management or trust broadened):"
    )


def test_the_markdown_puts_the_counts_first_and_folds_the_details():
    text = sample().markdown()
    lines = text.splitlines()

    assert lines[2] == (
        "1 added, 0 removed, 2 updated, 0 replaced, 0 possibly replaced;"
        " 2 broadening finding(s); gate: **needs security review**."
    )
    assert "<details><summary>dev/pipeline: 1 added, 2 updated</summary>" in lines
    assert text.count("<details>") == 1  # the unchanged layer is one table row


def test_a_secret_is_shown_as_the_plan_redacted_it():
    assert '      secretString: (none) -> "[secret]"' in sample().lines()


# -- on git repositories --------------------------------------------------------------------------


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "--template=", "-b", "main")
    write(tmp_path, TREE)
    commit(tmp_path, "initial")
    return tmp_path


def test_a_docs_only_change_plans_nothing_and_is_empty(layout):
    base = git(layout, "rev-parse", "HEAD")
    write(layout, {"docs/operations.md": "# operations\nmore\n", "README.md": "# p\n"})
    commit(layout)

    result = plan_diff.diff(base, ("dev", "prod"), root=layout)

    assert result.gate is False
    assert result.lines() == [
        f"plan diff from {base[:12]} to working tree",
        "dev/foundation: unchanged (no input changed; not planned)",
        "dev/registry: unchanged (no input changed; not planned)",
        "dev/pipeline: unchanged (no input changed; not planned)",
        "prod/foundation: unchanged (no input changed; not planned)",
        "prod/registry: unchanged (no input changed; not planned)",
        "prod/pipeline: unchanged (no input changed; not planned)",
        "gate: no review needed (no access broadened)",
    ]
    assert git(layout, "worktree", "list").count("\n") == 0  # no worktree was made


def test_an_unknown_environment_is_one_error_line(capsys):
    with pytest.raises(Exit) as stopped:
        tasks.diff(Context(), env="staging")

    assert stopped.value.code == 1
    assert str(stopped.value.message) == (
        "error: --env staging: not an environment in platform.yaml (one of dev, prod)"
    )


def test_outside_a_git_work_tree_is_one_error_line(tmp_path):
    with pytest.raises(PlatformError) as stopped:
        plan_diff.diff("HEAD", ("dev",), root=tmp_path)

    assert str(stopped.value).startswith(f"git rev-parse failed in {tmp_path}: ")


@pytest.fixture(scope="module")
def repository_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This repository's files (tracked and new, as in the work tree) committed in a new repo."""
    root = tmp_path_factory.mktemp("copy")
    listed = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "ls-files", "-co", "--exclude-standard", "-z"],
        check=True, capture_output=True, text=True,
    ).stdout.split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    # The copy plans the tests' own configuration at its root, as a team's repository would
    # hold its own there (each side of the diff reads the config of its checkout).
    for stack_file in root.glob("stacks/*/Pulumi.*.yaml"):
        if stack_file.name != "Pulumi.yaml":
            stack_file.unlink()
    shutil.copytree(FIXTURE_CONFIG, root, dirs_exist_ok=True)
    git(root, "init", "-q", "--template=", "-b", "main")
    commit(root, "initial")
    return root


@pytest.fixture
def own_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """The planning subprocesses read each checkout's own configuration, not the tests'."""
    monkeypatch.delenv(CONFIG_DIR_VARIABLE)


WRITE_ACTION = '    "ecr:UploadLayerPart",\n'
CIPHERTEXT = "v1:c2VjcmV0IGNpcGhlcnRleHQ="
TOKEN_CONFIG = f"  platform-foundation:githubToken:\n    secure: {CIPHERTEXT}\n"


def test_a_commit_that_adds_a_write_action_and_a_secret_is_diffed_and_gated(
    repository_copy, own_config, capsys
):
    root = repository_copy
    base = git(root, "rev-parse", "HEAD")
    roles = root / "stacks" / "pipeline" / "roles.py"
    text = roles.read_text(encoding="utf-8")
    assert WRITE_ACTION in text
    roles.write_text(text.replace(WRITE_ACTION, WRITE_ACTION + '    "ecr:DeleteRepository",\n'))
    with (root / "stacks" / "foundation" / "Pulumi.dev.yaml").open("a", encoding="utf-8") as out:
        out.write(TOKEN_CONFIG)
    commit(root)

    result = plan_diff.diff(base, ("dev",), root=root)

    assert result.gate is True
    assert result.gate_reasons() == [  # each service's docker-build role
        "dev/pipeline: pipeline-app-docker-build-role-policy:"
        " action added: ecr:DeleteRepository (Write)",
        "dev/pipeline: pipeline-worker-docker-build-role-policy:"
        " action added: ecr:DeleteRepository (Write)",
    ]
    summaries = [line for line in result.lines() if line.startswith("dev/")]
    assert summaries == ["dev/foundation: 1 added", "dev/registry: unchanged",
                         "dev/pipeline: 2 updated"]  # fmt: skip
    (added,) = result.environments["dev"][0].resources
    assert (added.action, added.name) == ("add", "foundation-github-token-value")
    assert {"path": "secretString", "old": None, "new": "[secret]", "replaces": "no"} in [
        p.as_dict() for p in added.properties
    ]
    outputs = ["\n".join(result.lines()), result.markdown(), json.dumps(result.as_dict())]
    for output in outputs:
        assert CIPHERTEXT not in output
        assert "offline-placeholder" not in output
    assert git(root, "worktree", "list").count("\n") == 0  # the base's worktree is gone


def test_one_services_change_touches_only_that_services_resources(repository_copy, own_config):
    root = repository_copy
    base = git(root, "rev-parse", "HEAD")
    platform = root / "platform.yaml"
    text = platform.read_text(encoding="utf-8")
    worker = re.compile(r"^  worker:.*$", re.MULTILINE)
    assert len(worker.findall(text)) == 1
    platform.write_text(
        worker.sub(lambda found: f"{found[0]}\n    buildTimeoutMinutes: 45", text),
        encoding="utf-8",
    )
    commit(root)

    result = plan_diff.diff(base, ("dev",), root=root)

    changed = [r for layer in result.environments["dev"] for r in layer.resources]
    assert sorted((r.action, r.name) for r in changed) == [
        ("update", f"pipeline-worker-{key}")
        for key in ("docker-build", "integration-tests", "security-scan", "unit-tests")
    ]
    for resource in changed:  # each under a service's pipeline component, the worker's by name
        assert "$acme:pipeline:ServicePipeline$" in resource.urn, resource.urn
    summaries = [line for line in result.lines() if line.startswith("dev/")]
    assert summaries == ["dev/foundation: unchanged", "dev/registry: unchanged",
                         "dev/pipeline: 4 updated"]  # fmt: skip
    assert result.gate is False


def test_a_base_that_names_no_commit_compares_with_nothing(repository_copy, own_config):
    result = plan_diff.diff("none", ("dev",), root=repository_copy)

    assert result.reason == "base 'none' is not a commit in this clone"
    assert result.lines()[0] == (
        "plan diff from nothing (base 'none' is not a commit in this clone) to working tree"
    )
    actions = {r.action for layer in result.environments["dev"] for r in layer.resources}
    assert actions == {"add"}
    assert result.gate is True  # every role's trust principals are new
    assert any(
        reason.startswith("dev/pipeline: pipeline-worker-docker-build-role: statement added:")
        and reason.endswith("[trust]")
        for reason in result.gate_reasons()
    )


def test_a_change_to_the_plan_code_plans_every_layer_and_docs_none(layout):
    assert plan_diff.layers_to_plan(["toolbox/synth.py"], layout) == (
        "foundation", "registry", "pipeline",
    )  # fmt: skip
    assert plan_diff.layers_to_plan(["docs/operations.md", "README.md"], layout) == ()
    # shared/ is an input of every layer, whichever layer imports the module
    assert plan_diff.layers_to_plan(["shared/only_registry.py"], layout) == (
        "foundation", "registry", "pipeline",
    )  # fmt: skip


def test_a_policy_documents_version_is_compared_as_a_property():
    old = resource(ROLE_POLICY, "build-policy", name="a", role="build", policy=document(READ))
    new = dict(old, inputs=dict(old["inputs"], name="b", policy=json.dumps(
        {"Version": "2008-10-17", "Statement": [READ]})))  # fmt: skip
    change = one(old, new)

    assert [p.line() for p in change.properties] == [
        'name: "a" -> "b" (forces replacement)',
        'policy#Version: "2012-10-17" -> "2008-10-17"',
    ]
    assert verdicts(change) == {"ReadArtifacts": "unchanged"}


def test_a_deny_that_covers_less_broadens_and_one_that_covers_more_narrows():
    deny = {"Sid": "NoDelete", "Effect": "Deny", "Action": ["ecr:DeleteRepository",
            "ecr:BatchDeleteImage"], "Resource": "*"}  # fmt: skip
    fewer = dict(deny, Action=["ecr:DeleteRepository"])

    (lifted,) = compare_policies({"Statement": [deny]}, {"Statement": [fewer]})
    (tightened,) = compare_policies({"Statement": [fewer]}, {"Statement": [deny]})

    assert lifted.verdict == "broadening"
    assert [f.line() for f in lifted.broadening] == [
        "action no longer denied: ecr:BatchDeleteImage (Write)"
    ]
    assert tightened.verdict == "narrowing"
    assert [f.line() for f in tightened.narrowing] == [
        "action now denied: ecr:BatchDeleteImage (Write)"
    ]


def test_a_narrowed_allow_names_what_it_lost():
    (change,) = compare_policies({"Statement": [QUEUE]}, {"Statement": [dict(QUEUE, Condition={
        "ArnEquals": {"aws:SourceArn": f"arn:aws:events:us-east-1:{ACCOUNT}:rule/r"},
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
    })]})  # fmt: skip

    assert change.verdict == "narrowing"
    assert [f.line() for f in change.narrowing] == [
        "condition added: StringEquals aws:sourceaccount (Write)"
    ]


def test_a_side_that_fails_to_plan_is_one_error_line(layout):
    # The small layout has no tasks.py: synth cannot run there.
    base = git(layout, "rev-parse", "HEAD")
    write(layout, {"stacks/registry/config.py": "RETENTION = 20\n"})
    commit(layout)

    with pytest.raises(plan_diff.DiffError) as stopped:
        plan_diff.diff(base, ("dev",), root=layout)

    assert str(stopped.value) == (
        f"planning the base {base[:12]} failed (dev): Can't find any collection named 'tasks'!;"
        " ./dev synth --env dev there shows why"
    )
    assert git(layout, "worktree", "list").count("\n") == 0


def test_the_source_job_reads_the_gate_from_its_outputs_file(tmp_path):
    from toolbox.affected import append_outputs

    outputs = tmp_path / "github_output"
    append_outputs(outputs, plan_diff.github_outputs(sample()))
    unchanged = plan_diff.Diff("a" * 40, "working tree", {"dev": ()})
    append_outputs(outputs, plan_diff.github_outputs(unchanged))

    assert outputs.read_text(encoding="utf-8") == "gate=true\ngate=false\n"


def test_renaming_a_statements_sid_grants_nothing():
    changes = compare_policies({"Statement": [PUSH]}, {"Statement": [dict(PUSH, Sid="Push")]})

    assert [(c.sid, c.verdict) for c in changes] == [("Push", "unchanged")]

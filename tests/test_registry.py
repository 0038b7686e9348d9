"""The registry layer: scan on push, immutable tags, the key from the foundation, keep-10 rule."""

from __future__ import annotations

import json

from tests.conftest import inputs_of

REPOSITORY = "aws:ecr/repository:Repository"


def test_repository_scans_on_push(dev):
    repo = inputs_of(dev["registry"], REPOSITORY)
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}


def test_repository_tags_are_immutable_but_production_moves(dev):
    repo = inputs_of(dev["registry"], REPOSITORY)
    assert repo["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    # Exactly one exclusion, the literal tag: no wildcard that would free commit tags.
    assert repo["imageTagMutabilityExclusionFilters"] == [
        {"filter": "production", "filterType": "WILDCARD"}
    ]


def test_repository_encrypted_with_the_key_the_foundation_exported(dev):
    (encryption,) = inputs_of(dev["registry"], REPOSITORY)["encryptionConfigurations"]
    assert encryption == {"encryptionType": "KMS", "kmsKey": dev["foundation"].exports["kmsKeyArn"]}


def test_lifecycle_keeps_the_last_10_images_and_expires_untagged_quickly(dev):
    policy = json.loads(
        inputs_of(dev["registry"], "aws:ecr/lifecyclePolicy:LifecyclePolicy")["policy"]
    )
    rules = sorted(policy["rules"], key=lambda r: r["rulePriority"])
    keep = [r for r in rules if r["selection"]["countType"] == "imageCountMoreThan"]
    assert [r["selection"]["countNumber"] for r in keep] == [10]
    assert keep[0]["selection"]["tagStatus"] == "any"
    # ECR requires the "any" rule to have the lowest priority (the highest number).
    assert rules[-1] is keep[0]
    untagged = [r for r in rules if r["selection"]["tagStatus"] == "untagged"]
    assert untagged and untagged[0]["selection"]["countNumber"] <= 7
    assert all(r["action"] == {"type": "expire"} for r in rules)


def test_lifecycle_applies_to_this_repository(dev):
    plan = dev["registry"]
    lifecycle = inputs_of(plan, "aws:ecr/lifecyclePolicy:LifecyclePolicy")
    assert lifecycle["repository"] == plan.exports["repositoryName"]


def test_repository_protected_in_prod_and_deletable_in_dev(dev, prod):
    assert dev["registry"].one(REPOSITORY).protect is False
    assert inputs_of(dev["registry"], REPOSITORY)["forceDelete"] is True
    assert prod["registry"].one(REPOSITORY).protect is True
    assert inputs_of(prod["registry"], REPOSITORY)["forceDelete"] is False


def test_keep_count_is_configurable(replan):
    plan = replan("registry", config={"platform-registry:keepImages": "25"})
    policy = json.loads(inputs_of(plan, "aws:ecr/lifecyclePolicy:LifecyclePolicy")["policy"])
    counts = [
        r["selection"]["countNumber"]
        for r in policy["rules"]
        if r["selection"]["countType"] == "imageCountMoreThan"
    ]
    assert counts == [25]

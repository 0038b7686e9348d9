"""The registry layer: scan on push, immutable tags, the key from the foundation, keep-10 rule."""

from __future__ import annotations

import json

import pytest

from shared.errors import ConfigError
from shared.settings import PLATFORM_FILE, load_platform
from tests.conftest import inputs_of
from tests.platform_support import with_image_families

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


def _rules(plan) -> list[dict]:
    policy = json.loads(inputs_of(plan, "aws:ecr/lifecyclePolicy:LifecyclePolicy")["policy"])
    return sorted(policy["rules"], key=lambda r: r["rulePriority"])


def test_lifecycle_keeps_the_last_10_images_of_the_app_and_expires_untagged_quickly(dev):
    rules = _rules(dev["registry"])
    assert rules[0]["selection"] == {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 1,
    }
    assert [r["selection"] for r in rules[1:]] == [
        {
            "tagStatus": "tagged",
            "tagPatternList": ["production"],
            "countType": "imageCountMoreThan",
            "countNumber": 1,
        },
        {
            "tagStatus": "tagged",
            "tagPrefixList": ["app-"],
            "countType": "imageCountMoreThan",
            "countNumber": 10,
        },
    ]
    assert all(r["action"] == {"type": "expire"} for r in rules)
    # No tagStatus any: it would count every family's images together.
    assert all(r["selection"]["tagStatus"] != "any" for r in rules)


def test_each_image_family_keeps_its_own_last_10(replan, monkeypatch):
    with_image_families(monkeypatch, ("app", "billing", "search"))
    plan = replan("registry")
    rules = _rules(plan)
    keep = [r for r in rules if "tagPrefixList" in r["selection"]]
    assert [r["selection"]["tagPrefixList"] for r in keep] == [["app-"], ["billing-"], ["search-"]]
    assert {r["selection"]["countNumber"] for r in keep} == {10}
    assert {r["selection"]["tagStatus"] for r in keep} == {"tagged"}
    priorities = [r["rulePriority"] for r in rules]
    assert len(set(priorities)) == len(priorities)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("[]", "is empty"),
        ('["app", "app"]', "listed twice"),
        ('["App"]', "is not valid"),
        ('["app", "app-worker"]', "'app-' is a prefix of 'app-worker-'"),
    ],
)
def test_bad_image_families_are_refused_naming_the_key(tmp_path, value, problem):
    path = tmp_path / "platform.yaml"
    text = PLATFORM_FILE.read_text(encoding="utf-8")
    assert "imageFamilies: [app]\n" in text
    path.write_text(text.replace("imageFamilies: [app]\n", f"imageFamilies: {value}\n"))
    with pytest.raises(ConfigError) as error:
        load_platform("dev", path)
    message = str(error.value)
    assert message.startswith(f"{path}: imageFamilies:")
    assert problem in message


def test_the_production_image_outranks_every_family_rule(replan, monkeypatch):
    """ECR never lets a lower-priority rule expire an image a higher-priority rule's tags matched:
    the image tagged production (also app-<commit>) is kept however many builds follow it."""
    with_image_families(monkeypatch, ("app", "billing", "search"))
    plan = replan("registry")
    rules = _rules(plan)
    (production,) = [r for r in rules if r["selection"].get("tagPatternList") == ["production"]]
    families = [r for r in rules if "tagPrefixList" in r["selection"]]
    assert all(production["rulePriority"] < r["rulePriority"] for r in families)
    # It keeps one: the one image the tag names, never a second.
    assert production["selection"]["countNumber"] == 1


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
        r["selection"]["countNumber"] for r in policy["rules"] if "tagPrefixList" in r["selection"]
    ]
    assert counts == [25]

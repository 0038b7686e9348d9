"""The policy rules for trust policies and repository lifecycles follow what AWS documents."""

from __future__ import annotations

import json

import pytest

from policies.rules import RULES, Resource
from shared.iam import TRUST_CONDITION_KEYS

RULE = {rule.name: rule for rule in RULES}


def trust(service: str, condition: dict | None = None) -> Resource:
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": [service]},
        "Action": ["sts:AssumeRole"],
    }
    if condition:
        statement["Condition"] = condition
    policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    return Resource("aws:iam/role:Role", "urn:x", "r", {"assumeRolePolicy": policy})


def verdicts(resource: Resource) -> list[str]:
    return list(RULE["iam-trust-source-conditions"].check(resource))


ACCOUNT = {"StringEquals": {"aws:SourceAccount": ["111111111111"]}}
SOURCE_ARN = {"ArnLike": {"aws:SourceArn": ["arn:aws:codepipeline:us-east-1:1:p"]}}


def test_the_table_holds_what_aws_documents():
    assert TRUST_CONDITION_KEYS == {
        "codebuild.amazonaws.com": ("aws:SourceAccount", "aws:SourceArn"),
        "events.amazonaws.com": ("aws:SourceAccount", "aws:SourceArn"),
        "codepipeline.amazonaws.com": (),
        "lambda.amazonaws.com": (),
    }


@pytest.mark.parametrize("service", ["codebuild.amazonaws.com", "events.amazonaws.com"])
def test_a_service_that_documents_source_keys_must_be_confined(service):
    assert verdicts(trust(service))
    assert verdicts(trust(service, ACCOUNT)) == []
    assert verdicts(trust(service, {**ACCOUNT, **SOURCE_ARN})) == []


def test_codepipeline_may_carry_no_source_key_it_does_not_send():
    assert verdicts(trust("codepipeline.amazonaws.com")) == []
    (problem,) = verdicts(trust("codepipeline.amazonaws.com", SOURCE_ARN))
    assert "not documented to send ['aws:SourceArn']" in problem
    assert verdicts(trust("codepipeline.amazonaws.com", ACCOUNT))


def test_lambda_may_carry_no_source_key_it_does_not_send():
    assert verdicts(trust("lambda.amazonaws.com")) == []
    (problem,) = verdicts(trust("lambda.amazonaws.com", ACCOUNT))
    assert "not documented to send ['aws:SourceAccount']" in problem


def test_a_service_nobody_looked_up_fails():
    (problem,) = verdicts(trust("states.amazonaws.com", ACCOUNT))
    assert "shared.iam.TRUST_CONDITION_KEYS" in problem


def _lifecycle(*rules: dict) -> list[Resource]:
    repo = Resource("aws:ecr/repository:Repository", "urn:r", "repo", {"name": "repo"})
    policy = Resource(
        "aws:ecr/lifecyclePolicy:LifecyclePolicy",
        "urn:l",
        "lc",
        {"repository": "repo", "policy": json.dumps({"rules": list(rules)})},
    )
    return [repo, policy]


UNTAGGED = {
    "rulePriority": 1,
    "selection": {
        "tagStatus": "untagged",
        "countType": "sinceImagePushed",
        "countUnit": "days",
        "countNumber": 1,
    },
    "action": {"type": "expire"},
}


def _family(priority: int, prefix: str) -> dict:
    return {
        "rulePriority": priority,
        "selection": {
            "tagStatus": "tagged",
            "tagPrefixList": [prefix],
            "countType": "imageCountMoreThan",
            "countNumber": 10,
        },
        "action": {"type": "expire"},
    }


def test_a_lifecycle_without_count_rules_fails_and_per_family_rules_pass():
    check = RULE["ecr-lifecycle"].stack_check
    (failure,) = list(check(_lifecycle(UNTAGGED)))
    assert "keeps no count of images" in failure[1]
    assert list(check(_lifecycle(UNTAGGED, _family(2, "app-"), _family(3, "billing-")))) == []


KEEP_LAST_10 = {
    "rulePriority": 3,
    "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 10},
    "action": {"type": "expire"},
}
"""A service's own repository keeps its last 10 images, whatever their tags."""


def _repositories(*names: str, policies: tuple[str, ...]) -> list[Resource]:
    """One repository per name; a lifecycle policy (untagged, keep the last 10) for ``policies``."""
    found: list[Resource] = []
    for name in names:
        found.append(Resource("aws:ecr/repository:Repository", f"urn:{name}", name, {"name": name}))
    for name in policies:
        policy = json.dumps({"rules": [UNTAGGED, KEEP_LAST_10]})
        found.append(
            Resource(
                "aws:ecr/lifecyclePolicy:LifecyclePolicy",
                f"urn:{name}-lifecycle",
                f"{name}-lifecycle",
                {"repository": name, "policy": policy},
            )
        )
    return found


def test_each_services_repository_needs_its_own_lifecycle_policy():
    check = RULE["ecr-lifecycle"].stack_check
    assert list(check(_repositories("app", "worker", policies=("app", "worker")))) == []
    (failure,) = list(check(_repositories("app", "worker", policies=("app",))))
    assert failure[0].name == "worker"
    assert "has no lifecycle policy" in failure[1]

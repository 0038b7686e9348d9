"""At 100 services no document AWS limits in size outgrows its limit (issue 26, "Scale").

One plan of every layer of prod (approvals and the deploy alarm: the larger documents) with 100
services: the tests' two (``app``, ``worker``) and 98 more with every default, each named with
the 20 characters a service name may have, so every ARN that names a service is as long as it
can be. Each document is measured as AWS counts it, against the limit AWS documents:

- IAM and AWS STS quotas, character limits
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html): a role's inline
  policies together at most 10,240 characters ("Role policy size"); a role's trust policy at most
  2,048 characters by default ("Role trust policy length", a Service Quotas quota an account may
  raise); a managed policy at most 6,144 characters; 10 managed policies per role by default
  (20 at most, on request). "IAM doesn't count white space when calculating the size of a
  policy against these limits."
- KMS: a key policy "up to 32 kilobytes (32,768 bytes)"
  (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html, "Key policy
  format"); the key policy document size quota is not adjustable.
- SNS policy quotas: 30 KB and 100 statements
  (https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-language-api-permissions-reference.html).
- SQS policy quotas: 8,192 bytes and 20 statements
  (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-policies.html).
- EventBridge quotas: "Event pattern size", 2,048 characters by default, adjustable
  (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-quota.html); PutRule's
  ``EventPattern`` shape in botocore's model allows 4,096 at most.
- S3: "Bucket policies are limited to 20 KB in size"
  (https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-iam-policies.html).

The documents the pipeline layer shares between its services (the topic policy, the recorder's
role, the rules' patterns and their dead-letter queues' policies) must not grow at all: they are
the same at 2 services (the session's prod plan) and at 100.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest
import yaml

SERVICES = 100
ENVIRONMENT = "prod"
ROLE_POLICY_CHARACTERS = 10_240
TRUST_POLICY_CHARACTERS = 2_048
MANAGED_POLICY_CHARACTERS = 6_144
MANAGED_POLICIES_PER_ROLE = 10
KEY_POLICY_BYTES = 32_768
TOPIC_POLICY_BYTES = 30 * 1024
TOPIC_POLICY_STATEMENTS = 100
QUEUE_POLICY_BYTES = 8_192
QUEUE_POLICY_STATEMENTS = 20
EVENT_PATTERN_CHARACTERS = 2_048
EVENT_PATTERN_API_MAX = 4_096
BUCKET_POLICY_BYTES = 20 * 1024

LAYER_DOCUMENTS = {
    ("aws:sns/topicPolicy:TopicPolicy", "pipeline-failure-topic-policy", "policy"),
    ("aws:iam/rolePolicy:RolePolicy", "pipeline-recorder-role-policy", "policy"),
    ("aws:iam/role:Role", "pipeline-recorder-role", "assumeRolePolicy"),
    ("aws:cloudwatch/eventRule:EventRule", "pipeline-failed", "eventPattern"),
    ("aws:cloudwatch/eventRule:EventRule", "pipeline-record-builds", "eventPattern"),
    ("aws:cloudwatch/eventRule:EventRule", "pipeline-record-pipeline", "eventPattern"),
    ("aws:sqs/queuePolicy:QueuePolicy", "pipeline-failed-dlq-policy", "policy"),
    ("aws:sqs/queuePolicy:QueuePolicy", "pipeline-record-builds-dlq-policy", "policy"),
    ("aws:sqs/queuePolicy:QueuePolicy", "pipeline-record-pipeline-dlq-policy", "policy"),
}
"""The pipeline layer's own documents: (type, resource name, input)."""


def service_name(number: int) -> str:
    """A valid service name of the longest length allowed (20 characters)."""
    return f"service{number:03d}-abcdefghi"


def iam_characters(text: str) -> int:
    """A policy's size as IAM counts it: its characters, white space not counted."""
    return sum(not character.isspace() for character in text)


def utf8_bytes(text: str) -> int:
    """A policy's size in bytes, as KMS, SNS, SQS and S3 count it."""
    return len(text.encode("utf-8"))


def statements(text: str) -> list[dict[str, Any]]:
    """The statements of a policy document."""
    found = json.loads(text)["Statement"]
    return found if isinstance(found, list) else [found]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every layer of prod planned with 100 services, and the three operator roles' policies.

    ``platform.yaml`` is a copy of the tests' own with 98 services added, read in its place for
    this module only. The plans go through the plan cache like every test's (keyed by the
    file's content), so ``./dev operator-policy``'s code reads the same plans.
    """
    from shared import settings
    from toolbox.operator_policy import DEPLOY, DRIFT, PREVIEW, for_environment
    from toolbox.plancache import plan_all

    data = settings.read_yaml(settings.PLATFORM_FILE)
    services = dict(data["services"])
    number = 0
    while len(services) < SERVICES:
        number += 1
        services[service_name(number)] = {}
    data["services"] = services
    platform_file = tmp_path_factory.mktemp("scale") / "platform.yaml"
    platform_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    # Only while planning: the tests (and the session's plans they compare with) read the tests'
    # own platform.yaml.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "PLATFORM_FILE", platform_file)
        plans = plan_all(ENVIRONMENT, reuse="all")
        operator = {
            role: for_environment(ENVIRONMENT, role)[0] for role in (DRIFT, PREVIEW, DEPLOY)
        }
    return {"plans": plans, "operator": operator, "platform_file": platform_file}


def documents(big: dict[str, Any], type_: str, key: str) -> dict[str, str]:
    """The ``key`` input of every planned resource of ``type_``, by resource name."""
    return {
        resource.name: resource.inputs[key]
        for plan in big["plans"].values()
        for resource in plan.of_type(type_)
        if isinstance(resource.inputs.get(key), str)
    }


def test_the_plan_has_the_hundred_services(big):
    pipeline, registry = big["plans"]["pipeline"], big["plans"]["registry"]
    assert len(pipeline.exports["pipelineNames"]) == SERVICES
    assert len(registry.exports["repositoryNames"]) == SERVICES
    assert "service098-abcdefghi" in pipeline.exports["pipelineNames"]


def test_each_roles_inline_policies_together_fit_the_role_policy_size(big):
    per_role: dict[str, int] = defaultdict(int)
    for plan in big["plans"].values():
        for resource in plan.of_type("aws:iam/rolePolicy:RolePolicy"):
            per_role[resource.inputs["role"]] += iam_characters(resource.inputs["policy"])
        for resource in plan.of_type("aws:iam/role:Role"):
            for inline in resource.inputs.get("inlinePolicies") or []:
                per_role[resource.inputs["name"]] += iam_characters(inline.get("policy", ""))
    # Six roles per service and the recorder's.
    assert len(per_role) == 6 * SERVICES + 1
    over = {role: size for role, size in per_role.items() if size > ROLE_POLICY_CHARACTERS}
    assert over == {}, f"largest {max(per_role.values())} characters"


def test_each_trust_policy_fits_the_default_trust_policy_length(big):
    trusts = documents(big, "aws:iam/role:Role", "assumeRolePolicy")
    assert len(trusts) == 6 * SERVICES + 1
    over = {
        name: n
        for name, text in trusts.items()
        if (n := iam_characters(text)) > TRUST_POLICY_CHARACTERS
    }
    assert over == {}


def test_the_key_policy_fits_the_kms_key_policy_size(big):
    (policy,) = documents(big, "aws:kms/key:Key", "policy").values()
    assert utf8_bytes(policy) <= KEY_POLICY_BYTES


def test_the_topic_policy_fits_the_sns_policy_quotas(big):
    (policy,) = documents(big, "aws:sns/topicPolicy:TopicPolicy", "policy").values()
    assert utf8_bytes(policy) <= TOPIC_POLICY_BYTES
    assert len(statements(policy)) <= TOPIC_POLICY_STATEMENTS


def test_each_queue_policy_fits_the_sqs_policy_quotas(big):
    policies = documents(big, "aws:sqs/queuePolicy:QueuePolicy", "policy")
    assert len(policies) >= SERVICES
    for name, policy in policies.items():
        assert utf8_bytes(policy) <= QUEUE_POLICY_BYTES, name
        assert len(statements(policy)) <= QUEUE_POLICY_STATEMENTS, name


def test_each_bucket_policy_fits_the_s3_bucket_policy_size(big):
    policies = documents(big, "aws:s3/bucketPolicy:BucketPolicy", "policy")
    assert policies
    assert {
        name: utf8_bytes(p) for name, p in policies.items() if utf8_bytes(p) > BUCKET_POLICY_BYTES
    } == {}


def test_each_event_pattern_fits_the_default_event_pattern_size(big):
    import botocore.session

    # The shape of PutRule's EventPattern member in botocore's model of the API.
    pattern_shape = (
        botocore.session.get_session().get_service_model("events").shape_for("EventPattern")
    )
    assert pattern_shape.metadata["max"] == EVENT_PATTERN_API_MAX
    patterns = documents(big, "aws:cloudwatch/eventRule:EventRule", "eventPattern")
    assert len(patterns) >= 3
    over = {name: len(p) for name, p in patterns.items() if len(p) > EVENT_PATTERN_CHARACTERS}
    assert over == {}


@pytest.mark.parametrize("role", ["drift", "preview"])
def test_the_operator_role_fits_its_managed_policies(big, role):
    from toolbox.operator_policy import managed_policies

    parts = managed_policies(big["operator"][role])
    assert len(parts) <= MANAGED_POLICIES_PER_ROLE
    for part in parts:
        assert iam_characters(json.dumps(part)) <= MANAGED_POLICY_CHARACTERS


def test_the_deploy_role_fits_the_managed_policies_a_role_may_have_by_default(big):
    # Its iam:PassRole statements name each duty's role for every service at once
    # (operator_policy.passed_roles); naming each service's took 23 managed policies here.
    from toolbox.operator_policy import managed_policies

    parts = managed_policies(big["operator"]["deploy"])
    assert len(parts) <= MANAGED_POLICIES_PER_ROLE
    for part in parts:
        assert iam_characters(json.dumps(part)) <= MANAGED_POLICY_CHARACTERS


def test_the_layers_own_documents_do_not_grow_with_the_services(big, prod):
    def of(plans: dict[str, Any]) -> dict[tuple[str, str, str], str]:
        pipeline = plans["pipeline"]
        return {
            (type_, name, key): next(r for r in pipeline.of_type(type_) if r.name == name).inputs[
                key
            ]
            for type_, name, key in LAYER_DOCUMENTS
        }

    at_two, at_hundred = of(prod), of(big["plans"])
    assert len(prod["pipeline"].exports["pipelineNames"]) == 2
    assert {k: len(v) for k, v in at_hundred.items()} == {k: len(v) for k, v in at_two.items()}
    assert at_hundred == at_two


def test_the_copy_is_what_the_module_planned_and_the_tests_file_is_untouched(big):
    from shared import settings

    assert len(settings.load_all(big["platform_file"])[ENVIRONMENT].services) == SERVICES
    assert len(settings.load_all()[ENVIRONMENT].services) == 2

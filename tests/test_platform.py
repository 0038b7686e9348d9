"""Properties of the whole plan: tags, names, URNs, determinism, providers, components."""

from __future__ import annotations

import re

import pytest

from policies.rules import takes_tags
from toolbox.offline import plan_all

ENVIRONMENTS = ("dev", "prod")
REQUIRED_TAG_KEYS = (
    "Project",
    "Environment",
    "Layer",
    "Owner",
    "ManagedBy",
    "Repository",
    "CostCenter",
)


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def plans(request, dev, prod):
    return {"dev": dev, "prod": prod}[request.param]


def test_every_taggable_resource_carries_every_required_tag(plans):
    checked: set[str] = set()
    for plan in plans.values():
        for resource in plan.resources:
            if not resource.custom or not takes_tags(resource.type):
                continue
            tags = resource.inputs.get("tags") or {}
            missing = [key for key in REQUIRED_TAG_KEYS if not tags.get(key)]
            assert not missing, f"{resource.urn} lacks tags {missing}"
            assert tags["Environment"] == plan.environment
            assert tags["Layer"] == plan.layer
            checked.add(resource.type)
    # The check is not vacuous: at least every stateful type was found taggable and checked.
    assert checked >= {
        "aws:kms/key:Key",
        "aws:s3/bucket:Bucket",
        "aws:sns/topic:Topic",
        "aws:secretsmanager/secret:Secret",
        "aws:ecr/repository:Repository",
    }


# Names scoped to their parent, not to the account: an inline policy's name lives inside its
# role (which carries the suffix), so the same name in dev and prod cannot collide.
PARENT_SCOPED = {"aws:iam/rolePolicy:RolePolicy"}


def physical(resource) -> bool:
    return resource.type.startswith("aws:") and resource.type not in PARENT_SCOPED


def test_every_physical_name_carries_the_environment_suffix(plans):
    name_keys = ("name", "bucket")
    for plan in plans.values():
        for resource in plan.resources:
            if not physical(resource):
                continue
            for key in name_keys:
                value = resource.inputs.get(key)
                if isinstance(value, str) and resource.type != "aws:s3/bucketPolicy:BucketPolicy":
                    assert value.endswith(f"-{plan.environment}"), (resource.urn, value)


def test_dev_and_prod_names_never_collide(dev, prod):
    def names(plans):
        return {
            r.inputs.get("name") or r.inputs.get("bucket")
            for plan in plans.values()
            for r in plan.resources
            if physical(r) and (r.inputs.get("name") or r.inputs.get("bucket"))
        }

    assert names(dev) and names(dev).isdisjoint(names(prod))


def test_every_resource_belongs_to_its_layer_component(plans):
    for plan in plans.values():
        (component,) = [r for r in plan.resources if r.type.startswith("acme:") and not r.parent]
        assert component.type == f"acme:{plan.layer}:{plan.layer.capitalize()}"
        for resource in plan.resources:
            if resource.type.startswith("aws:"):
                assert _ancestors(plan, resource)[-1] == component.urn, resource.urn


def test_each_service_of_the_pipeline_is_a_child_component_of_the_layer(plans):
    plan = plans["pipeline"]
    children = [r for r in plan.resources if r.type.startswith("acme:") and r.parent]
    assert sorted((r.type, r.name) for r in children) == [
        ("acme:pipeline:ServicePipeline", "pipeline-app"),
        ("acme:pipeline:ServicePipeline", "pipeline-worker"),
    ]
    (layer,) = [r for r in plan.resources if r.type == "acme:pipeline:Pipeline"]
    assert {r.parent for r in children} == {layer.urn}


def _ancestors(plan, resource):
    by_urn = {r.urn: r for r in plan.resources}
    chain = []
    while resource.parent:
        chain.append(resource.parent)
        resource = by_urn[resource.parent]
    return chain


def test_every_aws_resource_uses_the_environment_provider_pinned_to_its_account(plans):
    for plan in plans.values():
        (provider,) = plan.of_type("pulumi:providers:aws")
        assert provider.inputs["region"] == "us-east-1"
        expected = "111111111111" if plan.environment == "dev" else "222222222222"
        assert provider.inputs["allowedAccountIds"] == f'["{expected}"]'
        for resource in plan.resources:
            if resource.type.startswith("aws:"):
                assert resource.provider == provider.urn, resource.urn


STATEFUL_URNS = {
    "foundation": [
        "urn:pulumi:{env}::platform-foundation::acme:foundation:Foundation$aws:kms/key:Key"
        "::foundation-key",
        "urn:pulumi:{env}::platform-foundation::acme:foundation:Foundation$aws:s3/bucket:Bucket"
        "::foundation-artifacts",
        "urn:pulumi:{env}::platform-foundation::acme:foundation:Foundation"
        "$aws:secretsmanager/secret:Secret::foundation-github-token",
        "urn:pulumi:{env}::platform-foundation::acme:foundation:Foundation"
        "$aws:dynamodb/table:Table::foundation-ledger",
    ],
    # Each service's repository; the application's also answers to the URN it had when the
    # layer had one repository (registry-repository), by an alias: tests/test_registry.py.
    "registry": [
        "urn:pulumi:{env}::platform-registry::acme:registry:Registry"
        "$aws:ecr/repository:Repository::registry-app-repository",
        "urn:pulumi:{env}::platform-registry::acme:registry:Registry"
        "$aws:ecr/repository:Repository::registry-worker-repository",
    ],
}


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_stateful_resource_urns_are_pinned(environment, dev, prod):
    """A refactor that renames, re-parents or re-types these would replace them: data loss."""
    plans = {"dev": dev, "prod": prod}[environment]
    for layer, urns in STATEFUL_URNS.items():
        present = {r.urn for r in plans[layer].resources}
        for urn in urns:
            assert urn.format(env=environment) in present


def test_same_input_gives_byte_identical_plans(dev):
    again = plan_all("dev")
    for layer, plan in dev.items():
        assert again[layer].to_text() == plan.to_text(), layer


def test_plan_ids_and_arns_are_realistic_for_the_account_and_region(dev):
    key_arn = dev["foundation"].exports["kmsKeyArn"]
    assert re.fullmatch(r"arn:aws:kms:us-east-1:111111111111:key/[0-9a-f-]{36}", key_arn)
    assert dev["registry"].exports["repositoryUrls"] == {
        "app": "111111111111.dkr.ecr.us-east-1.amazonaws.com/acme-registry-app-dev",
        "worker": "111111111111.dkr.ecr.us-east-1.amazonaws.com/acme-registry-worker-dev",
    }
    assert re.fullmatch(
        r"arn:aws:secretsmanager:us-east-1:111111111111:secret:"
        r"acme-foundation-github-token-dev-[0-9a-f]{6}",
        dev["foundation"].exports["githubTokenSecretArn"],
    )

"""The registry layer: one ECR repository per service, scan on push, immutable tags but
``production``, the key from the foundation, each with its own lifecycle policy; and the move
from the one repository of the image-family days without replacing the application's."""

from __future__ import annotations

import json

import pytest

from shared.errors import ConfigError
from tests.conftest import real_upstream
from tests.platform_support import with_services

REPOSITORY = "aws:ecr/repository:Repository"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
OLD_URN = "urn:pulumi:dev::platform-registry::acme:registry:Registry${}::{}"
"""The URNs of the one repository and its policy before every service had its own."""


def repositories(plan) -> dict[str, dict]:
    """The inputs of each repository, by its ``Service`` tag."""
    return {r.inputs["tags"]["Service"]: r.inputs for r in plan.of_type(REPOSITORY)}


def rules(plan) -> dict[str, list[dict]]:
    """Each lifecycle policy's rules by priority, by the name of the repository it applies to."""
    return {
        r.inputs["repository"]: sorted(
            json.loads(r.inputs["policy"])["rules"], key=lambda rule: rule["rulePriority"]
        )
        for r in plan.of_type(LIFECYCLE)
    }


def test_each_service_has_its_own_repository(dev):
    plan = dev["registry"]
    assert sorted((r.name, r.inputs["name"]) for r in plan.of_type(REPOSITORY)) == [
        ("registry-app-repository", "acme-registry-app-dev"),
        ("registry-worker-repository", "acme-registry-worker-dev"),
    ]
    assert plan.exports["repositoryNames"] == {
        "app": "acme-registry-app-dev",
        "worker": "acme-registry-worker-dev",
    }
    assert plan.exports["repositoryArns"] == {
        "app": "arn:aws:ecr:us-east-1:111111111111:repository/acme-registry-app-dev",
        "worker": "arn:aws:ecr:us-east-1:111111111111:repository/acme-registry-worker-dev",
    }


def test_each_repository_carries_its_service_tag_and_every_required_tag(dev):
    for service, inputs in repositories(dev["registry"]).items():
        assert inputs["tags"] == {
            "CostCenter": "cc-platform-001",
            "Environment": "dev",
            "Layer": "registry",
            "ManagedBy": "pulumi",
            "Owner": "platform-registry",
            "Project": "container-platform",
            "Repository": "github.com/acme/container-platform",
            "Service": service,
        }
    assert set(repositories(dev["registry"])) == {"app", "worker"}


def test_each_repository_scans_on_push(dev):
    for inputs in repositories(dev["registry"]).values():
        assert inputs["imageScanningConfiguration"] == {"scanOnPush": True}


def test_each_repository_has_immutable_tags_but_production_moves(dev):
    for inputs in repositories(dev["registry"]).values():
        assert inputs["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
        # Exactly one exclusion, the literal tag: no wildcard that would free commit tags.
        assert inputs["imageTagMutabilityExclusionFilters"] == [
            {"filter": "production", "filterType": "WILDCARD"}
        ]


def test_each_repository_is_encrypted_with_the_key_the_foundation_exported(dev):
    key = dev["foundation"].exports["kmsKeyArn"]
    for inputs in repositories(dev["registry"]).values():
        assert inputs["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": key}]


EXPECTED_RULES = [
    {
        "rulePriority": 1,
        "description": "Expire untagged images after 1 day(s)",
        "selection": {
            "tagStatus": "untagged",
            "countType": "sinceImagePushed",
            "countUnit": "days",
            "countNumber": 1,
        },
        "action": {"type": "expire"},
    },
    {
        "rulePriority": 2,
        "description": "Keep the image tagged production",
        "selection": {
            "tagStatus": "tagged",
            "tagPatternList": ["production"],
            "countType": "imageCountMoreThan",
            "countNumber": 1,
        },
        "action": {"type": "expire"},
    },
    {
        "rulePriority": 3,
        "description": "Keep the last 10 images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 10},
        "action": {"type": "expire"},
    },
]
"""Untagged images expire after a day; the production image is kept whatever its age (ECR never
lets a lower-priority rule expire an image a higher one's tags matched); the newest 10 stay."""


def test_each_repository_has_its_own_lifecycle_policy(dev):
    assert rules(dev["registry"]) == {
        "acme-registry-app-dev": EXPECTED_RULES,
        "acme-registry-worker-dev": EXPECTED_RULES,
    }


def test_each_repository_is_protected_in_prod_and_deletable_in_dev(dev, prod):
    for plan, protected in ((dev["registry"], False), (prod["registry"], True)):
        found = plan.of_type(REPOSITORY)
        assert len(found) == 2
        for repository in found:
            assert repository.protect is protected
            assert repository.inputs["forceDelete"] is not protected


def test_keep_count_of_the_layer_applies_to_every_repository(replan):
    plan = replan("registry", config={"platform-registry:keepImages": "25"})
    for name, found in rules(plan).items():
        assert found[2]["selection"]["countNumber"] == 25, name
        assert found[2]["description"] == "Keep the last 25 images"


def test_a_services_own_settings_apply_to_its_repository_only(replan, monkeypatch):
    with_services(
        monkeypatch,
        {
            "app": {},
            "worker": {"keepImages": 3, "repositoryName": "jobs", "untaggedExpiryDays": 7},
            "billing": {},
        },
    )
    plan = replan("registry")
    assert {s: inputs["name"] for s, inputs in repositories(plan).items()} == {
        "app": "acme-registry-app-dev",
        "worker": "acme-registry-jobs-dev",
        "billing": "acme-registry-billing-dev",
    }
    found = rules(plan)
    assert found["acme-registry-jobs-dev"][0]["selection"]["countNumber"] == 7
    assert found["acme-registry-jobs-dev"][2]["selection"]["countNumber"] == 3
    for other in ("acme-registry-app-dev", "acme-registry-billing-dev"):
        assert found[other] == EXPECTED_RULES


def test_two_services_sharing_a_repository_are_refused(replan, monkeypatch):
    with_services(
        monkeypatch, {"app": {"repositoryName": "shop"}, "web": {"repositoryName": "shop"}}
    )
    with pytest.raises(ConfigError) as error:
        replan("registry")
    assert str(error.value) == (
        "platform.yaml: services.web.repositoryName: services app and web would share the"
        " repository acme-registry-shop-dev (allowed: a repository of its own for each service"
        " (a repositoryName no other uses))"
    )


def test_a_repository_name_that_is_another_services_name_is_refused(replan, monkeypatch):
    with_services(monkeypatch, {"app": {"repositoryName": "worker"}, "worker": {}})
    with pytest.raises(ConfigError) as error:
        replan("registry")
    # Blamed on the line that names the repository, not on the service that has its name.
    assert str(error.value).startswith(
        "platform.yaml: services.app.repositoryName: services app and worker would share the"
        " repository acme-registry-worker-dev"
    )


# -- moving from the one repository of the image-family days ---------------------------------


def aliases_of(monkeypatch, dev) -> dict[str, list[str]]:
    """By URN, the URNs each registry resource also answers to, as the engine resolves the
    aliases the program registers it with (the mock monitor receives them as the engine would)."""
    from toolbox import offline

    seen: dict[str, list[str]] = {}

    class Watched(offline.RecordingMonitor):
        def RegisterResource(self, request):
            response = super().RegisterResource(request)
            assert not request.aliasURNs  # the SDK sends alias specs: the engine supports them
            seen[response.urn] = [_resolved(response.urn, alias) for alias in request.aliases]
            return response

    monkeypatch.setattr(offline, "RecordingMonitor", Watched)
    offline.plan_layer("registry", "dev", real_upstream(dev, "foundation"))
    return seen


def _resolved(urn: str, alias) -> str:
    """The URN an alias spec names: what it leaves out (type, parent, stack, project) is the
    resource's own, as the engine reads a spec."""
    if alias.WhichOneof("alias") == "urn":
        return alias.urn
    spec = alias.spec
    assert (spec.type, spec.stack, spec.project, spec.parentUrn, spec.noParent) == (
        "",
        "",
        "",
        "",
        False,
    ), spec
    return urn.rsplit("::", 1)[0] + "::" + spec.name


def test_the_applications_repository_and_policy_answer_to_their_old_urns(monkeypatch, dev):
    """Upgrading renames registry-repository to registry-app-repository: without the alias the
    engine would delete the repository (and its images) and create a new one."""
    seen = aliases_of(monkeypatch, dev)
    new = "urn:pulumi:dev::platform-registry::acme:registry:Registry${}::registry-{}"
    assert seen[new.format("aws:ecr/repository:Repository", "app-repository")] == [
        OLD_URN.format("aws:ecr/repository:Repository", "registry-repository")
    ]
    assert seen[
        new.format("aws:ecr/lifecyclePolicy:LifecyclePolicy", "app-repository-lifecycle")
    ] == [
        OLD_URN.format("aws:ecr/lifecyclePolicy:LifecyclePolicy", "registry-repository-lifecycle")
    ]
    # Only the first service's: two resources answering to one URN would be an engine error.
    assert seen[new.format("aws:ecr/repository:Repository", "worker-repository")] == []
    assert (
        seen[new.format("aws:ecr/lifecyclePolicy:LifecyclePolicy", "worker-repository-lifecycle")]
        == []
    )


def test_the_old_urn_goes_to_the_first_service_whatever_its_name(monkeypatch, dev):
    with_services(monkeypatch, {"shop": {}, "app": {}})
    seen = aliases_of(monkeypatch, dev)
    new = (
        "urn:pulumi:dev::platform-registry::acme:registry:Registry$aws:ecr/repository:Repository::"
    )
    assert seen[new + "registry-shop-repository"] == [
        OLD_URN.format("aws:ecr/repository:Repository", "registry-repository")
    ]
    assert seen[new + "registry-app-repository"] == []


def test_previous_names_are_the_first_services_only():
    import pulumi

    from stacks.registry.component import previous_names

    (alias,) = previous_names("registry", "repository", first=True)
    assert isinstance(alias, pulumi.Alias)
    assert (alias.name, alias.type_, alias.parent) == ("registry-repository", ..., ...)
    assert previous_names("registry", "repository", first=False) == []


def test_image_families_in_platform_yaml_point_at_services(tmp_path):
    from shared.settings import PLATFORM_FILE, load_platform

    path = tmp_path / "platform.yaml"
    text = PLATFORM_FILE.read_text(encoding="utf-8")
    old = text[: text.index("\nservices:\n") + 1] + "imageFamilies: [app, worker]\n"
    path.write_text(old, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_platform("dev", path)
    assert str(error.value) == (
        f"{path}: imageFamilies: is gone: each service has its own repository now (allowed: list"
        " the services under services instead (docs/pipeline.md, 'Moving from image families'))"
    )


def test_a_custom_repository_name_is_kept_by_stating_it_for_the_application(
    replan, monkeypatch, config_copy
):
    """The one repository was named by ``repositoryName`` in the stack file. Left there, it
    would name every service's repository; stated for the application, it names the app's."""
    stack = config_copy / "stacks" / "registry" / "Pulumi.dev.yaml"
    stack.write_text("config:\n  platform-registry:repositoryName: shop\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        replan("registry")
    assert str(error.value) == (
        "stacks/registry/Pulumi.dev.yaml: platform-registry:repositoryName: services app and"
        " worker would share the repository acme-registry-shop-dev (allowed: a repository of its"
        " own for each service (a repositoryName no other uses))"
    )
    stack.write_text("config: {}\n", encoding="utf-8")
    with_services(monkeypatch, {"app": {"repositoryName": "shop"}, "worker": {}})
    plan = replan("registry")
    assert {s: inputs["name"] for s, inputs in repositories(plan).items()} == {
        "app": "acme-registry-shop-dev",
        "worker": "acme-registry-worker-dev",
    }
    (app,) = [r for r in plan.of_type(REPOSITORY) if r.inputs["name"] == "acme-registry-shop-dev"]
    assert app.name == "registry-app-repository"

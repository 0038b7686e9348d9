"""The registry component: one ECR repository per service, each with its lifecycle policy."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from shared import services
from shared.contracts import FoundationOutputs, RegistryOutputs, by_key
from stacks.registry.config import RegistryArgs, RepositoryArgs


def lifecycle_rules(keep_images: int, untagged_expiry_days: int) -> str:
    """The lifecycle policy of one service's repository: expire untagged images quickly, keep
    the newest tagged ones and, whatever its age, the one in production.

    A rule selects the one image tagged ``production`` (exactly, a ``tagPatternList`` without
    wildcard) and keeps it: ECR never lets a lower-priority rule expire an image that a
    higher-priority rule's tags matched, so the image in production survives however many newer
    builds follow. The last rule (``any``, which ECR requires to come last) keeps the newest
    ``keep_images``; images pushed before the repository was the service's own (``app-<commit>``
    tags of the image-family days) are counted like any other and age out the same way.
    https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html
    """
    rules: list[dict[str, Any]] = [
        {
            "rulePriority": 1,
            "description": f"Expire untagged images after {untagged_expiry_days} day(s)",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": untagged_expiry_days,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 2,
            "description": f"Keep the image tagged {services.PRODUCTION_TAG}",
            "selection": {
                "tagStatus": "tagged",
                "tagPatternList": [services.PRODUCTION_TAG],
                "countType": "imageCountMoreThan",
                "countNumber": 1,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 3,
            "description": f"Keep the last {keep_images} images",
            "selection": {
                "tagStatus": "any",
                "countType": "imageCountMoreThan",
                "countNumber": keep_images,
            },
            "action": {"type": "expire"},
        },
    ]
    return json.dumps({"rules": rules}, sort_keys=True)


class Registry(pulumi.ComponentResource):
    """The ECR repositories the pipelines push to and ECS pulls from: one per service."""

    repositories: dict[str, aws.ecr.Repository]
    """By service: scan on push, immutable tags (but ``production``), the foundation key."""
    outputs: RegistryOutputs
    """The layer's contract, exported by ``__main__``."""

    def __init__(
        self,
        name: str,
        args: RegistryArgs,
        foundation: FoundationOutputs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("acme:registry:Registry", name, None, opts)
        self.repositories = {}
        for index, repository in enumerate(args.repositories):
            self.repositories[repository.service] = self._repository(
                name, repository, foundation, protect=args.protect, first=index == 0
            )
        self.outputs = RegistryOutputs(
            repository_names=by_key(self.repositories, lambda r: r.name),
            repository_arns=by_key(self.repositories, lambda r: r.arn),
            repository_urls=by_key(self.repositories, lambda r: r.repository_url),
        )
        self.register_outputs({"repositoryArns": self.outputs.repository_arns})

    def _repository(
        self,
        name: str,
        args: RepositoryArgs,
        foundation: FoundationOutputs,
        *,
        protect: bool,
        first: bool,
    ) -> aws.ecr.Repository:
        """One service's repository and its lifecycle policy.

        The first service's (the application's) also answers to the names the one repository
        had before every service had its own (``aliases``), so upgrading keeps it, and its
        images, instead of replacing it (docs/pipeline.md, 'Moving from image families').
        """
        resource = f"{name}-{args.service}-repository"
        repository = aws.ecr.Repository(
            resource,
            name=args.repository_name,
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True
            ),
            # Immutable: a tag (the commit) always means the same image; the pipeline never
            # pushes `latest`. One exception, matched exactly (no wildcard): the `production`
            # tag, which the deploy handler moves to each image it promotes.
            # https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-ecr-repository-imagetagmutabilityexclusionfilter.html
            image_tag_mutability="IMMUTABLE_WITH_EXCLUSION",
            image_tag_mutability_exclusion_filters=[
                aws.ecr.RepositoryImageTagMutabilityExclusionFilterArgs(
                    filter=services.PRODUCTION_TAG, filter_type="WILDCARD"
                )
            ],
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(
                    encryption_type="KMS", kms_key=foundation.kms_key_arn
                )
            ],
            force_delete=not protect,
            # The layer's tags come from the stack transform, which merges them over these.
            tags={"Service": args.service},
            opts=pulumi.ResourceOptions(
                parent=self, protect=protect, aliases=previous_names(name, "repository", first)
            ),
        )
        aws.ecr.LifecyclePolicy(
            f"{resource}-lifecycle",
            repository=repository.name,
            policy=lifecycle_rules(args.keep_images, args.untagged_expiry_days),
            opts=pulumi.ResourceOptions(
                parent=self, aliases=previous_names(name, "repository-lifecycle", first)
            ),
        )
        return repository


def previous_names(name: str, suffix: str, first: bool) -> list[pulumi.Input[pulumi.Alias]]:
    """What the first service's resource was called when the layer had one repository."""
    return [pulumi.Alias(name=f"{name}-{suffix}")] if first else []

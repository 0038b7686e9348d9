"""The registry component: the ECR repository and its lifecycle policy."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from shared import families
from shared.contracts import FoundationOutputs, RegistryOutputs
from stacks.registry.config import RegistryArgs


def lifecycle_rules(
    keep_images: int, untagged_expiry_days: int, image_families: Sequence[str]
) -> str:
    """The lifecycle policy: expire untagged images quickly, keep each family's newest.

    One ``imageCountMoreThan`` rule per family, selecting its tags by prefix (``<family>-``), so
    a busy service's pushes never expire the image another service runs. There is no ``any``
    rule: a tag outside every family (pushed by hand) is never expired by this policy.
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
        }
    ]
    for priority, family in enumerate(image_families, start=2):
        rules.append(
            {
                "rulePriority": priority,
                "description": f"Keep the last {keep_images} images of {family}",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPrefixList": [families.tag_prefix(family)],
                    "countType": "imageCountMoreThan",
                    "countNumber": keep_images,
                },
                "action": {"type": "expire"},
            }
        )
    return json.dumps({"rules": rules}, sort_keys=True)


class Registry(pulumi.ComponentResource):
    """The ECR repository the pipeline pushes to and ECS pulls from."""

    repository: aws.ecr.Repository
    """The repository: scan on push, immutable tags, encrypted with the foundation key."""
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
        self.repository = aws.ecr.Repository(
            f"{name}-repository",
            name=args.repository_name,
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True
            ),
            # Immutable: a tag (the commit) always means the same image; the pipeline never
            # pushes `latest`.
            image_tag_mutability="IMMUTABLE",
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(
                    encryption_type="KMS", kms_key=foundation.kms_key_arn
                )
            ],
            force_delete=not args.protect,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-repository-lifecycle",
            repository=self.repository.name,
            policy=lifecycle_rules(
                args.keep_images, args.untagged_expiry_days, args.image_families
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.outputs = RegistryOutputs(
            repository_name=self.repository.name,
            repository_arn=self.repository.arn,
            repository_url=self.repository.repository_url,
        )
        self.register_outputs({"repositoryArn": self.repository.arn})

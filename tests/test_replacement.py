"""Named resources are replaced by deleting them first, across the plan of every layer."""

from __future__ import annotations

NAME_INPUTS = ("name", "targetId")
"""Inputs that fix a physical name (or an identity inside the parent that an API overwrites)."""


def _named(resource) -> bool:
    if not resource.custom or resource.type.startswith("pulumi:"):
        return False  # components, providers and stack references are not AWS resources
    if resource.type == "aws:s3/bucket:Bucket" and resource.inputs.get("bucket"):
        return True
    return any(resource.inputs.get(key) is not None for key in NAME_INPUTS)


def test_every_resource_with_a_fixed_name_is_deleted_before_it_is_replaced(dev, prod):
    walked = []
    for plans in (dev, prod):
        for plan in plans.values():
            for resource in plan.resources:
                if _named(resource):
                    walked.append(resource.type)
                    assert resource.delete_before_replace, f"{plan.stack}: {resource.urn}"
    # The walk saw each kind of named resource the platform makes.
    assert {
        "aws:kms/alias:Alias",
        "aws:s3/bucket:Bucket",
        "aws:secretsmanager/secret:Secret",
        "aws:sns/topic:Topic",
        "aws:ecr/repository:Repository",
        "aws:iam/role:Role",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:codebuild/project:Project",
        "aws:codebuild/reportGroup:ReportGroup",
        "aws:codepipeline/pipeline:Pipeline",
        "aws:codepipeline/webhook:Webhook",
        "aws:cloudwatch/eventRule:EventRule",
        "aws:cloudwatch/eventTarget:EventTarget",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "aws:sqs/queue:Queue",
    } <= set(walked)


def test_resources_without_a_fixed_name_keep_create_before_delete(dev):
    # A bucket's companions are keyed by the bucket: replacing one means another bucket.
    versionings = dev["foundation"].of_type("aws:s3/bucketVersioning:BucketVersioning")
    assert len(versionings) == 2  # the artifact and the source bucket
    assert all(versioning.delete_before_replace is False for versioning in versionings)
    assert dev["foundation"].one("aws:kms/key:Key").delete_before_replace is False

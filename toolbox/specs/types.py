"""Each Pulumi resource type's CloudFormation type: a name-normalising default and a small table.

The default: ``aws:<module>/<resource>:<Class>`` is ``AWS::<Service>::<Class>`` where the
service's name, lower-cased, is the module (``codepipeline`` -> ``CodePipeline``). The table holds
the types whose names differ, and ``allow.toml``'s ``[schemas-none]`` the types that have no
CloudFormation type, each with the reason.
"""

from __future__ import annotations

from functools import cache

from toolbox.specs.data import cfn_types
from toolbox.specs.findings import allow_list

RENAMED: dict[str, str] = {
    "aws:cloudwatch/eventRule:EventRule": "AWS::Events::Rule",
    "aws:cloudwatch/logGroup:LogGroup": "AWS::Logs::LogGroup",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "AWS::CloudWatch::Alarm",
    "aws:sns/topicSubscription:TopicSubscription": "AWS::SNS::Subscription",
    # pulumi-aws resources that are a property of one CloudFormation type (schemas.PARTS)
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": "AWS::S3::Bucket",
    "aws:s3/bucketNotification:BucketNotification": "AWS::S3::Bucket",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "AWS::S3::Bucket",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "AWS::S3::Bucket",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "AWS::S3::Bucket"
    ),
    "aws:s3/bucketVersioning:BucketVersioning": "AWS::S3::Bucket",
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": "AWS::ECR::Repository",
    "aws:cloudwatch/eventTarget:EventTarget": "AWS::Events::Rule",
}
"""pulumi-aws types whose CloudFormation type the default does not find (for a type that is a
property of a CloudFormation type, that type: its handlers manage the property)."""


@cache
def _by_lower(region: str) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for name in cfn_types(region):
        parts = name.split("::")
        if len(parts) == 3:
            out[parts[1].lower(), parts[2].lower()] = name
    return out


def cfn_type(pulumi_type: str, region: str = "us-east-1") -> str | None:
    """The CloudFormation type of ``pulumi_type``; None when it has none (or is unknown)."""
    if pulumi_type in RENAMED:
        return RENAMED[pulumi_type]
    parts = pulumi_type.split(":")
    if len(parts) != 3 or parts[0] != "aws":
        return None
    module = parts[1].split("/")[0]
    return _by_lower(region).get((module.lower(), parts[2].lower()))


def no_cfn_type(pulumi_type: str) -> str | None:
    """Why ``pulumi_type`` has no CloudFormation type (allow.toml), or None if it is not listed."""
    if not pulumi_type.startswith("aws:"):
        return "not an AWS resource (a component, a provider, a stack reference or GitHub)"
    entry = allow_list().get("schemas-none", {}).get(pulumi_type)
    return str(entry["reason"]) if entry else None

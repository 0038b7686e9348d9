"""Physical names and tags from one label (after Cloud Posse's null-label).

Every physical name in the platform comes from :meth:`Label.name`: namespace, layer, purpose and
the environment suffix, checked against the limits of the AWS service it is for. A name that
cannot fit is a ConfigError at config time, naming the setting that made it too long, instead of
a failed deploy halfway through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from shared.errors import ConfigError
from shared.layers import Layer
from shared.settings import PLATFORM_FILE, Platform, relative


@dataclass(frozen=True)
class Limit:
    """What one AWS service accepts as a name."""

    minimum: int
    maximum: int
    pattern: str
    allowed: str
    prefix: str = ""
    """Fixed text before the label (``alias/``, ``/aws/codebuild/``); counts towards the limit."""
    lowercase: bool = False


class Kind(Enum):
    """The kinds of physical name the platform makes, with each service's documented limits."""

    S3_BUCKET = Limit(
        3, 63, r"[a-z0-9][a-z0-9-]*[a-z0-9]", "3-63 chars: a-z, 0-9, -", lowercase=True
    )
    KMS_ALIAS = Limit(
        7,
        256,
        r"alias/[A-Za-z0-9/_-]+",
        "alias/ then a-z A-Z 0-9 / _ -, 256 in all",
        prefix="alias/",
    )
    SECRET = Limit(1, 512, r"[A-Za-z0-9/_+=.@-]+", "1-512 chars: A-Z a-z 0-9 / _ + = . @ -")
    SNS_TOPIC = Limit(1, 256, r"[A-Za-z0-9_-]+", "1-256 chars: A-Z a-z 0-9 _ -")
    ECR_REPOSITORY = Limit(
        2,
        256,
        r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*",
        "2-256 chars: a-z 0-9 . _ - /",
        lowercase=True,
    )
    IAM_ROLE = Limit(1, 64, r"[A-Za-z0-9+=,.@_-]+", "1-64 chars: A-Z a-z 0-9 + = , . @ _ -")
    IAM_POLICY = Limit(1, 128, r"[A-Za-z0-9+=,.@_-]+", "1-128 chars: A-Z a-z 0-9 + = , . @ _ -")
    LOG_GROUP = Limit(
        1, 512, r"[A-Za-z0-9._/#-]+", "1-512 chars: A-Z a-z 0-9 . _ / # -", prefix="/aws/codebuild/"
    )
    CODEBUILD_PROJECT = Limit(
        2,
        150,
        r"[A-Za-z0-9][A-Za-z0-9_-]+",
        "2-150 chars: A-Z a-z 0-9 _ -, starting with a letter or digit",
    )
    REPORT_GROUP = Limit(2, 128, r"[A-Za-z0-9][A-Za-z0-9_-]+", "2-128 chars: A-Z a-z 0-9 _ -")
    CODEPIPELINE = Limit(1, 100, r"[A-Za-z0-9.@_-]+", "1-100 chars: A-Z a-z 0-9 . @ _ -")
    EVENT_RULE = Limit(1, 64, r"[A-Za-z0-9._-]+", "1-64 chars: A-Z a-z 0-9 . _ -")
    SQS_QUEUE = Limit(1, 80, r"[A-Za-z0-9_-]+", "1-80 chars: A-Z a-z 0-9 _ -")
    CLOUDWATCH_ALARM = Limit(1, 255, r"[ -~]+", "1-255 printable ASCII chars")
    CODEPIPELINE_WEBHOOK = Limit(1, 100, r"[A-Za-z0-9.@_-]+", "1-100 chars: A-Z a-z 0-9 . @ _ -")
    DYNAMODB_TABLE = Limit(3, 255, r"[A-Za-z0-9_.-]+", "3-255 chars: A-Z a-z 0-9 _ . -")
    LAMBDA_FUNCTION = Limit(1, 64, r"[A-Za-z0-9_-]+", "1-64 chars: A-Z a-z 0-9 _ -")
    LAMBDA_LOG_GROUP = Limit(
        1, 512, r"[A-Za-z0-9._/#-]+", "1-512 chars: A-Z a-z 0-9 . _ / # -", prefix="/aws/lambda/"
    )


@dataclass(frozen=True)
class Label:
    """One context that makes every name and tag of one layer in one environment."""

    platform: Platform
    layer: Layer
    service: str = ""
    """The service the names are for (``shared/services.py``), after the layer in each name;
    empty for what the layer has once, whatever the number of services."""

    def of(self, service: str) -> Label:
        """The label of ``service``'s resources in this layer and environment."""
        return Label(self.platform, self.layer, service)

    def name(
        self,
        kind: Kind,
        *parts: str,
        scoped_to_account: bool = False,
        blame: tuple[str, str] | None = None,
    ) -> str:
        """``<namespace>-<layer>[-<service>]-<parts>[-<account>]-<env>``, within ``kind``'s limits.

        ``scoped_to_account`` adds the account id, for names that are global across accounts
        (S3 buckets), so the same config in two accounts never collides. ``blame`` is the
        (file, key) to name when the name does not fit; by default the namespace.
        """
        pieces = [self.platform.namespace, self.layer.name, *filter(None, [self.service]), *parts]
        if scoped_to_account:
            pieces.append(self.platform.account_id)
        pieces.append(self.platform.environment)
        limit = kind.value
        return self.checked(kind, limit.prefix + "-".join(pieces), blame)

    def checked(self, kind: Kind, value: str, blame: tuple[str, str] | None = None) -> str:
        """``value`` as a ``kind`` name, or a ConfigError naming ``blame`` (by default the
        namespace) when the service would refuse it."""
        limit = kind.value
        if limit.lowercase:
            value = value.lower()
        if not limit.minimum <= len(value) <= limit.maximum:
            raise ConfigError(
                *_blamed(blame),
                f"the {kind.name.lower().replace('_', ' ')} name '{value}' is {len(value)} chars,"
                f" over the limit of {limit.maximum}",
                f"a shorter value; {limit.allowed}",
            )
        if not re.fullmatch(limit.pattern, value):
            raise ConfigError(
                *_blamed(blame),
                f"the {kind.name.lower().replace('_', ' ')} name '{value}' has characters"
                " that service does not accept",
                limit.allowed,
            )
        return value

    def prefix(self, kind: Kind, layer: Layer | None = None) -> str:
        """The fixed start of every ``kind`` name of ``layer`` (default: this label's layer).

        For conditions that must match a family of names another layer makes (the key policy
        lets CloudWatch Logs use the key only for the pipeline's log groups).
        """
        return f"{kind.value.prefix}{self.platform.namespace}-{(layer or self.layer).name}-"

    @property
    def tags(self) -> dict[str, str]:
        """The tags every taggable resource of this layer carries (see shared.tagging)."""
        return {
            "Project": self.platform.project,
            "Environment": self.platform.environment,
            "Layer": self.layer.name,
            "Owner": self.layer.owner,
            "ManagedBy": "pulumi",
            "Repository": self.platform.repository,
            "CostCenter": self.platform.cost_center,
        }


def _blamed(blame: tuple[str, str] | None) -> tuple[str, str]:
    """The (file, key) a name that does not fit is blamed on: by default the namespace."""
    return blame or (relative(PLATFORM_FILE), "namespace")


REQUIRED_TAGS = (
    "Project",
    "Environment",
    "Layer",
    "Owner",
    "ManagedBy",
    "Repository",
    "CostCenter",
)
"""Tag keys the policy pack and the tests require on every taggable resource."""

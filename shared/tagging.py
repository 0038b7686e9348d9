"""One mechanism tags every taggable resource: a stack transformation installed by each layer.

A resource is taggable when its type takes a ``tags`` input. The label's tags are merged into
whatever tags the resource sets itself, and win on conflict, so no resource can drop or override
a required tag. The tests check the result independently, from each type's own signature.
"""

from __future__ import annotations

import re

import pulumi

from shared.errors import PlatformError

TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
TAG_CHARACTERS = re.compile(r"[\w .:/=+\-@]*")
"""Letters and digits (any script), spaces and ``_ . : / = + - @``: what every service accepts."""
TAG_RULES = "letters, digits, spaces and _ . : / = + - @; key 1-128 chars, value up to 256"


def tag_problem(key: str, value: str) -> tuple[str, str] | None:
    """Why AWS would refuse the tag ``key=value`` as (problem, allowed), or None.

    AWS's rules for tags, the same across the services the platform tags: keys of 1-128 and
    values of up to 256 Unicode characters, of letters, digits, spaces and ``_ . : / = + - @``,
    and neither may start with ``aws:`` in any case (reserved for AWS).
    """
    if not 1 <= len(key) <= TAG_KEY_MAX:
        return f"the tag key '{key}' is {len(key)} chars", TAG_RULES
    if len(value) > TAG_VALUE_MAX:
        return f"the tag value for {key} is {len(value)} chars, over the limit of 256", TAG_RULES
    for what, text in (("key", key), ("value", value)):
        if text.lower().startswith("aws:"):
            return f"the tag {what} '{text}' starts with aws:, which AWS reserves", TAG_RULES
        if not TAG_CHARACTERS.fullmatch(text):
            bad = "".join(sorted({c for c in text if not TAG_CHARACTERS.fullmatch(c)}))
            return f"the tag {what} '{text}' has characters AWS does not accept: {bad!r}", TAG_RULES
    return None


def apply_default_tags(tags: dict[str, str]) -> None:
    """Tag every taggable resource registered from now on in this stack with ``tags``."""
    for key, value in tags.items():
        problem = tag_problem(key, value)
        if problem:
            raise PlatformError(f"tag {key}: {problem[0]} (allowed: {problem[1]})")
    pulumi.runtime.register_stack_transformation(adding_tags(tags))


def adding_tags(tags: dict[str, str]) -> pulumi.ResourceTransformation:
    """A transformation that merges ``tags`` into every taggable resource's own (``tags`` win)."""
    required = dict(sorted(tags.items()))

    def transform(
        args: pulumi.ResourceTransformationArgs,
    ) -> pulumi.ResourceTransformationResult | None:
        if not isinstance(args.props, dict) or "tags" not in args.props:
            return None
        own = args.props.get("tags")
        merged = (
            required
            if own is None
            else pulumi.Output.from_input(own).apply(lambda current: {**current, **required})
        )
        return pulumi.ResourceTransformationResult({**args.props, "tags": merged}, args.opts)

    return transform

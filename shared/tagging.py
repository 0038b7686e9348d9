"""One mechanism tags every taggable resource: a stack transformation installed by each layer.

A resource is taggable when its type takes a ``tags`` input. The label's tags are merged into
whatever tags the resource sets itself, and win on conflict, so no resource can drop or override
a required tag. The tests check the result independently, from each type's own signature.
"""

from __future__ import annotations

import pulumi


def apply_default_tags(tags: dict[str, str]) -> None:
    """Tag every taggable resource registered from now on in this stack with ``tags``."""
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

    pulumi.runtime.register_stack_transformation(transform)

"""One mechanism replaces named resources safely: delete first, then create.

A resource whose physical name is fixed (a ``name`` the label made, a bucket name, an EventBridge
target id) cannot exist twice: Pulumi's default create-before-delete replacement would fail on
the name, or, where the API overwrites by name (an inline role policy, an alarm, a target),
create the new one and then delete it with the old. A stack transformation installed by each
layer sets ``delete_before_replace`` on every such resource, including those added later, and a
test walks the plan of every layer to prove it.
"""

from __future__ import annotations

import pulumi

NAME_INPUTS: tuple[str, ...] = ("name", "target_id")
"""Inputs (as the program names them) that fix a physical name, or an identity in the parent."""

NAME_INPUTS_BY_TYPE: dict[str, tuple[str, ...]] = {"aws:s3/bucket:Bucket": ("bucket",)}
"""Types whose name input has another key (``bucket`` on other S3 types names the parent)."""


def has_fixed_name(type_: str, props: dict) -> bool:
    """Whether a resource of ``type_`` with ``props`` sets its physical name explicitly."""
    if not type_.startswith("aws:"):
        return False  # stack references, providers and components name nothing in AWS
    keys = (*NAME_INPUTS, *NAME_INPUTS_BY_TYPE.get(type_, ()))
    return any(props.get(key) is not None for key in keys)


def apply_delete_before_replace() -> None:
    """Replace every resource with a fixed physical name by deleting it first."""

    def transform(
        args: pulumi.ResourceTransformationArgs,
    ) -> pulumi.ResourceTransformationResult | None:
        if not isinstance(args.props, dict) or not has_fixed_name(args.type_, args.props):
            return None
        opts = pulumi.ResourceOptions.merge(
            args.opts, pulumi.ResourceOptions(delete_before_replace=True)
        )
        return pulumi.ResourceTransformationResult(args.props, opts)

    pulumi.runtime.register_stack_transformation(transform)

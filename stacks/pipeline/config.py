"""Reads and validates the pipeline layer's config into :class:`PipelineArgs`."""

from __future__ import annotations

from dataclasses import dataclass

from shared.program import Program


@dataclass(frozen=True)
class PipelineArgs:
    """Everything the pipeline component needs, validated and with its names checked."""

    account_id: str
    """The AWS account."""
    region: str
    """The AWS region."""


def load(program: Program) -> PipelineArgs:
    """Validate the pipeline config; a ConfigError naming file and key on bad input."""
    return PipelineArgs(account_id=program.platform.account_id, region=program.platform.region)

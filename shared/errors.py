"""Errors a user can fix. Each renders as one line: where, what, and what is allowed."""

from __future__ import annotations

from pulumi.errors import RunError


class PlatformError(RunError):
    """An error with a one-line message meant for the person running the command.

    It is a ``pulumi.RunError``, so the Pulumi CLI prints just the message, never a traceback.
    """


class ConfigError(PlatformError):
    """A configuration value is missing or not allowed.

    The message names the file, the key and what is allowed, so the fix needs no traceback.
    """

    def __init__(self, source: str, key: str, problem: str, allowed: str | None = None) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        self.allowed = allowed
        message = f"{source}: {key}: {problem}"
        if allowed:
            message += f" (allowed: {allowed})"
        super().__init__(message)


class UpstreamError(PlatformError):
    """An upstream stack, or one of its exports, is missing or of the wrong type."""

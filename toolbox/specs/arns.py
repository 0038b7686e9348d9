"""Whether a policy Resource (a pattern with ``*`` and ``?``) names a resource of an ARN format.

The SAR writes each resource type's ARN as a template, e.g.
``arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}:log-stream:${LogStreamName}``.
A Resource matches it when some ARN fits both: the two are patterns, so the test is whether their
languages intersect, decided over (position in one, position in the other) like glob matching.

What a ``${Variable}`` may hold: one or more characters, never ``:``, and no ``/`` unless the
name is one AWS allows slashes in (a path, a log group, an S3 key, an ECR repository, a secret):
so ``arn:aws:s3:::bucket/*`` is an object, not a bucket, and ``table/t/index/*`` an index, not a
table.
"""

from __future__ import annotations

import re
from functools import cache

SLASHED = re.compile(r"(WithPath|Path|LogGroupName|ObjectName|RepositoryName|SecretId)$")
"""Variables whose values may contain ``/`` (IAM paths; log groups such as ``/aws/lambda/x``;
S3 object keys; ECR repository namespaces; Secrets Manager names, which allow ``/``)."""

_CLASSES = {
    "any": lambda c: True,  # a policy's wildcard
    "var": lambda c: c not in ":/",
    "path": lambda c: c != ":",
    "account": str.isdigit,
    "region": lambda c: c.isalnum() or c == "-",
}
_SAMPLES = "a0-/:"
"""One character of each kind the classes tell apart, to try where two classes meet."""

# A token is a literal character, or (repeat, class): ``repeat`` False for exactly one character
# of the class, True for any number of them.
Token = str | tuple[bool, str]


@cache
def _format_tokens(template: str) -> tuple[Token, ...]:
    out: list[Token] = []
    for piece in re.split(r"(\$\{\w+\})", template):
        if not piece.startswith("${"):
            out.extend(piece)
            continue
        name = piece[2:-1]
        if name == "Partition":
            out.extend("aws")
            continue
        kind = {"Account": "account", "Region": "region"}.get(name)
        kind = kind or ("path" if SLASHED.search(name) else "var")
        out += [(False, kind), (True, kind)]
    return tuple(out)


def _pattern_tokens(pattern: str) -> tuple[Token, ...]:
    return tuple((True, "any") if c == "*" else (False, "any") if c == "?" else c for c in pattern)


def _makes(token: Token, char: str) -> bool:
    return token == char if isinstance(token, str) else _CLASSES[token[1]](char)


def _repeats(token: Token | None) -> bool:
    return token is not None and not isinstance(token, str) and token[0]


_REGEX_CLASSES = {
    "var": "[^:/]",
    "path": "[^:]",
    "account": "[0-9]",
    "region": "[A-Za-z0-9-]",
}


def intersects(pattern: str, template: str) -> bool:
    """Whether the policy Resource ``pattern`` can name a resource of the ARN ``template``."""
    if "*" not in pattern and "?" not in pattern:  # one ARN: a plain match, much cheaper
        return _regex(template).fullmatch(pattern) is not None
    return _intersects(_pattern_tokens(pattern), _format_tokens(template))


@cache
def _regex(template: str) -> re.Pattern[str]:
    """The ARNs of ``template``, as a regular expression (the classes of :func:`_format_tokens`)."""
    parts: list[str] = []
    for token in _format_tokens(template):
        if isinstance(token, str):
            parts.append(re.escape(token))
        else:
            repeat, kind = token
            parts.append(_REGEX_CLASSES[kind] + ("*" if repeat else ""))
    return re.compile("".join(parts))


@cache
def _intersects(left: tuple[Token, ...], right: tuple[Token, ...]) -> bool:
    seen: set[tuple[int, int]] = set()
    stack = [(0, 0)]
    while stack:
        i, j = stack.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == len(left) and j == len(right):
            return True
        a = left[i] if i < len(left) else None
        b = right[j] if j < len(right) else None
        if _repeats(a):
            stack.append((i + 1, j))  # the wildcard stops here
        if _repeats(b):
            stack.append((i, j + 1))
        if a is None or b is None:
            continue
        samples = a if isinstance(a, str) else b if isinstance(b, str) else _SAMPLES
        if any(_makes(a, c) and _makes(b, c) for c in samples):
            # both make one character; a repeating token may go on making more
            stack.append((i if _repeats(a) else i + 1, j if _repeats(b) else j + 1))
    return False

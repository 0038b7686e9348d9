"""The operators' roles against CloudFormation's handler permissions.

Each CloudFormation resource schema lists, per handler (create, read, update, delete), the IAM
actions AWS's own provider calls to manage the type. For every type the plans hold, each of them
must be granted by the deploy role (the read handler's also by the drift role), or be listed in
``allow.toml``'s ``[[handlers."<type>"]]`` with the reason the Terraform-based provider does not
call it; an entry with ``open`` is a known gap, printed with its fix instead of failing.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from typing import Any

from toolbox.specs.data import cfn_schema
from toolbox.specs.findings import Finding, allow_list

WRITE_HANDLERS = ("create", "update", "delete")


def granted(document: Mapping[str, Any]) -> set[str]:
    """The actions a role's Allow statements name (patterns kept as written, lower-cased)."""
    out: set[str] = set()
    statements = document.get("Statement", [])
    for statement in [statements] if isinstance(statements, dict) else statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        out.update(a.lower() for a in ([actions] if isinstance(actions, str) else actions))
    return out


def _holds(actions: set[str], wanted: str) -> bool:
    wanted = wanted.lower()
    return wanted in actions or any(fnmatch.fnmatchcase(wanted, a) for a in actions if "*" in a)


def _entry(groups: list[dict[str, Any]], permission: str, role: str) -> dict[str, Any] | None:
    """The allow.toml group that explains ``permission`` missing from ``role``, if any."""
    for group in groups:
        roles = group.get("roles", ["deploy", "drift"])
        if role in roles and any(
            fnmatch.fnmatchcase(permission.lower(), p.lower()) for p in group["permissions"]
        ):
            return group
    return None


def check(
    cfn_types: Iterable[str],
    deploy: Mapping[str, Any],
    drift: Mapping[str, Any] | None,
    layer: str,
    region: str = "us-east-1",
) -> tuple[list[Finding], list[str]]:
    """Findings for the handler permissions the roles lack, and the open gaps of ``[gaps]``."""
    deploy_actions = granted(deploy)
    drift_actions = granted(drift) if drift is not None else None
    allowed = allow_list().get("handlers", {})
    findings: list[Finding] = []
    open_gaps: list[str] = []
    for cfn_type in sorted(set(cfn_types)):
        schema = cfn_schema(cfn_type, region)
        if schema is None:
            continue
        handlers = schema.get("handlers", {})
        for handler in ("read", *WRITE_HANDLERS):
            for permission in handlers.get(handler, {}).get("permissions", []):
                roles = [("deploy", deploy_actions)]
                if handler == "read" and drift_actions is not None:
                    roles.append(("drift", drift_actions))
                for role, actions in roles:
                    if _holds(actions, permission):
                        continue
                    entry = _entry(allowed.get(cfn_type, []), permission, role)
                    if entry is not None and not entry.get("open"):
                        continue
                    if entry is not None:
                        line = f"{cfn_type} {handler}: {permission} ({role}): {entry['open']}"
                        if line not in open_gaps:
                            open_gaps.append(line)
                        continue
                    findings.append(
                        Finding(
                            "handlers",
                            layer,
                            f"operator-policy {role}",
                            f"{cfn_type} {handler} handler",
                            f"{permission!r} is not granted: the CloudFormation schema lists it"
                            f" for the {handler} handler; grant it (toolbox/operator_policy.py"
                            f" ACCESS) or say in allow.toml why the provider does not call it",
                        )
                    )
    return findings, open_gaps
